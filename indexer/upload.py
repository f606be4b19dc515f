"""A curated table uploaded by a maintainer: checked row by row before anything is written, and held until
they confirm it.

The check is the import's own: the table's rows through `indexer.sources.curated` (columns, ONS codes against
the real geography, dates) and then the pipeline's `prepare_rows` (classified, placed from the postcode,
validated as a record), so the report names every row `rehabmap index` would reject, with the same
`file:line: reason`, and lists every row it would index.

An uploaded file is held under `REHABMAP_HOME/uploads/<id>/`, by a random id (the only thing a page or a
URL carries), under the name of its template (`ips_services.csv`, ...), which is how its kind is known again
at the confirm step. It is deleted once used, and any held longer than `HOLD_MINUTES` is swept away at the
next upload. Wherever it is read from (held here, or kept for later rebuilds), a rebuild reads it as it reads
any source (`indexer.sources.load_source`), so the services and rejections it gives name the table by its file
name, as a person knows it, never by a folder of the server's.

An added table is kept under `REHABMAP_HOME/curated/`, one file per kind, and replaces the one kept before it
whole: a table is added as a whole, never row by row. So the check also compares the new table with the kept
one (`replaced_by`): the services and the areas' coverage that adding it would take out of the directory. Since
a new table must hold every row that stays, the kept one can be downloaded (`kept_table`), byte for byte as it
was added: uploaded again unchanged, it takes nothing out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

from indexer.pipeline import IndexReport, Placer, prepare_rows
from indexer.rows import Rejection
from indexer.sources.common import CsvTable, FileUnreadable, csv_table, decode_text, decoded, read_bytes
from indexer.sources.curated import (TABLES, CuratedRow, TableSpec, check_rows, claims_of, header_refusal, rows_of,
                                    spec_for)
from rehabmap.coverage import Claim
from rehabmap.errors import DomainError, Remedy
from rehabmap.random_keys import is_key, new_key

HOLD_MINUTES = 30
KEPT = "curated"  # under REHABMAP_HOME: the tables added through the maintainers' pages, which every rebuild reads


class UnknownTable(DomainError):
    """A name that is no curated table's: there is nothing of that name to give."""

    status = 404
    code = "unknown_table"


class TableNotKept(DomainError):
    """No table of this kind has been added through the maintainers' pages, so there is none to download."""

    status = 404
    code = "table_not_kept"


class TableUnreadable(DomainError):
    """A kept table that cannot be read as text. Each was read as text when it was added, so only a change on the
    server's disk makes one (a file tampered with or put in its place): nothing a request can mend, so a 503, like
    any file of the server's its operator must mend, saying what can be done (`Remedy.KEPT_TABLE`)."""

    status = 503
    code = "table_unreadable"


class TableRefused(DomainError):
    """The file is not a table of the kind chosen (or no table at all): nothing in it can be checked."""

    status = 400
    code = "table_refused"


@dataclass(frozen=True)
class GoodRow:
    """A row the import would index: its line, the service's id and name, and the areas it is for."""

    line: int
    id: str
    name: str
    areas: tuple[str, ...]
    verified_on: str | None


@dataclass
class TableCheck:
    """What an import of the table would do with each row."""

    spec: TableSpec
    good: list[GoodRow] = field(default_factory=list)
    none_rows: list[CuratedRow] = field(default_factory=list)  # areas recorded as having no such service
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)  # the areas it covers: every row for them verified

    @property
    def usable(self) -> bool:
        """Something would land: a service, or an area recorded as having none."""
        return bool(self.good or self.none_rows)


def spec_named(source: str) -> TableSpec | None:
    return next((t for t in TABLES if t.source == source), None)


def spec_filed_as(file_name: str) -> TableSpec | None:
    """The table a file of this name holds: its template's name, under which an upload is held and kept."""
    return next((t for t in TABLES if t.file_name == file_name), None)


