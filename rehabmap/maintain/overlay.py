"""The edits overlay: per edited service, the fields changed here and their values (for a service made
here, the whole record), laid over every rebuild (`rehabmap.maintain.edits.OverlayWriter`). One change is one
transaction: its audit rows and its overlay row commit together or not at all.

The overlay is the maintainers' word, laid over the sources' on every write; between the two, the newer word
wins. A maintainer's restore (`status: active`) is the one field a source's later news takes back: a sync that
retires the service (CQC deregistered it after the restore) drops that field (`yield_fields`) in its own
transaction, with an audit row saying whose restore it supersedes (`restore_pinning`), so no rebuild or later
write shows it again, until a maintainer restores it anew.

A field a maintainer edited that the source later changes is different: the edit may be a correction the source
never had (a referral line in place of a switchboard), so it stays shown, but the source's new value is news the
maintainer did not have. The sync says so (`questioned`): in its report, and in the audit log as a `questioned`
row (old: the edit kept, new: what the source now gives), which the keepers' page of the service shows
(`open_questions`) until a maintainer edits that field again or keeps the edit (`keep` rows)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rehabmap.maintain.audit import QUESTIONED, TIDIED, AuditEntry, AuditLog, Change
from rehabmap.maintain.database import NEXT_LIVE_REVISION, Connection, Database, machines_words, now

log = logging.getLogger(__name__)
# What rehabmap read, which follows from the source's words and the stated needs (`rehabmap.maintain.readings`):
# never a maintainer's word, so an edit neither audits nor lays it (a confirmed need leaves it by the record's own
# rule, `Service._consistent`), and a source's later words are read afresh under any edit.
READ_FIELDS = ("needs_read_from_text", "needs_read_not_met", "gender_read_from_text")
# The audit field of a sync's retirement that supersedes a maintainer's restore (its old value says whose).
RESTORE_SUPERSEDED = "maintainer_restore_superseded"
# The store's `meta` key of migration 21's list (`list_sources_word_due`): per edited record of a file, the source's
# word on each field an edit laid where the live record keeps it apart, which the next start lays (`Editor.reconcile`).
SOURCES_WORD_DUE = "sources_word_due"
# The store's `meta` key, before a service's id, saying the live index still owes a write of its overlay entry: the
# write that recorded it was refused or failed (`Overlay.owe_write`), so a change that changes nothing writes it again.
_WRITE_OWED = "index_write_owed:"
# The fields whose source's word a record keeps apart under an edit (`rehabmap.index.base.overlay_record`).
_KEPT_APART = ("gender", "needs_met")


@dataclass(frozen=True)
class OverlayEntry:
    service_id: str
    fields: dict[str, Any]
    created: bool
    revision: int  # the audit id of the latest change
    updated_at: str


@dataclass(frozen=True)
class Restore:
    """Who restored a retired service, and on which day: what a source's later retirement supersedes."""

    by: str
    on: date

    def __str__(self) -> str:
        return f"a maintainer ({self.by}) had restored it on {self.on.isoformat()}"

    def change(self) -> Change:
        """The audit row of the retirement that supersedes it: the restore it took back, by whom and when."""
        return Change(RESTORE_SUPERSEDED, {"by": self.by, "on": self.on.isoformat()}, None)

    @classmethod
    def of(cls, status_set: tuple[str, str] | None, updated_at: str) -> Restore:
        """From the audit row that set the status active (its actor and time), or, with none, the overlay's."""
        by, at = status_set or ("a maintainer", updated_at)
        return cls(by, date.fromisoformat(at[:10]))

    @classmethod
    def logged(cls, value: Mapping[str, str]) -> Restore:
        """The restore as `change` logged it."""
        return cls(value["by"], date.fromisoformat(value["on"]))


