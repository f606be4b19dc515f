"""The curated tables maintainers tried to add, as the audit log records them: one `upload` (added) or
`upload_refused` (with the reason) of a `curated_table` per confirm, one audit row a field. Gathered back
into one line per upload for the upload page, so who tried which table, and why it did not land, is seen
where tables are uploaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rehabmap.maintain.audit import AuditEntry

TABLE = "curated_table"
ADDED = "upload"
REFUSED = "upload_refused"
LIMIT = 200  # the latest audit rows read: some fifty uploads, as many as the page need show


@dataclass
class PastUpload:
    at: str
    actor: str
    action: str
    table: str
    fields: dict[str, Any] = field(default_factory=dict)


def uploads_in(entries: Sequence[AuditEntry]) -> list[PastUpload]:
    """The audit rows of curated tables, one `PastUpload` per confirm, in the rows' order (a confirm's rows
    share the moment, the actor, the action and the table, being written in one transaction)."""
    uploads: list[PastUpload] = []
    for entry in entries:
        last = uploads[-1] if uploads else None
        if last is None or (last.at, last.actor, last.action, last.table) != (entry.at, entry.actor, entry.action,
                                                                               entry.resource_id):
            last = PastUpload(entry.at, entry.actor, entry.action, entry.resource_id)
            uploads.append(last)
        last.fields[entry.field] = entry.new
    return uploads
