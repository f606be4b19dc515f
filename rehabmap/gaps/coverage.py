"""Gaps read with the directory's coverage (`rehabmap.coverage`). A part absent inside an area is:

* *missing* only where the directory covers that area for it and no candidate awaits review there;
* *awaiting review* where candidates of it wait in the area's review queue: none is confirmed yet, which is
  not "none" (the rule `POST /match` follows for `awaiting_review`);
* *not covered* elsewhere, because rehabmap holds no such data there yet and "none found" would mean nothing.

For the last two the area's figures of that part (count, distances, shares) are not facts: distances run to
services elsewhere because nothing is known here. Those figures are given as no data (None), with the reason
(the coverage's own words); the analysis itself is unchanged, so every figure still matches a recomputation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any, TypeVar

from geodata.england import ENGLAND
from rehabmap.coverage import Coverage, CoverageMap
from rehabmap.gaps.analysis import GapAnalysis
from rehabmap.gaps.categories import PARTS, Category
from rehabmap.gaps.comparison import AreaRow, GapTable, TypeFigures, table_for
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.report import (AreaGaps, Fallback, PartStatus, Scorecard, ScorecardRow, SmallAreaDistances,
                                  TypeIndicators)
from rehabmap.index.base import IndexBackend
from rehabmap.index.generation_cache import GenerationCache

NO_DATA: tuple[PartStatus, ...] = ("awaiting_review", "not_covered")  # the figures of such a part are unknown

# The figures an area holds for a type, whichever shape carries them (TypeIndicators, ScorecardRow, TypeFigures).
_FIGURES = frozenset({"count", "per_100k_adults", "mean_km", "p90_km", "share_beyond_threshold",
                      "population_beyond_threshold", "share_nearest_outside_area", "fallback_if_local_full",
                      "fallback_mean_km", "fallback_far", "fallback", "furthest_small_areas", "nearest_provider",
                      "nearest_provider_id", "nearest_provider_name", "nearest_provider_km", "nearest_provider_icb"})
Figures = TypeVar("Figures", TypeIndicators, ScorecardRow, TypeFigures)


def part_status(present: bool, answer: Coverage) -> PartStatus:
    """One home for the rule, whichever face shows it."""
    if present:
        return "present"
    if answer.pending_review:
        return "awaiting_review"
    return "missing" if answer.covered else "not_covered"


def told_status(present: bool, answer: Coverage) -> str:
    """`part_status` as a person is told it: a part not covered is `partly_covered` where the directory holds
    its data for some of the area (none found there, nothing known of the rest, so no figures either)."""
    status: str = part_status(present, answer)
    return "partly_covered" if status == "not_covered" and answer.status == "partly_covered" else status


def national_figure_unknown(area_code: str, present: bool, answer: Coverage) -> bool:
    """Whether England's figures of a type found somewhere in it rest on part of England only: the directory
    does not hold that type's data for all of it. Distances then run to the nearest service *known*, and "England:
    75.3 km" (supported accommodation, data held for 5 of 42 ICBs) read as a national finding, the benchmark a
    commissioner's area is compared with. An area's own figures of a type found there stay findings (the rule of
    `part_status`); England's are the yardstick, so they are given only where it is wholly covered."""
    return present and area_code == ENGLAND and not answer.covered


def figures_told(area_code: str, present: bool, answer: Coverage) -> str | None:
    """Where an area's figures of a type are not facts, its status as a person is told it (`told_status`, or
    `partly_covered` for England's, `national_figure_unknown`); None where they are facts. One rule for every
    face: the area page, the comparison's rows and England row, the command line, the England map's heading."""
    if national_figure_unknown(area_code, present, answer):
        return "partly_covered"
    return told_status(present, answer) if part_status(present, answer) in NO_DATA else None


