"""The embedded backend: one SQLite file as the store of record, NumPy columns in memory for queries.

A rebuild writes a complete new file beside the live one and renames it over it (atomic on POSIX), so
a crash half way leaves the previous index served intact. Readers notice the swap by the file's
identity and load the new generation on their next query. A maintainer's edit (`EmbeddedWriter.upsert`)
changes records of the live file in place, in one transaction, and readers reload it the same way.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from geodata.distance import haversine_km
from rehabmap.errors import DomainError, IndexNotBuilt
from rehabmap.index.base import Hit, IndexInfo, Page, ServiceQuery, overlay_record
from rehabmap.index.columns import ServiceColumns
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE services (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    service_type TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE VIRTUAL TABLE services_fts USING fts5(
    name, organisation, description, content='', tokenize='porter unicode61'
);
"""
_BATCH = 5000
_WRITE_TIMEOUT_S = 60.0  # an edit waits this long for readers loading a generation to finish
_log = logging.getLogger(__name__)


class EmbeddedWriter:
    """Writes a whole new index generation, then swaps it in."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def replace_all(self, services: Iterable[Service]) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_abandoned()
        tmp = self.path.with_name(f"{self.path.name}.building-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
            count, sources = self._write_rows(conn, services)
            built_at = datetime.now(timezone.utc).isoformat()
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [
                ("schema_version", SCHEMA_VERSION), ("built_at", built_at), ("count", str(count)),
                ("sources", json.dumps(dict(sources))),
            ])
            conn.commit()
        finally:
            conn.close()
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        return count

    def upsert(self, changes: Mapping[str, Mapping[str, Any]], *,
               before_commit: Callable[[], None] | None = None) -> list[Service]:
        """Edit records of the live file in place, in one transaction (rollback journal, synchronous=FULL);
        see `RecordWriter.upsert`. Readers see the edit by the file's new modification time."""
        if not changes:
            return []
        self.recover()
        conn = sqlite3.connect(self.path, timeout=_WRITE_TIMEOUT_S, isolation_level=None)
        written: list[Service] = []
        try:
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("BEGIN IMMEDIATE")
            added = Counter[str]()
            for service_id, fields in changes.items():
                row = conn.execute("SELECT rowid, doc FROM services WHERE id = ?", (service_id,)).fetchone()
                current = Service.model_validate_json(row[1]) if row else None
                try:
                    service = overlay_record(current, fields)
                except (ValidationError, DomainError, ValueError) as exc:
                    _log.warning("edit to %s not applied: %s", service_id, type(exc).__name__)
                    continue
                if service == current:
                    continue
                if row is None:
                    rowid = conn.execute("SELECT coalesce(max(rowid), 0) + 1 FROM services").fetchone()[0]
                    added[service.source] += 1
                else:
                    rowid = row[0]
                    conn.execute("INSERT INTO services_fts (services_fts, rowid, name, organisation, description) "
                                 "VALUES ('delete', ?, ?, ?, ?)",
                                 (rowid, current.name, current.organisation or "", current.description))
                conn.execute("INSERT OR REPLACE INTO services VALUES (?, ?, ?, ?)",
                             (rowid, service.id, service.service_type.value, service.model_dump_json()))
                conn.execute("INSERT INTO services_fts (rowid, name, organisation, description) VALUES (?, ?, ?, ?)",
                             (rowid, service.name, service.organisation or "", service.description))
                written.append(service)
            if added:
                meta = dict(conn.execute("SELECT key, value FROM meta"))
                sources = Counter[str](json.loads(meta.get("sources", "{}"))) + added
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("count", str(int(meta.get("count", "0")) + sum(added.values()))),
                    ("sources", json.dumps(dict(sources)))])
            if before_commit is not None:
                before_commit()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
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
            if pid.isdigit() and not _alive(int(pid)):
                leftover.unlink(missing_ok=True)

    @staticmethod
    def _write_rows(conn: sqlite3.Connection, services: Iterable[Service]) -> tuple[int, Counter[str]]:
        count, sources, rows, fts = 0, Counter[str](), [], []
        for service in services:
            count += 1
            sources[service.source] += 1
            rows.append((count, service.id, service.service_type.value, service.model_dump_json()))
            fts.append((count, service.name, service.organisation or "", service.description))
            if len(rows) >= _BATCH:
                _flush(conn, rows, fts)
        _flush(conn, rows, fts)
        return count, sources


