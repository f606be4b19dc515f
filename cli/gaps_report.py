"""What `rehabmap gaps AREA` runs and prints: the commissioners' pathway scorecard in a terminal.

A thin wrapper over `rehabmap.gaps`; the tables are fixed-width so they paste into a report. `cli.gaps` holds
the command's options and imports this module only when the command runs (the analysis loads scipy).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.textgrid import grid
from rehabmap.coverage import CoverageMap, CoverageStore, coverage_map
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import PARTS, Category, parse_categories, parse_category
from rehabmap.gaps.comparison import GapTable, sort_by
from rehabmap.gaps.coverage import (figures_reason, rows_with_coverage, scorecard_with_coverage,
                                    small_areas_with_coverage, table_with_coverage, told_status, unknown_reason)
from rehabmap.gaps.columns import AsOf
from rehabmap.gaps.exports import scorecard_csv, small_areas_csv, table_csv
from rehabmap.gaps.indicators import check_map_indicator, indicator_text, km_text, share_text
from rehabmap.gaps.oaps import OapStore, PlacementsReport, ccgs
from rehabmap.gaps.options import GapOptions
from geodata.england import ENGLAND
from rehabmap.errors import InvalidValue
from rehabmap.gaps.population import (LEVEL_LABELS, LEVEL_PLURALS, LsoaBoundaries, SmallAreas, names_england,
                                      parse_level, short_name)
from rehabmap.gaps.ranking import AreaComparison, IndicatorComparison
from rehabmap.gaps.ranking import compare as rank_area
from rehabmap.gaps.report import AreaGapReport, FarFallback, Scorecard, ScorecardRow, SmallAreaDistances
from rehabmap.gaps.scenario import Scenario, WhatIf, what_if

if TYPE_CHECKING:
    from rehabmap.config import Settings


def _km(value: float | None) -> str:
    return km_text(value, "-")


def _pct(value: float | None) -> str:
    return share_text(value, "-")


def render_scorecard(report: AreaGapReport, furthest: int = 0, coverage: CoverageMap | None = None) -> str:
    """The scorecard: one row per type (subtypes indented), then what is missing and what to look at. With
    `coverage`, a type absent inside the area is MISSING only where the directory covers the area for it and
    no candidate awaits review there, AWAITING REVIEW where candidates wait (none confirmed yet), NOT COVERED
    where rehabmap holds no such data there yet, and PARTLY COVERED where it holds it for only some of the
    area; the last three show no figures ('-'), which would not be facts."""
    options = report.options
    rows = _rows(report, coverage)
    lines = [f"{report.name} ({report.code}) — {LEVEL_LABELS.get(report.level, report.level)}",
             (f"Adults (16+): {int(report.ind.adult_pop[report.g]):,} in {int(report.ind.small_areas[report.g]):,} "
             f"small areas. Distances from small-area population centroids to the nearest service anywhere in "
             f"England; thresholds {options.community_km:g} km community, {options.inpatient_km:g} km inpatient."),
             "", _indicator_table(rows, options), ""]
    if coverage is not None and report.code == ENGLAND:  # an area's absent parts are told below, with the nearest
        lines += [f"{_told(row.status)}: {row.category}: "
                  f"{figures_reason(ENGLAND, row.present, coverage.for_area(ENGLAND, row.category))}"
                  for row in rows if row.status not in (None, "present", "missing")]
    card = report.scorecard()
    told: dict[str, str] = {}
    if coverage is not None:
        card = scorecard_with_coverage(card, report.code, coverage)
        told = {key: told_status(False, coverage.for_area(report.code, key))
                for key in card.nearest_out_of_area_for_missing}
    lines += _pathway_lines(card, report.level, told)
    if furthest:
        unknown = {row.category: row for row in rows if row.count is None}  # no figures: no distances either
        for category in report.shown:
            lines += ["", f"Small areas furthest from a {category.label.lower()} ({category.key}):"]
            row = unknown.get(category.key)
            if coverage is not None and row is not None:
                said = "PARTLY COVERED" if row.status == "partly_covered" else "No data"
                lines.append(f"{said}: {unknown_reason(coverage, report.code, category.key, row.present)}")
            else:
                lines.append(_furthest_table(report, category, furthest))
    return "\n".join(lines)


def _indicator_table(rows: list[ScorecardRow], options: GapOptions) -> str:
    """Each type's figures and status: the status `rows_with_coverage` told (England's figures of a type held for
    part of England only are PARTLY COVERED, not "present"), else present or MISSING (coverage not read)."""
    header = ["type", "in area", "per 100k", "mean km", f"p{round(options.quantile * 100)} km", "beyond",
              "nearest outside", "if local full km", "status"]
    table = [header]
    for row in rows:
        category = parse_category(row.category)
        status = _told(row.status or ("present" if row.present else "missing"))
        if row.fallback_far:
            status += ", fallback far"
        table.append([row.category if category.is_part else f"  {row.category.split(':', 1)[1]}",
                      "-" if row.count is None else str(row.count),
                      indicator_text("per_100k_adults", row.per_100k_adults, "-"),
                      _km(row.mean_km), _km(row.p90_km),
                      "-" if row.share_beyond_threshold is None
                      else f"{_pct(row.share_beyond_threshold)} >{row.threshold_km:g}km",
                      _pct(row.share_nearest_outside_area), _km(row.fallback_mean_km) if category.is_inpatient else "",
                      status])
    return grid(table, right={1, 2, 3, 4, 5, 6, 7})


def _pathway_lines(card: Scorecard, level: str, told: dict[str, str]) -> list[str]:
    """What is missing (or not covered) inside the area and the nearest provider of each, and what
    commissioners must see. `told`: each absent part's and subtype's status as `told_status` gives it (empty
    without coverage: all are missing). Only a missing one has none anywhere in England for a fact; of the
    others the nearest known elsewhere is given where there is one, as the area page gives it."""
    lines = []
    if level == "england":
        lines.append("England as a whole: every service counts as inside.")
    else:
        present = sum(1 for part in card.parts if part.present)
        if card.missing or card.awaiting_review or card.not_covered:
            lines.append(f"Pathway: {present} of {len(card.parts)} parts present inside the area."
                         + (f" MISSING: {', '.join(card.missing)}." if card.missing else ""))
        else:
            lines.append(f"Pathway: all {len(card.parts)} parts present inside the area.")
        if card.awaiting_review:
            lines += [f"AWAITING REVIEW: {part.type}: {part.coverage['says']}" for part in card.parts
                      if part.status == "awaiting_review" and part.coverage]
        uncovered = [key for key in card.not_covered if told.get(key) == "not_covered"]
        if uncovered:
            lines.append(f"NOT COVERED (rehabmap holds no such data for this area yet, so none found means "
                         f"nothing): {', '.join(uncovered)}.")
        lines += [f"PARTLY COVERED: {part.type}: {part.coverage['says']}" for part in card.parts
                  if told.get(part.type) == "partly_covered" and part.coverage]
        if card.missing_subtypes:
            lines.append(f"Subtypes missing inside the area: {', '.join(card.missing_subtypes)}.")
        if card.awaiting_review_subtypes:
            lines.append(f"Subtypes awaiting review (none confirmed yet): {', '.join(card.awaiting_review_subtypes)}.")
        if card.not_covered_subtypes:
            lines.append(f"Subtypes not covered: {', '.join(card.not_covered_subtypes)}.")
        for key, provider in card.nearest_out_of_area_for_missing.items():
            missing = told.get(key, "missing") == "missing"
            if provider is None:
                if missing:
                    none = card.none_in_england.get(key, "no service of this type anywhere in England")
                    lines.append(f"  {key}: {none}.")
            else:
                lines.append(f"  {key}: nearest {'out-of-area provider' if missing else 'known elsewhere'} "
                             f"{provider.name} ({provider.id}), {provider.la_name or '?'}, "
                             f"{provider.icb_name or 'ICB unknown'} — {provider.distance_km:.1f} km from the area's "
                             "population centre.")
    locked = card.legacy_locked_rehabilitation
    lines.append(f'Legacy "locked rehabilitation" labels inside: {len(locked) or "none"}'
                 + ("" if not locked else " — " + "; ".join(f"{s.name} ({s.id})" for s in locked)))
    pd = card.pd_specialist_units
    lines.append(f"Personality-disorder specialist rehab units inside: {len(pd) or 'none'}"
                 + ("" if not pd else " — " + "; ".join(f"{s.name} ({s.id})" for s in pd)))
    if level != "england":
        far = card.inpatient_fallback_far
        lines.append("Inpatient units whose nearest out-of-area use would be far (mean over the threshold if "
                     "every local unit were full): "
                     + ("none" if not far else "; ".join(f"{f.type} {_far_fallback(f)}" for f in far)))
    return lines


def _far_fallback(far: FarFallback) -> str:
    """A far fallback's mean, or why there is none: no unit of the type outside the area at all (the area holds every
    one rehabmap knows: Field House, accepted as England's only level 1 unit, ended `rehabmap gaps` in a
    TypeError), or none outside that takes people from every part of it, their catchments leaving some out (before,
    that too read "none known outside the area", beside a level 2 unit in Nottingham taking Amber Valley's)."""
    if far.fallback_mean_km is not None:
        return f"{far.fallback_mean_km:.1f} km"
    if far.none_outside:
        return "none known outside the area"
    return (f"no unit outside the area takes people from every part of it "
            f"({share_text(far.share_beyond_threshold)} of adults beyond {far.threshold_km:g} km)")


def _furthest_table(report: AreaGapReport, category: Category, n: int) -> str:
    table = [["small area", "name", "local authority", "adults", "km", "nearest"]]
    for item in report.furthest(category, n):
        table.append([item.code, item.name, item.la_name, f"{item.adult_population:,}", _km(item.distance_km),
                      item.nearest_id or "-"])
    return grid(table, right={3, 4})


def _rows(report: AreaGapReport, coverage: CoverageMap | None) -> list[ScorecardRow]:
    rows = report.scorecard_rows()
    return rows if coverage is None else rows_with_coverage(rows, report.code, coverage)


def _told(status: str) -> str:
    """A status as the tables print it: "present" quietly, every other loud (MISSING, PARTLY COVERED)."""
    return status if status == "present" else status.replace("_", " ").upper()


def render_what_if(result: WhatIf) -> str:
    """The scenario (what it adds and removes) and every indicator it changes, for the area and England."""
    lines = ["WHAT IF (a scenario: nothing is written to the directory or the index)"]
    for service in result.applied.added:
        lines.append(f"  + {service.id} {service.type}{':' + service.subtype if service.subtype else ''} at "
                     f"{service.name.rsplit('(', 1)[-1].rstrip(')')}, {service.la_name or '?'}, "
                     f"{service.icb_name or 'ICB unknown'}")
    for service in result.applied.removed:
        lines.append(f"  - {service.id} {service.name} ({service.type}), {service.icb_name or 'ICB unknown'}")
    if not result.changes:
        lines.append("No indicator changes.")
        return "\n".join(lines)
    table = [["where", "type", "indicator", "before", "after"]]
    for change in result.changes:
        before = "no data" if change.before_no_data else _figure(change.indicator, change.before)
        after = "no data" if change.after_no_data else _figure(change.indicator, change.after)
        table.append([change.area_code if change.scope == "area" else "England", change.category,
                      change.indicator, before, after])
    lines += ["", grid(table, right={3, 4})]
    lines += [f"No data ({label.lower()}): {reason}" for label, reason in result.no_data()]
    return "\n".join(lines)


def render_comparison(comparison: AreaComparison, ranked_tables: tuple[str, ...] = ()) -> str:
    """Each part's indicators beside England's and the area's place among its peers; then, for the
    `ranked_tables` categories, every area ranked by services per 100,000 adults."""
    peers = LEVEL_PLURALS[comparison.level]
    lines = [f"How {comparison.name} compares: rank 1 is best, among the {comparison.peers} {peers}; an area where "
             "a part is absent and rehabmap holds no such data (or none confirmed yet) is not ranked for it; 'all "
             "equal' where every ranked area has the same figure, so a rank would say nothing. England's figure is "
             "'partly covered' where rehabmap holds that type's data for only part of England: distances to the "
             "nearest service known are then not England's.", ""]
    table = [["type", "indicator", "area", "England", "rank"]]
    for item in comparison.comparisons:
        england = (item.england_unknown.replace("_", " ") if item.england_unknown
                   else _figure(item.indicator, item.england))
        table.append([item.category, item.indicator, _figure(item.indicator, item.value), england, _place(item)])
    lines.append(grid(table, right={2, 3}))
    for key in ranked_tables:
        item = comparison.of(key, "per_100k_adults")
        rows = [["rank", "code", "area", "per 100k"]]
        for area in item.table:
            rows.append([str(area.rank) if area.rank else area.standing.replace("_", " "), area.code,
                         short_name(area.name)[:40] + (" <" if area.code == comparison.code else ""),
                         _figure("per_100k_adults", area.value)])
        lines += ["", f"{item.label}: every {comparison.level.upper() if comparison.level == 'icb' else 'area'} "
                  "by services per 100,000 adults", grid(rows, right={3})]
    return "\n".join(lines)


def _place(item: IndicatorComparison) -> str:
    if item.standing == "all_equal":
        return f"all {item.ranked} equal"
    if item.rank is None:
        return item.standing.replace("_", " ")
    return f"{item.rank} of {item.ranked}" + (f" ({item.not_ranked} not ranked)" if item.not_ranked else "")


def _figure(indicator: str, value: float | int | None) -> str:
    if indicator == "beds_per_100k_adults":
        indicator = "per_100k_adults"
    return indicator_text(indicator, value, "-")


def render_placements(report: PlacementsReport) -> str:
    """The ICB's out-of-area placements in the latest imported month, with the month and its age."""
    lines = [f"Out-of-area placements, {report.month} (NHS Digital open data, {report.age_months} months old; "
             "a suppressed figure is counted apart):", f"  {report.scope}"]
    if not report.area.no_data:
        lines += [f"  {label}: {text}" for label, text in report.rows()]
    if report.unmapped_ccgs:
        one = len(report.unmapped_ccgs) == 1
        lines.append(f"  {ccgs(len(report.unmapped_ccgs))} of {report.month} {'has' if one else 'have'} no sub-ICB "
                     f"location today and count{'s' if one else ''} in no ICB here.")
    return "\n".join(lines)


def render_table(table: GapTable, sort: str | None, order: str | None) -> str:
    """All areas: adults, parts missing, awaiting review and not covered, and per shown type the count and the
    mean distance; where the directory holds no data of a type for an area (or none confirmed yet), '?' stands
    for its count, as on the compare page, because a zero there would claim "none found"."""
    cats = table.categories
    header = ["code", "area", "adults", "missing", "awaiting review", "not covered", "found, may be more"]
    for category in cats:
        header += [f"{category.key} n", "mean km"]
    rows = [header]
    for row in table.sorted_rows(sort, order) + [table.england_row()]:
        cells = [row.code, short_name(row.name)[:40], f"{row.adult_population:,}", str(row.missing_count),
                 str(row.awaiting_review_count), str(row.not_covered_count), str(row.found_may_be_more_count)]
        for category in cats:
            figures = row.types[category.key]
            count = "?" if figures.count is None else str(figures.count)
            cells += [count, _km(figures.mean_km)]
        rows.append(cells)
    return grid(rows, right=set(range(2, len(header))))


def _level_asked(area: str) -> str | None:
    """The level AREA names ('icb', 'la', 'county' and their aliases: every area of it side by side), or None."""
    try:
        return parse_level(area)
    except InvalidValue:
        return None


def _check_options(area: str, level: str | None, shown: tuple[Category, ...], svg_path: Path | None, indicator: str,
                   named: frozenset[str], sort: str | None, desc: bool, files: dict[str, Path | None],
                   one_area: dict[str, object], scenario: bool) -> None:
    """Every option checked before anything is loaded or printed: a bad one was refused after the scorecard (or
    the all-areas table, or a what-if) had been printed above it. Each is one `error:` line (InvalidValue, or the
    file system's error for a folder not there, as writing there would give), exit status 2, nothing else. An
    option that AREA does not use is refused rather than left unread (`gaps Leeds --sort …` sorted nothing);
    `named`: which of --indicator and --headers the command line named, which their values (each has a default)
    cannot tell."""
    check_map_indicator(indicator, shown[0] if level and svg_path is not None else None)  # the name in every case
    for option, path in files.items():
        if path is not None and not path.parent.is_dir():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if "headers" in named and files["--csv"] is None:
        raise InvalidValue("--headers names the columns of the --csv file: give --csv FILE too.", field="headers")
    if "indicator" in named and not (level and svg_path is not None):
        raise InvalidValue("--indicator colours the England map of every area: " + (
            "give --svg FILE too." if level else "give AREA icb, la or county, with --svg."), field="indicator")
    if level:
        if sort:
            sort_by(sort, shown)
        if scenario:
            raise InvalidValue("--add-service/--remove-service need one AREA (an ICB, a local authority, a county "
                               f"council or England), not '{area}' (every area side by side).", field="add_service")
        given = next((option for option, value in one_area.items() if value not in (None, False)), None)
        if given:
            raise InvalidValue(f"{given} is of one area (an ICB, a local authority or a county council), not of "
                               f"'{area}' (every area side by side).", field=given)
        return
    if sort or desc:
        raise InvalidValue(f"{'--sort' if sort else '--desc'} orders the all-areas table: give AREA icb, la or "
                           "county.", field="sort")
    if names_england(area) and svg_path is not None:
        raise InvalidValue("--svg of England: give AREA icb, la or county for an England map (an overview of one "
                           "indicator, by area).", field="svg")
    if names_england(area) and one_area["--compare"]:
        raise InvalidValue("--compare needs an ICB, a local authority or a county council (England is what it "
                           "compares with).", field="compare")


def _echo_table(table: GapTable, level: str, sort: str | None, desc: bool) -> None:
    """All areas' table under its header, and, where England's row shows '?' for a type the directory holds for only
    part of England, that this is no national figure: the header's "no data" is not England's."""
    click.echo(f"All {LEVEL_PLURALS[level]}; adults are people aged 16 and over; mean km is the "
               "population-weighted mean distance to the nearest service; '?' and 'not covered': "
               "rehabmap holds no data of that type for the area yet ('awaiting review': none confirmed yet, "
               "candidates await review); 'found, may be more': parts found where rehabmap does not hold all their "
               "data, so a row is complete only where it too is 0.")
    click.echo(render_table(table, sort, "desc" if desc else "asc"))
    partly = [key for key, status in table.england_row().unknown.items() if status == "partly_covered"]
    if partly:
        click.echo(f"England's '?' ({', '.join(partly)}): no national figure: the directory holds those types' "
                   "data for only part of England, so its count and distances would be of the services known, "
                   "not England's.")


def run_gaps(area: str, types: tuple[str, ...], csv_path: Path | None, human: bool, smallareas_csv: Path | None,
             svg_path: Path | None, indicator: str, community_km: float, inpatient_km: float,
             furthest: int | None, sort: str | None, desc: bool, compare: bool, add: tuple[str, ...],
             remove: tuple[str, ...], named: frozenset[str]) -> None:
    """`rehabmap gaps`, as `cli.gaps.gaps_command` parsed it (`named`: which of --indicator and --headers the command
    line named, not left to their defaults)."""
    from app.parts import open_backend, open_geography
    from rehabmap.config import get_settings
    from rehabmap.maintain.store import store_of

    settings = get_settings()
    options = GapOptions(community_km=community_km, inpatient_km=inpatient_km)
    categories = parse_categories(types)
    scenario = Scenario.from_input(add, remove)
    level = _level_asked(area)
    _check_options(area, level, categories if types else PARTS, svg_path, indicator, named, sort, desc,
                   {"--csv": csv_path, "--smallareas-csv": smallareas_csv, "--svg": svg_path},
                   {"--compare": compare, "--smallareas-csv": smallareas_csv, "--furthest": furthest},
                   bool(scenario))
    small_areas = SmallAreas.load(settings.data_dir)
    points = ServicePoints.from_services(open_backend(settings).all())
    geography = None
    if points.missing_areas() or svg_path or scenario:
        geography = open_geography(settings)
        points.fill_areas(geography.areas)
    analysis = GapAnalysis(small_areas, points)
    coverage = coverage_map(CoverageStore(store_of(settings)), settings.data_dir)
    as_of = AsOf(settings.current_date())
    if scenario:
        result = what_if(analysis, small_areas.find(area), scenario, geography, options, categories, coverage)
        click.echo(render_what_if(result) + "\n")
        analysis = result.analysis
    if level:
        shown = categories if types else PARTS
        table = table_with_coverage(GapTable.of(analysis, level, options, shown), coverage)
        _echo_table(table, level, sort, desc)
        if csv_path:
            csv_path.write_text(table_csv(table, as_of, sort, "desc" if desc else "asc", human), encoding="utf-8")
            click.echo(f"\nwrote {csv_path}")
        if svg_path:
            from rehabmap.gaps.maps import level_geometries, other_geometries, overview_map

            assert geography is not None
            areas = geography.areas
            svg_path.write_text(overview_map(analysis, shown[0], indicator, level_geometries(areas, small_areas, level),
                                             level, options, coverage=coverage,
                                             others=other_geometries(areas, small_areas, level)), encoding="utf-8")
            click.echo(f"wrote {svg_path}")
        return

    code = small_areas.find(area)
    report = AreaGapReport.of(analysis, code, options, categories)
    n_furthest = furthest if furthest is not None else (options.furthest if types else 0)
    click.echo(render_scorecard(report, n_furthest, coverage))
    _echo_beside(report, settings, coverage, compare, tuple(c.key for c in categories if c.is_part)
                 if types else ())
    if csv_path:
        csv_path.write_text(scorecard_csv(_rows(report, coverage), as_of, human), encoding="utf-8")
        click.echo(f"\nwrote {csv_path}")
    if smallareas_csv:
        distances = small_areas_with_coverage(SmallAreaDistances.of(analysis, code, categories), code, coverage)
        smallareas_csv.write_text(small_areas_csv(distances, as_of), encoding="utf-8")
        click.echo(f"wrote {smallareas_csv}")
    if svg_path:
        from rehabmap.gaps.maps import area_geometry, area_map, area_outlines

        assert geography is not None
        category = categories[0] if types else parse_category("community_rehab_team")
        svg = area_map(analysis, code, category, LsoaBoundaries.load(settings.data_dir),
                       area_geometry(geography.areas, small_areas, code),
                       area_outlines(geography.areas, small_areas, code), options, coverage=coverage)
        svg_path.write_text(svg, encoding="utf-8")
        click.echo(f"wrote {svg_path}")


def _echo_beside(report: AreaGapReport, settings: Settings, coverage: CoverageMap, compare: bool,
                 ranked: tuple[str, ...]) -> None:
    """What follows one area's scorecard: its out-of-area placements (an ICB, once imported) and, with
    --compare, how it compares."""
    month = OapStore(settings.home).latest()
    if report.level == "icb" and month is not None:
        click.echo("\n" + render_placements(PlacementsReport.of(month, report.code, settings.current_date(),
                                                                settings.data_dir)))
    if compare:
        click.echo("\n" + render_comparison(rank_area(report.analysis, report.code, report.options, coverage), ranked))
