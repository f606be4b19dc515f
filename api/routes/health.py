"""GET /health: is the index loaded, how big (active services, and the retired ones apart), how fresh, whether it
has followed every applied sync change, and what holds it back (monitoring reads this, not `rehabmap sync-status`)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import State
from api.schemas import ERRORS
from indexer.sync.status import NotLive, held_back, not_live, not_yet_shown
from indexer.sync.store import SyncStore
from rehabmap.coverage import SmallAreaTable
from rehabmap.index.base import ServiceQuery
from rehabmap.state import AppState

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"], responses=ERRORS)


class HealthOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "backend": "embedded", "services": 858, "inactive": 2, "built_at": "2026-11-23T18:36:16+00:00",
        "sources": {"cqc": 800, "sample": 60}, "not_live": 0, "held_back": None}]})

    status: str = Field(description="'ok'; 'degraded' while applied sync changes are not yet served (`not_live`), "
                        "or when the sync store cannot be read: the index still answers, with the previous data.")
    backend: str
    services: int = Field(description="Active services: those searches and GET /services can return.")
    inactive: int = Field(description="Retired (inactive) records the index keeps, so their ids and history still "
                          "answer; not counted in `services`.")
    built_at: datetime | None
    sources: dict[str, int] = Field(description="Records per source (the id prefix), active or not.")
    not_live: int | None = Field(description=(
        "Applied sync changes (records, or a source's coverage claims) that the live index has not yet followed: a "
        "sync or review decision was cut short. The server writes them itself (at once when this probe sees them, "
        "else within REHABMAP_CONVERGE_EVERY_S), as does the next sync, review decision or server start, unless a "
        "mapping holds them back (`held_back`). null when the sync store cannot be read."))
    held_back: str | None = Field(default=None, description=(
        "Why nothing writes the `not_live` changes until a person acts: a mapping's `[source] supersedes` put wrong "
        "(the mapping file and key; the server's log says where it is). null when nothing holds them back."))


@router.get("/health", response_model=HealthOut, summary="Service health and index facts")
def health(state: State, request: Request) -> HealthOut:
    """200 with the index's size and build time when it is loaded; 503 when it has not been built, or when the
    small-area file that every search's coverage needs is not in the data folder (`data_file_missing`)."""
    info = state.backend.info()
    SmallAreaTable.load(state.settings.data_dir)  # read once (cached); until it is there, no answer is honest
    active = sum(state.backend.count_by_type(ServiceQuery()).values())
    lagging = _not_live(state)
    behind = None if lagging is None else lagging.total
    unshown = None if lagging is None else not_yet_shown(lagging.total, held_back(lagging.records))
    soon = getattr(request.app.state, "converge_soon", None)  # (set by `app.main`: the API alone has none)
    if behind and unshown is None and soon is not None:
        soon()  # the server catches up now, not at its next look (`app.converge`)
    return HealthOut(status="ok" if behind == 0 else "degraded", backend=info.backend, services=active,
                     inactive=info.count - active, built_at=info.built_at, sources=info.sources, not_live=behind,
                     held_back=unshown.message if unshown else None)


def _not_live(state: AppState) -> NotLive | None:
    """Three indexed reads on this thread's connection to the sync store, which the server opened at its start
    (`SyncStore.served`). Degraded, not down: the previous index serves, so a load balancer must keep the
    server (200), and a store out of reach must not make a 5xx."""
    try:
        store = SyncStore.served(state)
        return NotLive(Counter(), 0) if store is None else not_live(store)
    except Exception as exc:  # noqa: BLE001 - any failure of the store's database: said, never raised
        log.warning("the sync store could not be read for /health: %s", type(exc).__name__)
        return None
