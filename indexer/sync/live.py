"""Synced records into the live index, one record at a time, with the maintainers' edits laid on top.

A sync or a review decision writes the records whose shown version changed (`RecordWriter.upsert` with the
whole record), under the directory's index lock so that a rebuild's swap never loses them half way. Where
the maintainers' overlay holds edits to a record, they are laid over what the source now says: edits win.
A record that should no longer be shown is made inactive, never deleted. With no index yet, the first sync
builds one from the directory (synced records and the maintainers' own services).
"""

from __future__ import annotations

import logging
from datetime import datetime
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from indexer.precedence import PrecedenceInvalid, source_precedence
from indexer.sync.publish import publish_coverage, record_pending, shown_merged
from indexer.sync.steps import reached
from indexer.sync.store import LIVE_PUBLISHED, REBUILD_READ, SyncStore, swapped_in
from rehabmap.maintain.store import Directory
from rehabmap import errors
from rehabmap.errors import DomainError, IndexNotBuilt, Remedy
from rehabmap.index.base import IndexBackend, overlay_record
from rehabmap.record import Service

if TYPE_CHECKING:
    from indexer.pipeline import IndexReport
    from rehabmap.index.base import LiveWriter

log = logging.getLogger(__name__)


def built_at(backend: IndexBackend) -> datetime | None:
    """When the live index was built; None where there is none. One that cannot say (it did not answer, 503, or
    refused the read, a 4xx) raises: that is no answer, not "no build". Before, it was taken for none, and a rebuild
    whose read of the store met it replaced the note of an earlier rebuild whose index was live, untaken
    (`SyncStore.read_for_rebuild`): refused after, it hid that swap from the next live write."""
    try:
        return backend.info().built_at
    except IndexNotBuilt:
        return None


def take_rebuild(store: SyncStore, backend: IndexBackend) -> None:
    """Where a rebuild (or a first build) that read the store has swapped in its index since (`backend`'s), the store
    learns it (`SyncStore.rebuild_taken`): the index holds the records as it read them, at its revision and under
    their keys then, whatever a live write between its read and its swap wrote. Under the index lock: by every live
    write before it writes, and by the rebuild itself once its index is live (`app.rebuild`), so that what the store
    says is behind (`indexer.sync.status.not_live`) is so from the swap on, not from the next live write. An index
    that cannot say when it was built leaves the note to the next of them: the rebuild's own index is live by then,
    and its upload, or its command, is not to fail for the store's learning it later. It is logged (WARNING, once a
    minute at most): until it is taken, the next sync writes again what it changed since that rebuild read the store,
    and a live index that never answers leaves it so; before, nothing was said."""
    read = store.meta(REBUILD_READ)
    if read is None:
        return
    try:
        live_at = built_at(backend)
    except DomainError as exc:
        errors.operator_log.tell(f"the live index could not say when it was built ({errors.for_operator(exc)}): "
                                 "whether the last rebuild's index went live is left to the next live write (a sync, "
                                 "a review decision, a server's start or look); if the search index stays "
                                 "unavailable, mend it", logging.WARNING)
        return
    if swapped_in(read, live_at):
        store.rebuild_taken(read)


class NotYetShown(DomainError):
    """What the store committed (a sync's run, review decisions: `stored`, each saying "… stored") whose live write
    was then refused (`refused`, a `PrecedenceInvalid`: a mapping's `supersedes` put wrong): stored, and not yet
    shown. Nothing is to be done again but mend the mapping: the live index follows by itself once it is put right,
    at the next live write (a sync's, a decision's, the server's start or its own catch-up, `app.converge`). The one
    home of these words; its `where` is the refusal's (the mapping file), for the operator's console and log; its
    remedy (`Remedy.MAPPING`) each face words for itself (the keepers' pages: whoever runs the syncs must put the
    mapping right)."""

    status = 503
    code = "not_yet_shown"

    def __init__(self, stored: str, refused: PrecedenceInvalid) -> None:
        super().__init__(f"{stored}, but not yet shown in searches: {refused.message}. The live index follows once "
                         "that is put right, at the next sync, review decision or server start.", where=refused.where,
                         remedy=Remedy.MAPPING)
        self.refused = refused


# What is stored and not yet shown, as each refusal says it (`NotYetShown`'s `stored`): a catch-up's, of what earlier
# runs and decisions left unwritten (a server's, a run's start, a stopped run's end), and a status's count.
EARLIER_STORED = "what earlier runs and review decisions applied is stored"


def applied_stored(count: int, *, in_all: bool = False) -> str:
    """`count` applied changes, stored: what a status says is held back; `in_all`, said as the whole store's, where a
    page says it after one decision or upload, so that no keeper reads them as that one's alone."""
    return f"{'In all, ' if in_all else ''}{count} applied {'change is' if count == 1 else 'changes are'} stored"


