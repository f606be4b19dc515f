"""Each source's sync, for maintainers: what `rehabmap sync-status` tells an operator, in words, and the records
each source gave a contact detail for that a sync left out, each linked to its page, so a maintainer who fixes
records need not ask an operator what the syncs did or which records lack a phone or website the source gave
or have since been given it by a maintainer.

A thin face over `indexer.sync.status.sync_status`, the function the command calls: the page reads the sync store
the server opened at its start (`SyncStore.served`) and stores nothing. A directory no source was ever synced
into (only imported files and keepers' own services) says so: that is no fault.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from indexer.sync.connectors import discard_command, removed_feeds, retire_command
from indexer.sync.status import LastRun, SourceReport, sync_status
from indexer.sync.store import SyncStore
from web.deps import get_state
from web.keepers.maintainer_review import MAINTAINERS, REVIEW
from web.keepers.paths import service_path
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import PATH, Keeper, KeepersRoute, page_number, render, requires
from web.keepers.words import said

router = APIRouter(route_class=KeepersRoute)
SOURCES = f"{PATH}/sources"
PER_PAGE = 100  # of a source's records a sync left a detail out of, as Verification due pages its services
SECTIONS.append(Section(SOURCES, "Sources", "How each source's last sync went, what it holds, and the contact "
                        "details a sync left out.", frozenset(MAINTAINERS)))

# How a last run ended, as a maintainer reads it (the store and `sync-status` keep the codes).
OUTCOME_WORDS = {"applied": "Applied", "stopped": "Stopped, waiting for a decision", "failed": "Failed",
                 "discarded": "Dropped before it was applied",
                 "retired": "Its records retired by a person"}


def outcome_words(run: LastRun) -> str:
    return OUTCOME_WORDS.get(run.outcome, run.outcome)


@router.get(SOURCES)
def sources(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    """Each source's list of records a sync left a detail out of, a page at a time: the one `?source=` names at
    `?page=`, every other at its first (a source of thousands made a page of megabytes, read whole each visit)."""
    state = get_state(request)
    store = SyncStore.served(state)
    paged = request.query_params.get("source", "")[:200]
    pages = {paged: page_number(request)} if paged else {}
    reports: list[SourceReport] = [] if store is None else sync_status(
        store, per_page=PER_PAGE, pages=pages, removed=removed_feeds(state.settings))
    return render(request, keeper, "keepers/maintainer/sources.html",
                  {"reports": reports, "needing": [r for r in reports if r.needs_a_person],
                   "listed": {} if store is None else store.left_out_counts(), "pages": pages,
                   "per_page": PER_PAGE, "outcome_words": outcome_words, "service_path": service_path,
                   "review_path": REVIEW, "retire_command": retire_command,
                   "discard_command": discard_command, "said": said})
