"""The curated tables maintainers tried to add, as the audit log records them: one `upload` (added) or
`upload_refused` (with the reason) of a `curated_table` per confirm, one audit row a field, the rows of one
confirm sharing its change id. Gathered back into one line per upload for the upload page, so who tried which
table, and why it did not land, is seen where tables are uploaded. The page reads the latest rows only, and a
confirm's rows can straddle that limit: the line they would make is left out rather than shown without its
reason or a count."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rehabmap.maintain.audit import MENTIONS_TABLE, AuditEntry, AuditLog, Change, file_mentions
from rehabmap.maintain.database import Connection

TABLE = "curated_table"
ADDED = "upload"
REFUSED = "upload_refused"
REMOVED_SERVICES = "removed_services"  # an added upload's row: each service it took out, by id and name
LIMIT = 400  # the latest audit rows read: some fifty uploads (one added is eight rows), as many as the page shows


@dataclass
class PastUpload:
    at: str
    actor: str
    action: str
    table: str
    fields: dict[str, Any] = field(default_factory=dict)


def uploads_in(entries: Sequence[AuditEntry]) -> list[PastUpload]:
    """The audit rows of curated tables, one `PastUpload` per confirm, in the rows' order: a confirm's rows
    share its change id. Rows from before change ids (migration 10) are gathered by what a confirm's rows
    share besides, the moment, the actor, the action and the table, which two confirms within a second
    also share."""
    uploads: list[PastUpload] = []
    keys: list[tuple[str | None, ...]] = []
    for entry in entries:
        key = (entry.change_id,) if entry.change_id else (None, entry.at, entry.actor, entry.action, entry.resource_id)
        if not keys or keys[-1] != key:
            uploads.append(PastUpload(entry.at, entry.actor, entry.action, entry.resource_id))
            keys.append(key)
        uploads[-1].fields[entry.field] = entry.new
    return uploads


def recent_uploads(audit: AuditLog) -> list[PastUpload]:
    """The latest uploads, newest first, each whole: one row past `LIMIT` is read, and the upload it belongs to
    is left out, since its older rows may lie beyond what was read (every upload before it ends with a row
    read, followed by another upload's)."""
    entries, _ = audit.entries(resource_type=TABLE, limit=LIMIT + 1, newest_first=True)
    uploads = uploads_in(entries)
    return uploads[:-1] if len(entries) > LIMIT else uploads


def removed_services(services: Sequence[tuple[str, str]]) -> Change:
    """An added upload's row naming each service it took out (its id and name), mentioning each
    (`Change.mentions`), so that each service's history finds it however many uploads came after."""
    return Change(REMOVED_SERVICES, None, [{"id": service_id, "name": name} for service_id, name in services],
                  mentions=tuple(service_id for service_id, _ in services))


def taking_out(audit: AuditLog, service_id: str) -> list[AuditEntry]:
    """The rows of the uploads that took this service out of the directory (an added table that does not list it,
    replacing one that did), oldest first: the service's own history, though the audit files them under the table.
    Found by the service's id among the rows' mentions, exactly: before, the latest `LIMIT` uploads were read and
    an older one that took the service out fell out of its history."""
    return [e for e in audit.mentioning(service_id)
            if (e.action, e.resource_type, e.field) == (ADDED, TABLE, REMOVED_SERVICES)]


def mention_taken_out(conn: Connection, _policy: object = None) -> None:
    """Migration 27: the mentions' table, and in it each service the uploads added before it took out, read from
    their `REMOVED_SERVICES` rows (the only rows that name services beside their subject)."""
    conn.execute(MENTIONS_TABLE)
    rows = conn.execute("SELECT id, new FROM audit WHERE resource_type = ? AND field = ? AND action = ?",
                        (TABLE, REMOVED_SERVICES, ADDED)).fetchall()
    for audit_id, new in rows:
        file_mentions(conn, int(audit_id), [str(s["id"]) for s in json.loads(new or "null") or ()])
