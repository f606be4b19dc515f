"""The sync store: what each source last said about each record, where each source's sync has got to, and
the review queue with its decisions.

It lives in the maintainers' store as tables of its own, beside the tokens, overlay and audit log of
`rehabmap.maintain.store`, so that a review decision or a retirement and its audit rows commit in one
transaction: in the SQLite file `REHABMAP_HOME/directory.sqlite`, or in PostgreSQL when
`REHABMAP_DATABASE_URL` is set, so that every API host sees one review queue (DESIGN.md §9). The tables
are made by the store's migrations (`rehabmap.maintain.migrations`, 7); all their SQL is in this one class,
in the dialect both databases understand (but for the expressions over JSON: `_EVERY_DETAIL_ADDED`, `_ONE_OF`
and `_KEY_OF`):

* `sync_state`: per source, the connector's state as of the last applied run (`state`), and the state a run
  in progress has saved page by page (`pending`), so a killed run resumes where it stopped. A run's state
  becomes the source's state only when its changes are applied, in the same transaction.
* `sync_staged`: what a run in progress has fetched so far (items, gone, refused, unchanged), in order, kept until the
  run is applied; a resumed run adds to it. Each row names the listing it was fetched in, where a run has several
  (CQC's service types), so that one started again drops its own rows alone.
* `sync_records`: every record a source has given: the item as fetched (mapped fields, type status,
  evidence, field sources), the source's own raw record, the record it prepares into (or why it cannot be
  prepared), a digest of the content and of the evidence, first and last seen, active or retired
  (with reason and date), and the record's CQC location id and postcode as records are merged by them (indexed,
  so that the records a changed one may be merged with are found on them: `sharing_keys`), now and as the live
  index last took the record (`published_keys`, so those it was merged with are found too), and as the last
  rebuild read it (`read_for_rebuild`, those its index holds it under once swapped in). Records are never deleted.
* `sync_enrichments`: facts about records that other sources own (ODS sites, CQC rehab-ward ratings), kept
  so that a record arriving later is matched too; retired, never deleted, when their source drops them.
* `sync_review`: the queue: per record whose type is only inferred or unknown, its proposed type, and the
  maintainer's decision (accepted as a type, or rejected with a reason), who decided and when, and the
  evidence digest the decision was made on (so a later change in the evidence is shown).
* `sync_runs`: one row per run: when, how it ended, its report, and the report's summary (each list as its length).

`live_revision` numbers every change to what a record shows, so a rebuild that read the store before a
sync wrote to the old index can be caught up (`changed_since`).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from indexer.sync.items import SourceKeyed
from rehabmap.coverage import BUMP_LISTINGS
from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.database import Connection, Database, each_value
from rehabmap.maintain.migrations import ENRICHMENT_MATCH, ENRICHMENT_MATCH_KEYS, exists, opened
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.store import store_of
from rehabmap.record_keys import key_columns
from rehabmap.sqlite_uri import sqlite_uri
from rehabmap.sync_digests import stored_json

if TYPE_CHECKING:
    from rehabmap.state import AppState

RecordStatus = Literal["active", "retired"]
ReviewState = Literal["pending", "accepted", "rejected", "superseded"]
# What a dry run's scratch copy of a PostgreSQL store holds: every table a sync reads or writes, and of the
# maintainers' edits and audit log what a run reads to name a restore or an edit it would flag
# (`Overlay.restore_pinning`, `Overlay.questioned`): the overlay and the audit rows of the services it holds.
_SCRATCH_ROWS = {**dict.fromkeys(("sync_meta", "sync_state", "sync_staged", "sync_records", "sync_enrichments",
                                  "sync_review", "sync_runs", "coverage_claims", "coverage_pending",
                                  "coverage_revision", "overlay"), ""),
                 "audit": " WHERE resource_type = 'service' AND resource_id IN (SELECT service_id FROM overlay)"}


# sync_meta: set by migration 14 (`rehabmap.maintain.migrations`) in a store that holds records; while it is
# there, the records are prepared again from their items (`indexer.sync.runner.reprepare_due`), once.
REPREPARE_DUE = "reprepare_due"
# sync_meta: the revision of the store the live index holds (`indexer.sync.live.LiveIndex.catch_up`); and a
# rebuild's read of the store, its revision and time (`SyncStore.read_for_rebuild`), until a live write finds
# whether its index swapped in (`SyncStore.rebuild_taken`).
LIVE_PUBLISHED = "live_revision_published"
# sync_meta: a source's title, where only its configuration says it (`Connector.title`), as its last applied run had it
TITLED = "source_title:"
REBUILD_READ = "rebuild_read"
_REVISION = "SELECT coalesce(max(live_revision), 0) FROM sync_records"
# A record as a writer read it (`_as_read`); a decision writes the live revision alone, and only of such a record.
_AS_READ = "source = ? AND source_id = ? AND digest = ? AND status = ? AND coalesce(problem, '') = ?"
_STILL_AS_READ = f"SELECT 1 FROM sync_records WHERE {_AS_READ}"
_DECIDED = f"UPDATE sync_records SET live_revision = CASE WHEN ? THEN ? ELSE live_revision END WHERE {_AS_READ}"


# Every source that has run, as `run_sources`, on the runs' index (migration 25): read on each metrics scrape, where
# `SELECT DISTINCT source FROM sync_runs` read every run (one a night per feed, for years).
_EACH_RUN_SOURCE = each_value("run_sources", "sync_runs", "source")
_RUN_SOURCES = f"WITH RECURSIVE {_EACH_RUN_SOURCE} "
# And every connector that has given a record, as `record_connectors`, on `sync_records_counted` (migration 20), which
# leads with it: sync-status and each visit of the keepers' Sources page read every record's for them.
_SOURCES = (f"WITH RECURSIVE {_EACH_RUN_SOURCE}, {each_value('record_connectors', 'sync_records', 'connector')} "
            "SELECT source FROM sync_state UNION SELECT connector FROM record_connectors WHERE connector IS NOT NULL "
            "UNION SELECT source FROM run_sources WHERE source IS NOT NULL ORDER BY 1")


def _copy_keys(into: str, of: str) -> str:
    """The statement that gives every record its `of` CQC location id and postcode keys as its `into` ones ("" the
    current ones, "published_", "rebuild_"), writing only the rows where they differ: a rebuild's read and its swap
    each come to every record, and most keep their keys (in PostgreSQL each row written is a new version of it)."""
    pairs = [(f"{into}{key}_key", f"{of}{key}_key") for key in ("cqc", "postcode")]
    return (f"UPDATE sync_records SET {', '.join(f'{a} = {b}' for a, b in pairs)} WHERE "
            + " OR ".join(f"coalesce({a}, '') <> coalesce({b}, '')" for a, b in pairs))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def swapped_in(read: str, built_at: datetime | None) -> bool:
    """Whether the rebuild whose read of the store `read` is (`REBUILD_READ`) made the live index, built at
    `built_at` (None: there is none): an index built after a read is that rebuild's, or a later one's."""
    return built_at is not None and built_at >= datetime.fromisoformat(json.loads(read)["at"])


def _taken(conn: Connection, read: str) -> None:
    """`SyncStore.rebuild_taken` in the transaction `conn`: nothing unless `read` is still the rebuild read noted.
    The note is deleted first, so that of two writers taking it (a live write, a rebuild's read) one alone goes on."""
    if not conn.execute("DELETE FROM sync_meta WHERE key = ? AND value = ?", (REBUILD_READ, read)).rowcount:
        return
    conn.execute(_copy_keys("published_", "rebuild_"))
    conn.execute(_UPSERT_META, (LIVE_PUBLISHED, str(int(json.loads(read)["revision"]))))


class LeftOutDetail(NamedTuple):
    """A contact detail a source gave that the record refused, dropped and the service kept
    (`indexer.pipeline.refused_contacts`): the field, as the runner knew it, and the warning, as the run's report
    said it. Stored together (a JSON object each, since migration 20), so whether a maintainer has since added the
    field is known exactly, never read back from the warning's words."""

    field: str                # phone, email or website
    said: str


@dataclass(frozen=True)
class StoredRecord(SourceKeyed):
    """One record as the store holds it. `item` is the fetched item as JSON (see `indexer.sync.codec`);
    `service` the record it prepared into (the last good one, when the latest could not be prepared:
    then `problem` says why)."""

    source: str
    source_id: str
    connector: str
    service_id: str
    status: RecordStatus
    type_status: str
    item: dict[str, Any]
    raw: Any
    service: dict[str, Any] | None
    proposed_type: str | None
    proposed_subtype: str | None
    problem: str | None
    digest: str
    evidence_digest: str
    first_seen: str
    last_seen: str
    changed_at: str
    retired_at: str | None
    retired_reason: str | None
    live_revision: int = 0
    # The contact details the source gave that the record refused (dropped, the service kept), each with its field:
    # kept until a preparation no longer refuses them, for `rehabmap sync-status`.
    left_out: tuple[LeftOutDetail, ...] = ()


@dataclass(frozen=True)
class StoredEnrichment(SourceKeyed):
    source: str
    source_id: str
    connector: str
    enrichment: dict[str, Any]
    raw: Any
    digest: str
    status: RecordStatus
    first_seen: str
    last_seen: str
    retired_at: str | None
    retired_reason: str | None


@dataclass(frozen=True)
class ReviewRow(SourceKeyed):
    source: str
    source_id: str
    state: ReviewState
    decided_type: str | None
    decided_subtype: str | None
    reason: str | None
    decided_by: str | None
    decided_at: str | None
    decided_on_evidence: str | None
    queued_at: str


Row = TypeVar("Row")


@dataclass(frozen=True)
class Paged(Generic[Row]):
    """Page `number` (from 1) of a list shown a page at a time, its rows, and how many rows the list holds."""

    rows: list[Row]
    total: int
    number: int


@dataclass(frozen=True)
class SourceStatus:
    source: str
    state: dict[str, Any]
    pending: dict[str, Any] | None
    run_started_at: str | None
    last_success_at: str | None
    last_complete_at: str | None
    staged: int


@dataclass(frozen=True)
class RunRow:
    id: int
    source: str
    started_at: str
    finished_at: str
    outcome: str
    report: dict[str, Any]


@dataclass(frozen=True)
class Audit:
    """Audit rows to append with a store write: who, what, on which service."""

    actor: str
    action: str
    service_id: str
    changes: tuple[Change, ...]
    yields: tuple[str, ...] = ()  # maintainers' overlay fields this newer word of the source takes back


class SourceCounts(NamedTuple):
    """A connector's records as `rehabmap sync-status` counts them."""

    shown: int                # active and shown (`indexer.sync.publish.shown`)
    retired: int
    held: int                 # awaiting a maintainer's review (`indexer.sync.publish.held`)


class LeftOutCounts(NamedTuple):
    """A connector's shown records that keep a contact detail their source gave left out, in two: those shown
    without it, and those a maintainer has since given every such detail by hand."""

    without: int
    added: int


class ShownLeftOut(NamedTuple):
    """A shown record that keeps a contact detail its source gave left out, with what the maintainers' overlay
    lays over it (whose fields may since give the detail)."""

    connector: str
    service_id: str
    name: str
    left_out: tuple[LeftOutDetail, ...]
    overlaid: dict[str, Any]  # the overlay's fields for the service; {} when a maintainer has edited none


# `indexer.sync.publish.shown` (not None) and `held` in SQL, over a record `r` and its review row `v` joined by
# `_WITH_REVIEW` (NULL when it has none): decided is accepted or rejected. The same rules, for what the database
# counts without reading a record; tests/sync/test_status_counts.py holds them equal for every combination.
# `_SHOWN_AS` and `_HELD_AS` are the rules but for the record having been prepared (`service IS NOT NULL`), which
# only the table's row says: `SyncStore.counts` counts by them on an index, then takes away the unprepared.
_UNDECIDED = "(v.state IS NULL OR v.state NOT IN ('accepted', 'rejected'))"
_SHOWN_AS = f"(v.state = 'accepted' OR (r.type_status = 'confirmed' AND {_UNDECIDED}))"
_HELD_AS = f"(r.type_status <> 'confirmed' AND {_UNDECIDED})"
_SHOWN = f"r.service IS NOT NULL AND {_SHOWN_AS}"
_WITH_REVIEW = "LEFT JOIN sync_review v ON v.source = r.source AND v.source_id = r.source_id"
_COUNTS = (f"SELECT r.connector, sum(CASE WHEN r.status = 'active' AND {_SHOWN_AS} THEN 1 ELSE 0 END), "
           "sum(CASE WHEN r.status = 'retired' THEN 1 ELSE 0 END), "
           f"sum(CASE WHEN r.status = 'active' AND {_HELD_AS} THEN 1 ELSE 0 END) FROM sync_records r {_WITH_REVIEW} "
           "WHERE {where} GROUP BY r.connector")
# Whether a maintainer has since given a listed record every contact detail it left out (`r.left_out`, a JSON list of
# `LeftOutDetail`s): the overlay row `o` gives each one's field a value (a contact field's value is a string, or
# null once cleared). `indexer.sync.status.added_by_maintainer`'s rule, in SQL, so that the database can count and
# order the records listed without reading them; the one expression each database writes its own way, over JSON.
# tests/sync/test_status_counts.py holds it equal to the rule.
_EVERY_DETAIL_ADDED = {
    "sqlite": "NOT EXISTS (SELECT 1 FROM json_each(r.left_out) d WHERE coalesce(json_extract(o.fields, "
              "'$.' || json_extract(d.value, '$.field')), '') = '')",
    "postgres": "NOT EXISTS (SELECT 1 FROM jsonb_array_elements(r.left_out::jsonb) d "
                "WHERE coalesce(o.fields::jsonb ->> (d ->> 'field'), '') = '')",
}
# The shown records that keep a contact detail their source gave left out (`SyncStore.shown_left_out`): by key, and
# whether a maintainer has since added every detail, reading no record's JSON but `left_out`.
_LISTED = ("SELECT r.connector, r.source, r.source_id, CASE WHEN {added} THEN 1 ELSE 0 END AS added "
           f"FROM sync_records r {_WITH_REVIEW} LEFT JOIN overlay o ON o.service_id = r.service_id "
           f"WHERE r.left_out IS NOT NULL AND r.status = 'active' AND {_SHOWN}{{where}}")
# A column's value is one of a list given as one JSON parameter (`SyncStore.sharing_keys`): on the column's index,
# and free of each database's limit on a statement's parameters.
_ONE_OF = {"sqlite": "{column} IN (SELECT value FROM json_each(?))",
           "postgres": "{column} IN (SELECT jsonb_array_elements_text(?::jsonb))"}
# The columns a key ("id", "cqc", "postcode": `SyncStore.sharing_keys`) is matched against: what a record has, and
# the keys it had when the live index last took it (`SyncStore.published_keys`).
_KEYED = {"id": ("service_id",), "cqc": ("cqc_key", "published_cqc_key"),
          "postcode": ("postcode_key", "published_postcode_key")}
# A row's key (source, source_id) is one of a list of them given as one JSON parameter (`SyncStore.reviews`).
_KEY_OF = {"sqlite": "(source, source_id) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                     "FROM json_each(?))",
           "postgres": "(source, source_id) IN (SELECT k ->> 0, k ->> 1 FROM jsonb_array_elements(?::jsonb) k)"}
