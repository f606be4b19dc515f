"""The embedded backend: one SQLite file as the store of record, NumPy columns in memory for queries.

A rebuild writes a complete new file beside the live one and renames it over it (atomic on POSIX), so
a crash half way leaves the previous index served intact. Readers notice the swap by the file's
identity and load the new generation on their next query. A maintainer's edit (`EmbeddedWriter.upsert`)
changes records of the live file in place, in one transaction, and logs the rows it wrote; readers lay
those rows over the columns they loaded (`search.columns.OverlaidColumns`) instead of loading the file
again, so an edit never stalls searches.
"""

from __future__ import annotations

import copy
import gc
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from datetime import date, datetime, timezone
from itertools import compress, count, repeat
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
from pydantic import ValidationError

from geodata.distance import haversine_km
from rehabmap.errors import DomainError, IndexNotBuilt, IndexUnavailable
from rehabmap.sqlite_uri import sqlite_uri
from rehabmap.index.base import (Around, Hit, IndexInfo, Page, Previous, Revision, ServiceQuery, Stored,
                                 around_in_parts, as_service, nearest_of_types_in_parts, overlay_record)
from search.columns import (ROW_FIELDS, Columns, OverlaidColumns, ServiceColumns, Snapshot, SnapshotPiece,
                            best_fit_first, row_values)
from rehabmap.per_record import RECORDS_KEPT
from rehabmap.record import Service, source_of
from rehabmap.taxonomy import ServiceType

# Schema 2 stores each record's query columns (`service_columns`) beside its JSON doc, so a reader loads a
# generation with one SELECT and builds no Service objects; schema 1 files held only the docs and must be
# rebuilt. Schema 3: needs read from a record's words are kept apart from its stated needs
# (`Service.needs_read_from_text`); a schema 2 file holds them merged into `needs_met`/`needs_not_met`, as if
# stated, and is refused (rebuilt), never misread. Schema 4: so is a gender read from a record's words
# (`Service.gender_read_from_text`, in the doc only); a schema 3 file holds it as `gender`, the filtered column,
# which left a person out on a guess. Schema 5: a record read from a dated file carries the file (its title, date and
# the fields it gave: `Provenance.edition`); a schema 4 file's records lack it, and would read as listed by a live
# source, "last confirmed" on the day of their import. Schema 6: the columns hold what "best fit first" weighs
# (taking referrals as yes, no or not said, where schema 5 held yes or not; the capacity and its date), so it ranks
# every passing row without reading their records (`IndexBackend.best_fit`).
SCHEMA_VERSION = "6"
# The files of other schemas' indexes beside this one's (`index_file`): named by schema since session 37; until then
# every schema's was `index.sqlite`.
_INDEX_FILES = re.compile(r"index(-schema\d+)?\.sqlite")
_UNNAMED = "index.sqlite"
_SCHEMA_SAID = "SELECT value FROM meta WHERE key = 'schema_version'"  # the schema a file says it has (every schema)
# Declarations of the columns named by `ROW_FIELDS`, in that order.
_COLUMN_DECLARATIONS = {
    "id": "TEXT NOT NULL", "lat": "REAL NOT NULL", "lon": "REAL NOT NULL", "service_type": "TEXT NOT NULL",
    "subtype": "TEXT NOT NULL", "needs_met": "TEXT NOT NULL", "needs_not_met": "TEXT NOT NULL",
    "min_age": "INTEGER NOT NULL", "max_age": "INTEGER NOT NULL", "gender": "TEXT NOT NULL",
    "accepting": "INTEGER NOT NULL", "capacity": "TEXT NOT NULL", "capacity_as_of": "INTEGER NOT NULL",
    "active": "INTEGER NOT NULL", "icb_code": "TEXT NOT NULL",
    "sub_icb_code": "TEXT NOT NULL", "lad_code": "TEXT NOT NULL", "region_code": "TEXT NOT NULL",
    "serves": "TEXT NOT NULL", "restricted": "INTEGER NOT NULL", "polygon": "TEXT NOT NULL",
    "name_key": "TEXT NOT NULL",
}
assert tuple(_COLUMN_DECLARATIONS) == ROW_FIELDS, "the stored columns must be exactly what ServiceColumns reads"
# The change log: one row per record an edit wrote (by rowid), numbered in the order written, so a reader
# lays over its loaded columns only what changed since the state it last read (`_Generation.catch_up`).
# A file written before the log existed gets it with its first edit.
_CHANGES_TABLE = " (seq INTEGER PRIMARY KEY, row INTEGER NOT NULL, at REAL NOT NULL);"  # at: Unix time
# The columns live in their own table, row for row with `services` (same rowid), not in it: beside the
# ~1.2 KB docs they would leave room for 2 rows a page instead of 3 (178 MiB against 158 MiB at 100k), and
# a load would read every page of the docs to reach them. Alone, they fill ~15 rows a page, and a load
# reads only those pages.
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE services (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    service_type TEXT NOT NULL,
    doc BLOB NOT NULL  -- the record as JSON, UTF-8 (bytes: no decode on write or read)
);
CREATE TABLE service_columns (
    rowid INTEGER PRIMARY KEY,
    {", ".join(f"{name} {declaration}" for name, declaration in _COLUMN_DECLARATIONS.items())}
);
CREATE VIRTUAL TABLE services_fts USING fts5(
    name, organisation, description, content='', tokenize='porter unicode61'
);
-- The columns of every row as the build wrote them (`search.columns.Snapshot`), so a reader loads a
-- generation from a few arrays; edits since are laid over them from the change log. A file written before
-- the snapshot existed is loaded from service_columns instead.
CREATE TABLE column_snapshot (name TEXT PRIMARY KEY, data BLOB NOT NULL);
""" + "CREATE TABLE changes" + _CHANGES_TABLE

assert ROW_FIELDS[0] == "id"
_LOADED = ROW_FIELDS[1:]  # all but the id, which a load reads first
_COLUMNS_SQL = ", ".join(_LOADED)
_INTO_SERVICES = "INTO services VALUES (?, ?, ?, ?)"
_INTO_COLUMNS = f"INTO service_columns VALUES ({', '.join('?' * (len(ROW_FIELDS) + 1))})"
_BATCH = 5000
# A new file is written once, start to end, and nothing reads it until it is renamed into place: no
# journal, no syncs until the end. 16 KiB pages and a 128 MiB page cache cut the row inserts of a 500k build
# by a third (fewer, larger writes; the B-tree paths stay cached).
_BUILD_PRAGMAS = ("PRAGMA page_size=16384; PRAGMA cache_size=-131072; PRAGMA journal_mode=OFF; "
                  "PRAGMA synchronous=OFF;")
# Services validated from their docs that each loaded generation keeps, least recently used dropped first.
# A query returns a few dozen and the same answers come back (the 200 benchmark matches touch ~2,000 records,
# 12-14k when no type is named: `RECORDS_KEPT`), so the records in use stay cached while the rest of a large
# index is never held in memory. The bound keeps the cost of the cache known: ~6.9 KiB per Service (~108 MiB
# when full), and a full collection of the cyclic GC walks each cached Service's ~15 objects (the index itself
# is NumPy arrays and flat dicts, which the GC does not walk; see `_exempt_from_gc`).
RECORD_CACHE_SIZE = RECORDS_KEPT
_STREAM_BATCH = 1000
# A reader lays at most this many edited rows over the columns it loaded; past it, it loads the file again.
# A catch-up rebuilds the small columns of every row edited since the load, so its cost grows with them:
# ~30 ms with 100 rows and ~0.17 s with 1,000 at 100k services, measured on a 2-core machine at load
# average 7 (`OverlaidColumns`). At one edit a second, each to a different service, a reload every ~17 min.
OVERLAY_MAX_ROWS = 1000
# An edit waits this long for readers holding the file (a load, an answer an edit overtook: `_held`), and a reader
# as long for an edit waiting to commit (`_reader`): SQLite's default, 5 s, is shorter than such a wait.
_WRITE_TIMEOUT_S = 60.0
_log = logging.getLogger(__name__)
T = TypeVar("T")


def index_file(home: Path) -> Path:
    """The embedded index in REHABMAP_HOME. Its name carries its schema, so a release that reads another schema
    builds its own file beside the one the release before it serves from, which serves on until no process of that
    release runs (docs/deploy.md, "Upgrades"): a schema change leaves no time when nothing answers."""
    return home / f"index-schema{SCHEMA_VERSION}.sqlite"


def previous_index(home: Path) -> Previous | None:
    """The index of the newest schema up to this version's in REHABMAP_HOME under another name than this
    version's file: the one a release before this one serves from, until this version's is built and every process
    runs this release. Its records are read only for a rebuild's guard (`PreviousFile`)."""
    found = []
    for path in home.glob("index*.sqlite"):
        if _INDEX_FILES.fullmatch(path.name) and path != index_file(home):
            said = _schema_of(path) or ""
            if said.isdigit() and int(said) <= int(SCHEMA_VERSION):  # of a schema, its file named by it first
                found.append((int(said), path.name != _UNNAMED, path.stat().st_mtime_ns, path))
    if not found:
        return None
    schema, _, _, newest = max(found)
    return Previous(PreviousFile(newest), f"the index file {newest.name} (schema {schema})")


