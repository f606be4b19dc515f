"""What a full rebuild (`rehabmap index SOURCES...`) takes from the directory besides its source files: the
synced records, as they are shown (confirmed by their source or accepted in review; retired ones as
inactive), so a rebuild never forgets them. Held and rejected records stay out, as they do in the live index.

They go through the same pipeline as the files' rows (placed, validated, merged with duplicates from the
files), ahead of them, so a synced record is the base a file's older copy of it is merged into.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from indexer.rows import Candidate, Rejection
from indexer.sync.codec import item_from_json
from indexer.sync.publish import shown
from indexer.sync.store import SyncStore, now


def synced_rows(directory_path: Path) -> Iterator[Candidate | Rejection]:
    """The synced records a rebuild includes, read when the rebuild reaches them. Notes the store's revision
    then, so the next sync can write again whatever it changed after this read (the rebuild's swap would
    undo it)."""
    store = SyncStore.existing(directory_path)
    if store is None:
        return
    store.set_meta("rebuild_read", json.dumps({"revision": store.live_revision(), "at": now()}))
    reviews = {r.key: r for r in store.reviews()}
    for record in store.records():
        service = shown(record, reviews.get(record.key))
        if service is None:
            continue
        origin = item_from_json(record.item).candidate.origin
        provenance = (service.get("provenance") or [{}])[0]
        fetched = provenance.get("fetched_at")
        yield Candidate(service, replace(origin, fetched_at=datetime.fromisoformat(fetched) if fetched else
                                         origin.fetched_at))