def read_table(data: bytes | str, spec: TableSpec) -> CsvTable:
    """The uploaded bytes (or their text, read already) as a table of `spec`'s kind, or `TableRefused` saying what is
    wrong with the file."""
    try:
        table = csv_table(data if isinstance(data, str) else decode_text(data), short_rows=True)
    except FileUnreadable as error:
        raise TableRefused(f"The file cannot be read: {error}") from None
    if table is None:
        raise TableRefused("The file is empty.")
    found = spec_for(table.header)
    if found is None:
        raise TableRefused("The file's header (its first line that is not blank) is not the header of a curated "
                           f"table: it needs the columns {', '.join(spec.required)}. Start from the blank template "
                           f"{spec.file_name}, which the upload page offers for download.")
    if found is not spec:
        raise TableRefused(f"This is a {found.file_name} table, not {spec.file_name}: choose the kind of table "
                           "it is, or upload the other file.")
    if refusal := header_refusal(table.header, spec):
        raise TableRefused(f"{refusal[0].upper()}{refusal[1:]}.")
    first = next(table.rows, None)
    if first is None:  # before, reported as "0 rows are rejected ... every row is rejected"
        raise TableRefused(f"The file has the header of {spec.file_name} and no rows under it: add a row for each "
                           "service (or none for an area that has none), then upload it again.")
    return replace(table, rows=chain([first], table.rows))


def check_table(data: bytes | str, spec: TableSpec, file: str, placer: Placer) -> TableCheck:
    """Every row of the table (its bytes, or a kept table's text: `KeptTable.text`) checked as `rehabmap index`
    checks it; nothing is written."""
    checked = list(check_rows(read_table(data, spec), spec, file))
    report = IndexReport()
    services = prepare_rows(rows_of(checked, spec, file), placer, report)
    result = TableCheck(spec, rejected=report.rejected, warnings=report.warnings,
                        none_rows=[row for row in checked if row.problem is None and row.candidate is None],
                        claims=claims_of(checked, spec.file_name, {r.origin.line for r in report.rejected}))
    areas = {row.line: row.areas for row in checked}
    for service in services:
        line = service.provenance[0].line or 0
        result.good.append(GoodRow(line, service.id, service.name, areas.get(line, ()),
                                   service.last_verified.isoformat() if service.last_verified else None))
    result.rejected.sort(key=lambda r: r.origin.line or 0)
    return result


def kept_tables(home: Path) -> dict[str, Path]:
    """The tables added through the maintainers' pages, by file name: the ones every rebuild reads."""
    folder = home / KEPT
    return {p.name: p for p in sorted(folder.glob("*.csv"))} if folder.is_dir() else {}


@dataclass(frozen=True)
class KeptTable:
    """A kept table as it was added, byte for byte (the bytes of the upload confirmed), and the encoding they are
    read in: downloaded and uploaded again unchanged, it is the same table, so it takes nothing out. `text`: the bytes
    so read, once (what a new upload of its kind is compared with: `replaced_by`)."""

    spec: TableSpec
    data: bytes
    charset: str
    text: str


def kept_table(home: Path, file_name: str) -> KeptTable:
    """The kept table of this name; `UnknownTable` for a name no curated table has, `TableNotKept`, saying so
    plainly, when none of its kind has been added here, `TableUnreadable` (with the file's place, which the face that
    answers it logs for the operator: `tell_operator`) when the file is no longer text."""
    spec = spec_filed_as(file_name)
    if spec is None:
        raise UnknownTable(f"There is no curated table named '{file_name[:100]}': the tables are "
                           f"{', '.join(t.file_name for t in TABLES)}.")
    kept = kept_tables(home).get(spec.file_name)
    if kept is None:
        raise TableNotKept(f"No {spec.file_name} table has been uploaded here yet, so there is none to download: "
                           f"the directory holds nothing from an uploaded table of this kind. Start one from the "
                           f"blank template {spec.file_name}, which the upload page offers. (A table given to "
                           f"rehabmap index on the server is read beside an uploaded one, and is not this download.)")
    try:
        data = read_bytes(kept)
        text, charset = decoded(data)
        return KeptTable(spec, data, charset, text)
    except FileUnreadable as unreadable:
        raise TableUnreadable(f"The {spec.file_name} table kept here cannot be read: {unreadable}. Every table is "
                              "read as text when it is added, so the file has been changed on the server since.",
                              where=str(kept), remedy=Remedy.KEPT_TABLE) from None


