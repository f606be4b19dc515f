"""What a full rebuild (`rehabmap index SOURCES...`) takes from the directory besides its source files.

* The synced records, as they are shown (confirmed by their source or accepted in review; retired ones as
  inactive), so a rebuild never forgets them. Held and rejected records stay out, as they do in the live
  index. They go through the same pipeline as the files' rows (placed, validated, merged with duplicates from
  the files), ahead of them, so a synced record is the base a file's older copy of it is merged into.
* The coverage of the verified curated tables among the sources (`indexer.sources.curated.table_claims`):
  they replace those of the previous rebuild, since a table left out of this one leaves the index with it.
  They are recorded only once the new index is live (`record_curated_coverage`), so a refused import leaves
  the coverage of the index still served.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from indexer.rows import Candidate, Rejection, Row
from indexer.sources import source_names
from indexer.sources.curated import table_claims
from indexer.sync.codec import fetched_at_of, item_from_json
from indexer.sync.publish import shown
from indexer.sync.store import SyncStore
from rehabmap.coverage import CURATED, CoverageStore
from rehabmap.maintain.database import Database
from rehabmap.maintain.migrations import exists


def with_directory(store: Path | Database, sources: Sequence[Path], rows: Iterable[Row], *,
                   live_built_at: datetime | None = None) -> Iterator[Row]:
    """A rebuild's rows: the synced records, then the source files' rows. `live_built_at`: when the index it is to
    replace was built (`indexer.sync.live.built_at`; None: there is none)."""
    yield from synced_rows(store, live_built_at=live_built_at)
    yield from rows


def record_curated_coverage(store: Path | Database, sources: Sequence[Path],
                            rejected: Iterable[tuple[str, int]] = ()) -> None:
    """After a rebuild went live: the coverage its verified curated tables claim replaces the previous one's.
    `rejected`: the rows the build rejected, by file (as the build named the same sources: `source_names`) and line;
    a curated table's row among them covers nothing (`table_claims`)."""
    lines: dict[str, set[int]] = {}
    for file, line in rejected:
        lines.setdefault(file, set()).add(line)
    claims = table_claims(sources, {path: lines.get(name, set()) for path, name in source_names(sources).items()})
    if claims or exists(store):
        CoverageStore(store).replace(CURATED, claims, prefix=True)


def synced_rows(store_at: Path | Database, *, live_built_at: datetime | None = None
                ) -> Iterator[Candidate | Rejection]:
    """The synced records a rebuild includes, read when the rebuild reaches them. The read is noted
    (`SyncStore.read_for_rebuild`), so the next sync can write again whatever it changed after this read (the
    rebuild's swap would undo it), finding the records the rebuild's index merged with it; an earlier rebuild's
    note, where the index this one replaces was built at `live_built_at` (None: none, a first build) by it, is taken
    first. The rebuild asks it before it begins anything (`app.rebuild`): a live index that cannot say refuses the
    rebuild there, with nothing begun; asked here, in the build, it left the rebuild's note said "under way"."""
    store = SyncStore.existing(store_at)
    if store is None:
        return
    read_at = datetime.now(timezone.utc).isoformat()  # to the microsecond: the index's build time is compared
    records = store.read_for_rebuild(read_at, live_built_at=live_built_at)
    reviews = {r.key: r for r in store.reviews()}
    for record in records:
        service = shown(record, reviews.get(record.key))
        if service is None:
            continue
        origin = item_from_json(record.item).candidate.origin
        yield Candidate(service, replace(origin, fetched_at=fetched_at_of(service) or origin.fetched_at), synced=True)
