"""What a route needs, injected with Depends: the application state (`rehabmap.state.AppState`: the settings,
the geography, the index backend and, for the maintainers' routes, the directory store and its editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


async def get_state(request: Request) -> AppState:
    """Async only so that FastAPI calls it on the event loop: a plain function would be run through the
    threadpool, a thread hand-off on every request for one attribute read (bench/RESULTS.md, "POST /match,
    fourth pass")."""
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