class LiveIndex:
    """The live index as a sync sees it: read one record, write changed records, or build it whole."""

    def __init__(self, backend: IndexBackend, writer: LiveWriter, directory: Directory,
                 build: Callable[[], IndexReport]) -> None:
        self.backend = backend
        self.writer = writer
        self.directory = directory
        self._build = build
        # Whether the last write found no index and left its first build to another process holding the rebuild lock
        # (`_first_build`): then it wrote nothing, which is no failure to write, and a run's report says so.
        self.left_to_another_build = False

    def converge(self, store: SyncStore) -> int:
        """Bring the live index and the coverage claims up to what the store holds: the last step of a sync and
        of a review decision, and the first of the next one and of every server start, in case a crash came
        after the store's commit (see `indexer.sync.steps`). The index first, then the claims a run left due
        (`publish.publish_coverage`), so that no search reads a claim the index does not yet bear out; then the
        candidates awaiting review. Each part is safe to repeat. Returns how many records were written. The claims
        wait where the first build was left to another process (`left_to_another_build`), which may have read the
        store before the run they are of committed: the first live write after its swap makes them (before, they
        were made at once, a page saying "none found, and CQC covers this area" beside an index without CQC's)."""
        written = self.catch_up(store)
        if not self.left_to_another_build:
            publish_coverage(store)
        record_pending(store)
        return written

    def follow(self, store: SyncStore, unshown: Callable[[PrecedenceInvalid], NotYetShown]) -> int:
        """`converge` after a commit (a sync's run, a review decision): a refusal of the live write, which cannot
        undo what was committed, raised as what that commit makes of it (`unshown`, a `NotYetShown`), so that no
        one reads a stored run or decision as refused. Returns how many records were written."""
        try:
            return self.converge(store)
        except PrecedenceInvalid as refused:
            raise unshown(refused) from None

    def catch_up(self, store: SyncStore) -> int:
        """Write every synced record whose shown version changed since it was last written here: after a sync
        or a review decision, and again later if a crash came in between, or a rebuild that read the store
        earlier swapped in an index without it. The store is read under the index lock, so that two writers
        (a sync, and a server starting or deciding a review) cannot write an older version over a newer one.
        Returns how many were written."""
        self.left_to_another_build = False
        if not self.exists():
            return self._first_build(store)
        with self.directory.index_lock():
            take_rebuild(store, self.backend)
            published = int(store.meta(LIVE_PUBLISHED) or 0)
            records = store.changed_since(published)
            written: list[str] = []
            if records:
                written = self._write(shown_merged(store, records, source_precedence()))  # as a rebuild reads it
                store.set_published_keys(records)
                reached("index-written")
                store.set_meta(LIVE_PUBLISHED, str(max(published, *(r.live_revision for r in records))))
        return len(written)

    def _first_build(self, store: SyncStore) -> int:
        """No index yet: build it from the directory, once the store holds something to show. A first build is a
        rebuild, and takes the rebuild lock (`Directory.rebuild_lock`): two processes that each found no index
        built one each, and the one swapped in last, with the revision it noted, could leave out what the other
        wrote. Where another process holds it (its own first build, or `rehabmap index`), nothing is built here:
        that build reads the store itself and notes its read, and the first live write after its swap (the
        server's, the next sync's or decision's) writes what changed after it; where it has built one by the time
        the lock is taken, this writes to it."""
        with self.directory.rebuild_lock() as ours:
            if ours and not self.exists():
                revision = store.live_revision()
                if revision == 0:
                    return 0
                report = self._build()
                store.set_meta(LIVE_PUBLISHED, str(revision))
                return report.indexed
        if self.exists():
            return self.catch_up(store)
        self.left_to_another_build = not ours
        return 0

    def exists(self) -> bool:
        return self.backend.built()

    def _write(self, shown: Mapping[str, dict[str, Any] | None]) -> list[str]:
        """Per service id, the record to show (None: not to show), under the index lock. Returns the ids
        written. A record written with the maintainers' edits laid on it pays any write of them owed
        (`Overlay.writes_paid`): before, the next edit that changed nothing wrote it again."""
        changes: dict[str, dict[str, Any]] = {}
        overlaid: set[str] = set()
        for service_id, record in shown.items():
            laid, with_edits = self._laid(service_id, record)
            if laid is not None:
                changes[service_id] = laid
            if with_edits:
                overlaid.add(service_id)
        written = sorted(s.id for s in self.writer.upsert(changes))
        self.directory.overlay.writes_paid(overlaid.intersection(written))
        return written

    def _laid(self, service_id: str, record: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
        """The whole record to write (None when nothing needs writing), and whether the maintainers' edits are laid
        on it (an edit that no longer fits the synced record is not, and its write stays owed)."""
        if record is None:
            current = self.backend.get(service_id)
            if current is None or current.status == "inactive":
                return None, False
            return {**current.model_dump(mode="json"), "status": "inactive"}, False
        entry = self.directory.overlay.get(service_id)
        if entry is None:
            return record, False
        try:
            laid = overlay_record(Service.stored(record), entry.fields).model_dump(mode="json")
        except (ValidationError, DomainError, ValueError) as exc:
            log.warning("directory edits to %s no longer fit the synced record and were not laid: %s",
                        service_id, type(exc).__name__)
            return record, False
        return laid, True