@dataclass(frozen=True)
class Questioned:
    """A field a maintainer's edit keeps, which the source has since changed to another value."""

    field: str
    kept: Any  # the maintainer's edit, still shown
    source: Any  # what the source now gives

    def __str__(self) -> str:
        return (f"{self.field}: the source now gives {json.dumps(self.source, ensure_ascii=False)}; a maintainer's "
                f"edit keeps {json.dumps(self.kept, ensure_ascii=False)}")

    def change(self) -> Change:
        return Change(self.field, self.kept, self.source)


class Overlay:
    def __init__(self, database: Database, audit: AuditLog) -> None:
        self.database = database
        self.audit = audit

    def record(self, actor: str, action: str, service_id: str, changes: Sequence[Change], *,
               fields: dict[str, Any], created: bool = False,
               before_commit: Callable[[], None] | None = None) -> OverlayEntry:
        """One change to one service: its audit rows, and `fields` laid into its overlay row, in one
        transaction. For a service made here, `fields` is the whole record."""
        if not changes:
            raise ValueError("a change with no changed fields is not recorded")
        at = now()
        with self.database.transaction() as conn:
            revision = self.audit.append(conn, actor, action, "service", service_id, changes, at)
            row = conn.execute("SELECT fields, created FROM overlay WHERE service_id = ?", (service_id,)).fetchone()
            laid = json.loads(row[0]) if row else {}
            laid.update(fields)
            fields = laid
            is_created = bool(row[1]) if row else created
            conn.execute("INSERT INTO overlay VALUES (?, ?, ?, ?, ?) ON CONFLICT (service_id) DO UPDATE SET "
                         "fields = excluded.fields, created = excluded.created, revision = excluded.revision, "
                         "updated_at = excluded.updated_at",
                         (service_id, json.dumps(fields, sort_keys=True), int(is_created), revision, at))
            if before_commit is not None:
                before_commit()
        return OverlayEntry(service_id, fields, is_created, revision, at)

    def entries(self, *, since: int = 0) -> tuple[dict[str, OverlayEntry], int]:
        """Every overlay entry changed after revision `since`, and the latest revision, read together."""
        with self.database.snapshot() as conn:
            rows = conn.execute("SELECT service_id, fields, created, revision, updated_at FROM overlay "
                                "WHERE revision > ?", (since,)).fetchall()
            latest = conn.execute("SELECT coalesce(max(revision), 0) FROM overlay").fetchone()[0]
        return {r[0]: OverlayEntry(r[0], json.loads(r[1]), bool(r[2]), r[3], r[4]) for r in rows}, int(latest)

    def sources_word_due(self) -> dict[str, dict[str, Any]]:
        """Migration 21's list (`list_sources_word_due`): per service, the source's word on each field kept apart."""
        with self.database.connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (SOURCES_WORD_DUE,)).fetchone()
        return json.loads(row[0]) if row else {}

    def sources_word_laid(self) -> None:
        """Migration 21's list laid on the live index: once, so a later edit or rebuild (which keep the source's
        word themselves, from the source's record) is never overlaid with the word the audit log kept."""
        with self.database.transaction() as conn:
            conn.execute("DELETE FROM meta WHERE key = ?", (SOURCES_WORD_DUE,))

    def get(self, service_id: str) -> OverlayEntry | None:
        with self.database.connect() as conn:
            row = conn.execute("SELECT service_id, fields, created, revision, updated_at FROM overlay "
                               "WHERE service_id = ?", (service_id,)).fetchone()
        return OverlayEntry(row[0], json.loads(row[1]), bool(row[2]), row[3], row[4]) if row else None

    def owe_write(self, service_id: str) -> None:
        """The live index refused or failed the write of the service's entry (or its refresh or mark after it): the
        next change of it writes it again, even one that changes nothing (`write_owed`). A row of `meta` of its own
        (no migration, and the entry's fields, which every reader lays, stay the record's alone)."""
        with self.database.transaction() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                         (_WRITE_OWED + service_id, now()))

    def write_owed(self, service_id: str) -> bool:
        with self.database.connect() as conn:
            return conn.execute("SELECT 1 FROM meta WHERE key = ?", (_WRITE_OWED + service_id,)).fetchone() is not None

    def writes_paid(self, service_ids: Iterable[str]) -> None:
        """The live index took these services' entries, laid as far as they fit, refreshed and marked (an edit's own
        write, or a rebuild's, `reconcile`'s or a sync's that laid them): no write of them is owed. The owed rows are
        read first, so a write of services none of which is owed (nearly every one) opens no transaction. A store that
        cannot say so is logged, not raised (`log_unnoted`): the write landed, and a row left owed costs only one more
        write, at the next edit of the service that changes nothing."""
        keys = {_WRITE_OWED + service_id for service_id in service_ids}
        if not keys:
            return
        paid: list[str] = []
        try:
            with self.database.connect() as conn:
                owed = {row[0] for row in conn.execute("SELECT key FROM meta WHERE key LIKE ?", (_WRITE_OWED + "%",))}
            paid = sorted(keys & owed)
            if paid:
                with self.database.transaction() as conn:
                    conn.executemany("DELETE FROM meta WHERE key = ?", [(key,) for key in paid])
        except Exception as refused:  # noqa: BLE001 - the write this follows landed
            which = ", ".join(key.removeprefix(_WRITE_OWED) for key in paid) or "any of them still noted as owed"
            log_unnoted(logging.WARNING, "The live index took the edits it was given",
                        f"that no write is owed of {which}", refused,
                        "the next edit of each that changes nothing writes it again.")

    def restore_pinning(self, service_id: str) -> Restore | None:
        """The maintainer's restore that keeps the service shown (its overlay holds `status: active`), if any."""
        entry = self.get(service_id)
        if entry is None or entry.created or entry.fields.get("status") != "active":
            return None
        rows = self.audit.last_change_setting("service", service_id, "status", "active")
        return Restore.of((rows[0].actor, rows[0].at) if rows else None, entry.updated_at)

    def questioned(self, service_id: str, record: Mapping[str, Any], fields: Sequence[str]) -> list[Questioned]:
        """Of `fields`, which the source just changed in `record` (Service JSON), those a maintainer's edit
        keeps at another value."""
        entry = self.get(service_id)
        if entry is None or entry.created:
            return []
        return [Questioned(f, entry.fields[f], record.get(f)) for f in fields
                if f in entry.fields and entry.fields[f] != record.get(f)]

    def open_questions(self, service_id: str) -> list[AuditEntry]:
        """The latest `questioned` row of each field a maintainer has not answered since (by changing the field
        again, or keeping the edit)."""
        return self.open_questions_of([service_id])[service_id]

    def open_questions_of(self, service_ids: Sequence[str]) -> dict[str, list[AuditEntry]]:
        """`open_questions` of each service, from one read of the audit log."""
        latest: dict[str, dict[str, AuditEntry]] = {service_id: {} for service_id in service_ids}
        for entry in self.audit.of_resources("service", service_ids):
            fields = latest[entry.resource_id]
            if entry.action == QUESTIONED:
                fields[entry.field] = entry
            elif entry.field in fields and entry.old != entry.new:
                # a change of the field, or the edit kept (not a need list laid as it stands beside the other's edit)
                del fields[entry.field]
        return {service_id: sorted(fields.values(), key=lambda e: e.id) for service_id, fields in latest.items()}

    def questioned_services(self, *, limit: int) -> list[str]:
        """The services with an open question (`open_questions`), the latest questioned first."""
        with self.database.connect() as conn:
            rows = conn.execute(
                "SELECT a.resource_id, max(a.id) AS last FROM audit a WHERE a.action = ? AND a.resource_type = "
                "'service' AND NOT EXISTS (SELECT 1 FROM audit b WHERE b.resource_id = a.resource_id AND b.id > a.id "
                "AND b.resource_type = 'service' AND b.field = a.field AND b.action <> ? AND b.old <> b.new) "
                "GROUP BY a.resource_id ORDER BY last DESC LIMIT ?", (QUESTIONED, QUESTIONED, limit)).fetchall()
        return [row[0] for row in rows]

    @staticmethod
    def yield_fields(conn: Connection, service_id: str, fields: Sequence[str], revision: int) -> None:
        """Take `fields` out of the service's overlay row inside the caller's transaction (a sync's, whose
        newer word they were), at the audit id `revision`; a row left with no field goes."""
        row = conn.execute("SELECT fields FROM overlay WHERE service_id = ?", (service_id,)).fetchone()
        if row is None:
            return
        kept = {k: v for k, v in json.loads(row[0]).items() if k not in fields}
        if kept:
            conn.execute("UPDATE overlay SET fields = ?, revision = ?, updated_at = ? WHERE service_id = ?",
                         (json.dumps(kept, sort_keys=True), revision, now(), service_id))
        else:
            conn.execute("DELETE FROM overlay WHERE service_id = ?", (service_id,))


