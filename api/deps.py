"""What a route needs, injected with Depends: the settings, the geography, the index backend and, for the
maintainers' routes, the directory store and its editor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from geodata import Geography
from rehabmap.config import Settings
from rehabmap.index.base import IndexBackend

if TYPE_CHECKING:
    from rehabmap.maintain.store import Directory
    from rehabmap.maintain.edits import Editor


@dataclass
class AppState:
    settings: Settings
    geography: Geography
    backend: IndexBackend
    directory: Directory | None = None  # tokens, organisations, the edits overlay, the audit log
    editor: Editor | None = None  # the maintainers' writes

    def today(self) -> date:
        return date.today()


def get_state(request: Request) -> AppState:
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
