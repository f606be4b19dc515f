"""What the faces (the JSON API and the pages) work with: the parts of a running rehabmap, opened once from
the settings by the composition root (`app.parts.open_state`).

Plain data, no framework: each face reads it from the application it is served by (`app.state.rehabmap`)
through a FastAPI dependency of its own (`api.deps.State`, `web.deps.State`), so neither face imports the
other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from geodata.geography import Geography
from rehabmap.england_day import england_today
from rehabmap.config import Settings
from rehabmap.coverage import CoverageMap, CoverageStore, ListingsKey, SmallAreaTable
from rehabmap.gaps.analysis import GapAnalysis, analysis_for
from rehabmap.gaps.categories import Category
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.coverage import covered_table_for
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import SmallAreas
from rehabmap.gaps.report import AreaGaps, report_for
from rehabmap.index.base import IndexBackend
from rehabmap.maintain.freshness import Listings, unconfirmed_listings
from rehabmap.named_areas import NamedArea, area_name, named_area

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
    source_titles: Mapping[str, str] = field(default_factory=dict)  # `indexer.sync.connectors.source_titles`
    _coverage_store: CoverageStore | None = field(default=None, repr=False)
    _coverage: CoverageMap | None = field(default=None, repr=False)
    # `unconfirmed_listings` as read, with the sync store's stamp (`CoverageStore.read`) and the day it was read for.
    _unconfirmed: tuple[ListingsKey, date, Listings] | None = field(default=None, repr=False)

    def today(self) -> date:
        return self.settings.current_date()

    def days(self) -> tuple[date, date]:
        """The day a write stamps and refuses a later date by (`england_today`, never REHABMAP_TODAY), and the day
        its answer is as of (`today`), from one reading of the clock: a face's write reads them once a request, so
        a reply across midnight does not call the day it just stamped tomorrow."""
        stamp = england_today()
        return stamp, self.settings.current_date(stamp)

    def source_title(self, source: str) -> str:
        """A source as a person reads it ("Care Quality Commission (CQC)", not "cqc"); one with no title (an
        imported file's own name) as it is named."""
        return self.source_titles.get(source, source)

    def small_areas(self) -> SmallAreas:
        """England's small areas with their populations and the ICBs, local authorities and counties they lie in
        (loaded once a process)."""
        return SmallAreas.load(self.settings.data_dir)

    def area(self, code: str) -> NamedArea:
        """An area by its code, a county council's too (`rehabmap.named_areas`); UnknownArea for any other."""
        return named_area(self.geography, self.small_areas, code)

    def area_name(self, code: str) -> str:
        """An area as a person reads it (`area`), and its code where no area has it."""
        return area_name(self.geography, self.small_areas, code)

    def coverage(self) -> CoverageMap:
        """What the directory covers (the claims are read again only when the store changes)."""
        return self.coverage_read()[0]

    def coverage_read(self) -> tuple[CoverageMap, ListingsKey]:
        """The coverage, and the sync store's stamp (its last run, and the revision writes to its records outside a
        run move) as the same read found it (`CoverageStore.read`): what a search passes to `unconfirmed_listings`,
        so that it asks no query of its own."""
        (claims, pending, held), listings = self._claims_store().read()
        coverage = self._coverage
        if coverage is None or coverage.claims is not claims:
            coverage = self._coverage = CoverageMap(claims, SmallAreaTable.load(self.settings.data_dir), pending,
                                                    held)
        return coverage, listings

    def _claims_store(self) -> CoverageStore:
        if self._coverage_store is None:
            from rehabmap.maintain.store import store_of

            self._coverage_store = CoverageStore(store_of(self.settings))
        return self._coverage_store

    def unconfirmed_listings(self, today: date, listings: ListingsKey | None = None) -> Listings | None:
        """The listings no live source has confirmed for more than REHABMAP_LISTING_MAX_AGE_DAYS by `today`, which
        a match says of the results resting on them (`rehabmap.maintain.freshness.unconfirmed_listings`); None
        without a store. `today`: the day the caller's reply is as of, read by it once (before, read here again, so
        a reply across midnight said a listing 15 days old beside the rest of its answer as of the day before).
        Read again only when the day changes, the sync store records a run (a source's success is committed with
        it, before its coverage is published) or an upgrade prepares its records again (`LISTINGS_REVISION`);
        `listings`: that key as the caller's own read of the coverage found it (`coverage_read`), so a match asks
        no query of its own; None: read it here (the claims' snapshot, a query on PostgreSQL). Kept apart from the
        coverage, whose claims a run that changes nothing leaves as they were."""
        if self.directory is None:
            return None
        if listings is None:
            listings = self._claims_store().read()[1]
        kept = self._unconfirmed
        if kept is None or kept[0] != listings or kept[1] != today:
            kept = self._unconfirmed = (listings, today, unconfirmed_listings(
                self.directory, self.source_title, today, self.settings.listing_max_age_days))
        return kept[2]

    def gap_analysis(self) -> GapAnalysis:
        """The gap analysis of the directory as the index holds it now (kept per index generation: `analysis_for`)."""
        return analysis_for(self.backend, self.settings.data_dir, self.geography.areas)

    def gap_table(self, level: str, options: GapOptions, categories: tuple[Category, ...]) -> GapTable:
        """A level's comparison read with the coverage in force, kept per index generation and coverage map
        (`covered_table_for`): one home for the API's tables and downloads and the pages'."""
        return covered_table_for(self.backend, self.gap_analysis, level, options, categories, self.coverage())

    def area_gaps(self, code: str, options: GapOptions, scenario: GapAnalysis | None = None) -> AreaGaps:
        """An area's gaps (`report_for`): of the directory, kept per index generation, or of a what-if's
        `scenario`, made anew."""
        return report_for(self.backend, self.gap_analysis, code, options, scenario)