def unpin_restores(conn: Connection, _policy: object = None) -> None:
    """Migration 13: a store where a maintainer's restore still pins a service its source retired later, as
    rehabmap did before a source's later retirement took the restore back: the overlay holds `status: active`,
    the audit log's latest status row is the sync's retirement, and the source's record is retired. Each is
    retired now as that sync would now retire it (the same audit rows and `maintainer_restore_superseded`, the
    overlay's status taken back, and the record due to the live index at its next catch-up), its report line
    logged in the sync report's words. Nothing else is touched; a store with none is not written, and running it
    again finds none."""
    overlay = conn.execute("SELECT service_id, fields, updated_at FROM overlay WHERE created = 0").fetchall()
    for service_id, fields, updated_at in overlay:
        if json.loads(fields).get("status") != "active":
            continue
        status = conn.execute("SELECT id, action, actor, new FROM audit WHERE resource_type = 'service' AND "
                              "resource_id = ? AND field = 'status' ORDER BY id DESC LIMIT 1", (service_id,)).fetchone()
        record = conn.execute("SELECT retired_reason, retired_at, service FROM sync_records WHERE service_id = ? AND "
                              "status = 'retired' ORDER BY changed_at DESC LIMIT 1", (service_id,)).fetchone()
        if status is None or record is None or status[1] != "retire" or json.loads(status[3]) != "inactive":
            continue
        restored = conn.execute("SELECT actor, at FROM audit WHERE resource_type = 'service' AND resource_id = ? AND "
                                "field = 'status' AND new = ? AND id < ? ORDER BY id DESC LIMIT 1",
                                (service_id, json.dumps("active"), status[0])).fetchone()
        restore = Restore.of(tuple(restored) if restored else None, updated_at)
        reason, on, name = record[0], record[1], json.loads(record[2] or "{}").get("name", "")
        revision = AuditLog.append(conn, f"{status[2]} (applied on upgrade, migration 13)", "retire", "service",
                                   service_id, (Change("status", "active", "inactive"),
                                                Change("retired_reason", None, reason), restore.change()), now())
        Overlay.yield_fields(conn, service_id, ("status",), revision)
        conn.execute(f"UPDATE sync_records SET {NEXT_LIVE_REVISION} "
                     "WHERE service_id = ? AND status = 'retired'", (service_id,))
        log.warning("retired %s: %s (on %s); %s", " ".join(filter(None, (service_id, name))), reason, on, restore)


