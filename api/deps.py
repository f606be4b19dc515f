"""What a route needs, injected with Depends: the application state (`rehabmap.state.AppState`: the settings,
the geography, the index backend and, for the maintainers' routes, the directory store and its editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


def state_of(request: Request) -> AppState:
    """The state without `Depends`, for `POST /match`: solving even this dependency costs FastAPI ~30 µs of
    CPU a request (bench/RESULTS.md, "POST /match, seventh pass"). The pages read it the same way through a
    dependency of their own (`web.deps.get_state`): the faces are siblings that never import each other
    (docs/adr/0002), and the domain below them has no web framework to name a request in."""
    state: AppState = request.app.state.rehabmap
    return state


async def get_state(request: Request) -> AppState:
    """A coroutine, so that FastAPI calls it on the event loop: a plain function would be run through the
    threadpool, a hop that costs ~75–100 µs of CPU a request and puts the loop's thread to sleep while it
    waits (bench/RESULTS.md, "POST /match, fifth pass" and "seventh pass")."""
    return state_of(request)


State = Annotated[AppState, Depends(get_state)]