# A review row decided on evidence other than its record's now (`SyncStore.reviews(evidence_changed=True)`).
_EVIDENCE_CHANGED = ("decided_on_evidence IS NOT NULL AND decided_on_evidence <> (SELECT r.evidence_digest FROM "
                     "sync_records r WHERE r.source = sync_review.source AND r.source_id = sync_review.source_id)")
_RECORD_COLUMNS = ("source, source_id, connector, service_id, status, type_status, item, raw, service, proposed_type, "
                   "proposed_subtype, problem, digest, evidence_digest, first_seen, last_seen, changed_at, "
                   "retired_at, retired_reason, live_revision, left_out")
_ENRICHMENT_COLUMNS = ("source, source_id, connector, enrichment, raw, digest, status, first_seen, last_seen, "
                       "retired_at, retired_reason")
_REVIEW_COLUMNS = ("source, source_id, state, decided_type, decided_subtype, reason, decided_by, decided_at, "
                   "decided_on_evidence, queued_at")
_REVIEW_ORDER = "ORDER BY queued_at, source, source_id"  # the queue's, oldest first


def _upsert(table: str, columns: str, key: str) -> str:
    """INSERT that replaces the row with the same key (SQLite's INSERT OR REPLACE, which PostgreSQL lacks)."""
    names = [c.strip() for c in columns.split(",")]
    updates = ", ".join(f"{c} = excluded.{c}" for c in names if c not in key.split(", "))
    return (f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT ({key}) DO UPDATE SET {updates}")


_UPSERT_ENRICHMENT = _upsert("sync_enrichments", _ENRICHMENT_COLUMNS, "source, source_id")
_UPSERT_REVIEW = _upsert("sync_review", _REVIEW_COLUMNS, "source, source_id")
_UPSERT_META = _upsert("sync_meta", "key, value", "key")



def _add_run(conn: Connection, source: str, started_at: str, finished_at: str, outcome: str,
             report: Mapping[str, Any]) -> None:
    """One row of a source's run history (`sync-status` reads its last), in the transaction `conn` is in: the
    report, and its summary (`_summary`, what `last_run` reads)."""
    conn.execute("INSERT INTO sync_runs (source, started_at, finished_at, outcome, report, summary) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 (source, started_at, finished_at, outcome, stored_json(dict(report)), stored_json(_summary(report))))


def _summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """A run's report with each of its lists (the records it added, changed, retired, ..., a line each) given as
    its length: what `rehabmap sync-status` and the keepers' Sources page say of a last run, kept beside the report
    (migration 20), since the report of a first sync of 100k records lists them all (14 MB, ~150 ms to read). Its
    `warnings` are kept whole: a line each of what the source's configuration said that is not read, which they say."""
    return {key: len(value) if isinstance(value, list) and key != "warnings" else value
            for key, value in report.items()}


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _left_out(text: str | None) -> tuple[LeftOutDetail, ...]:
    return tuple(LeftOutDetail(d["field"], d["said"]) for d in _loads(text) or ())


def _record(row: Sequence[Any]) -> StoredRecord:
    (source, source_id, connector, service_id, status, type_status, item, raw, service, proposed_type,
     proposed_subtype, problem, digest, evidence_digest, first_seen, last_seen, changed_at, retired_at,
     retired_reason, live_revision, left_out) = row
    return StoredRecord(source, source_id, connector, service_id, status, type_status, json.loads(item), _loads(raw),
                        _loads(service), proposed_type, proposed_subtype, problem, digest, evidence_digest,
                        first_seen, last_seen, changed_at, retired_at, retired_reason, live_revision,
                        _left_out(left_out))


def _enrichment(row: Sequence[Any]) -> StoredEnrichment:
    (source, source_id, connector, enrichment, raw, digest, status, first_seen, last_seen, retired_at,
     retired_reason) = row
    return StoredEnrichment(source, source_id, connector, json.loads(enrichment), _loads(raw), digest, status,
                            first_seen, last_seen, retired_at, retired_reason)


def _review(row: Sequence[Any]) -> ReviewRow:
    return ReviewRow(*row)


def _as_read(r: StoredRecord) -> tuple[str, str, str, str, str]:
    """What says a record is still as a writer read it (`_AS_READ`): a sync run that changed it since changed one."""
    return r.source, r.source_id, r.digest, r.status, r.problem or ""


class _Changed(Exception):
    """A record decided on changed since it was read (`SyncStore.write_decisions`): the transaction is rolled back."""


class SyncStore:
    """The store. Safe from any thread or process: each call takes its thread's connection (SQLite's,
    `SqliteDatabase.connect`) or a pooled one (PostgreSQL's)."""

    def __init__(self, store: Path | Database) -> None:
        self.database = opened(store)

    @classmethod
    def scratch_copy(cls, store: Path | Database, into: Path) -> SyncStore:
        """A throwaway SQLite copy of the store (an empty store when there is none) in the folder `into`: a
        dry run works on it, so it writes nothing to the real one. An SQLite file is copied whole, read
        only; from PostgreSQL, the tables a sync reads or writes."""
        path = Path(into) / "directory.sqlite"
        if isinstance(store, Path):
            if store.is_file():
                original = sqlite3.connect(sqlite_uri(store, "ro"), uri=True, timeout=30.0)
                scratch = sqlite3.connect(path)
                try:
                    original.backup(scratch)
                finally:
                    original.close()
                    scratch.close()
            return cls(path)
        copy = cls(path)
        with opened(store).snapshot() as source, copy.database.transaction() as target:
            for table, where in _SCRATCH_ROWS.items():
                rows = source.execute(f"SELECT * FROM {table}{where}").fetchall()
                if rows:
                    target.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
        return copy

    @classmethod
    def existing(cls, store: Path | Database) -> SyncStore | None:
        """The store if there is one (a rebuild reads it but never makes an SQLite file)."""
        return cls(store) if exists(store) else None

    @classmethod
    def served(cls, state: AppState) -> SyncStore | None:
        """A server's store, in the maintainers' store it opened (and migrated) at its start: made without a
        query, for what reads it on every probe or page (opening it reads its migrations and the audit log's
        guards again). A server that could not open that (a home it cannot write) opens this, if there is one."""
        if state.directory is None:
            return cls.existing(store_of(state.settings))
        store = cls.__new__(cls)
        store.database = state.directory.database
        return store

    def _connect(self) -> AbstractContextManager[Connection]:
        return self.database.connect()

    def _transaction(self) -> AbstractContextManager[Connection]:
        return self.database.transaction()

    def run_lock(self, source: str) -> AbstractContextManager[bool]:
        """One run per source at a time, across processes and hosts; yields False (without waiting) if
        another run of the source holds it. Dropped if its holder dies."""
        return self.database.named_lock(f"sync-{source}")

    # --- per-source state (the connector's `SyncState`) -----------------------------------------------

    def load_state(self, source: str) -> dict[str, Any]:
        """The state a connector resumes from: a run in progress's, else the last applied run's."""
        with self._connect() as conn:
            row = conn.execute("SELECT state, pending FROM sync_state WHERE source = ?", (source,)).fetchone()
        if row is None:
            return {}
        return json.loads(row[1] if row[1] is not None else row[0])

    def source_status(self, source: str) -> SourceStatus:
        with self._connect() as conn:
            row = conn.execute("SELECT state, pending, run_started_at, last_success_at, last_complete_at "
                               "FROM sync_state WHERE source = ?", (source,)).fetchone()
            staged = conn.execute("SELECT count(*) FROM sync_staged WHERE source = ?", (source,)).fetchone()[0]
        if row is None:
            return SourceStatus(source, {}, None, None, None, None, int(staged))
        return SourceStatus(source, json.loads(row[0]), _loads(row[1]), row[2], row[3], row[4], int(staged))

    def sources(self) -> list[SourceStatus]:
        return [self.source_status(name) for name in self.names()]

    def names(self) -> list[str]:
        """Every source the store has heard of (a state, a record or a run), by the name its runs are recorded
        under, in order."""
        with self._connect() as conn:
            return [s for (s,) in conn.execute(_SOURCES)]

    def abandon_run(self, source: str) -> int:
        """Forget a run in progress (its saved state and what it staged); the next run starts from the last
        applied state. Returns how many staged outcomes were dropped. Dropping any is recorded as the source's
        last run: a person decided, so a run stopped before no longer waits for one."""
        with self._transaction() as conn:
            started = conn.execute("SELECT run_started_at FROM sync_state WHERE source = ?", (source,)).fetchone()
            dropped = conn.execute("DELETE FROM sync_staged WHERE source = ?", (source,)).rowcount
            conn.execute("UPDATE sync_state SET pending = NULL, run_started_at = NULL WHERE source = ?", (source,))
            if dropped:
                _add_run(conn, source, (started and started[0]) or now(), now(), "discarded", {"discarded": dropped})
        return int(dropped)

    # --- what a run in progress has fetched -----------------------------------------------------------

    def stage_page(self, source: str, outcomes: Sequence[tuple[str, Mapping[str, Any]]],
                   state: Mapping[str, Any] | None, *, listing: str | None = None, afresh: bool = False) -> None:
        """A page's outcomes and the connector's state after it, in one transaction: a kill loses at most
        the page in flight, and a resumed run neither misses nor repeats a committed page. The outcomes are staged
        as of `listing`, the one they were fetched in where a run has several (`SyncState`). `afresh` drops what
        was staged of that listing before (of every one, `listing` None), in the same transaction as the place
        moved back to its first page: the records kept, a listing started again would not retire what it no
        longer lists; dropped with the place left where it was, the pages before it would be lost."""
        with self._transaction() as conn:
            if afresh:
                conn.execute("DELETE FROM sync_staged WHERE source = ?"
                             + ("" if listing is None else " AND listing = ?"),
                             (source,) if listing is None else (source, listing))
            seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM sync_staged WHERE source = ?",
                                   (source,)).fetchone()[0])
            conn.executemany("INSERT INTO sync_staged (source, seq, kind, payload, listing) VALUES (?, ?, ?, ?, ?)",
                             [(source, seq + i, kind, stored_json(dict(payload)), listing)
                              for i, (kind, payload) in enumerate(outcomes, start=1)])
            conn.execute("INSERT INTO sync_state (source, run_started_at) VALUES (?, ?) ON CONFLICT (source) DO "
                         "UPDATE SET run_started_at = coalesce(sync_state.run_started_at, excluded.run_started_at)",
                         (source, now()))
            if state is not None:
                conn.execute("UPDATE sync_state SET pending = ? WHERE source = ?", (stored_json(dict(state)), source))

    def staged(self, source: str) -> list[tuple[str, dict[str, Any]]]:
        with self._connect() as conn:
            rows = conn.execute("SELECT kind, payload FROM sync_staged WHERE source = ? ORDER BY seq",
                                (source,)).fetchall()
        return [(kind, json.loads(payload)) for kind, payload in rows]

    # --- records ----------------------------------------------------------------------------------------

    def records(self, connector: str | None = None, *, service_ids: Sequence[str] | None = None,
                keys: Collection[tuple[str, str]] | None = None) -> list[StoredRecord]:
        """The records (of one connector; with these service ids; with these keys, (source, source_id)), in order of
        their key. `keys` are found on the table's key, one JSON parameter however many: the review queue reads
        the records of its rows alone (`indexer.sync.review.ReviewQueue.items`), not every record of the store."""
        where: list[str] = []
        params: list[str] = []
        if connector is not None:
            where.append("connector = ?")
            params.append(connector)
        if service_ids is not None:
            if not service_ids:
                return []  # `IN ()` is SQLite's, not PostgreSQL's
            where.append(f"service_id IN ({', '.join('?' * len(service_ids))})")
            params.extend(service_ids)
        if keys is not None:
            where.append(_KEY_OF[self.database.dialect])
            params.append(json.dumps(sorted(set(keys))))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM sync_records{clause} ORDER BY source, source_id",
                                params).fetchall()
        return [_record(r) for r in rows]

    def sharing_keys(self, keys: Collection[tuple[str, str]]) -> list[StoredRecord]:
        """The records with one of these keys, as records are merged by them (`rehabmap.record_keys`), in the order of
        `records`: each key ("id", a service id), ("cqc", a CQC location id key) or ("postcode", a postcode key),
        a CQC location id and a postcode matched against what a record has now and what it had when the live index
        last took it (`published_keys`), so the records a changed one was merged with are found too. Every record
        one of them may be merged with, and others at their postcodes. Found on indexes (migration 22), each list
        one JSON parameter however long, so a live write reads the records it may merge (`publish.shown_merged`),
        never every record of the store."""
        return [_record(row) for row in self._with_any({column: {value for key, value in keys if key == name}
                                                        for name, columns in _KEYED.items() for column in columns})]

    def alike(self, records: Sequence[StoredRecord]) -> list[StoredRecord]:
        """The records that may be the same service as one of these, these among them as given, in the order of
        `records`: those with the same id at their source (another source's, an ODS code both NHS hospital lists
        give), and those with the same CQC location id or postcode, as they are now. Found on indexes (migration
        24's of the sources' ids, 22's of the keys), so the review queue says which records a maintainer may be
        seeing twice (`indexer.sync.review`) without reading every record. The keys are found first, and only the
        records not given are read: before, the review queue's records of the rows it shows were read again."""
        columns = {"source_id": {r.source_id for r in records}, "cqc_key": set(), "postcode_key": set()}
        for record in records:
            for column, value in zip(("cqc_key", "postcode_key"), key_columns(record.service)):
                if value is not None:
                    columns[column].add(value)
        given = {r.key: r for r in records}
        found = [(source, source_id) for source, source_id in self._with_any(columns, "source, source_id")]
        missing = [key for key in found if key not in given]
        read = {r.key: r for r in self.records(keys=missing)} if missing else {}  # records are retired, never deleted
        return [given.get(key) or read[key] for key in found]

    def _with_any(self, values: Mapping[str, Collection[str]], columns: str = _RECORD_COLUMNS) -> list[Sequence[Any]]:
        """These columns of the records whose column holds one of its values, for any of these columns, in the
        store's order: each column's list one JSON parameter (`_ONE_OF`), on the column's index, however long."""
        one_of = " OR ".join(_ONE_OF[self.database.dialect].format(column=column) for column in values)
        with self._connect() as conn:
            return list(conn.execute(f"SELECT {columns} FROM sync_records WHERE {one_of} ORDER BY source, source_id",
                                     [json.dumps(sorted(column)) for column in values.values()]).fetchall())

    def published_keys(self, records: Sequence[StoredRecord]) -> set[tuple[str, str]]:
        """The CQC location id and postcode keys ("cqc", "postcode") these records had when the live index last
        took them (`set_published_keys`): a changed record was merged with the records that share those, not its
        new ones, and they are to be written again (shown on their own, or without its fields)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT published_cqc_key, published_postcode_key FROM sync_records WHERE "
                                + _KEY_OF[self.database.dialect], (json.dumps([list(r.key) for r in records]),))
            return {(name, value) for row in rows.fetchall() for name, value in zip(("cqc", "postcode"), row)
                    if value is not None}

    def set_published_keys(self, records: Sequence[StoredRecord]) -> None:
        """Note the keys of these records, as read, as those the live index now holds them under (a live write
        wrote them and the records they are merged with): what `published_keys` gives until the next write."""
        self._set_keys("published", records)

    def _set_keys(self, kind: Literal["published", "rebuild"], records: Sequence[StoredRecord]) -> None:
        with self._transaction() as conn:
            conn.executemany(f"UPDATE sync_records SET {kind}_cqc_key = ?, {kind}_postcode_key = ? "
                             "WHERE source = ? AND source_id = ?",
                             [(*key_columns(r.service), *r.key) for r in records])

    def read_for_rebuild(self, at: str, *, live_built_at: datetime | None = None) -> list[StoredRecord]:
        """Every record, as a rebuild reads them, the read noted: the store's revision then and the time `at`
        (`REBUILD_READ`), so the first live write after its swap writes again what changed after the read (the
        swap undid it), and each record's keys as read (`rebuild_cqc_key`, `rebuild_postcode_key`), those its index
        holds the record under, which become the published ones once it is live (`rebuild_taken`). The keys are
        copied in the transaction that notes the revision; a record read at a later revision (changed between the
        two) has the keys it was read with noted after. An earlier rebuild's read still noted, whose index is the
        live one (built at `live_built_at`) with no live write since, is taken first, in the same transaction:
        replaced, its note was lost, and if this rebuild is refused, the next live write took no swap at all."""
        with self._transaction() as conn:
            earlier = conn.execute("SELECT value FROM sync_meta WHERE key = ?", (REBUILD_READ,)).fetchone()
            if earlier is not None and swapped_in(earlier[0], live_built_at):
                _taken(conn, earlier[0])
            revision = int(conn.execute(_REVISION).fetchone()[0])
            conn.execute(_copy_keys("rebuild_", ""))
            conn.execute(_UPSERT_META, (REBUILD_READ, json.dumps({"revision": revision, "at": at})))
        records = self.records()
        later = [r for r in records if r.live_revision > revision]
        if later:
            self._set_keys("rebuild", later)
        return records

    def rebuild_taken(self, read: str) -> None:
        """The rebuild whose read of the store `read` is (`REBUILD_READ`, as `read_for_rebuild` noted it) swapped in
        its index: in one transaction, each record's keys as it read them become those the live index holds it
        under (`published_keys`: before, those a live write between its read and its swap noted stayed, and the
        records the rebuild's index merged a record with were not found when it next changed), the revision the
        live index holds is the one it read (a later live write is undone; an earlier one's revision is passed, as
        the index holds every record as of the read: before, it stayed, and what a run killed before its live write
        applied was written again, or, a mapping put wrong since, said held back and refused, though shown), and
        the read is forgotten.
        Nothing, where another rebuild has read the store since (its keys are not those of this index; that read
        took this one, if its index was live by then: `read_for_rebuild`)."""
        with self._transaction() as conn:
            _taken(conn, read)

    def record(self, source: str, source_id: str) -> StoredRecord | None:
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM sync_records WHERE source = ? AND source_id = ?",
                               (source, source_id)).fetchone()
        return _record(row) if row else None

    def service_ids(self) -> list[str]:
        """Every record's service id, on its index (`sync_records_by_service`): what a face that names a service by an
        id made from it (an ORUK UUID) reads to learn which record an id the live index holds no record by names (one
        merged into another, which a rebuild leaves out). Every id, not the one asked for: an ORUK UUID is a one-way
        hash of the id (version 5) that no column keeps, so no index finds a record by it; read from the index alone,
        once an index generation (`api.routes.oruk.OrukIds.stored`)."""
        with self._connect() as conn:
            return [service_id for (service_id,) in conn.execute("SELECT DISTINCT service_id FROM sync_records")]

    def changed_since(self, revision: int) -> list[StoredRecord]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM sync_records WHERE live_revision > ? "
                                "ORDER BY live_revision", (revision,)).fetchall()
        return [_record(r) for r in rows]

    def counts(self, connector: str | None = None) -> dict[str, SourceCounts]:
        """Per connector (or only the one named), its records shown, retired and awaiting review: counted by the
        database on an index of the records' connector, status and type (`sync_records_counted`, migration 20),
        reading no record, less those never prepared (an index of their own, `sync_records_unprepared`), since
        `rehabmap sync-status` and the keepers' Sources page ask on every visit: reading each record of a
        directory of 100k took 31 s (bench/RESULTS.md, issue 18, session 25)."""
        named, params = ("r.connector = ?", [connector]) if connector is not None else ("1 = 1", [])
        with self._connect() as conn:
            every = conn.execute(_COUNTS.format(where=named), params).fetchall()
            unprepared = {name: (int(shown), int(held)) for name, shown, _, held in conn.execute(
                _COUNTS.format(where=f"r.service IS NULL AND {named}"), params).fetchall()}
        return {name: SourceCounts(int(shown) - unprepared.get(name, (0, 0))[0], int(retired),
                                   int(held) - unprepared.get(name, (0, 0))[1])
                for name, shown, retired, held in every}

    def _listed(self, connector: str | None) -> tuple[str, list[str]]:
        """`_LISTED`, of every connector or the one named, in this database's dialect, and its parameters."""
        where, params = (" AND r.connector = ?", [connector]) if connector is not None else ("", [])
        return _LISTED.format(added=_EVERY_DETAIL_ADDED[self.database.dialect], where=where), params

    def left_out_counts(self, connector: str | None = None) -> dict[str, LeftOutCounts]:
        """Per connector (or only the one named), how many of its shown records keep a contact detail their source
        gave left out, and of them how many a maintainer has since given every such detail: the totals the keepers'
        Sources page says above one page of them (`shown_left_out`), counted by the database."""
        listed, params = self._listed(connector)
        with self._connect() as conn:
            rows = conn.execute(f"SELECT l.connector, count(*), sum(l.added) FROM ({listed}) l GROUP BY l.connector",
                                params).fetchall()
        return {name: LeftOutCounts(int(listed_count) - int(added), int(added)) for name, listed_count, added in rows}

    def shown_left_out(self, connector: str | None = None, *, per_page: int | None = None,
                       pages: Mapping[str, int] | None = None) -> list[ShownLeftOut]:
        """The records shown (active) that keep a contact detail their source gave left out, of every connector
        or the one named, each with the maintainers' overlay fields laid over it; per connector, those still
        without a detail first, then those a maintainer has given every one, each in the order of `records`. All
        of them, or with `per_page` one page of each connector's (its number in `pages`, else the first): the
        database numbers them and reads the JSON of that page's records only, so a visit of the keepers' Sources
        page reads what it shows however many records are listed (`left_out_counts` gives the totals)."""
        listed, params = self._listed(connector)
        skipped = {name: (number - 1) * per_page for name, number in (pages or {}).items()} if per_page else {}
        # n: a record's place in its connector's list, counted from the first of the page asked for
        skip = " ".join("WHEN ? THEN ?" for _ in skipped)
        numbered = (f"SELECT l.*, row_number() OVER (PARTITION BY l.connector ORDER BY l.added, l.source, l.source_id) "
                    f"- {f'CASE l.connector {skip} ELSE 0 END' if skipped else '0'} AS n FROM ({listed}) l")
        page = " WHERE l.n BETWEEN 1 AND ?" if per_page else ""
        with self._connect() as conn:
            rows = conn.execute("SELECT l.connector, r.service_id, r.service, r.left_out, o.fields "
                                f"FROM ({numbered}) l JOIN sync_records r ON r.source = l.source "
                                "AND r.source_id = l.source_id LEFT JOIN overlay o ON o.service_id = r.service_id"
                                f"{page} ORDER BY l.connector, l.n",
                                [*(v for pair in skipped.items() for v in pair), *params,
                                 *([per_page] if per_page else [])]).fetchall()
        return [ShownLeftOut(connector, service_id, str(json.loads(service).get("name") or ""), _left_out(left_out),
                             _loads(overlaid) or {}) for connector, service_id, service, left_out, overlaid in rows]

    def enrichment_counts(self) -> dict[str, int]:
        """Per connector, its active facts about records other sources own, counted by the database."""
        with self._connect() as conn:
            rows = conn.execute("SELECT connector, count(*) FROM sync_enrichments WHERE status = 'active' "
                                "GROUP BY connector").fetchall()
        return {name: int(count) for name, count in rows}

    def changed_since_meta(self, key: str, prefix: str) -> tuple[dict[str, int], list[str]]:
        """How many records each connector changed after the revision the meta entry `key` holds, and the meta
        keys that start with `prefix`: in one connection, on the revision's index, reading only the records
        changed after it (a health probe asks; each new connection reads the schema again)."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM sync_meta WHERE key = ?", (key,)).fetchone()
            # counted here, not by GROUP BY: grouping, SQLite scanned every record by the connector's index to
            # read each one's revision (0.4 s at 100k records) instead of taking the few after it by its own
            changed = conn.execute("SELECT connector FROM sync_records WHERE live_revision > ?",
                                   (int(row[0]) if row else 0,)).fetchall()
            keys = conn.execute("SELECT key FROM sync_meta WHERE substr(key, 1, ?) = ?",
                                (len(prefix), prefix)).fetchall()
        return dict(Counter(connector for (connector,) in changed)), [k for (k,) in keys]

    def last_successes(self) -> dict[str, str | None]:
        """Per source that has run, when a run of it last applied; None where none has (a metrics scrape reads
        this, and no record: the runs' sources on their index, `_RUN_SOURCES`)."""
        with self._connect() as conn:
            rows = conn.execute(f"{_RUN_SOURCES}SELECT source, max(last_success_at) FROM (SELECT source, "
                                "last_success_at FROM sync_state UNION ALL SELECT source, NULL FROM run_sources "
                                "WHERE source IS NOT NULL) s GROUP BY source ORDER BY source").fetchall()
        return {source: at for source, at in rows}

    def live_revision(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(_REVISION).fetchone()[0])

    def meta(self, key: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM sync_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def metas(self, prefix: str) -> dict[str, str]:
        """Every meta entry whose key starts with `prefix`."""
        with self._connect() as conn:
            rows = conn.execute("SELECT key, value FROM sync_meta WHERE substr(key, 1, ?) = ? ORDER BY key",
                                (len(prefix), prefix)).fetchall()
        return {key: value for key, value in rows}

    def titles(self) -> dict[str, str]:
        """Each source's title as its last applied run had it (`TITLED`), by its name: what names a feed whose file
        has left the feed folder, which named it by its code ('oruk-bristol') once its file was gone."""
        return {key[len(TITLED):]: title for key, title in self.metas(TITLED).items()}

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(_UPSERT_META, (key, value))

    def delete_meta(self, key: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM sync_meta WHERE key = ?", (key,))

    def apply_run(self, source: str, records: Sequence[StoredRecord], enrichments: Sequence[StoredEnrichment],
                  reviews: Sequence[ReviewRow], audits: Sequence[Audit], *, live_changed: set[tuple[str, str]],
                  complete: bool, started_at: str, report: Mapping[str, Any],
                  meta: Mapping[str, str] | None = None) -> None:
        """A run's changes in one transaction: the records, enrichments and review rows written, the audit
        rows appended, the run's state made the source's state, what it staged dropped, the run recorded, and
        `meta` set (what the run leaves to do once the live index has followed: `publish.publish_coverage`).
        Records in `live_changed` get a new live revision."""
        at = now()
        with self._transaction() as conn:
            self._write_run(conn, records, enrichments, reviews, audits, live_changed, meta or {}, at)
            pending = conn.execute("SELECT pending FROM sync_state WHERE source = ?", (source,)).fetchone()
            state = pending[0] if pending and pending[0] is not None else None
            conn.execute("INSERT INTO sync_state (source, state, last_success_at, last_complete_at) VALUES "
                         "(?, coalesce(?, '{}'), ?, ?) ON CONFLICT (source) DO UPDATE SET "
                         "state = coalesce(?, sync_state.state), pending = NULL, run_started_at = NULL, "
                         "last_success_at = excluded.last_success_at, "
                         "last_complete_at = coalesce(excluded.last_complete_at, sync_state.last_complete_at)",
                         (source, state, at, at if complete else None, state))
            conn.execute("DELETE FROM sync_staged WHERE source = ?", (source,))
            _add_run(conn, source, started_at, at, "applied", report)

    def apply_retirement(self, source: str, records: Sequence[StoredRecord], enrichments: Sequence[StoredEnrichment],
                         reviews: Sequence[ReviewRow], audits: Sequence[Audit], *, live_changed: set[tuple[str, str]],
                         started_at: str, report: Mapping[str, Any], meta: Mapping[str, str]) -> None:
        """A person's retirement of every record of a source no run of will come (`SyncRunner.retire_all`) in one
        transaction, as `apply_run` writes a run's changes, but the source's state is forgotten, not moved on (a
        feed put back is read afresh), what an unfinished run of it staged is dropped, and its last success and
        complete listing stay as they were; recorded as a run that 'retired'."""
        at = now()
        with self._transaction() as conn:
            self._write_run(conn, records, enrichments, reviews, audits, live_changed, meta, at)
            conn.execute("UPDATE sync_state SET state = '{}', pending = NULL, run_started_at = NULL WHERE source = ?",
                         (source,))
            conn.execute("DELETE FROM sync_staged WHERE source = ?", (source,))
            _add_run(conn, source, started_at, at, "retired", report)

    @classmethod
    def _write_run(cls, conn: Connection, records: Sequence[StoredRecord], enrichments: Sequence[StoredEnrichment],
                   reviews: Sequence[ReviewRow], audits: Sequence[Audit], live_changed: set[tuple[str, str]],
                   meta: Mapping[str, str], at: str) -> None:
        """What a run (or a retirement) changes, in the transaction `conn`: records, review rows and audit rows
        (`_write`), the meta entries it leaves due, and its enrichments."""
        cls._write(conn, records, reviews, audits, live_changed, at)
        conn.executemany(_UPSERT_META, list(meta.items()))
        conn.executemany(
            _UPSERT_ENRICHMENT,
            [(e.source, e.source_id, e.connector, stored_json(e.enrichment),
              None if e.raw is None else stored_json(e.raw), e.digest, e.status, e.first_seen, e.last_seen,
              e.retired_at, e.retired_reason)
             for e in enrichments])

    def write(self, records: Sequence[StoredRecord], reviews: Sequence[ReviewRow], audits: Sequence[Audit], *,
              live_changed: set[tuple[str, str]]) -> None:
        """Records, review rows and audit rows written whole in one transaction, over whatever the store holds: a
        test's setting up of a store in a given state. rehabmap's own writes each guard what they read: a run's
        (`apply_run`, under its source's lock), a decision's (`write_decisions`), a preparing's (`write_reprepared`)."""
        with self._transaction() as conn:
            self._write(conn, records, reviews, audits, live_changed, now())

    def write_decisions(self, records: Sequence[StoredRecord], reviews: Sequence[ReviewRow],
                        audits: Sequence[Audit], *, live_changed: set[tuple[str, str]]) -> list[StoredRecord]:
        """Review decisions on `records` (as read to decide): their review rows and audit rows in one transaction,
        and of each record only its live revision, moved where what it shows changes (`live_changed`); written
        only if every record is as read (its digest, status and problem), else nothing is, and the records that
        changed are returned. Before, the records were written whole, so a sync run committing between the reading
        and the writing was undone: Field House, retired as CQC deregistered it, was written back active, and a
        feed of changes alone never retires it again."""
        changed: list[StoredRecord] = []
        try:
            with self._transaction() as conn:
                revision = int(conn.execute(_REVISION).fetchone()[0])
                for r in records:
                    moved = r.key in live_changed
                    revision += moved
                    if not conn.execute(_DECIDED, (moved, revision, *_as_read(r))).rowcount:
                        changed.append(r)
                if changed:
                    raise _Changed  # rolls the transaction back: nothing of the decisions is written
                self._write_rows(conn, reviews, audits, now())
        except _Changed:
            pass
        return changed

    def write_reprepared(self, changed: Sequence[tuple[StoredRecord, StoredRecord]], *,
                         live_changed: set[tuple[str, str]], mark: str, asked: str, audits: Sequence[Audit] = ()
                         ) -> list[StoredRecord] | None:
        """Records prepared again on upgrade, their audit rows (a problem cleared or recorded), and the meta entry
        `mark` that asked for it (its value `asked`, as read before preparing) gone, in one transaction: a process
        killed meanwhile leaves the mark, and the next does it all again. The mark is deleted first, so of processes
        preparing at once (a server's workers start together, a sync beside them) one alone writes; None, nothing
        written, for the others: the audit log is append-only, and each wrote the same audit rows before. Records
        written move the stalled listings' revision (`LISTINGS_REVISION`): a problem cleared or recorded lists a
        record or no longer does, and no run is recorded. `changed`: each record as read and as prepared; one a sync
        run changed in between (its digest, status or problem not as read) is not written, nor its audit rows, and
        is returned, what the run wrote standing: before, the record prepared was written whole,
        so Ashton Lodge, retired by a run committing while the records were prepared, was written back active."""
        with self._transaction() as conn:
            if not conn.execute("DELETE FROM sync_meta WHERE key = ? AND value = ?", (mark, asked)).rowcount:
                return None
            moved = [before for before, _ in changed
                     if conn.execute(_STILL_AS_READ, _as_read(before)).fetchone() is None]
            gone = {r.service_id for r in moved}
            records = [after for _, after in changed if after.service_id not in gone]
            self._write(conn, records, (), [a for a in audits if a.service_id not in gone], live_changed, now())
            if records:
                conn.execute(BUMP_LISTINGS)
        return moved

    @staticmethod
    def _write(conn: Connection, records: Sequence[StoredRecord], reviews: Sequence[ReviewRow],
               audits: Sequence[Audit], live_changed: set[tuple[str, str]], at: str) -> None:
        revision = int(conn.execute(_REVISION).fetchone()[0])
        for r in records:
            if r.key in live_changed:
                revision += 1
            conn.execute(
                f"INSERT INTO sync_records ({_RECORD_COLUMNS}, cqc_key, postcode_key, published_cqc_key, "
                f"published_postcode_key) VALUES ({', '.join('?' * 25)}) "
                "ON CONFLICT (source, source_id) DO UPDATE SET connector = excluded.connector, "
                "service_id = excluded.service_id, "
                "status = excluded.status, type_status = excluded.type_status, item = excluded.item, "
                "raw = excluded.raw, service = excluded.service, proposed_type = excluded.proposed_type, "
                "proposed_subtype = excluded.proposed_subtype, problem = excluded.problem, "
                "digest = excluded.digest, evidence_digest = excluded.evidence_digest, "
                "last_seen = excluded.last_seen, changed_at = excluded.changed_at, "
                "retired_at = excluded.retired_at, retired_reason = excluded.retired_reason, "
                "left_out = excluded.left_out, cqc_key = excluded.cqc_key, postcode_key = excluded.postcode_key, "
                "live_revision = CASE WHEN ? THEN excluded.live_revision ELSE sync_records.live_revision END",
                (r.source, r.source_id, r.connector, r.service_id, r.status, r.type_status, stored_json(r.item),
                 None if r.raw is None else stored_json(r.raw), None if r.service is None else stored_json(r.service),
                 r.proposed_type, r.proposed_subtype, r.problem, r.digest, r.evidence_digest, r.first_seen,
                 r.last_seen, r.changed_at, r.retired_at, r.retired_reason, revision,
                 stored_json([d._asdict() for d in r.left_out]) if r.left_out else None, *key_columns(r.service),
                 *key_columns(r.service), r.key in live_changed))
        SyncStore._write_rows(conn, reviews, audits, at)

    @staticmethod
    def _write_rows(conn: Connection, reviews: Sequence[ReviewRow], audits: Sequence[Audit], at: str) -> None:
        for v in reviews:
            conn.execute(_UPSERT_REVIEW, (v.source, v.source_id, v.state, v.decided_type, v.decided_subtype, v.reason,
                          v.decided_by, v.decided_at, v.decided_on_evidence, v.queued_at))
        for a in audits:
            audit_id = AuditLog.append(conn, a.actor, a.action, "service", a.service_id, a.changes, at)
            if a.yields:
                Overlay.yield_fields(conn, a.service_id, a.yields, audit_id)

    def record_run(self, source: str, started_at: str, outcome: str, report: Mapping[str, Any]) -> None:
        """A run that applied nothing (stopped at the share threshold, or failed)."""
        with self._transaction() as conn:
            _add_run(conn, source, started_at, now(), outcome, report)

    def runs(self, source: str | None = None, limit: int = 20) -> list[RunRow]:
        where, params = ("WHERE source = ?", [source]) if source else ("", [])
        with self._connect() as conn:
            rows = conn.execute(f"SELECT id, source, started_at, finished_at, outcome, report FROM sync_runs "
                                f"{where} ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
        return [RunRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def last_run(self, source: str, *, past_failures: bool = False) -> RunRow | None:
        """The source's last run, its report summarised (`_summary`: each list as its length), reading the whole
        report only for a run recorded before summaries were kept (migration 20). With `past_failures`, the last
        that did not fail: a failed run applies and drops nothing, so what the run before it staged is still staged."""
        passing = " AND outcome <> 'failed'" if past_failures else ""
        with self._connect() as conn:
            row = conn.execute("SELECT id, source, started_at, finished_at, outcome, summary, "
                               "CASE WHEN summary IS NULL THEN report END FROM sync_runs WHERE source = ?"
                               f"{passing} ORDER BY id DESC LIMIT 1", (source,)).fetchone()
        if row is None:
            return None
        summary = json.loads(row[5]) if row[5] is not None else _summary(json.loads(row[6]))
        return RunRow(row[0], row[1], row[2], row[3], row[4], summary)

    def enrichments(self, *, active_only: bool = True,
                    keys: Collection[tuple[str, str]] | None = None) -> list[StoredEnrichment]:
        """The enrichments, or with `keys` ((MatchKey, value) pairs: the keys some records are known by) those that
        match on one of them at least, on the indexes of migration 26: all that may match those records, for
        `indexer.sync.enrich.Enrichments` to choose from (one matches a record only if all its keys agree). The
        review queue asks so for the records it lists; before, it read every enrichment, every ODS site's, for
        each."""
        where: list[str] = ["status = 'active'"] if active_only else []
        params: list[str] = []
        if keys is not None:
            wanted = {name: sorted({value for key, value in keys if key == name}) for name in ENRICHMENT_MATCH_KEYS}
            wanted = {name: values for name, values in wanted.items() if values}
            if not wanted:
                return []
            where.append("(" + " OR ".join(_ONE_OF[self.database.dialect].format(
                column=ENRICHMENT_MATCH[self.database.dialect].format(key=name)) for name in wanted) + ")")
            params.extend(json.dumps(values) for values in wanted.values())
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_ENRICHMENT_COLUMNS} FROM sync_enrichments{clause} "
                                "ORDER BY source, source_id", params).fetchall()
        return [_enrichment(r) for r in rows]

    # --- the review queue -------------------------------------------------------------------------------

    def reviews(self, *, states: Sequence[ReviewState] | None = None, source: str | None = None,
                keys: Sequence[tuple[str, str]] | None = None, evidence_changed: bool = False) -> list[ReviewRow]:
        """The review rows (in these states, of this source, of these records' keys), oldest first; with
        `evidence_changed`, those decided on evidence their record no longer has (`ReviewItem.evidence_changed`),
        found here, so the keepers' queue page and `review list --changed` read the records of those rows alone:
        before, each read the record of every decided row to find the few."""
        clause, params = self._reviews_where(states, source, keys, evidence_changed)
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_REVIEW_COLUMNS} FROM sync_review{clause} {_REVIEW_ORDER}", params).fetchall()
        return [_review(r) for r in rows]

    def _reviews_where(self, states: Sequence[ReviewState] | None, source: str | None,
                       keys: Sequence[tuple[str, str]] | None, evidence_changed: bool) -> tuple[str, list[str]]:
        """The WHERE clause (or "") and its parameters choosing the review rows `reviews` and `reviews_page` read.
        No states: rows in any (an empty IN list is an error on PostgreSQL)."""
        where: list[str] = []
        params: list[str] = []
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if evidence_changed:
            where.append(_EVIDENCE_CHANGED)
        if keys is not None:  # the rows of these records alone, on the table's key (a live write asks for a few)
            where.append(_KEY_OF[self.database.dialect])
            params.append(json.dumps(sorted(set(keys))))
        return (f" WHERE {' AND '.join(where)}" if where else ""), params

    def reviews_page(self, number: int, per_page: int, *, states: Sequence[ReviewState],
                     evidence_changed: bool = False) -> Paged[ReviewRow]:
        """Page `number` (from 1) of the review rows `reviews` reads with these states (and `evidence_changed`),
        `per_page` rows in its order, and how many rows there are, both in one consistent read: the database counts
        them and reads the page's alone. A page past the end is the last that has rows (`Paged.number` says which):
        before, a bulk decision that emptied the last page went back to it, and the keeper saw an empty page as if
        nothing were left to review. Before that, the keepers' queue page read every row to count and slice them."""
        clause, params = self._reviews_where(states, None, None, evidence_changed)
        with self.database.snapshot() as conn:
            total = int(conn.execute(f"SELECT count(*) FROM sync_review{clause}", params).fetchone()[0])
            number = min(number, max(1, -(-total // per_page)))
            rows = conn.execute(f"SELECT {_REVIEW_COLUMNS} FROM sync_review{clause} {_REVIEW_ORDER} "
                                "LIMIT ? OFFSET ?", [*params, per_page, (number - 1) * per_page]).fetchall()
        return Paged([_review(r) for r in rows], total, number)
