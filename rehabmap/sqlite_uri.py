"""The SQLite URI of a file, in one home that the indexer, the search layer and the benchmarks share."""

from __future__ import annotations

from pathlib import Path


def sqlite_uri(path: Path, mode: str) -> str:
    """The file's URI for `sqlite3.connect(..., uri=True)` (`mode`: SQLite's "ro" or "rw", which never make a
    file), its path escaped: written as `file:{path}`, a folder named with '#' or '?' cut the path there (a stray
    file made, or a raw "unable to open database file", a 500) and one with '%41' read as 'A'."""
    return f"{Path(path).resolve().as_uri()}?mode={mode}"
