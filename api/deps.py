"""What a route needs, injected with Depends: the application state (`rehabmap.state.AppState`: the settings,
the geography, the index backend and, for the maintainers' routes, the directory store and its editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rehabmap.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
