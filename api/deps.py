"""What a route needs, injected with Depends: the settings, the geography, the index backend and, for the
maintainers' routes, the directory store and its editor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from geodata import Geography
from rehabmap.config import Settings
from rehabmap.coverage import CoverageMap, CoverageStore, SmallAreaTable
from rehabmap.index.base import IndexBackend

if TYPE_CHECKING:
    from rehabmap.directory import Directory
    from rehabmap.edits import Editor


@dataclass
class AppState:
    settings: Settings
    geography: Geography
    backend: IndexBackend
    directory: Directory | None = None  # tokens, organisations, the edits overlay, the audit log
    editor: Editor | None = None  # the maintainers' writes
    _coverage_store: CoverageStore | None = field(default=None, repr=False)
    _coverage: CoverageMap | None = field(default=None, repr=False)

    def today(self) -> date:
        return date.today()

    def coverage(self) -> CoverageMap:
        """What the directory covers (the claims are read again only when the store file changes)."""
        if self._coverage_store is None:
            self._coverage_store = CoverageStore(self.settings.directory_path)
        claims, pending = self._coverage_store.snapshot()
        if self._coverage is None or self._coverage.claims is not claims:
            self._coverage = CoverageMap(claims, SmallAreaTable.load(self.settings.data_dir), pending)
        return self._coverage


def get_state(request: Request) -> AppState:
    return request.app.state.rehabmap


State = Annotated[AppState, Depends(get_state)]