def _schema_of(path: Path) -> str | None:
    """The schema an index file says it has; None for a file that is not an index SQLite can read."""
    try:
        found = _read_only(path, _SCHEMA_SAID)
    except sqlite3.DatabaseError:
        return None
    return found[0][0] if found else None


def _read_only(path: Path, sql: str, *args: Any) -> list[tuple]:
    """The rows of one query of a file this version does not write: opened read-only, closed after."""
    with closing(sqlite3.connect(sqlite_uri(path, "ro"), uri=True)) as conn:
        return conn.execute(sql, args).fetchall()


class PreviousFile:
    """An index file of the release before, read for what a rebuild's guard asks of the index it replaces: its
    services' ids, and the name of one it would lose. Every schema so far keeps each record's id and JSON in
    `services`; a record this version cannot read is the guard's to report (`indexer.pipeline._name_in`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _rows(self, sql: str, *args: Any) -> list[tuple]:
        try:
            return _read_only(self.path, sql, *args)
        except sqlite3.DatabaseError as error:
            raise _unreadable(self.path, error) from None

    def ids(self) -> list[str]:
        return [service_id for service_id, in self._rows("SELECT id FROM services ORDER BY id")]

    def get(self, service_id: str) -> Service | None:
        found = self._rows("SELECT doc FROM services WHERE id = ?", service_id)
        return Service.stored(found[0][0]) if found else None


class EmbeddedWriter:
    """Writes a whole new index generation, then swaps it in."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def replace_all(self, services: Iterable[Service | Stored | Revision], *,
                    before_swap: Callable[[], None] | None = None, build: str | None = None) -> int:
        """The new index written and renamed over the live one. Records a parallel import's workers stored in part
        files (`parts`) are copied from them, and a record given again as a `Revision` replaces the one first
        written at its row. `before_swap`, called once every record is written, may refuse the new index by
        raising: it is then deleted, and the live index stays. `build`: its token (`IndexWriter.replace_all`)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned()
        tmp = self.path.with_name(f"{self.path.name}.building-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(_BUILD_PRAGMAS + _SCHEMA)
            count, snapshot = self._write_rows(conn, services)
            if before_swap is not None:
                before_swap()
            conn.executemany("INSERT INTO column_snapshot VALUES (?, ?)", snapshot.blobs().items())
            built_at = datetime.now(timezone.utc).isoformat()
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema_version", SCHEMA_VERSION), ("built_at", built_at), ("count", str(count)),
                ("sources", json.dumps(dict(Counter(map(source_of, snapshot.ids))))),
                ("build", build or uuid.uuid4().hex),
            ])
            conn.commit()
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        return count

    def upsert(self, changes: Mapping[str, Mapping[str, Any]], *,
               before_commit: Callable[[], None] | None = None, settle: bool = False) -> list[Service]:
        """Edit records of the live file in place, in one transaction (rollback journal, synchronous=FULL),
        logging each row written in the change log; see `RecordWriter.upsert`. Readers notice the edit by
        the file's new modification time and lay the logged rows over their columns. `settle` asks nothing more:
        a call cut off wrote nothing, and one that committed was seen by every reader."""
        if not changes:
            return []
        self.recover()
        conn = _connect(self.path, "rw", isolation_level=None)
        written: list[Service] = []
        try:
            _check_schema(conn, self.path)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS changes" + _CHANGES_TABLE)
            added = Counter[str]()
            for service_id, fields in changes.items():
                row = conn.execute("SELECT rowid, doc FROM services WHERE id = ?", (service_id,)).fetchone()
                current = Service.stored(row[1]) if row else None
                try:
                    service = overlay_record(current, fields)
                except (ValidationError, DomainError, ValueError) as exc:
                    _log.warning("edit to %s not applied: %s", service_id, type(exc).__name__)
                    continue
                if service == current:
                    continue
                if current is None:
                    rowid = conn.execute("SELECT coalesce(max(rowid), 0) + 1 FROM services").fetchone()[0]
                    added[service.source] += 1
                else:
                    rowid = row[0]
                    conn.execute(_OUT_OF_FTS, _words(rowid, current))
                conn.execute("INSERT OR REPLACE " + _INTO_SERVICES,
                             (rowid, service.id, service.service_type.value, _doc(service)))
                conn.execute("INSERT OR REPLACE " + _INTO_COLUMNS, (rowid, *row_values(service)))
                conn.execute(_INTO_FTS, _words(rowid, service))
                conn.execute("INSERT INTO changes (row, at) VALUES (?, ?)", (rowid, time.time()))
                written.append(service)
            if written:
                meta = dict(conn.execute("SELECT key, value FROM meta"))
                updates = [("edits", str(int(meta.get("edits", "0")) + 1))]  # a new generation token
                if added:
                    sources = Counter[str](json.loads(meta.get("sources", "{}"))) + added
                    updates += [("count", str(int(meta.get("count", "0")) + sum(added.values()))),
                                ("sources", json.dumps(dict(sources)))]
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", updates)
            if before_commit is not None:
                before_commit()
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(error, sqlite3.OperationalError) and _busy(error):  # at BEGIN IMMEDIATE, or at COMMIT
                raise _busy_index("readers or another edit have") from None
            raise
        finally:
            conn.close()
        if written:
            _touch(self.path)
        return written

    def recover(self) -> None:
        """Roll back a write that a crash interrupted (its hot journal), which read-only readers cannot do.

        Needed before readers open the file after a crash, and before a rebuild renames a new file over
        it: SQLite would play an old journal into whatever file then has the name."""
        if not self.path.with_name(self.path.name + "-journal").exists():
            return
        conn = sqlite3.connect(self.path, timeout=_WRITE_TIMEOUT_S)
        try:
            conn.execute("SELECT count(*) FROM meta").fetchone()
        finally:
            conn.close()

    def _remove_abandoned(self) -> None:
        """Half-written files left by a build that crashed (its process is gone) are deleted."""
        for leftover in self.path.parent.glob(f"{self.path.name}.building-*"):
            pid = leftover.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not process_alive(int(pid)):
                leftover.unlink(missing_ok=True)

    @staticmethod
    def _write_rows(conn: sqlite3.Connection,
                    services: Iterable[Service | Stored | Revision]) -> tuple[int, Snapshot]:
        """Every row written, and the snapshot of their columns. The sources are counted from its ids, at C speed,
        not per row through `Service.source`."""
        count = 0
        batch = _Batch()
        for service in services:
            if isinstance(service, Revision):
                if service.service is None:
                    batch.drop(conn, service.row + 1)
                else:
                    batch.revise(conn, service.row + 1, service.service)
                continue
            count += 1
            if isinstance(service, _PartRow):
                batch.add_stored(conn, service, count)
            else:
                batch.add(as_service(service), count)
            if batch.size >= _BATCH:
                batch.write(conn)
        batch.write(conn)
        return count - batch.fill(conn), batch.snapshot_of(conn)

    def parts(self) -> EmbeddedParts:
        """Part files for one parallel import's workers (`indexer.workers`), beside the index."""
        return EmbeddedParts(self.path)


# Where a row's id and type sit in its column values (the row number, then `ROW_FIELDS`).
_ID_AT, _TYPE_AT = 1 + ROW_FIELDS.index("id"), 1 + ROW_FIELDS.index("service_type")


def _doc(service: Service) -> bytes:
    """The stored JSON of a record: `model_dump_json` without the decode to str (a third of its cost), and
    without null fields (a third of the bytes; every nullable field of a record defaults to null, so it
    reads back equal: `tests/index/test_embedded_store.py`)."""
    return type(service).__pydantic_serializer__.to_json(service, exclude_none=True)


