"""The audit log: one row per changed field (when, who, what, the old value and the new), append-only. The
rows of one change (an edit, a confirmed upload) share its `change_id`, so they are gathered back exactly,
never by their moment and subject alone (two changes of one subject may share a second). Rows written before
the audit log had it (migration 10) have none.

It records who changed the directory, never anything about a search. `hsds_metadata` gives a change to a
service as an HSDS 3.0 `metadata` row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from rehabmap.errors import InvalidValue
from rehabmap.maintain.database import Connection, Database, iso

# The actions of rows that record a source's word a maintainer's edit overrides (`rehabmap.maintain.overlay`), and
# a maintainer's answer, keeping the edit: nothing in the directory changed, so neither is HSDS metadata.
QUESTIONED = "questioned"
KEPT = "keep"
# An upgrade took out of the maintainers' edits what was never their word (`overlay.unlay_readings`): nothing shown
# changes until the record is read again.
TIDIED = "tidy"
# An upgrade prepared a synced record again from its source's item (`indexer.sync.runner.reprepare_due`) and found it
# newly usable, or no longer so: its `problem`, the store's word on the item, not a field the directory publishes.
PREPARED = "prepare"
# A maintainer's reason (a review's rejection, a retirement), as a person wrote it: kept in the audit log.
REASON_MAX = 500


@dataclass(frozen=True)
class Change:
    """One field's change. `mentions`: the services its row names beside its subject (an upload's row naming each
    service it took out), filed under each in `audit_mentions` so that a service's history finds the row by an
    index, never by reading every row of its kind."""

    field: str
    old: Any
    new: Any
    mentions: tuple[str, ...] = ()


def tidied_text(text: str) -> str:
    """A text a keeper types as it is kept and measured (a reason, an organisation's name, a token's label): its runs
    of spaces (and line breaks) made one, its ends trimmed. The one rule of the stores, the API, the command line and
    the keepers' pages, so that each counts it alike."""
    return " ".join(text.split())


def given_reason(text: str | None, *, where: str = "it is kept in the audit log") -> str:
    """A maintainer's reason `tidied_text`; a 400 naming `reason` when there is none, or it is too short to say
    anything or longer than a page shows. `where` says who reads it, so a person knows what to write."""
    reason = tidied_text(text or "")
    if not 3 <= len(reason) <= REASON_MAX:
        raise InvalidValue(f"Give a reason of 3 to {REASON_MAX} characters ({where}).", field="reason")
    return reason


@dataclass(frozen=True)
class AuditEntry:
    id: int
    uuid: str
    at: str
    actor: str
    action: str
    resource_type: str
    resource_id: str
    field: str
    old: Any
    new: Any
    change_id: str | None = None

    @property
    def day(self) -> date:
        """The day (UTC) it was made, for pages that say a date in words."""
        return date.fromisoformat(self.at[:10])


class AuditLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    @staticmethod
    def append(conn: Connection, actor: str, action: str, resource_type: str, resource_id: str,
               changes: Sequence[Change], at: str) -> int:
        """The rows of one change, inside the caller's transaction, under one new change id, each filed under the
        services it mentions; the id of the last row."""
        last = 0
        change_id = str(uuid.uuid4())
        for change in changes:
            last = int(conn.execute(
                "INSERT INTO audit (uuid, at, actor, action, resource_type, resource_id, field, old, new, change_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (str(uuid.uuid4()), at, actor, action, resource_type, resource_id, change.field,
                 json.dumps(change.old), json.dumps(change.new), change_id)).fetchone()[0])
            file_mentions(conn, last, change.mentions)
        return last

    def record(self, actor: str, action: str, resource_type: str, resource_id: str,
               changes: Sequence[Change]) -> int:
        """A change whose subject lives outside the store (an uploaded curated table: the index holds it), in
        a transaction of its own; the id of the last row."""
        with self.database.transaction() as conn:
            return self.append(conn, actor, action, resource_type, resource_id, changes,
                               iso(datetime.now(timezone.utc)))

    def entries(self, *, resource_id: str | None = None, resource_type: str | None = None, field: str | None = None,
                after_id: int = 0, limit: int = 100, newest_first: bool = False) -> tuple[list[AuditEntry], int]:
        """Entries oldest first, after `after_id` (a cursor), and how many match in all; `newest_first`: the
        latest `limit` of them, newest first (what a page of recent changes shows)."""
        where: list[str] = ["id > ?"]
        params: list[int | str] = [after_id]
        for column, value in (("resource_id", resource_id), ("resource_type", resource_type), ("field", field)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        clause = " AND ".join(where)
        with self.database.connect() as conn:
            total = conn.execute(f"SELECT count(*) FROM audit WHERE {clause}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM audit WHERE {clause} ORDER BY id {'DESC' if newest_first else ''} LIMIT ?",
                [*params, limit]).fetchall()
        entries = [_entry(*row) for row in rows]
        return entries, int(total)

    def of_resources(self, resource_type: str, resource_ids: Sequence[str]) -> list[AuditEntry]:
        """Every entry of these resources, oldest first, in one read (a page listing many: not one a resource)."""
        if not resource_ids:
            return []
        marks = ", ".join("?" * len(resource_ids))
        with self.database.connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM audit WHERE resource_type = ? AND resource_id IN ({marks}) ORDER BY id",
                (resource_type, *resource_ids)).fetchall()
        return [_entry(*row) for row in rows]

    def mentioning(self, service_id: str) -> list[AuditEntry]:
        """Every row that mentions this service beside its subject (`Change.mentions`), oldest first, found on
        `audit_mentions`' key."""
        with self.database.connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_mentions JOIN audit ON id = audit_id "
                                "WHERE service_id = ? ORDER BY id", (service_id,)).fetchall()
        return [_entry(*row) for row in rows]

    def last_change_setting(self, resource_type: str, resource_id: str, field: str, value: Any) -> list[AuditEntry]:
        """Every row of the latest change that set the resource's `field` to `value` (what else that change
        said: a retirement's reason, say), or [] when none did. A row written before change ids (migration 10)
        comes alone."""
        with self.database.connect() as conn:
            found = conn.execute(
                "SELECT id, change_id FROM audit WHERE resource_id = ? AND resource_type = ? AND field = ? "
                "AND new = ? ORDER BY id DESC LIMIT 1", (resource_id, resource_type, field, json.dumps(value))
            ).fetchone()
            if found is None:
                return []
            where, param = ("change_id = ?", found[1]) if found[1] is not None else ("id = ?", found[0])
            rows = conn.execute(f"SELECT {_COLUMNS} FROM audit WHERE {where} ORDER BY id", (param,)).fetchall()
        return [_entry(*row) for row in rows]