@dataclass(frozen=True)
class Replaced:
    """What adding a table takes out of the directory, since it replaces the kept table of its kind whole: the
    services the kept table makes that the new one does not (by id: a service renamed is one taken out and one
    added), and the areas the kept table covers (a verified row, or a verified `none`) that the new one does not.
    `kept`: whether a table of its kind is kept at all; `unread`: why the kept one cannot be read (only a change on
    the server's disk), when what the new one takes out cannot be told, and may be anything the directory holds
    from it; `unreadable`: the error that says so with the file's place, for the face that shows the report to log
    for the operator (`tell_operator`), as the report names no file."""

    kept: bool
    services: list[GoodRow] = field(default_factory=list)
    coverage: list[Claim] = field(default_factory=list)
    unread: str = ""
    unreadable: TableUnreadable | None = None

    @property
    def loses(self) -> bool:
        """It takes something out, or may: a maintainer must say yes to it."""
        return bool(self.services or self.coverage or self.unread)

    @property
    def digest(self) -> str:
        """What the maintainer was shown would be taken out, in short: a confirm carries it, so that a kept table
        changed since (another maintainer's upload) is shown again rather than replaced unseen."""
        shown = [self.kept, sorted(row.id for row in self.services),
                 sorted((c.category, c.area_code) for c in self.coverage), self.unread]
        return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:32]


def replaced_by(check: TableCheck, home: Path, placer: Placer) -> Replaced:
    """What adding the checked table would take out of the directory: the kept table of its kind, checked as the
    rebuild will read it, compared with it. A kept table that no longer reads as its kind (only a change on the
    server's disk: each was checked when it was added) is `unread`, saying so: before, it was compared as empty,
    and the report said the new table took nothing out, whatever the directory still held from it."""
    try:
        kept = kept_table(home, check.spec.file_name)
        before = check_table(kept.text, check.spec, check.spec.file_name, placer)
    except TableNotKept:
        return Replaced(False)
    except TableUnreadable as unreadable:  # said on the report, which names no file: the face logs it
        return Replaced(True, unread=unreadable.message, unreadable=unreadable)
    except TableRefused:
        return Replaced(True, unread=f"The {check.spec.file_name} table kept here no longer reads as one. Every "
                                     "table is checked when it is added, so the file has been changed on the server "
                                     "since.")
    ids = {row.id for row in check.good}
    covered = {(c.category, c.area_code) for c in check.claims}
    return Replaced(True, [row for row in before.good if row.id not in ids],
                    [c for c in before.claims if (c.category, c.area_code) not in covered])


class HeldUploads:
    """Uploaded tables awaiting confirmation, one folder per random id under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def hold(self, data: bytes, spec: TableSpec) -> str:
        self.sweep()
        upload_id = new_key()
        folder = self.root / upload_id
        folder.mkdir(parents=True)
        (folder / spec.file_name).write_bytes(data)
        return upload_id

    def path(self, upload_id: str) -> Path | None:
        """The held table, if `upload_id` names one still held."""
        if not is_key(upload_id):
            return None
        folder = self.root / upload_id
        found = [folder / t.file_name for t in TABLES if (folder / t.file_name).is_file()]
        if not found or time.time() - folder.stat().st_mtime > HOLD_MINUTES * 60:
            return None
        return found[0]

    def discard(self, upload_id: str) -> None:
        if is_key(upload_id):
            shutil.rmtree(self.root / upload_id, ignore_errors=True)

    def sweep(self) -> None:
        """Forget every upload held longer than `HOLD_MINUTES`."""
        if not self.root.is_dir():
            return
        cutoff = time.time() - HOLD_MINUTES * 60
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
