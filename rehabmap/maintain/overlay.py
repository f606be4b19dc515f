"""The edits overlay: per edited service, the fields changed here and their values (for a service made
here, the whole record), laid over every rebuild (`rehabmap.maintain.edits.OverlayWriter`). One change is one
transaction: its audit rows and its overlay row commit together or not at all."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rehabmap.maintain.audit import AuditLog, Change
from rehabmap.maintain.database import Database, now


@dataclass(frozen=True)
class OverlayEntry:
    service_id: str
    fields: dict[str, Any]
    created: bool
    revision: int  # the audit id of the latest change
    updated_at: str


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

    def get(self, service_id: str) -> OverlayEntry | None:
        with self.database.connect() as conn:
            row = conn.execute("SELECT service_id, fields, created, revision, updated_at FROM overlay "
                               "WHERE service_id = ?", (service_id,)).fetchone()
        return OverlayEntry(row[0], json.loads(row[1]), bool(row[2]), row[3], row[4]) if row else None