def _encoded(row: int, service: Service) -> tuple[tuple, tuple, tuple]:
    """A record as the index stores it at that row: its column values, its `services` row (the doc bound as a
    bytearray: `sqlite3` binds one as the same blob, but looks for an adapter for any other bytes-like value,
    ~3k instructions a row, two failed attribute lookups) and its full-text fields."""
    values = (row, *row_values(service))
    return values, (row, values[_ID_AT], values[_TYPE_AT], bytearray(_doc(service))), _words(row, service)


def _words(row: int, service: Service) -> tuple[int, str, str, str]:
    """A record's full-text row (`services_fts`): the row, then its name, organisation and description."""
    fields = service.__dict__
    return row, fields["name"], fields["organisation"] or "", fields["description"]


def _part_row(row: int, service: Service) -> tuple:
    """A record's row of a part file (`_PART_SCHEMA`): its row, column values, stored JSON and full-text fields (the
    doc a bytearray, as in `_encoded`)."""
    fields = service.__dict__
    return (row, *row_values(service), bytearray(_doc(service)), fields["name"], fields["organisation"] or "",
            fields["description"])


# A part file (`EmbeddedParts`) holds a worker's records as the index stores them, but in one table, a row each (one
# insert a record, not three: ~2.4 µs a record less), in which an id may come twice (duplicates are merged later,
# by the importing process): its query columns as declared in the index, its stored JSON, and its full-text fields
# as text (a contentless FTS5 table gives none back), to be indexed as they are copied.
_PART_SCHEMA = (f"CREATE TABLE records (rowid INTEGER PRIMARY KEY, "
                f"{', '.join(f'{name} {declaration}' for name, declaration in _COLUMN_DECLARATIONS.items())}, "
                "doc BLOB NOT NULL, name TEXT NOT NULL, organisation TEXT NOT NULL, description TEXT NOT NULL);")
_INTO_PART = f"INSERT INTO records VALUES ({', '.join('?' * (len(ROW_FIELDS) + 5))})"
_COPIES = {table: f"INSERT INTO {into} SELECT rowid + ?, {what} FROM {{part}}.records WHERE rowid BETWEEN ? AND ?"
           for table, into, what in (("services", "services", "id, service_type, doc"),
                                     ("service_columns", "service_columns", ", ".join(ROW_FIELDS)),
                                     ("texts", "services_fts (rowid, name, organisation, description)",
                                      "name, organisation, description"))}
_INTO_FTS = "INSERT INTO services_fts (rowid, name, organisation, description) VALUES (?, ?, ?, ?)"
_OUT_OF_FTS = ("INSERT INTO services_fts (services_fts, rowid, name, organisation, description) "
               "VALUES ('delete', ?, ?, ?, ?)")
_COLUMNS_OF_ROWS = f"SELECT rowid, {', '.join(ROW_FIELDS)} FROM service_columns WHERE rowid BETWEEN ? AND ?"
# The words of every row after a given one, read from its stored JSON as `_words` gives them (a contentless FTS5 table
# gives none back), out of the full-text search (`what` the 'delete' command) or into it at the row it is now at.
_MOVED_WORDS = ("INSERT INTO services_fts ({into} name, organisation, description) "
                "SELECT {what} json_extract(doc, '$.name'), coalesce(json_extract(doc, '$.organisation'), ''), "
                "json_extract(doc, '$.description') "
                "FROM (SELECT rowid, CAST(doc AS TEXT) AS doc FROM services WHERE rowid > ?)")
_ATTACHED_AT_MOST = 10  # SQLite's limit on the files one connection attaches (`SQLITE_MAX_ATTACHED`)


class PartWritten(NamedTuple):
    """A part file as a worker tells the importing process of it (pickled): its name, and the snapshot's columns of
    its rows, gathered as the worker encoded them (`search.columns.Snapshot.piece`)."""

    name: str
    snapshot: SnapshotPiece


class EmbeddedParts:
    """The part files of one parallel import (`rehabmap.index.base.Parts`), beside the index: a worker process
    writes the records of each chunk of rows it prepares into a file of their own, which nothing else opens until
    the worker has closed it (so no process ever waits for another's lock), and the writer copies them into the new
    index with `INSERT … SELECT` (`_Run`), at SQLite's speed, without making a `Service` of them again. The files
    are named by the importing process's id last, so that `EmbeddedWriter._remove_abandoned` deletes those of a
    build that crashed."""

    def __init__(self, index_path: Path) -> None:
        self.index_path = index_path
        self.owner = os.getpid()
        self._written = 0  # in a worker: the parts it wrote
        self._parts: dict[str, _Part] = {}  # in the importing process: the parts read, by name

    def write(self, services: list[Service]) -> PartWritten:
        self._written += 1
        name = f"{self.index_path.name}.building-part{os.getpid()}.{self._written}-{self.owner}"
        path = self.index_path.with_name(name)
        path.unlink(missing_ok=True)
        conn = sqlite3.connect(path)
        snapshot = Snapshot()
        try:
            conn.executescript(_BUILD_PRAGMAS + _PART_SCHEMA)
            records = list(map(_part_row, range(1, len(services) + 1), services))
            conn.executemany(_INTO_PART, records)
            conn.commit()
            snapshot.add(records, skip=1)
        finally:
            conn.close()
        return PartWritten(name, snapshot.piece())

    def stored(self, part: PartWritten, ids: list[str], types: list[ServiceType]) -> list[Stored]:
        found = self._parts[part.name] = _Part(self.index_path.with_name(part.name), part.snapshot)
        # `tuple.__new__` makes each `_PartRow` at C speed (a NamedTuple's own `__new__` is Python code).
        return list(map(tuple.__new__, repeat(_PartRow), zip(ids, types, repeat(found), count(1))))

    def remove(self) -> None:
        for part in self._parts.values():
            part.close()
        for path in self.index_path.parent.glob(f"{self.index_path.name}.building-part*-{self.owner}"):
            path.unlink(missing_ok=True)


class _Part:
    """A chunk's part file as the importing process reads it: a record read back now and then (`_PartRow`), the
    file attached to the new index's connection to be copied (`_Batch.write`), and the snapshot's columns of its
    rows until they are gathered."""

    def __init__(self, path: Path, snapshot: SnapshotPiece) -> None:
        self.path = path
        self._snapshot: SnapshotPiece | None = snapshot
        self._rows = len(snapshot.numbers["id"])
        self._reader: sqlite3.Connection | None = None

    def gather(self, snapshot: Snapshot, first: int, last: int) -> None:
        """The columns of rows `first` to `last` added to the snapshot; the part's let go once its last row's are
        (the columns of the rows the workers have sent ahead of the write are all the importing process holds)."""
        assert self._snapshot is not None, "a part's rows are gathered once, in order"
        snapshot.add_piece(self._snapshot, first - 1, last)
        if last == self._rows:
            self._snapshot = None

    def doc(self, row: int) -> bytes:
        if self._reader is None:
            self._reader = sqlite3.connect(sqlite_uri(self.path, "ro"), uri=True)
        return cast(bytes, self._reader.execute("SELECT doc FROM records WHERE rowid = ?", (row,)).fetchone()[0])

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class _PartRow(NamedTuple):
    """A record at a row of a part file (`rehabmap.index.base.Stored`)."""

    id: str
    service_type: ServiceType
    part: _Part
    row: int

    def service(self) -> Service:
        return Service.stored(self.part.doc(self.row))