def figures_reason(area_code: str, present: bool, answer: Coverage) -> str | None:
    """Why an area's figures of a type are not facts, in the coverage's words, by the rule of `figures_told`:
    England's of a type found in it where its data are held for part of England only (`Coverage.national`), an
    area's of an absent type awaiting review or not covered (`Coverage.none_found`); None where they are facts."""
    if national_figure_unknown(area_code, present, answer):
        return answer.national()
    return answer.none_found() if part_status(present, answer) in NO_DATA else None


def unknown_reason(coverage: CoverageMap, area_code: str, category: str, present: bool) -> str | None:
    """`figures_reason` of a type in an area, read from the coverage map: what the faces that show one type in one
    area ask (the area map, the what-if's before and after). England's figures of a type found in it are not facts
    where its data are held for part of England only: before, this said None whenever the type was present, and
    a what-if gave "England mean_km 56.6 → 56.5" as a national finding."""
    return figures_reason(area_code, present, coverage.for_area(area_code, category))


def no_data(figures: Figures) -> Figures:
    """The same type with its area's figures unknown (None; no furthest small areas). A comparison's inpatient
    fallback keeps its keys, each None, so every area of an export has the same columns."""
    blank: dict[str, Any] = {f.name: _blank(f.name, getattr(figures, f.name))
                             for f in fields(figures) if f.name in _FIGURES}
    return replace(figures, **blank)


def _blank(name: str, value: Any) -> Any:
    if name == "furthest_small_areas":
        return []
    return Fallback(None, None, None, None) if name == "fallback" and value is not None else None


def scorecard_with_coverage(card: Scorecard, area_code: str, coverage: CoverageMap) -> Scorecard:
    """Each part with its status and coverage; the absent parts and subtypes split into missing, awaiting
    review and not covered."""
    parts = [replace(part, status=part_status(part.present, answer), coverage=answer.to_dict(found=part.present))
             for part in card.parts for answer in [coverage.for_area(area_code, part.type)]]
    absent = {k: part_status(False, coverage.for_area(area_code, k)) for k in card.missing + card.missing_subtypes}
    return replace(card, parts=parts,
                   missing=[k for k in card.missing if absent[k] == "missing"],
                   missing_subtypes=[k for k in card.missing_subtypes if absent[k] == "missing"],
                   awaiting_review=[k for k in card.missing if absent[k] == "awaiting_review"],
                   awaiting_review_subtypes=[k for k in card.missing_subtypes if absent[k] == "awaiting_review"],
                   not_covered=[k for k in card.missing if absent[k] == "not_covered"],
                   not_covered_subtypes=[k for k in card.missing_subtypes if absent[k] == "not_covered"],
                   none_in_england={k: none_in_england(coverage.for_area(ENGLAND, k))
                                    for k, nearest in card.nearest_out_of_area_for_missing.items()
                                    if nearest is None and absent[k] == "missing"})


def none_in_england(answer: Coverage) -> str:
    """What finding no service of a type anywhere in England means, from England's coverage of it: an area
    missing it is covered, but England as a whole may not be, and a candidate elsewhere may await review (a
    commissioner was told "none anywhere in England" beside a held hospital)."""
    if answer.pending_review:
        return f"none confirmed anywhere in England yet ({answer.pending_review} awaiting review)"
    if answer.covered:
        return "none anywhere in England"
    return (f"none known anywhere in England (rehabmap holds this data for {answer.share:.0%} of England's "
            "adults)")


def gaps_with_coverage(gaps: AreaGaps, coverage: CoverageMap) -> AreaGaps:
    """One area's answer read with coverage: the scorecard's statuses, and each type shown with its status and,
    where its figures are unknown, no figures but the reason."""
    code = gaps.area.code
    return replace(gaps, scorecard=scorecard_with_coverage(gaps.scorecard, code, coverage),
                   indicators=[_indicators(ind, code, coverage) for ind in gaps.indicators])


