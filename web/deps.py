"""What a page needs, injected with Depends: the application state the composition root opened
(`rehabmap.state.AppState`), read from the application serving the page, as the API's routes read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


def get_state(request: Request) -> AppState:
    """The same read as `api.deps.state_of`, kept here because the faces are siblings that never import each
    other (docs/adr/0002) and the domain below them has no web framework to name a request in. A plain
    function, as `state_of` is, because the keepers' pages and `web.render` call it directly."""
    return request.app.state.rehabmap


async def _state(request: Request) -> AppState:
    """`get_state` for `Depends`, as a coroutine: FastAPI runs a plain function dependency through its
    threadpool, a hop of its own before the page's (bench/RESULTS.md, "POST /match outside `match()`",
    session 15), where this is one attribute read."""
    return get_state(request)


State = Annotated[AppState, Depends(_state)]
