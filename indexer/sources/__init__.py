"""Source importers: each turns one source format into `Candidate` rows or `Rejection`s (and, from a list
that only may hold rehab services, `Held` rows for the review queue).

`load_source` looks at a path and picks the importer, so the CLI and tests need to know only the path:

* a directory → every `*.json` / `*.json.gz` in it, each detected as below;
* `.json` → an ORUK/HSDS feed (one service, a list, or a `Page` with `contents`), or CQC API location
  JSON (an object with `locationId`, a list most of whose items are such objects, or `{"locations": [...]}`),
  whose bad items are rejected one by one; CQC's location *list* items (no details) are refused as a whole;
* `.csv` → the CQC care directory when its header (under the title block) has that layout; otherwise
  the generic CSV importer, which needs a mapping: `mapping`, a sidecar `<file>.mapping.toml`, or one in
  `mappings/` whose `match_header` columns are all present; a curated table (`templates/curated/`,
  `indexer/sources/curated.py`) is known by its header.

Any of these may be gzipped (`.csv.gz`, `.json.gz`). A file that cannot be read at all gives one
rejection at line 0 saying why; a bad row gives a rejection for that row and the import goes on. A source
that gives nothing but such whole-file rejections (or no rows at all) is unreadable: its line-0 rejections
are `fatal`, and the pipeline will not replace the live index with what the other sources hold. A folder
is one source: a stray file in it is reported, and the services of the other files still land.

A row names its file as the person who gave the source knows it: the file's name, or `folder/file` for a
file of a folder given as the source; never the folders above it. That name is what the provenance, the
rejections and a refused import's message carry, and those reach people (the maintainers' pages, the audit
log), so the server's folder layout does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from indexer.rows import Origin, Rejection, Row
from indexer.sources import cqc, curated, oruk
from indexer.sources.common import FileUnreadable, base_suffix, csv_table, read_text
from indexer.sources.csv_mapping import MAPPINGS_DIR, MappingError, find_mapping, no_mapping, read_mapped
from rehabmap.errors import shorten


def load_source(path: Path, *, mapping: Path | None = None, source: str | None = None,
                mappings_dir: Path = MAPPINGS_DIR, name: str | None = None) -> Iterator[Row]:
    """Every row of the source at `path`; `source` overrides the source name (the id prefix), `name` the name
    its rows carry (`source_names`: when another source read beside it has the same file name)."""
    path = Path(path)
    name = name or _name(path)
    whole_file: list[Rejection] = []  # held back until it is known whether anything else was read
    rows = 0
    for row in _rows(path, name, mapping, source, mappings_dir):
        if isinstance(row, Rejection) and row.origin.line == 0:
            whole_file.append(row)
        else:
            rows += 1
            yield row
    if not rows and not whole_file:
        what = "its .json files hold" if path.is_dir() else "the file holds"
        whole_file.append(_file_rejection(name, source, f"no rows to import: {what} no services"))
    for rejection in whole_file:
        yield replace(rejection, fatal=not rows)


def _name(path: Path) -> str:
    """The source's own name, without the folders above it ('.' is named as the folder it is)."""
    return path.absolute().name or str(path)


def source_names(paths: Sequence[Path]) -> dict[Path, str]:
    """The name of each of the sources read together: its own (`_name`), or, for sources of the same name in
    different folders, with as many of the folders above it as tell them apart (`a/services.csv`,
    `b/services.csv`), so that their provenance and rejections never read alike and no more of the server's
    folders is shown than that."""
    parts = {Path(p): Path(p).absolute().parts for p in paths}
    depth = dict.fromkeys(parts, 1)
    while True:  # each pass adds a folder to every name that different sources still share
        named = {p: "/".join(parts[p][-depth[p]:]) for p in parts}
        sources_named: dict[str, set[tuple[str, ...]]] = {}
        for p, name in named.items():
            sources_named.setdefault(name, set()).add(parts[p])
        clashing = [p for p in parts if len(sources_named[named[p]]) > 1 and depth[p] < len(parts[p])]
        if not clashing:
            return {p: named[p] if depth[p] > 1 else _name(p) for p in parts}
        for p in clashing:
            depth[p] += 1


def _rows(path: Path, name: str, mapping: Path | None, source: str | None,
          mappings_dir: Path) -> Iterator[Row]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if base_suffix(p) == ".json")
        if not files:
            yield _file_rejection(name, source, "the directory has no .json files to import")
        for file in files:
            yield from _load_json(file, f"{name}/{file.name}", source)
    elif not path.exists():
        yield _file_rejection(name, source, "no such file or directory")
    elif base_suffix(path) == ".json":
        yield from _load_json(path, name, source)
    elif base_suffix(path) == ".csv":
        yield from _load_csv(path, name, mapping, source, mappings_dir)
    else:
        yield _file_rejection(name, source, f"unsupported file type '{shorten(''.join(path.suffixes))}': give an "
                                            "ORUK or CQC .json, a CQC directory .csv, or a .csv with a mapping")


def _load_json(path: Path, name: str, source: str | None) -> Iterator[Row]:
    try:
        data = json.loads(read_text(path))
    except FileUnreadable as exc:
        yield _file_rejection(name, source, str(exc))
        return
    except json.JSONDecodeError as exc:
        yield _file_rejection(name, source, f"not valid JSON: {exc}")
        return
    except ValueError as exc:  # a number of more digits than Python reads (4,300): before, a traceback
        yield _file_rejection(name, source, f"not JSON rehabmap can read: {shorten(exc, 120)}")
        return
    except RecursionError:
        yield _file_rejection(name, source, "JSON nested too deeply to read (no service feed nests its values "
                                            "hundreds of levels deep)")
        return
    if cqc.is_api_json(data):
        if refusal := cqc.list_items_refusal(data):
            yield _file_rejection(name, source, refusal)
        else:
            yield from cqc.read_api(data, name, source)
    elif oruk.is_oruk(data):
        yield from oruk.read_oruk(data, name, source)
    else:
        yield _file_rejection(name, source, "neither an ORUK service, list or page (with 'contents') nor CQC "
                                            "location JSON (with 'locationId')")


def _load_csv(path: Path, name: str, mapping: Path | None, source: str | None,
              mappings_dir: Path) -> Iterator[Row]:
    try:
        text = read_text(path)
        directory = None if mapping else csv_table(text, cqc.is_directory_header, cqc.TITLE_LINES_MAX)
        table = directory or csv_table(text, short_rows=True)
    except FileUnreadable as exc:
        yield _file_rejection(name, source, str(exc))
        return
    if directory is not None:
        yield from cqc.read_directory(directory, name, source)
        return
    if table is None:
        yield _file_rejection(name, source, "the file is empty")
        return
    spec = None if mapping else curated.spec_for(table.header)
    if spec is not None:  # a curated table from templates/curated/
        yield from curated.read_curated(table, spec, name, source)
        return
    try:
        chosen = find_mapping(path, table.header, mapping, mappings_dir)
    except MappingError as exc:
        yield _file_rejection(name, source, str(exc))
        return
    if chosen is None:
        yield _file_rejection(name, source, no_mapping(path, table.header))
        return
    yield from read_mapped(table, chosen, name, source)


def _file_rejection(name: str, source: str | None, reason: str) -> Rejection:
    return Rejection(Origin(source or "file", name, 0), reason)