def _flush(conn: sqlite3.Connection, rows: list[tuple], fts: list[tuple]) -> None:
    conn.executemany("INSERT INTO services VALUES (?, ?, ?, ?)", rows)
    conn.executemany("INSERT INTO services_fts (rowid, name, organisation, description) VALUES (?, ?, ?, ?)",
                     fts)
    rows.clear()
    fts.clear()


def _touch(path: Path) -> None:
    """Give the file a modification time later than any it had, so readers comparing (inode, mtime) see
    every edit, even two within one tick of the file system's clock."""
    before = path.stat().st_mtime_ns
    now = max(time.time_ns(), before + 1)
    os.utime(path, ns=(now, now))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Generation:
    """One loaded index file: its connection (for text search) and its columns."""

    def __init__(self, path: Path) -> None:
        stat = path.stat()
        self.identity = (stat.st_ino, stat.st_mtime_ns)
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        self.built_at = datetime.fromisoformat(meta["built_at"])
        self.sources = json.loads(meta.get("sources", "{}"))
        docs = self.conn.execute("SELECT doc FROM services ORDER BY rowid").fetchall()
        self.columns = ServiceColumns([Service.model_validate_json(d) for (d,) in docs])
        self.lock = threading.Lock()

    def text_rows(self, text: str) -> np.ndarray:
        """Row positions matching the text, best first (bm25)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT rowid FROM services_fts WHERE services_fts MATCH ? ORDER BY bm25(services_fts)",
                (_fts_query(text),)).fetchall()
        # A service added in place after this generation loaded is not in its columns yet (the next query
        # loads the new generation): leave it out rather than index past the end.
        size = len(self.columns)
        return np.array([r - 1 for (r,) in rows if r <= size], dtype=np.int64)


def _exempt_from_gc() -> None:
    """Keep the cyclic garbage collector off the loaded generation.

    A generation is millions of long-lived, immutable objects; every full collection walks them all (0.7 s
    at 100k services, 3.6 s at 500k), which stalls whatever request triggered it (bench/RESULTS.md).
    Freezing moves them out of the collector's sight. Unfreezing first lets the generation just replaced
    be collected, so a reload never keeps the old one alive."""
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
    """Reader. Cheap to call from many threads; reloads when the file on disk is replaced."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._generation: _Generation | None = None
        self._load_lock = threading.Lock()

    def _current(self) -> _Generation:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._generation is not None:
                return self._generation
            raise IndexNotBuilt(f"No index at {self.path}. Run 'rehabmap index SOURCE...' first.") from None
        identity = (stat.st_ino, stat.st_mtime_ns)
        generation = self._generation
        if generation is None or generation.identity != identity:
            with self._load_lock:
                if self._generation is None or self._generation.identity != identity:
                    self._generation = _Generation(self.path)
                    _exempt_from_gc()
                generation = self._generation
        return generation

    def info(self) -> IndexInfo:
        g = self._current()
        return IndexInfo("embedded", len(g.columns), g.built_at, str(self.path), g.sources)

    def get(self, service_id: str) -> Service | None:
        columns = self._current().columns
        row = columns.by_id.get(service_id)
        return None if row is None else columns.services[row]

    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        g = self._current()
        columns = g.columns
        if query.text:
            rows = g.text_rows(query.text)
            rows = rows[columns.passing(query, rows)]
            chosen = rows[offset:offset + limit]
        else:
            rows = columns.select(query)
            chosen = _by_name(columns.name_rank, rows, offset, limit)
        return Page([columns.services[i] for i in chosen], int(len(rows)))

    def count_by_type(self, query: ServiceQuery) -> dict[ServiceType, int]:
        """Per type, how many services pass the query (the query's own types still filter): what
        `find(replace(query, types={t}), limit=0).total` gives for each type t, in one pass."""
        counts = self._current().columns.count_by_type(query)
        return {t: int(counts[i]) for i, t in enumerate(ServiceType)}

    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        g = self._current()
        columns = g.columns
        if query.text:
            rows = np.intersect1d(columns.select(query), g.text_rows(query.text))
            distances = haversine_km(lat, lon, columns.lat[rows], columns.lon[rows])
            rows, distances = columns._top_k_of(rows, distances, k, radius_km)
        else:
            rows, distances = columns.nearest(lat, lon, query, k, radius_km)
        return [Hit(columns.services[row], float(d)) for row, d in zip(rows.tolist(), distances.tolist())]

    def all(self) -> Iterator[Service]:
        return iter(self._current().columns.services)
