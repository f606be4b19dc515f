"""How an area compares: each indicator of each part of the pathway beside the England value, and the area's
place in a ranked table of every area of its level (all 42 ICBs, all 296 local authorities or all 21 county councils).

Ranked: services per 100,000 adults, beds per 100,000 adults, the population-weighted mean distance and the
share of adults beyond the threshold. Rank 1 is the best (most services or beds per adult, shortest
distance, fewest adults beyond the threshold); equal figures (as rounded for the API) share a rank, and the
next rank skips ("1, 2, 2, 4").

Coverage honesty: an area where a part is absent and the directory holds no such data (`not_covered`, the
scorecard's word, `rehabmap.gaps.coverage`), or none is confirmed yet while candidates await review there
(`awaiting_review`), is listed without a figure and not ranked for that part: its zero is not a zero.
Where every ranked area has the same figure (all 42 ICBs with no level 2 unit, say), "rank 1" would say
nothing: each is `all_equal`, with no rank. **Beds** are known for an area only when every service of the type
inside it states its beds; else the figure is left out (and not ranked), never counted as no beds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geodata.england import ENGLAND
from rehabmap.coverage import Coverage, CoverageMap
from rehabmap.gaps.analysis import GapAnalysis, LevelIndicators
from rehabmap.gaps.categories import PARTS, Category
from rehabmap.gaps.coverage import figures_told, national_figure_unknown, part_status
from rehabmap.gaps.indicators import indicator_value
from rehabmap.gaps.options import GapOptions

RANKED: tuple[str, ...] = ("per_100k_adults", "beds_per_100k_adults", "mean_km", "share_beyond_threshold")
RANKED_LABELS = {"per_100k_adults": "services per 100,000 adults (16+)",
                 "beds_per_100k_adults": "beds per 100,000 adults (16+), where every service states its beds",
                 "mean_km": "population-weighted mean distance to the nearest service (km)",
                 "share_beyond_threshold": "share of adults beyond the threshold distance"}
HIGHER_IS_BETTER = {"per_100k_adults": True, "beds_per_100k_adults": True, "mean_km": False,
                    "share_beyond_threshold": False}
Standing = Literal["ranked", "all_equal", "awaiting_review", "not_covered", "not_known"]


@dataclass(frozen=True)
class RankedArea:
    code: str
    name: str
    value: float | None
    rank: int | None  # None: not ranked (see `standing`)
    standing: Standing


@dataclass(frozen=True)
class IndicatorComparison:
    """One indicator of one part: the area, England, and every area of the level, best first."""

    category: str
    label: str
    indicator: str
    indicator_label: str
    higher_is_better: bool
    value: float | None
    england: float | None
    rank: int | None
    ranked: int  # how many areas are ranked (all_equal: how many share the one figure)
    standing: Standing
    not_ranked: int  # areas listed but not ranked (not covered, awaiting review, or the figure not known)
    table: list[RankedArea]
    # Why `england` is null where it is not a fact, as `figures_told` tells it: `partly_covered` where the type's
    # data are held for part of England only (a dash said nothing of why, beside an area's figure), `not_covered`
    # or `awaiting_review` where none is found anywhere; None where England's figure is given.
    england_unknown: str | None


@dataclass(frozen=True)
class AreaComparison:
    code: str
    name: str
    level: str
    peers: int  # areas of the level, the area included
    comparisons: list[IndicatorComparison]

    def of(self, category: str, indicator: str) -> IndicatorComparison:
        return next(c for c in self.comparisons if c.category == category and c.indicator == indicator)


def beds_per_100k(analysis: GapAnalysis, ind: LevelIndicators, category: Category) -> np.ndarray:
    """Per area of `ind`'s level, beds per 100,000 adults; NaN where any service of the type inside does not
    state its beds. No services: 0."""
    groups = analysis.service_groups(ind.level)
    rows = analysis.service_rows(category)
    rows = rows[groups[rows] >= 0]
    beds = analysis.points.beds[rows]
    known = ~np.isnan(beds)
    n = len(ind.codes)  # the level's groups: its areas (`ind`'s) come first, any others after
    total = np.bincount(groups[rows][known], weights=beds[known], minlength=n)[:n]
    unknown = np.bincount(groups[rows][~known], minlength=n)[:n] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ind.adult_pop > 0, total / ind.adult_pop * 1e5, np.nan)
    out[unknown] = np.nan
    return out


def compare(analysis: GapAnalysis, code: str, options: GapOptions | None = None,
            coverage: CoverageMap | None = None, categories: tuple[Category, ...] = PARTS) -> AreaComparison:
    """The area `code` (an ICB or a local authority) against England and every area of its level."""
    options = options or GapOptions()
    key = code.strip().upper()
    level = analysis.small_areas.level_of(key)
    ind = analysis.indicators(level, options, categories)
    england = analysis.indicators("england", options, categories)
    g = ind.codes.tolist().index(key)
    out = []
    for j, category in enumerate(categories):
        unknown = _unknown(ind, j, category, coverage)
        # England too may hold no such data, or hold it for part of England only (`national_figure_unknown`)
        told = None if coverage is None else figures_told(ENGLAND, bool(england.values["count"][j][0] > 0),
                                                          coverage.for_area(ENGLAND, category.key))
        for name in RANKED:
            if name == "beds_per_100k_adults":
                values, england_values = beds_per_100k(analysis, ind, category), beds_per_100k(analysis, england,
                                                                                              category)
            else:
                values, england_values = ind.values[name][j], england.values[name][j]
            england_value = math.nan if told else float(england_values[0])
            out.append(_ranked(ind, category, name, values, england_value, unknown, g, told))
    return AreaComparison(key, str(ind.names[g]), level, len(ind.codes), out)


def _unknown(ind: LevelIndicators, j: int, category: Category, coverage: CoverageMap | None) -> list[Standing | None]:
    """Per area of `ind`'s level, where its figure of `category` (column `j`) is unknown, its standing."""
    counts = ind.values["count"][j]
    return [None if coverage is None else _no_data(coverage.for_area(str(c), category.key)) if counts[i] == 0
            else "not_covered" if str(c) == ENGLAND and national_figure_unknown(
                ENGLAND, True, coverage.for_area(ENGLAND, category.key)) else None
            for i, c in enumerate(ind.codes)]


