"""What a page needs, injected with Depends: the application state the composition root opened
(`rehabmap.state.AppState`), read from the application serving the page, as the API's routes read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