def unlay_readings(conn: Connection, _policy: object = None) -> None:
    """Migration 16: an edit made before what rehabmap read was kept apart from a maintainer's word (session 17's
    PATCH, or its form) laid the read fields (`READ_FIELDS`) as it found them after the edit, usually emptied by
    the need it stated: laid over every later import, they pinned the record's reading for good, so a source's new
    words were never read again, nor an unstated need read back. They are taken out of each edited service's
    overlay row, each with an audit row (`tidy`: old, the value it laid; new, none), and its synced record is due
    to the live index at the next catch-up, read afresh. Nothing else is touched; running it again finds none."""
    rows = conn.execute("SELECT service_id, fields FROM overlay WHERE created = 0 ORDER BY service_id").fetchall()
    for service_id, stored in rows:
        laid = json.loads(stored)
        read = {name: laid[name] for name in READ_FIELDS if name in laid}
        if not read:
            continue
        revision = AuditLog.append(conn, "rehabmap (applied on upgrade, migration 16)", TIDIED, "service", service_id,
                                   [Change(name, value, None) for name, value in read.items()], now())
        Overlay.yield_fields(conn, service_id, tuple(read), revision)
        conn.execute(f"UPDATE sync_records SET {NEXT_LIVE_REVISION} "
                     "WHERE service_id = ?", (service_id,))
        log.warning("%s: took %s out of its maintainers' edits (what rehabmap read, never theirs to keep)",
                    service_id, ", ".join(read))


