"""Where a link to an id the directory no longer lists under it is sent: one rule for the API's record, the
public service page and the shortlist, so that a bookmark, a shared shortlist or an API client's stored id reaches
the service whichever face it was made on.

Two kinds of move: an id renamed (`rehabmap.maintain.renames`) is gone for good, so each face sends it on
permanently; a synced record merged into another (the same service from another source: `merged_into`) is sent on
for as long as the two are one record, as they part again when one moves or is renamed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from indexer.sync.publish import merged_into
from indexer.sync.store import SyncStore
from rehabmap.errors import DomainError
from rehabmap.maintain.renames import renamed_to
from rehabmap.record import Service

if TYPE_CHECKING:
    from rehabmap.state import AppState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    service_id: str  # the id it is listed under now
    for_good: bool   # renamed (a permanent redirect), not merged (a temporary one)


def moved(state: AppState, service_id: str, found: Service | None) -> Moved | None:
    """Where `service_id`, looked up in the live index and `found` (or not), is listed now, or None: listed under
    it, or never known. Only an id the index holds no record by, or an inactive one, is looked for (a live write
    leaves an id merged away inactive; a rebuild leaves it out). The lookup reads the server's own maintainers'
    store, opened at its start: a server without one (a home it cannot write) looks for nothing, rather than open
    a store on each request, and a store that does not answer (a PostgreSQL server down) leaves the answer as it
    was (a 404, or the record as inactive), the public faces never failing for the maintainers' store."""
    if state.directory is None or (found is not None and found.status != "inactive"):
        return None
    try:
        kept = merged_into(SyncStore.served(state), service_id)
        if kept is not None:
            return Moved(kept, for_good=False)
        renamed = renamed_to(state.directory.database, service_id) if found is None else None
    except DomainError as exc:
        log.warning("where %s is listed now was not looked up: %s", service_id[:80], exc)
        return None
    return Moved(renamed, for_good=True) if renamed is not None else None


def listed_now(state: AppState, service_id: str) -> Service | None:
    """The service `service_id` names, under the id it is listed by now (a shortlist made before it was renamed or
    merged), or None."""
    found = state.backend.get(service_id)
    now = moved(state, service_id, found)
    return state.backend.get(now.service_id) if now is not None else found
