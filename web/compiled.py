"""The pages' templates compiled once, not at every worker's start: Jinja's bytecode cache in a folder.

Compiling the 49 templates was ~0.4 s of each `rehabmap serve` worker's start (of ~3.4 s of CPU), paid again
by every worker a SIGHUP reload starts and by every server the tests start; loading them compiled is ~0.02 s.

A kept page is used only while everything that shaped it is unchanged, so an upgrade never serves a stale page:
- its template's source: Jinja keeps a checksum of it beside the code, and compiles again when it differs;
- the code that runs while a template compiles: Jinja itself, the environment's settings (web/) and the
  filters and tests, which Jinja calls on constant arguments at compile time and writes their answer into the
  code (`{{ "x"|type_label }}` becomes the label's words). A digest of those packages' Python source is mixed
  into the checksum, so that any change to it compiles every page again, once;
- Python's version: Jinja's own header in each file.

Two workers starting at once may both compile a page and both write it: each writes a file of its own and
renames it into place (Jinja's), so a reader sees a whole file or none. The folder holds code the server runs:
it must be writable by the server's user only (it is made so). Where it cannot be written (a read-only
install, no home folder), the pages are compiled in memory at each start, as before.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from jinja2 import Environment, FileSystemBytecodeCache
from jinja2.bccache import Bucket

log = logging.getLogger("rehabmap.api")
# Besides the filters' and tests' own packages: Jinja's compiler, the escaping it applies to constants, and
# the environment's settings.
COMPILING_PACKAGES = frozenset({"jinja2", "markupsafe", "web"})


class CompiledPages(FileSystemBytecodeCache):
    """Jinja's folder of compiled templates, keyed also by the code that compiled them (see the module's
    docstring), and never a reason for a page to fail: a file that cannot be read is compiled again, one that
    cannot be written is not kept."""

    def __init__(self, cache_dir: Path, environment: Environment) -> None:
        """In `cache_dir`/pages, made if missing."""
        directory = cache_dir / "pages"
        super().__init__(str(directory), "%s.jinja")
        self.code_digest = code_digest(environment)
        self._told = False
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:  # nothing is read from it, and nothing written
            self._tell(exc)

    def get_source_checksum(self, source: str) -> str:
        return hashlib.sha1(f"{self.code_digest}\n{source}".encode()).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError:  # e.g. the folder's path runs through a file: as if not kept
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            self._tell(exc)

    def _tell(self, exc: OSError) -> None:
        if not self._told:
            log.info("compiled pages not kept in %s (%s): compiled at each start", self.directory, type(exc).__name__)
            self._told = True


def keep_compiled(environment: Environment, cache_dir: Path | None) -> None:
    """Have `environment` keep its compiled templates in `cache_dir` (see `CompiledPages`); None: in memory."""
    environment.bytecode_cache = None if cache_dir is None else CompiledPages(cache_dir, environment)


def code_digest(environment: Environment) -> str:
    """A digest of the Python source of every package whose code runs while `environment` compiles."""
    digest = hashlib.sha1()
    for path in sorted(_source_files(environment)):
        digest.update(f"{path}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _source_files(environment: Environment) -> Iterator[Path]:
    functions = (*environment.filters.values(), *environment.tests.values())
    named = {getattr(function, "__module__", None) or "" for function in functions}
    for name in COMPILING_PACKAGES | {module.partition(".")[0] for module in named}:
        module = sys.modules.get(name)
        if module is None:
            continue
        file = getattr(module, "__file__", None)  # None: built in
        if hasattr(module, "__path__"):  # a package: all of it (the filters call its helpers)
            for folder in module.__path__:
                yield from Path(folder).rglob("*.py")
        elif file is not None:
            yield Path(file)