def list_sources_word_due(conn: Connection, _policy: object = None) -> None:
    """Migration 21: a record a maintainer edited before the source's word was kept apart (its needs lists or its
    gender, before session 25) says the team's gender as "added" where they changed the source's, a gender they
    cleared as plain "not stated", and the needs they added as the source's, until a rebuild or a sync lays the edit
    over the source's record afresh. Now, on the upgrade:

    - a synced record (the store keeps its source's record) is due to the live index at the next catch-up (every
      server start, and every sync), which lays the edit over that record afresh: the source's word exactly;
    - a file's record (`rehabmap index`: no copy of the source's record outside the index) gets the source's word
      from the audit log: the value each field showed before the team's first edit of it (its first row's `old`),
      listed in `meta` (`SOURCES_WORD_DUE`) for the next start to lay where the live record keeps none
      (`Editor.reconcile`, which holds the index; a store migration does not), unless a rebuild first lays every
      edit afresh over the source's record (`OverlayWriter`, which drops the list).

    Only the services whose edits lay the gender or the needs lists are touched; nothing is audited (no word of
    anyone's changes: the record keeps what the audit log holds). Run again, it lists the same values."""
    due: dict[str, dict[str, Any]] = {}
    rows = conn.execute("SELECT service_id, fields FROM overlay WHERE created = 0 ORDER BY service_id").fetchall()
    for service_id, stored in rows:
        laid = [name for name in _KEPT_APART if name in json.loads(stored)]
        if not laid:
            continue
        if conn.execute("SELECT 1 FROM sync_records WHERE service_id = ? LIMIT 1", (service_id,)).fetchone():
            conn.execute(f"UPDATE sync_records SET {NEXT_LIVE_REVISION} "
                         "WHERE service_id = ?", (service_id,))
            continue
        first: dict[str, Any] = {}
        for name, old in conn.execute(
                "SELECT field, old FROM audit WHERE resource_type = 'service' AND resource_id = ? AND action <> ? "
                f"AND field IN ({', '.join('?' * len(laid))}) ORDER BY id", (service_id, QUESTIONED, *laid)).fetchall():
            first.setdefault(name, json.loads(old) if old is not None else None)
        if said := {name: value for name, value in first.items() if value is not None}:
            due[service_id] = said
    if due:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                     "value = excluded.value", (SOURCES_WORD_DUE, json.dumps(due, sort_keys=True)))


def log_unnoted(level: int, happened: str, noting: str, refused: Exception, then: str) -> None:
    """The store failing to note what a write to the live index did (`Overlay.owe_write`, `writes_paid`), logged, not
    raised: the answer is the index's. A failure of the machine's or its database's (`machines_words`: a disk full, a
    database gone) is the operator's, at `level`; any other is a fault of rehabmap's own, logged with its traceback
    for a person to report. Before, every failure, a bug in rehabmap's own code too, was worded as the store's."""
    if machines_words(refused) is not None:
        log.log(level, "%s, and the directory's store could not note %s (%s: %s): %s", happened, noting,
                type(refused).__name__, refused, then)
    else:
        log.exception("%s, and noting %s failed on a fault of rehabmap's own, not of the machine or its database (%s: "
                      "%s): report it, with the traceback below. %s", happened, noting, type(refused).__name__, refused,
                      then[:1].upper() + then[1:])
