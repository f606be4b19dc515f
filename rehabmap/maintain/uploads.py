"""The curated tables maintainers tried to add, as the audit log records them: one `upload` (added) or
`upload_refused` (with the reason) of a `curated_table` per confirm, one audit row a field, the rows of one
confirm sharing its change id. Gathered back into one line per upload for the upload page, so who tried which
table, and why it did not land, is seen where tables are uploaded. The page reads the latest rows only, and a
confirm's rows can straddle that limit: the line they would make is left out rather than shown without its
reason or a count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rehabmap.maintain.audit import AuditEntry, AuditLog

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


def taking_out(audit: AuditLog, service_id: str) -> list[AuditEntry]:
    """The rows of the uploads that took this service out of the directory (an added table that does not list it,
    replacing one that did), oldest first: the service's own history, though the audit files them under the table.
    Read by the field, then matched by id here: uploads are few (the latest `LIMIT` are read, one row each), and the
    row's list is JSON, no column to match."""
    entries, _ = audit.entries(resource_type=TABLE, field=REMOVED_SERVICES, limit=LIMIT, newest_first=True)
    return [e for e in reversed(entries)
            if e.action == ADDED and any(s.get("id") == service_id for s in e.new or ())]
