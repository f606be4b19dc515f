"""One collector per test folder, however the paths on pytest's command line are ordered; and the longest
files first.

pytest 9.1 binds a folder's `conftest.py` fixtures to the one `Package` node that first collected the folder,
and a test sees them only if that very node is among its parents. But a file given on the command line makes
pytest collect the folder holding it afresh (so a file given twice runs twice), and that makes new nodes for
the folder's subfolders too: in `pytest tests/api/a.py tests/x.py tests/api/b.py`, `tests/x.py` collects
`tests/` again, `b.py` then hangs under a second `tests/api` node, and `tests/api/conftest.py`'s fixtures are
"not found" for it (pytest issues 14964, 14971, 15071). pytest's own fix, which hands back the folder nodes
already made, is not in a 9.1 release, and 9.2 breaks schemathesis (pyproject.toml). This hook is that fix,
here: `tests/conftest.py` holds it for every folder under `tests/`. Files are still collected afresh.

The run's files are handed to the two xdist workers in the order collected (`--no-loadscope-reorder` in
pyproject.toml; xdist's own order is by number of tests, which put the sync files, a few long tests each,
last, where one of them ran on alone while the other worker had finished). Ordered by how long each file
took in a whole run (`file_seconds.txt`, longest first; a file not listed comes after, in the order found),
each worker takes the next file as it finishes one, and the run ends on short files. The order is only a
schedule: no test depends on it (each still passes alone, and in any order of paths given).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

_FOLDERS = pytest.StashKey[dict[Path, pytest.Collector]]()
FILE_SECONDS = Path(__file__).with_name("file_seconds.txt")
LISTED_FROM_S = 20
HEADER = ("# Seconds each test file took in a whole run (setup, call and teardown summed), longest first; files\n"
          f"# under {LISTED_FROM_S} s left out (they come after, in the order found). Read by tests/collection.py;\n"
          "# remade from a run's --durations=0 report by `python -m tests.collection`.\n")


@pytest.hookimpl(wrapper=True)
def pytest_collect_directory(
    path: Path, parent: pytest.Collector
) -> Generator[None, pytest.Collector | None, pytest.Collector | None]:
    """The node made for `path` the first time under this same `parent`, which holds its conftest's
    fixtures, in place of the new one a second collection of `parent` makes."""
    made = yield
    folders = parent.session.stash.setdefault(_FOLDERS, {})
    first = folders.get(path)
    if first is not None and first.parent is parent:
        return first
    if made is not None:
        folders[path] = made
    return made


def file_seconds(listing: Path = FILE_SECONDS) -> dict[str, float]:
    """Seconds a file took in a whole run, by its path from the repository's root (`file_seconds.txt`: a
    comment line starts with #, every other line is `SECONDS PATH`)."""
    lines = listing.read_text(encoding="utf-8").splitlines()
    rows = [line.split(maxsplit=1) for line in lines if line.strip() and not line.startswith("#")]
    return {path.strip(): float(seconds) for seconds, path in rows}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (after pytest's own ordering, which keeps each file's tests together and in
    their order: the sort is stable)."""
    seconds = file_seconds()
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::", 1)[0], 0.0))


def main(durations: list[str]) -> str:
    """`file_seconds.txt` made from a whole run's `--durations=0` report (every setup, call and teardown of
    at least 5 ms, summed by file): `python -m pytest -q -n 2 --dist loadfile --durations=0 > run.log;
    python -m tests.collection < run.log > tests/file_seconds.txt`."""
    total: dict[str, float] = {}
    for line in durations:
        fields = line.split()
        if len(fields) == 3 and fields[0].endswith("s") and fields[1] in ("setup", "call", "teardown"):
            path = fields[2].split("::", 1)[0]
            total[path] = total.get(path, 0.0) + float(fields[0][:-1])
    slowest = sorted(((s, p) for p, s in total.items() if s >= LISTED_FROM_S), reverse=True)
    return "".join([HEADER, *(f"{s:.0f} {p}\n" for s, p in slowest)])


if __name__ == "__main__":
    import sys

    sys.stdout.write(main(sys.stdin.read().splitlines()))