def _no_data(answer: Coverage) -> Standing | None:
    """Where an absent part's figure is unknown, the area's standing: listed without a figure, not ranked."""
    status = part_status(False, answer)
    return "awaiting_review" if status == "awaiting_review" else "not_covered" if status == "not_covered" else None


def _ranked(ind: LevelIndicators, category: Category, name: str, values: np.ndarray, england: float,
            unknown: list[Standing | None], g: int, england_unknown: str | None) -> IndicatorComparison:
    unit = "per_100k_adults" if name == "beds_per_100k_adults" else name
    rounded = [None if unknown[i] else indicator_value(unit, v) for i, v in enumerate(values)]
    better = HIGHER_IS_BETTER[name]
    standing: list[Standing] = [unknown[i] or ("not_known" if rounded[i] is None else "ranked")
                                for i in range(len(rounded))]
    ranked = [float(rounded[i]) for i in range(len(rounded)) if standing[i] == "ranked"]  # type: ignore[arg-type]
    all_equal = len(ranked) > 1 and min(ranked) == max(ranked)
    ranks: list[int | None] = []
    for i, value in enumerate(rounded):
        if standing[i] != "ranked" or value is None or all_equal:
            ranks.append(None)
            continue
        ranks.append(1 + sum(1 for other in ranked if (other > value if better else other < value)))
    if all_equal:
        standing = ["all_equal" if s == "ranked" else s for s in standing]
    table = [RankedArea(str(ind.codes[i]), str(ind.names[i]), rounded[i], ranks[i], standing[i])
             for i in range(len(rounded))]
    table.sort(key=lambda a: (a.rank is None, a.rank or 0, a.name))
    return IndicatorComparison(
        category=category.key, label=category.label, indicator=name, indicator_label=RANKED_LABELS[name],
        higher_is_better=better, value=rounded[g], england=indicator_value(unit, england), rank=ranks[g],
        ranked=len(ranked), standing=standing[g], not_ranked=len(rounded) - len(ranked), table=table,
        england_unknown=england_unknown)
