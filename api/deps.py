"""What a route needs, injected with Depends: the settings, the geography and the index backend."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Request

from rehabmap.config import Settings
from rehabmap.index.base import IndexBackend


@dataclass
class AppState:
    settings: Settings
    geography: object  # geodata.Geography
    backend: IndexBackend

    def today(self) -> date:
        return date.today()


def get_state(request: Request) -> AppState:
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
