"""One collector per test folder, however the paths on pytest's command line are ordered.

pytest 9.1 binds a folder's `conftest.py` fixtures to the one `Package` node that first collected the folder,
and a test sees them only if that very node is among its parents. But a file given on the command line makes
pytest collect the folder holding it afresh (so a file given twice runs twice), and that makes new nodes for
the folder's subfolders too: in `pytest tests/api/a.py tests/x.py tests/api/b.py`, `tests/x.py` collects
`tests/` again, `b.py` then hangs under a second `tests/api` node, and `tests/api/conftest.py`'s fixtures are
"not found" for it (pytest issues 14964, 14971, 15071). pytest's own fix, which hands back the folder nodes
already made, is not in a 9.1 release, and 9.2 breaks schemathesis (pyproject.toml). This hook is that fix,
here: `tests/conftest.py` holds it for every folder under `tests/`. Files are still collected afresh.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

_FOLDERS = pytest.StashKey[dict[Path, pytest.Collector]]()


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