_COLUMNS = "id, uuid, at, actor, action, resource_type, resource_id, field, old, new, change_id"  # `_entry`'s


def _entry(entry_id: int, entry_uuid: str, at: str, actor: str, action: str, resource_type: str, resource_id: str,
           field: str, old: str | None, new: str | None, change_id: str | None) -> AuditEntry:
    return AuditEntry(entry_id, entry_uuid, at, actor, action, resource_type, resource_id, field,
                      json.loads(old) if old is not None else None, json.loads(new) if new is not None else None,
                      change_id)


# Migration 27: the services each audit row mentions beside its subject (`Change.mentions`), keyed by service. No
# foreign key: each is written with its row (`append`), and on PostgreSQL checking one locks the row, which the audit
# log's revoked privileges refuse. Append-only, as the audit log is (`database.APPEND_ONLY_TABLES`).
MENTIONS_TABLE = ("CREATE TABLE IF NOT EXISTS audit_mentions (service_id TEXT NOT NULL, audit_id BIGINT NOT NULL, "
                  "PRIMARY KEY (service_id, audit_id))")


def file_mentions(conn: Connection, audit_id: int, service_ids: Sequence[str]) -> None:
    """The row `audit_id` filed under each of these services (each once), inside the caller's transaction."""
    if service_ids:
        conn.executemany("INSERT INTO audit_mentions (service_id, audit_id) VALUES (?, ?)",
                         [(service_id, audit_id) for service_id in dict.fromkeys(service_ids)])


def add_change_ids(conn: Connection, _policy: object = None) -> None:
    """Migration 10 of an SQLite store: the audit log's `change_id` column, unless there already. Migration 2
    adds it first when it has tokens to audit, since it writes audit rows as this rehabmap writes them."""
    if "change_id" not in {row[1] for row in conn.execute("PRAGMA table_info(audit)")}:
        conn.execute("ALTER TABLE audit ADD COLUMN change_id TEXT")


def hsds_metadata(entry: AuditEntry) -> dict[str, Any] | None:
    """The entry as an HSDS 3.0 `metadata` row, for changes to services (the HSDS resources rehabmap
    publishes); `resource_id` is the service's id in the Open Referral feed. None for other entries."""
    from rehabmap.oruk import service_uuid

    if (entry.resource_type != "service" or entry.action in (QUESTIONED, KEPT, TIDIED, PREPARED)
            or entry.old == entry.new):
        return None  # not a change of what is shown (a need list laid as it stands beside the other's edit)
    return {
        "id": entry.uuid, "resource_id": service_uuid(entry.resource_id), "resource_type": "service",
        "last_action_date": entry.at[:10], "last_action_type": entry.action, "field_name": entry.field,
        "previous_value": _hsds_value(entry.old), "replacement_value": _hsds_value(entry.new),
        "updated_by": entry.actor,
    }


def hsds_rows(entries: Iterable[AuditEntry]) -> list[dict[str, Any]]:
    """The entries that are changes to services, as HSDS `metadata` rows: the others are left out, never said as
    an empty row."""
    return [row for row in map(hsds_metadata, entries) if row is not None]


def _hsds_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
