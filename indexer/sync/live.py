"""Synced records into the live index, one record at a time, with the maintainers' edits laid on top.

A sync or a review decision writes the records whose shown version changed (`RecordWriter.upsert` with the
whole record), under the directory's index lock so that a rebuild's swap never loses them half way. Where
the maintainers' overlay holds edits to a record, they are laid over what the source now says: edits win.
A record that should no longer be shown is made inactive, never deleted. With no index yet, the first sync
builds one from the directory (synced records and the maintainers' own services).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from indexer.sync.publish import shown
from indexer.sync.store import SyncStore
from rehabmap.maintain.store import Directory
from rehabmap.errors import DomainError, IndexNotBuilt
from rehabmap.index.base import IndexBackend, overlay_record
from rehabmap.record import Service

if TYPE_CHECKING:
    from indexer.pipeline import IndexReport
    from rehabmap.index.base import LiveWriter

log = logging.getLogger(__name__)


class LiveIndex:
    """The live index as a sync sees it: read one record, write changed records, or build it whole."""

    def __init__(self, backend: IndexBackend, writer: LiveWriter, directory: Directory,
                 build: Callable[[], IndexReport]) -> None:
        self.backend = backend
        self.writer = writer
        self.directory = directory
        self._build = build

    def catch_up(self, store: SyncStore) -> int:
        """Write every synced record whose shown version changed since it was last written here: after a sync
        or a review decision, and again at the start of the next one if a crash came in between, or a
        rebuild that read the store earlier swapped in an index without it. Returns how many were written."""
        published = int(store.meta("live_revision_published") or 0)
        since, swapped = published, False
        marker = store.meta("rebuild_read")
        if marker is not None:
            read = json.loads(marker)
            built_at = self._built_at()
            swapped = built_at is not None and built_at >= datetime.fromisoformat(read["at"])
            if swapped:  # the rebuild read the store at `revision`; its swap undid any later write
                since = min(since, int(read["revision"]))
        records = store.changed_since(since)
        written: list[str] = []
        if records:
            reviews = {r.key: r for r in store.reviews(keys=[r.key for r in records])}
            written = self.publish({r.service_id: shown(r, reviews.get(r.key)) for r in records})
            store.set_meta("live_revision_published", str(max(published, *(r.live_revision for r in records))))
        if swapped:
            store.delete_meta("rebuild_read")
        return len(written)

    def _built_at(self) -> datetime | None:
        try:
            return self.backend.info().built_at
        except DomainError:
            return None

    def exists(self) -> bool:
        try:
            self.backend.info()
        except IndexNotBuilt:
            return False
        return True

    def publish(self, shown: Mapping[str, dict[str, Any] | None]) -> list[str]:
        """Per service id, the record to show (None: not to show). Returns the ids written. Builds the index
        from the directory instead when there is none yet."""
        if not shown:
            return []
        if not self.exists():
            self._build()
            return sorted(shown)
        with self.directory.index_lock():
            changes: dict[str, dict[str, Any]] = {}
            for service_id, record in shown.items():
                laid = self._laid(service_id, record)
                if laid is not None:
                    changes[service_id] = laid
            written = self.writer.upsert(changes)
        return sorted(s.id for s in written)

    def _laid(self, service_id: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
        """The whole record to write (the overlay laid on it), or None when nothing needs writing."""
        if record is None:
            current = self.backend.get(service_id)
            if current is None or current.status == "inactive":
                return None
            return {**current.model_dump(mode="json"), "status": "inactive"}
        entry = self.directory.overlay.get(service_id)
        if entry is None:
            return record
        try:
            return overlay_record(Service.model_validate(record), entry.fields).model_dump(mode="json")
        except (ValidationError, DomainError, ValueError) as exc:
            log.warning("directory edits to %s no longer fit the synced record and were not laid: %s",
                        service_id, type(exc).__name__)
            return record