def _indicators(ind: TypeIndicators, area_code: str, coverage: CoverageMap) -> TypeIndicators:
    answer = coverage.for_area(area_code, ind.category)
    status = part_status(ind.present, answer)
    if national_figure_unknown(area_code, ind.present, answer):
        return replace(no_data(ind), status=status, no_data=answer.national())
    if status not in NO_DATA:
        return replace(ind, status=status)
    return replace(no_data(ind), status=status, no_data=answer.none_found())


def mapped_kinds(gaps: AreaGaps) -> list[TypeIndicators]:
    """The kinds of service whose figures in the area are facts (found there, or none found where the directory
    covers it), in the pathway's order: what a map of the area can shade. A directory of one source (CQC alone)
    holds no data on most parts, and a map of one of those shades nothing."""
    return [ind for ind in gaps.indicators if ind.no_data is None]


# The kind a map of an area or of England prefers to open on, unasked (`map_default`, `table_default`).
DEFAULT_MAP_TYPE = "community_rehab_team"


def map_default(gaps: AreaGaps, preferred: str = DEFAULT_MAP_TYPE) -> str:
    """The kind the area's map shows first: `preferred` where its figures here are facts, else the first part of
    the pathway (then kind of a part) whose figures are facts and of which some service is known in England (a map
    of distances to nothing shades every small area alike), else the first with facts at all; `preferred` again
    where the directory holds data on nothing here (the page then says so above the map)."""
    known = sorted(mapped_kinds(gaps), key=lambda ind: ind.subtype is not None)
    if any(ind.category == preferred for ind in known):
        return preferred
    chosen = next((ind for ind in known if ind.any_in_england), known[0] if known else None)
    return preferred if chosen is None else chosen.category


def table_default(table: GapTable, preferred: str = DEFAULT_MAP_TYPE) -> str:
    """The kind an England map shows first: `preferred` where some area of `table` (read with coverage) has found
    it, else the first part of the pathway some area has found (the map of a kind no area has a figure of shades
    nothing: community rehabilitation teams on a directory synced from CQC alone); `preferred` where none is."""
    rows = table.rows()
    found = [c.key for c in table.categories if c.is_part and any(r.types[c.key].count for r in rows)]
    return preferred if preferred in found or not found else found[0]


def rows_with_coverage(rows: list[ScorecardRow], area_code: str, coverage: CoverageMap) -> list[ScorecardRow]:
    """The command line's rows, each with its status and the share of the area's adults the directory holds its
    data for: a type whose figures are unknown here shows none."""
    out = []
    for row in rows:
        answer = coverage.for_area(area_code, row.category)
        told = figures_told(area_code, row.present, answer)
        shown = no_data(row) if told else row
        out.append(replace(shown, status=told or told_status(row.present, answer),
                           share_of_adults_covered=round(answer.share, 4)))
    return out


# The tables read with coverage, kept per index generation and coverage map: reading ~300 local authorities' rows
# with it took ~60% of the pages' and the API's comparison at that level, on every request (bench/RESULTS.md,
# session 34). As many as `comparison.table_for` keeps: a new map (claims changed) is read with again as asked.
_COVERED: GenerationCache[GapTable] = GenerationCache(size=64)


def covered_table_for(backend: IndexBackend, analysis: Callable[[], GapAnalysis], level: str, options: GapOptions,
                      categories: tuple[Category, ...], coverage: CoverageMap) -> GapTable:
    """`table_with_coverage` of `comparison.table_for`'s table, kept until the index's generation or the coverage
    map (a review decision, a sync's claims: `AppState.coverage`) changes. Every face's comparison (the API's
    `/gaps…`, the pages) reads it here."""
    return _COVERED.get(backend, (level, options, categories, coverage.revision), lambda: table_with_coverage(
        table_for(backend, analysis, level, options, categories), coverage))


def table_with_coverage(table: GapTable, coverage: CoverageMap) -> GapTable:
    """The same comparison, each area's absent parts split into missing, awaiting review and not covered, and
    the figures of each absent type whose figures are unknown there given as none."""
    return replace(table, _rows=[_row_with_coverage(row, coverage) for row in table.rows()],
                   _england_row=_row_with_coverage(table.england_row(), coverage))