class _Records:
    """Consecutive records of a batch given as records: their rows of each table, made here (`_encoded`)."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.columns: list[tuple] = []
        self.texts: list[tuple] = []

    def write(self, conn: sqlite3.Connection, table: str) -> None:
        if table == "services":
            conn.executemany("INSERT " + _INTO_SERVICES, self.rows)
        elif table == "service_columns":
            conn.executemany("INSERT " + _INTO_COLUMNS, self.columns)
        else:
            conn.executemany(_INTO_FTS, self.texts)

    def gather(self, snapshot: Snapshot) -> None:
        snapshot.add(self.columns, skip=1)


class _Run:
    """Consecutive rows of one part that go to consecutive rows of the new index, starting at `at`: copied with one
    statement a table, from the part attached as `alias`."""

    def __init__(self, first: _PartRow, at: int) -> None:
        self.part, self.first, self.last, self.at = first.part, first.row, first.row, at
        self.alias = ""

    def takes(self, row: _PartRow, at: int) -> bool:
        """Whether the record goes on with this run (the next row of the same part, to the next row here)."""
        if row.part is not self.part or row.row != self.last + 1 or at != self.at + row.row - self.first:
            return False
        self.last = row.row
        return True

    def write(self, conn: sqlite3.Connection, table: str) -> None:
        conn.execute(_COPIES[table].format(part=self.alias), (self.at - self.first, self.first, self.last))

    def gather(self, snapshot: Snapshot) -> None:
        self.part.gather(snapshot, self.first, self.last)


class _Batch:
    """Up to `_BATCH` rows of the new index in their order, given as records (`_Records`) or as rows of part files
    (`_Run`), written a table at a time: the services' rows, their columns, then their full-text rows; and the
    snapshot of the columns gathered as they go (a run's from what its worker gathered, `_Part.gather`).

    FTS5 writes the words it holds to its tables when they reach ~1 MB, at a commit and at a statement's savepoint.
    Records given as records (one process's import) go in one a statement, which opens no savepoint: their
    full-text tables are byte for byte what inserting all of them after the last batch gave. Rows of parts are
    copied with one `INSERT … SELECT` a run, whose savepoint writes what FTS5 holds: the same words and places land
    in other segments, and every search gives the same rows, ranked the same (`bench.build_identity.words`)."""

    def __init__(self) -> None:
        self.pieces: list[_Records | _Run] = []
        self.size = 0
        self.parts: dict[_Part, str] = {}  # the parts the runs are copied from, each attached under its name
        self.snapshot = Snapshot()
        self.revised = False  # whether a row was written again (`revise`) or taken out (`drop`)
        self.rows = 0  # rows written so far
        self.dropped: set[int] = set()  # the rows taken out, whose places `fill` fills

    def add(self, service: Service, at: int) -> None:
        piece = self.pieces[-1] if self.pieces else None
        if not isinstance(piece, _Records):
            piece = _Records()
            self.pieces.append(piece)
        values, row, text = _encoded(at, service)
        piece.columns.append(values)
        piece.rows.append(row)
        piece.texts.append(text)
        self.size += 1

    def add_stored(self, conn: sqlite3.Connection, stored: _PartRow, at: int) -> None:
        piece = self.pieces[-1] if self.pieces else None
        if not (isinstance(piece, _Run) and piece.takes(stored, at)):
            if stored.part not in self.parts and len(self.parts) == _ATTACHED_AT_MOST:
                self.write(conn)
            self.parts.setdefault(stored.part, f"part{len(self.parts)}")
            self.pieces.append(_Run(stored, at))
        self.size += 1

    def revise(self, conn: sqlite3.Connection, at: int, service: Service) -> None:
        """The row at `at` written again with this record (the rows before it first); its words replaced where
        they changed."""
        self.write(conn)
        self.revised = True
        values, row, text = _encoded(at, service)
        first = conn.execute("SELECT doc FROM services WHERE rowid = ?", (at,)).fetchone()[0]
        before = _words(at, Service.stored(first))
        conn.execute("INSERT OR REPLACE " + _INTO_SERVICES, row)
        conn.execute("INSERT OR REPLACE " + _INTO_COLUMNS, values)
        if text != before:
            conn.execute(_OUT_OF_FTS, before)
            conn.execute(_INTO_FTS, text)

    def drop(self, conn: sqlite3.Connection, at: int) -> None:
        """The row at `at` taken out (the rows before it first): its record is part of an earlier row's."""
        self.write(conn)
        self.revised = True
        doc = conn.execute("SELECT doc FROM services WHERE rowid = ?", (at,)).fetchone()[0]
        conn.execute(_OUT_OF_FTS, _words(at, Service.stored(doc)))
        conn.execute("DELETE FROM services WHERE rowid = ?", (at,))
        conn.execute("DELETE FROM service_columns WHERE rowid = ?", (at,))
        self.dropped.add(at)

    def fill(self, conn: sqlite3.Connection) -> int:
        """The rows after each row taken out moved up, their words with them, to close the gaps: as a loaded index
        reads row i at rowid i + 1 (`_Generation`), and so that each record is at the row a build in one process
        writes it at, the index being the same (`tests/indexer/test_workers.py`). Before, the last row written filled
        each gap, another order. Every row after the first taken out is moved, once, which costs about what writing
        them did (~4 s of CPU for 97k rows after one taken out at the start), but only an import with a record that
        shows two records written to be one takes a row out (none of the real lists has one). Returns the number of
        rows taken out."""
        taken = sorted(self.dropped)
        if not taken:
            return 0
        conn.execute("CREATE TEMP TABLE taken_out (row INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO taken_out VALUES (?)", [(row,) for row in taken])
        conn.execute(_MOVED_WORDS.format(what="'delete', rowid,", into="services_fts, rowid,"), (taken[0],))
        for table in ("services", "service_columns"):  # through negative rows: a row never lands on one not yet moved
            conn.execute(f"UPDATE {table} SET rowid = -(rowid - (SELECT count(*) FROM taken_out WHERE row < "
                         f"{table}.rowid)) WHERE rowid > ?", (taken[0],))
            conn.execute(f"UPDATE {table} SET rowid = -rowid WHERE rowid < 0")
        conn.execute(_MOVED_WORDS.format(what="rowid,", into="rowid,"), (taken[0] - 1,))
        conn.execute("DROP TABLE taken_out")
        self.rows -= len(taken)
        self.dropped.clear()
        return len(taken)

    def write(self, conn: sqlite3.Connection) -> None:
        for part, alias in self.parts.items():
            conn.execute(f"ATTACH DATABASE ? AS {alias}", (str(part.path),))
        for table in ("services", "service_columns", "texts"):
            for piece in self.pieces:
                if isinstance(piece, _Run):
                    piece.alias = self.parts[piece.part]
                piece.write(conn, table)
        for piece in self.pieces:
            piece.gather(self.snapshot)
        self.rows += self.size
        if self.parts:
            conn.commit()  # a file is detached only outside a transaction (the new file has no journal to keep)
            for alias in self.parts.values():
                conn.execute(f"DETACH DATABASE {alias}")
        self.pieces, self.size, self.parts = [], 0, {}

    def snapshot_of(self, conn: sqlite3.Connection) -> Snapshot:
        """The columns of every row written: gathered as they went, batch by batch (while a parallel import's
        workers still prepare the rest), or, where a row was written again since (`revise`), read from the table."""
        if not self.revised:
            return self.snapshot
        snapshot = Snapshot()
        rows = conn.execute(_COLUMNS_OF_ROWS, (1, self.rows))
        while batch := rows.fetchmany(_BATCH):
            snapshot.add(batch, skip=1)
        return snapshot


def _touch(path: Path) -> None:
    """Give the file a modification time later than any it had, so readers comparing (inode, mtime) see
    every edit, even two within one tick of the file system's clock."""
    before = path.stat().st_mtime_ns
    now = max(time.time_ns(), before + 1)
    os.utime(path, ns=(now, now))


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether a process of this machine is running (signal 0 asks, sending none; another user's is): a build's
    leftover file's (`_remove_abandoned`) and a rebuild's pending file's (`app.pending_rebuild.unfinished`). Where
    `started` is given (`process_started`, kept beside the pid), only the process that started then: a pid is reused
    (a container restarted runs its first processes under the same pids), so the pid alone took a process killed for
    running where another had its number."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started is None or process_started(pid) in (started, None)


def process_started(pid: int) -> int | None:
    """When a process of this machine started, in clock ticks since the machine booted (`/proc/<pid>/stat`'s 22nd
    field), which tells it from a later one given its pid; None where it cannot be read (no `/proc`, the process
    gone). The fields after its name are counted from the name's last ')': the name may hold spaces and ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # the 3rd field on
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# SQLite's words for a file damaged (cut short, a page overwritten) or not a database at all.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def _damaged(error: sqlite3.DatabaseError) -> bool:
    return getattr(error, "sqlite_errorname", None) in _DAMAGED


def _unreadable(path: Path, error: sqlite3.DatabaseError) -> IndexNotBuilt:
    """A file SQLite cannot read is no index to answer from (a 503 saying how to fix it, not a 500): found at the
    open, or where a damaged page lies among the records, at the first read of one."""
    return IndexNotBuilt(f"The index file {path.name} cannot be read ({error}). "
                         "Run 'rehabmap index SOURCE...' again to rebuild it.", where=str(path))


def _busy(error: sqlite3.DatabaseError) -> bool:
    return getattr(error, "sqlite_errorname", None) == "SQLITE_BUSY"


def _busy_index(held_by: str) -> IndexUnavailable:
    """A file another connection held past `_WRITE_TIMEOUT_S` (`held_by`: who "have" held it), which is no file to
    rebuild: nothing is wrong with it, and it answers once they let it go (an edit so refused wrote nothing)."""
    return IndexUnavailable(f"The index is busy: {held_by} held it for more than a minute.")


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """A file in another layout cannot be read or edited: say so, and how to fix it, rather than fail on a
    missing column. A file SQLite cannot read at all (cut short, or not an index) is no index either."""
    try:
        row = conn.execute(_SCHEMA_SAID).fetchone()
    except sqlite3.DatabaseError as error:  # any but a busy file: a file without this table is no index either
        if _busy(error):  # an edit kept it past _WRITE_TIMEOUT_S
            raise _busy_index("an edit has") from None
        raise _unreadable(path, error) from None
    found = row[0] if row else "unknown"
    if found == SCHEMA_VERSION:
        return
    older = found.isdigit() and int(found) < int(SCHEMA_VERSION)
    raise IndexNotBuilt(
        f"The index file {path.name} was built by {'an older' if older else 'a different'} version of rehabmap "
        f"(schema {found}; this version reads schema {SCHEMA_VERSION}). "
        "Run 'rehabmap index SOURCE...' again to rebuild it.", where=str(path))


class _Stale(RuntimeError):
    """The file was edited after the state a reader answers from: its records and words may no longer match the
    columns (the reader answers again with the file held: `EmbeddedIndex._answer`). Internal, never an answer: its
    message says what it is, should a call site ever let it out (a server's log, a traceback)."""

    def __init__(self) -> None:
        super().__init__("Internal to the embedded index: an edit overtook a read of it, which is answered again with "
                         "the file held; asking again answers.")


def _not_there(path: Path) -> IndexNotBuilt:
    """No file where the index is read (never built, or deleted): how to build it, or that a release before this one
    built its own."""
    ours = path == index_file(path.parent)  # (a library user may name the file otherwise)
    earlier = previous_index(path.parent) if ours else None
    return IndexNotBuilt(f"No index has been built: {path.name} is not there. "
                         + (earlier.unread() if earlier else "Run 'rehabmap index SOURCE...' first."), where=str(path))


def _connect(path: Path, mode: str, **options: Any) -> sqlite3.Connection:
    """A connection to the index file (`mode`: SQLite's "ro" or "rw", which never makes a file), which waits as long
    as an edit does (`_WRITE_TIMEOUT_S`). A file not there (never built, or deleted since it was loaded) is no index
    (`_not_there`): an edit made an empty file of it, which then read as a damaged index, "cannot be read (no such
    table: meta). Run 'rehabmap index SOURCE...' again to rebuild it"; a read made again with the file held
    (`_held`) escaped as a raw "unable to open database file", a 500."""
    try:
        return sqlite3.connect(sqlite_uri(path, mode), uri=True, timeout=_WRITE_TIMEOUT_S, **options)
    except sqlite3.OperationalError:
        if path.exists():
            raise
        raise _not_there(path) from None


def _reader(path: Path) -> sqlite3.Connection:
    """A read-only connection to the index file, which waits as long as an edit does: an edit waiting to commit for a
    reader that holds the file (`_held`) keeps a new read from starting until it has."""
    return _connect(path, "ro", check_same_thread=False, isolation_level=None)


@contextmanager
def _held(path: Path) -> Iterator[tuple[sqlite3.Connection, datetime]]:
    """The file held in its current state, on a connection of its own, and the build it is of (its `built_at`):
    one read transaction, whose shared lock the first read takes. The index file keeps SQLite's rollback journal,
    in which no edit commits while a reader holds that lock, so every read on the connection is of one state,
    however many edits wait; they wait for this answer alone (`EmbeddedWriter.upsert` waits up to a minute)."""
    with closing(_reader(path)) as conn:  # closed, the read transaction ends
        conn.execute("BEGIN")
        (built_at,) = conn.execute("SELECT value FROM meta WHERE key = 'built_at'").fetchone()
        yield conn, datetime.fromisoformat(built_at)


class _RecordCache:
    """Bounded, thread-safe LRU of validated Services (see RECORD_CACHE_SIZE), keyed by row and the edit
    that last wrote the row (`_State.key`), so a record cached before an edit is never served after it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Service] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_many(self, keys: Sequence[Hashable]) -> list[Service | None]:
        """The services cached under these keys, in their order (None where none is); each one found is
        now the most recently used. A match asks for ~10 at once, so the lookups are C loops (`map`,
        `compress`), not a Python step a key."""
        items = self._items
        with self._lock:
            found = list(map(items.get, keys))
            for key in compress(keys, found):  # a Service is always true
                items.move_to_end(key)
        return found

    def put_many(self, services: Mapping[Hashable, Service]) -> None:
        with self._lock:
            self._items.update(services)
            for key in services:
                self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class _Generation:
    """One loaded index file: the columns it was loaded with, and its connection (for text search, the
    records and the edits made since).

    Loading reads the columns the build stored as a few arrays (`column_snapshot`), lays the edits logged
    since the build over them as `catch_up` does, and builds no Service: records are read from the file and
    validated only when a query returns them, and the most recent are cached. A file without a snapshot
    (written before it existed), or edited on more than `OVERLAY_MAX_ROWS` rows since its build, is loaded
    from every row's stored column values instead (`service_columns`), ~15x the CPU. Row i is the record with
    rowid i + 1: a build numbers rows from 1 and an edit only replaces rows or appends the next one.

    An edit changes the file in place (`EmbeddedWriter.upsert`) and logs each row it wrote in the `changes`
    table under a rising sequence number. A reader does not load the file again: `catch_up` reads the rows
    changed since the state it answers from and lays them over the loaded columns (`OverlaidColumns`),
    which costs tens of milliseconds, not the second a load of 100k services takes. Once more than
    `OVERLAY_MAX_ROWS` rows are laid over, the file is loaded afresh instead.
    """

    def __init__(self, path: Path) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:  # deleted since the reader's stat (`EmbeddedIndex._current`) found it
            raise _not_there(path) from None
        self.path = path
        self.inode = stat.st_ino
        self.conn = _reader(path)
        self.records = _RecordCache(RECORD_CACHE_SIZE)
        self.lock = threading.Lock()
        try:
            # One read transaction, so the columns, the change log and data_version describe one state.
            self.conn.execute("BEGIN")
            _check_schema(self.conn, path)
            meta = dict(self.conn.execute("SELECT key, value FROM meta"))
            snapshot = self._snapshot()
            if snapshot is None:
                self.base, seq, data_version = self._read_columns(), _last_change(self.conn), self._data_version()
            self.conn.execute("COMMIT")
            self.built_at = datetime.fromisoformat(meta["built_at"])
            self.build = meta.get("build")
            self.token = f"{path}|{stat.st_ino}|{meta['built_at']}"
            if snapshot is not None:
                # The build's columns, then the edits logged since the build laid over them (as a reader
                # that loaded the file before those edits would have them); past OVERLAY_MAX_ROWS edited
                # rows, the current columns are read row by row.
                self.base = ServiceColumns.from_snapshot(snapshot)
                del snapshot
                self.state = _State(self, self.base, -1, 0, _edits(meta), {}, {}, {}, 0.0)
                if self.catch_up() is not None:
                    self.state.edit_lag_s = 0.0  # edits made before this load are no lag of this reader's
                    return
                self.conn.execute("BEGIN")
                self.base, seq, data_version = self._read_columns(), _last_change(self.conn), self._data_version()
                meta = dict(self.conn.execute("SELECT key, value FROM meta"))
                self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            self.conn.close()
            if _damaged(error):
                raise _unreadable(path, error) from None
            raise
        except BaseException:
            self.conn.close()
            raise
        self.state = _State(self, self.base, data_version, seq, _edits(meta), json.loads(meta.get("sources", "{}")),
                            {}, {}, 0.0)

    def _snapshot(self) -> dict[str, bytes] | None:
        """The columns the build stored, when few enough rows were edited since for the edits to be laid
        over them; None for a file written before snapshots, or edited more than that."""
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'column_snapshot'").fetchone() is None:
            return None
        if _has_changes(self.conn) and self.conn.execute(
                "SELECT count(DISTINCT row) FROM changes").fetchone()[0] > OVERLAY_MAX_ROWS:
            return None
        return dict(self.conn.execute("SELECT name, data FROM column_snapshot"))

    def _read_columns(self) -> ServiceColumns:
        """The current columns, read row by row from service_columns (inside the caller's transaction)."""
        # The ids, which the columns keep, are read on their own first. Read with the rest, each id would
        # share the allocator's memory blocks with its row's short-lived values and keep them from being
        # freed: ~400 MiB more resident after a 500k load.
        ids = [i for (i,) in self.conn.execute("SELECT id FROM service_columns ORDER BY rowid")]
        rows = self.conn.execute(f"SELECT {_COLUMNS_SQL} FROM service_columns ORDER BY rowid").fetchall()
        return ServiceColumns([ids, *(zip(*rows) if rows else ([] for _ in _LOADED))])

    def _data_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def catch_up(self) -> _State | None:
        """The current state of the file: the state last read, with the rows changed since laid over the
        loaded columns; the same state when nothing changed; None when so many rows have changed that
        loading the file again is cheaper for every query after. The changes are read in one read transaction
        and laid outside it, so the other threads' reads of records do not wait for the columns to be made."""
        with self.lock, self._reading():
            changes = self._changes(self.conn, self._data_version())
        if changes is None:
            return None
        self.state = self._lay(changes)
        return self.state

    def held(self, conn: sqlite3.Connection) -> _State | None:
        """The state of the file `conn` holds (`_held`), read on it alone: the state last read with the rows
        changed since laid over (None: too many; load the file again). The generation's connection would wait to
        read for an edit that waits for `conn`. The answer's own state, never the generation's (its data_version
        would be `conn`'s), read on `conn` (`_State.on`)."""
        changes = self._changes(conn, None)
        return None if changes is None else self._lay(changes).on(conn)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One read transaction on the generation's connection (called with its lock held)."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    def _changes(self, conn: sqlite3.Connection, data_version: int | None) -> _Changes | None:
        """What the file holds beyond the state last read (inside the caller's read transaction on `conn`):
        nothing more when its `data_version` (the generation's connection's; None: not known) is that state's;
        None when more rows have changed since the load than `OVERLAY_MAX_ROWS`."""
        state = self.state
        if data_version == state.data_version:
            return _Changes(state, state.data_version, [], state.changed_at, [], {})
        logged = state.seq >= 0 or _has_changes(conn)
        logged_changes = conn.execute("SELECT seq, row, at FROM changes WHERE seq > ? ORDER BY seq",
                                      (state.seq,)).fetchall() if logged else []
        changed_at = dict(state.changed_at)
        changed_at.update({row - 1: seq for seq, row, _ in logged_changes})
        if len(changed_at) > OVERLAY_MAX_ROWS:
            return None
        fresh = sorted({row for _, row, _ in logged_changes})
        values = conn.execute(
            f"SELECT rowid, id, {_COLUMNS_SQL} FROM service_columns WHERE rowid IN (SELECT value FROM json_each(?))",
            (json.dumps(fresh),)).fetchall() if fresh else []
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        return _Changes(state, -1 if data_version is None else data_version, logged_changes, changed_at, values,
                        meta)

    def _lay(self, changes: _Changes) -> _State:
        """The state `changes` were read beyond, with them laid over its columns."""
        state = changes.state
        if changes.data_version == state.data_version and not changes.logged:
            return state
        logged = changes.logged
        # How long the oldest edit laid now waited to be seen here (for the metrics: edit lag).
        lag = time.time() - min(at for _, _, at in logged) if logged else state.edit_lag_s
        changed = dict(state.changed)
        changed.update({rowid - 1: tuple(row) for rowid, *row in changes.values})
        columns = OverlaidColumns(self.base, changed) if logged else state.columns
        seq = max([state.seq, *(seq for seq, _, _ in logged)])
        meta = changes.meta
        return _State(self, columns, changes.data_version, seq, _edits(meta), json.loads(meta.get("sources", "{}")),
                      changed, changes.changed_at, lag)


class _Changes(NamedTuple):
    """What a catch-up read beyond a state of the file (`_Generation._changes`): the file's data_version (-1: not
    known), the
    change log's rows since (seq, row, at), the change that last wrote each row changed since the load, the columns
    of the rows they wrote, and the file's meta table."""

    state: _State
    data_version: int
    logged: list[tuple[int, int, float]]
    changed_at: dict[int, int]
    values: list[tuple[Any, ...]]
    meta: dict[str, str]


def _edits(meta: Mapping[str, str]) -> int:
    return int(meta.get("edits", "0"))


def _has_changes(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'").fetchone() is not None


def _last_change(conn: sqlite3.Connection) -> int:
    """The sequence number of the last change logged, 0 when none, or -1 when the file has no change log
    yet (a file written before there was one: the first edit adds it)."""
    if not _has_changes(conn):
        return -1
    return conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]


class _State:
    """What a reader answers one question from: a generation's columns as of one state of its file (the
    load, or the load with the edits since laid over it), and how to read that state's records.

    Every read of records or words checks that the file is still in this state (SQLite's data_version): a record
    or a word read after a later edit may no longer match these columns, so the read raises `_Stale` and the
    reader answers again with the file held (`EmbeddedIndex._answer`), from the state `on` that connection."""

    def __init__(self, generation: _Generation, columns: Columns, data_version: int, seq: int, edits: int,
                 sources: dict[str, int], changed: dict[int, tuple[Any, ...]], changed_at: dict[int, int],
                 edit_lag_s: float) -> None:
        self.generation = generation
        self.columns = columns
        self.data_version = data_version
        self.seq = seq
        self.edits = edits
        self.sources = sources
        self.changed = changed  # per row changed since the load, its column values
        self.changed_at = changed_at  # per row changed since the load, the change that last wrote it
        self.edit_lag_s = edit_lag_s  # how long the oldest edit laid by the last catch-up had waited
        self.records = generation.records
        self.held: sqlite3.Connection | None = None  # the connection holding the file in this state (`on`)

    def on(self, held: sqlite3.Connection) -> _State:
        """This state, read on a connection that holds the file in it (`_held`): its reads need no check and
        take no lock of the generation's, so the other threads' reads do not wait for this answer."""
        state = copy.copy(self)
        state.held = held
        return state

    @contextmanager
    def _file(self, check: bool = True) -> Iterator[sqlite3.Connection]:
        """The connection to read this state's records or words on: the one holding the file in it (`on`);
        else the generation's, under its lock, and checked after the read (`_unchanged`) when `check`."""
        if self.held is not None:
            yield self.held
            return
        with self.generation.lock:
            yield self.generation.conn
            if check:
                self._unchanged()

    def key(self, row: int) -> Hashable:
        """The record cache's key for a row: the row itself until an edit writes it, then the row and that
        edit, so a record cached before an edit is never served after it (and a state still answering from
        before the edit keeps its own)."""
        edit = self.changed_at.get(row)
        return row if edit is None else (row, edit)

    def text_rows(self, text: str) -> np.ndarray:
        """Row positions matching the text, best first (bm25), as this state's words give them: words an edit
        wrote since would pass a row on its new name while the answer gives the record this state cached, or a
        service added since, past the end of its columns (`_Stale`)."""
        with self._file() as conn:
            rows = conn.execute(
                "SELECT rowid FROM services_fts WHERE services_fts MATCH ? ORDER BY bm25(services_fts)",
                (_fts_query(text),)).fetchall()
        return np.array([r - 1 for (r,) in rows], dtype=np.int64)

    def _unchanged(self) -> None:
        """Raise `_Stale` if an edit has been committed since this state (after a read on the generation's
        connection, with its lock held: the file's data_version is the one that read saw, or a later one)."""
        if self.generation._data_version() != self.data_version:
            raise _Stale

    def services(self, rows: Sequence[int]) -> list[Service]:
        """The services at these rows, in this order: from the cache, the rest read in one statement. Rows
        no edit wrote are their own keys (`key`), so a file never edited needs no key made."""
        keys: Sequence[Hashable] = [self.key(row) for row in rows] if self.changed_at else rows
        found = self.records.get_many(keys)
        if not all(found):
            read = self._read(sorted({row for row, service in zip(rows, found) if service is None}))
            self.records.put_many({self.key(row): service for row, service in read.items()})
            found = [read[row] if service is None else service for row, service in zip(rows, found)]
        return cast(list[Service], found)

    def stream(self, rows: Sequence[int] | np.ndarray | None = None, *, nearest: bool = False) -> Iterator[Service]:
        """The services at these rows (default: every row), in this order, read a batch at a time (each
        batch its own short statement, so neither the file nor the connection stays locked while the
        caller works). The generation's connection keeps its file open, so a pass finishes on it even if a
        rebuild replaces the file.

        Past the cache (a pass over every record, the gap analysis's, would only evict the records in use), but
        for a pass nearest first (`scan_nearest`: a browse's download near a place) when the cache holds the whole
        index (a real directory's size, ~7-15k services: `RECORD_CACHE_SIZE`): kept, each is read and validated once
        a generation, as a match's results are, not again at each pass. ("Best fit first" passed every record of
        each type so until session 35, at ~280 ms a page at 10k; it now ranks over the columns: `best_fit`.)

        A pass cannot start again part way: a record edited during the pass is given as edited if its batch is
        read after the edit, and each record is whole either way; such a batch is not kept (`_batch`)."""
        if rows is None:
            rows = range(len(self.columns))
        cached = nearest and len(self.columns) <= self.records.size
        for start in range(0, len(rows), _STREAM_BATCH):
            yield from self._batch([int(row) for row in rows[start:start + _STREAM_BATCH]], cached)

    def _batch(self, rows: list[int], cached: bool) -> list[Service]:
        """A pass's batch: from the cache and kept there (`services`) when `cached`, unless an edit came during
        its read (`_Stale`: the records as read then, not kept under this state's keys); else read past it."""
        if cached:
            with suppress(_Stale):
                return self.services(rows)
        read = self._read(sorted(rows), check=False)
        return [read[row] for row in rows]

    def _read(self, rows: Sequence[int], *, check: bool = True) -> dict[int, Service]:
        """The services at these rows, ascending, in one statement (the rowids go in as one JSON array, so
        no limit on bound variables applies)."""
        with self._file(check) as conn:
            try:
                docs = conn.execute(
                    "SELECT rowid, doc FROM services WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid",
                    (json.dumps([row + 1 for row in rows]),)).fetchall()
            except sqlite3.DatabaseError as error:
                if _damaged(error):
                    raise _unreadable(self.generation.path, error) from None
                raise
        return {rowid - 1: Service.stored(doc) for rowid, doc in docs}


def _exempt_from_gc() -> None:
    """Keep the cyclic garbage collector off what is alive once a generation has loaded (for a reader made
    with `exempt_from_gc`).

    The generation itself is now NumPy arrays and flat dicts, which the collector barely sees; but in a
    server, everything else loaded by then (the app, the geography's lookups) is long-lived too, and every
    full collection walking it stalled the request that triggered it (HTTP p99 at c=16: 42-53 ms without
    this, 26 ms with it; bench/RESULTS.md). Freezing moves it out of the collector's sight; what comes
    later, such as the record cache (at most RECORD_CACHE_SIZE Services), is still collected. Unfreezing
    first lets the generation just replaced be collected, so a reload never keeps the old one alive.

    The collection before the freeze walks the whole process's heap: that is the server's to pay once a
    load, and a process that only opens indexes (a command, a test opening dozens) must not: in a pytest
    process it took ~0.16 s of CPU an open (bench/RESULTS.md, suite time, session 20)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _by_name(name_rank: np.ndarray, rows: np.ndarray, offset: int, limit: int) -> np.ndarray:
    """rows[order by name][offset:offset + limit], sorting only as far as the page reaches."""
    end = offset + limit
    ranks = name_rank[rows]
    if offset < 0 or limit < 0:
        return rows[np.argsort(ranks)][offset:end]
    if limit == 0 or offset >= len(rows):
        return rows[:0]
    if end < len(rows) // 4:
        head = np.argpartition(ranks, end - 1)[:end]  # name ranks are unique: no ties to break
        return rows[head[np.argsort(ranks[head])]][offset:end]
    return rows[np.argsort(ranks)][offset:end]


def _found(state: _State, query: ServiceQuery, offset: int,
           limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row passing the query, and rows [offset:offset + limit] of them (to the end when limit is
    None) in `find`'s order: by text relevance when there is text, else by name."""
    columns = state.columns
    if query.text:
        rows = state.text_rows(query.text)
        rows = rows[columns.passing(query, rows)]
        return rows, rows[offset:None if limit is None else offset + limit]
    rows = columns.select(query)
    return rows, _by_name(columns.name_rank, rows, offset, len(rows) if limit is None else limit)


_TYPES = tuple(ServiceType)  # an Enum's iteration is a Python generator: once, not once a match


def _by_type(counts: np.ndarray) -> dict[ServiceType, int]:
    """Per-type counts as the columns give them (indexed like `ServiceType`), keyed by type."""
    return dict(zip(_TYPES, counts.tolist(), strict=True))


def _passing(state: _State, query: ServiceQuery) -> np.ndarray:
    """Every row passing the query, text included, ascending."""
    rows = state.columns.select(query)
    return np.intersect1d(rows, state.text_rows(query.text)) if query.text else rows


def _passing_near(state: _State, lat: float, lon: float, query: ServiceQuery,
                  radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Every row passing the query (within `radius_km` of the point, when given), ascending, and its distance:
    a scan of every passing row (`ServiceColumns.nearest` looks in a growing box instead, for small k)."""
    rows = _passing(state, query)
    distances = haversine_km(lat, lon, state.columns.lat[rows], state.columns.lon[rows])
    if radius_km is None:
        return rows, distances
    inside = distances <= radius_km
    return rows[inside], distances[inside]


def _by_distance(state: _State, lat: float, lon: float, query: ServiceQuery, k: int,
                 radius_km: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The k passing rows nearest the point (within `radius_km`) and their distances, by distance then id."""
    return state.columns.top_k(*_passing_near(state, lat, lon, query, radius_km), k, None)


def _fts_query(text: str) -> str:
    """Every word must appear (prefix match on the last): safe against FTS5 syntax in user input."""
    words = ["".join(ch for ch in w if ch.isalnum()) for w in text.split()]
    words = [w for w in words if w]
    if not words:
        return '""'
    quoted = [f'"{w}"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


class EmbeddedIndex:
    """Reader. Cheap to call from many threads; follows edits to the file (by its modification time) and
    loads it again when a rebuild replaces it (by its inode)."""

    def __init__(self, path: Path, *, exempt_from_gc: bool = False) -> None:
        """`exempt_from_gc`: each load freezes what is alive (`_exempt_from_gc`), for a process whose life is
        serving (`rehabmap serve`); a command or a library user leaves the collector as it is."""
        self.path = Path(path)
        self.exempt_from_gc = exempt_from_gc
        self._generation: _Generation | None = None
        self._mtime = 0
        self._load_lock = threading.Lock()
        self.loads = 0  # how many times a generation was loaded (what edits no longer cause)

    def _current(self) -> _State:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._generation is not None:
                return self._generation.state
            raise _not_there(self.path) from None
        generation = self._generation
        if generation is not None and generation.inode == stat.st_ino and self._mtime == stat.st_mtime_ns:
            return generation.state
        del generation  # held here, a generation a load replaces would be frozen with the rest (`_exempt_from_gc`)
        with self._load_lock:
            if self._generation is None or self._generation.inode != stat.st_ino:
                self._load()
            elif self._mtime != stat.st_mtime_ns:
                self._catch_up()
            self._mtime = stat.st_mtime_ns
            assert self._generation is not None
            return self._generation.state

    def _load(self) -> None:
        """Load the file afresh (called with the load lock held)."""
        self._generation = _Generation(self.path)
        self.loads += 1
        if self.exempt_from_gc:
            _exempt_from_gc()

    def _catch_up(self) -> None:
        """Lay the edits made since the state last read over the loaded columns, or load the file afresh
        when they have grown too many (called with the load lock held)."""
        assert self._generation is not None
        if self._generation.catch_up() is None:
            self._load()

    def _answer(self, question: Callable[[_State], T]) -> T:
        """The question answered from one state of the file: first from the state the reader holds, without
        holding the file (an answer from the columns and cached records reads nothing from it); if an edit has
        overtaken that state by the time the answer reads records or words (`_Stale`), from the file held in its
        current state on a connection of the answer's own (`_held`), which no edit can overtake. Before, the
        reader caught up and asked again, three times at most, then answered "ask again": edits back to back
        overtook it each time.

        The held state is the answer's own, read on its connection (`_Generation.held`): the answer takes neither
        the load lock nor the generation's, so the other readers and catch-ups do not queue behind it; only the
        edits wait for it."""
        try:
            return question(self._current())
        except _Stale:
            pass
        while True:
            generation = self._current().generation  # a file rebuilt since is loaded
            with self._load_lock:  # the edit's new mtime may not show yet: catch up anyway (a load, if too many)
                if self._generation is generation:
                    self._catch_up()
                assert self._generation is not None
                generation = self._generation
            # Held after the catch-up: with the file held, the catch-up's read would wait for an edit waiting for it.
            with _held(self.path) as (conn, built_at):
                state = generation.held(conn) if generation.built_at == built_at else None  # else rebuilt: load
                if state is not None:
                    try:
                        return question(state)
                    finally:
                        state.held = None  # a pass it returns (`scan`) reads on after it, as any state's does

    def info(self) -> IndexInfo:
        state = self._current()
        return IndexInfo("embedded", len(state.columns), state.generation.built_at, str(self.path), state.sources,
                         edit_lag_s=state.edit_lag_s, build=state.generation.build)

    def built(self) -> bool:
        """What `info` finds (a file in this version's layout), without loading the file's columns: at 100k
        services a load was ~0.15 s of CPU, ~0.5 s on a busy disk and 100 MB, paid by every `rehabmap sync` to
        learn that it had nothing to write."""
        try:
            inode = self.path.stat().st_ino
        except FileNotFoundError:
            return self._generation is not None  # `info` answers from a loaded file that is gone
        if self._generation is not None and self._generation.inode == inode:
            return True
        try:
            conn = _connect(self.path, "ro")
        except IndexNotBuilt:  # deleted since the stat: as above
            return self._generation is not None
        try:
            _check_schema(conn, self.path)
        except IndexNotBuilt:
            return False
        finally:
            conn.close()
        return True

    def generation(self) -> str:
        """The file (its path, inode and build time: a rebuild is a new file) and its edit counter."""
        state = self._current()
        return f"{state.generation.token}|{state.edits}"

    def get(self, service_id: str) -> Service | None:
        def question(state: _State) -> Service | None:
            row = state.columns.row_of(service_id)
            return None if row is None else state.services([row])[0]
        return self._answer(question)

    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        def question(state: _State) -> Page:
            rows, chosen = _found(state, query, offset, limit)
            return Page(state.services(chosen.tolist()), int(len(rows)))
        return self._answer(question)

    def scan(self, query: ServiceQuery) -> Iterator[Service]:
        state, rows = self._answer(lambda state: (state, _found(state, query, 0, None)[1]))
        return state.stream(rows)

    def count_by_type(self, query: ServiceQuery) -> dict[ServiceType, int]:
        """Per type, how many services pass the query (the query's own types still filter): what
        `find(replace(query, types={t}), limit=0).total` gives for each type t, in one pass."""
        return _by_type(self._current().columns.count_by_type(query))

    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        def question(state: _State) -> list[Hit]:
            if query.text:
                rows, distances = _by_distance(state, lat, lon, query, k, radius_km)
            else:
                rows, distances = state.columns.nearest(lat, lon, query, k, radius_km)
            return list(map(Hit, state.services(rows.tolist()), distances.tolist()))
        return self._answer(question)

    def nearest_of_types(self, lat: float, lon: float, query: ServiceQuery, *, k: int) -> dict[ServiceType, list[Hit]]:
        if query.text:  # text is searched in the file, not the columns: no pass to share, but one state
            return self._answer(lambda state: nearest_of_types_in_parts(_AtState(state), lat, lon, query, k=k))

        def question(state: _State) -> dict[ServiceType, list[Hit]]:
            found = state.columns.nearest_of_types(lat, lon, query, k)
            distances: dict[int, float] = {}
            for rows, of_rows in found.values():
                distances.update(zip(rows.tolist(), of_rows.tolist()))
            # Each row read and made a hit once, as `around` does (a row has one distance).
            hits = dict(zip(distances, map(Hit, state.services(list(distances)), distances.values())))
            return {_TYPES[number]: list(map(hits.__getitem__, rows.tolist())) for number, (rows, _) in found.items()}
        return self._answer(question)

    def around(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float,
               within: frozenset[str] | None = None, count_within: bool = False,
               each_type: bool = False, margin_km: float | None = None) -> Around:
        if query.text:  # text is searched in the file, not the columns: no pass to share, but one state
            return self._answer(lambda state: around_in_parts(_AtState(state), lat, lon, query, k=k,
                                                              radius_km=radius_km, within=within,
                                                              count_within=count_within))

        def question(state: _State) -> Around:
            found = state.columns.around(lat, lon, query, k, radius_km, within, count_within=count_within,
                                         each_type=each_type, margin_km=margin_km)
            nearest, inside = found.rows.tolist(), found.within_rows.tolist()
            of_types = found.nearest_of_types
            # The home ICB's nearest (or the k ranked, with a margin) are mostly the nearest overall too (at
            # 100k, 10.2 distinct rows of the 20 a match asks for): each row is read and made a hit once, and
            # the lists share it. A row has one distance (the pass computes it once), so the rows alone key
            # the hits.
            distances = dict(zip(nearest, found.distances.tolist()))
            distances.update(zip(inside, found.within_distances.tolist()))
            ranked = None
            if found.ranked is not None:
                ranked = found.ranked[0].tolist()
                distances.update(zip(ranked, found.ranked[1].tolist()))
            if of_types:
                distances.update(of_types.values())
            hits = dict(zip(distances, map(Hit, state.services(list(distances)), distances.values())))
            counts = found.within_by_type
            return Around(list(map(hits.__getitem__, nearest)), list(map(hits.__getitem__, inside)),
                          found.total, None if counts is None else _by_type(counts),
                          None if of_types is None else {_TYPES[t]: hits[row] for t, (row, _) in of_types.items()},
                          None if ranked is None else list(map(hits.__getitem__, ranked)),
                          None if found.totals_of_types is None
                          else {_TYPES[t]: n for t, n in found.totals_of_types.items()})
        return self._answer(question)

    def count_near(self, lat: float, lon: float, query: ServiceQuery, *, radius_km: float) -> int:
        if not query.text:
            return self._current().columns.count_near(lat, lon, query, radius_km)
        return self._answer(lambda state: len(_passing_near(state, lat, lon, query, radius_km)[0]))

    def scan_nearest(self, lat: float, lon: float, query: ServiceQuery, *,
                     radius_km: float | None = None) -> Iterator[Hit]:
        state, (rows, distances) = self._answer(
            lambda state: (state, _by_distance(state, lat, lon, query, len(state.columns), radius_km)))
        return (Hit(s, float(d)) for s, d in zip(state.stream(rows, nearest=True), distances.tolist()))

    def best_fit(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float | None,
                 within: str | None, margin_km: float, since: date) -> list[Hit]:
        """Ranked over the columns of every passing row (`search.columns.best_fit_first`): only the k kept are
        read. Read nearest first until the rest could not do better (as before session 35), a page at 100k services
        read ~10k records a type, as few report a vacancy: 2.4 s (bench/RESULTS.md, session 35)."""
        def question(state: _State) -> list[Hit]:
            rows, distances = best_fit_first(state.columns, *_passing_near(state, lat, lon, query, radius_km),
                                             query.needs, k, within, margin_km, since.toordinal())
            return list(map(Hit, state.services(rows.tolist()), distances.tolist()))
        return self._answer(question)

    def all(self) -> Iterator[Service]:
        """Every service, in the order they were written, read as the caller goes (see `_State.stream`)."""
        return self._current().stream()

    def ids(self) -> list[str]:
        return self._current().columns.ids.tolist()


class _AtState(EmbeddedIndex):
    """The index answering every question from one state (`around` and `nearest_of_types` with text, asked in
    parts: `around_in_parts`): each part's `_answer` is the state's, so the parts agree. A read of it an edit
    overtook raises `_Stale` to the whole answer, which is made again with the file held."""

    def __init__(self, state: _State) -> None:
        super().__init__(state.generation.path)
        self.state = state

    def _current(self) -> _State:
        return self.state

    def _answer(self, question: Callable[[_State], T]) -> T:
        return question(self.state)
