"""What the faces (the JSON API and the pages) work with: the parts of a running rehabmap, opened once from
the settings by the composition root (`app.parts.open_state`).

Plain data, no framework: each face reads it from the application it is served by (`app.state.rehabmap`)
through a FastAPI dependency of its own (`api.deps.State`, `web.deps.State`), so neither face imports the
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from geodata import Geography
from rehabmap.config import Settings
from rehabmap.index.base import IndexBackend

if TYPE_CHECKING:
    from rehabmap.maintain.edits import Editor
    from rehabmap.maintain.store import Directory


@dataclass
class AppState:
    settings: Settings
    geography: Geography
    backend: IndexBackend
    directory: Directory | None = None  # tokens, organisations, the edits overlay, the audit log
    editor: Editor | None = None  # the maintainers' writes

    def today(self) -> date:
        return date.today()