def _row_with_coverage(row: AreaRow, coverage: CoverageMap) -> AreaRow:
    """A part not covered is partly covered where the directory holds its data for some of the area, or for some
    of its kinds (`CoverageMap.for_area`): none was found there, nothing is known of the rest, so it stays without
    figures, with the share of adults it covers, or the kinds it covers."""
    absent = [*row.missing_parts, *(key for key, figures in row.types.items() if figures.count == 0)]
    answers = {key: coverage.for_area(row.code, key) for key in absent}
    status = {key: part_status(False, answer) for key, answer in answers.items()}
    national = [key for key, figures in row.types.items() if figures.count and row.code == ENGLAND
                and national_figure_unknown(row.code, True, coverage.for_area(row.code, key))]
    types = {key: no_data(figures) if status.get(key) in NO_DATA or key in national else figures
             for key, figures in row.types.items()}
    missing = [k for k in row.missing_parts if status[k] == "missing"]
    waiting = [k for k in row.missing_parts if status[k] == "awaiting_review"]
    uncovered = [k for k in row.missing_parts if status[k] == "not_covered"]
    partly = {k: round(answers[k].share, 4) for k in uncovered
              if told_status(False, answers[k]) == "partly_covered" and not answers[k].kinds_covered}
    kinds = {k: list(answers[k].kinds_covered) for k in uncovered if answers[k].kinds_covered}
    # In the types' order, as the CSV's column lists them (a set's order changed from one process to the next).
    unknown = {k: "partly_covered" if k in national else told_status(False, answers[k]) for k in row.types
               if k in national or status.get(k) in NO_DATA}
    found = [] if row.code == ENGLAND else [c.key for c in PARTS if c.key not in row.missing_parts]
    more = [key for key in found if coverage.for_area(row.code, key).may_be_more]
    return replace(row, types=types, missing_parts=missing, missing_count=len(missing), awaiting_review_parts=waiting,
                   awaiting_review_count=len(waiting), not_covered_parts=uncovered, not_covered_count=len(uncovered),
                   partly_covered_parts=partly, kinds_covered_parts=kinds, unknown=unknown,
                   found_may_be_more_parts=more, found_may_be_more_count=len(more))


def small_areas_with_coverage(distances: SmallAreaDistances, area_code: str,
                              coverage: CoverageMap) -> SmallAreaDistances:
    """Small areas read as their area's map reads them: each type with its status in the area and, where its
    figures are unknown there (not covered, partly covered, or none confirmed yet), no distance and no nearest,
    since the nearest known service elsewhere says nothing of what is there. An England export reads each small
    area with its ICB's, as the England map does: coverage is held per area, and England as one is partly
    covered for most types, which would blank the figures of the areas the directory does cover."""
    analysis, code = distances.analysis, area_code.strip().upper()
    level = "icb" if code == ENGLAND else analysis.small_areas.level_of(code)
    ind = analysis.indicators(level, GapOptions(), distances.categories)
    groups = analysis.small_areas.groups(level).of_small_area[distances.rows].tolist()
    told = {g: _told(str(ind.codes[g]), {c.key: bool(ind.values["count"][ind.column(c), g] > 0)
                                          for c in distances.categories}, coverage) for g in set(groups)}
    return replace(distances, status=[told[g][0] for g in groups], unknown=[told[g][1] for g in groups])


def _told(area_code: str, present: dict[str, bool], coverage: CoverageMap) -> tuple[dict[str, str], frozenset[str]]:
    """An area's status of each type, and the types whose figures there are unknown."""
    answers = {key: coverage.for_area(area_code, key) for key in present}
    return ({key: told_status(found, answers[key]) for key, found in present.items()},
            frozenset(key for key, found in present.items() if part_status(found, answers[key]) in NO_DATA))
