"""What a route needs, injected with Depends: the application state (`rehabmap.state.AppState`: the settings,
the geography, the index backend and, for the maintainers' routes, the directory store and its editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


async def get_state(request: Request) -> AppState:
    """A coroutine, so FastAPI calls it on the event loop: a plain function goes through the threadpool, a
    thread hop per request that cost a `POST /match` ~0.4-0.7 ms of CPU in process, a fifth to a third of
    the request outside `match()` (bench/RESULTS.md, "POST /match, fifth pass")."""
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
