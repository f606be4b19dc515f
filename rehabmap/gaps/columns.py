"""The all-areas export's columns, defined once: each column's key, the header a person reads, what it means,
its unit, where its figures come from and of when. The CSV with machine names, the sheet-style CSV with human
headers and the data dictionary the API serves are all made from `area_columns`, so they cannot drift apart
(a test checks that every key of an exported row has exactly one definition here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rehabmap.gaps.categories import Category
from rehabmap.gaps.indicators import FALLBACK_INDICATORS, INDICATOR_LABELS, INDICATORS, UNITS
from rehabmap.gaps.options import ADULT_DEFINITION, GapOptions

# Where the figures come from, and of when.
CENSUS = "ONS Census 2021 usual residents by age, per LSOA (2021 boundaries)"
SMALL_AREAS = ("ONS LSOA 2021 population-weighted centroids (V3) and the LSOA 2021 to sub-ICB/ICB 2024 and LAD 2024 "
               "lookup")
AREAS = "ONS ICB (April 2023, codes unchanged in 2024) and local authority district (May 2024) codes and names"
DIRECTORY = "the rehabmap directory as indexed when the file was made (each service's own sources)"
DIRECTORY_AND_CENSUS = f"{DIRECTORY}; adults from {CENSUS}"
DIRECTORY_AND_CENTROIDS = f"{DIRECTORY}; distances from {SMALL_AREAS}, weighted by {CENSUS}"
NOW = "when the file was made"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    meaning: str
    unit: str
    source: str
    vintage: str


# The facts of an area, in the order of the export (the fields of `comparison.AreaRow` except its types).
_AREA_FACTS: tuple[Column, ...] = (
    Column("code", "Area code", "The ONS code of the area (E54… ICB, E06–E09… local authority, E92000001 England).",
           "code", AREAS, "2024"),
    Column("name", "Area name", "The area's name.", "text", AREAS, "2024"),
    Column("level", "Level", "'icb' (integrated care board), 'la' (local authority) or 'england'.", "text",
           AREAS, "2024"),
    Column("adult_population", "Adults (16+)", f"Adults {ADULT_DEFINITION}, living in the area.", "people",
           CENSUS, "Census 2021"),
    Column("total_population", "Total population", "Usual residents of every age living in the area.", "people",
           CENSUS, "Census 2021"),
    Column("small_areas", "Small areas (LSOAs)", "How many 2021 LSOAs make up the area.", "count", SMALL_AREAS,
           "LSOA 2021"),
    Column("missing_parts", "Parts missing", "The parts of the pathway with no service inside the area although "
           "the directory covers the area for them, separated by ';'.", "list of type codes", DIRECTORY, NOW),
    Column("missing_count", "Number of parts missing", "How many parts are missing (the list above).", "count",
           DIRECTORY, NOW),
    Column("legacy_locked", "Legacy 'locked rehabilitation' labels", "Services inside the area still described "
           "as 'locked rehabilitation', a label the current pathway no longer uses.", "count", DIRECTORY, NOW),
    Column("pd_specialist", "Personality-disorder units", "Inpatient units inside the area that specialise in "
           "personality disorder.", "count", DIRECTORY, NOW),
    Column("awaiting_review_parts", "Parts awaiting review", "The parts absent inside the area of which none is "
           "confirmed yet while candidates there await the directory's review (not the same as missing; the "
           "part's figures are left empty), separated by ';'.", "list of type codes", DIRECTORY, NOW),
    Column("awaiting_review_count", "Number of parts awaiting review", "How many parts await review (the list "
           "above).", "count", DIRECTORY, NOW),
    Column("not_covered_parts", "Parts not covered", "The parts absent inside the area for which rehabmap holds "
           "no data there yet (not covered, which is not the same as missing; the part's figures are left empty), "
           "separated by ';'.",
           "list of type codes", DIRECTORY, NOW),
    Column("not_covered_count", "Number of parts not covered", "How many parts are not covered (the list above).",
           "count", DIRECTORY, NOW),
)

_UNIT_NAMES = {"count": "count", "rate": "per 100,000 adults", "km": "km", "share": "proportion (0-1)"}
_SOURCES = {"count": DIRECTORY, "per_100k_adults": DIRECTORY_AND_CENSUS,
            "population_beyond_threshold": DIRECTORY_AND_CENTROIDS}


def _threshold_text(category: Category, options: GapOptions) -> str:
    return f"{options.threshold(category):g} km"


def _indicator_column(category: Category, name: str, options: GapOptions) -> Column:
    label = INDICATOR_LABELS[name].replace("the threshold distance", f"the threshold distance "
                                          f"({_threshold_text(category, options)})")
    label = label.replace("beyond the threshold if", f"beyond {_threshold_text(category, options)} if")
    unit = "adults" if name == "population_beyond_threshold" else _UNIT_NAMES[UNITS[name]]
    meaning = f"{category.label}: {label}."
    if name in FALLBACK_INDICATORS:
        meaning += " Measured to the nearest unit outside the area, as if every local unit were full."
    elif name not in ("count", "per_100k_adults"):
        meaning += " Distances are great-circle, from each LSOA's population-weighted centroid to the nearest " \
                   "service of the type anywhere in England."
    return Column(f"{category.key}.{name}", f"{category.label}: {label}", meaning, unit,
                  _SOURCES.get(name, DIRECTORY_AND_CENTROIDS), f"{NOW}; Census 2021")


def _category_columns(category: Category, options: GapOptions) -> list[Column]:
    """A category's columns in `comparison.TypeFigures.values` order: the fallback ones for inpatient types."""
    names = [n for n in INDICATORS if category.is_inpatient or n not in FALLBACK_INDICATORS]
    columns = [_indicator_column(category, name, options) for name in names]
    if category.is_inpatient:
        columns.append(Column(
            f"{category.key}.fallback_far", f"{category.label}: far if local units were full",
            f"{category.label}: true where the mean distance to the nearest unit outside the area exceeds "
            f"{_threshold_text(category, options)}.",
            "true/false", DIRECTORY_AND_CENTROIDS, NOW))
    columns.append(Column(
        f"{category.key}.nearest_provider_id", f"{category.label}: nearest service to the area's centre (id)",
        f"{category.label}: the rehabmap id of the service nearest the area's population-weighted centre "
        "(ties to the lower id).", "service id", DIRECTORY, NOW))
    return columns


# After every type's columns, so that the columns before it kept their places when it came.
_PARTLY_COVERED = Column(
    "partly_covered_parts", "Parts only partly covered", "Of the parts not covered (the list above), those for "
    "which rehabmap holds data in only some of the area, each as '<type>=<share of the area's adults it holds "
    "data for>' (0-1), separated by ';': none was found where it holds the data, nothing is known of the rest, "
    "so the part's figures are left empty.", "list of type=proportion (0-1)", DIRECTORY_AND_CENSUS, NOW)


def area_columns(categories: tuple[Category, ...], options: GapOptions | None = None) -> list[Column]:
    """Every column of the all-areas export for these categories, in order."""
    options = options or GapOptions()
    return [*_AREA_FACTS, *(c for category in categories for c in _category_columns(category, options)),
            _PARTLY_COVERED]


def dictionary_rows(columns: list[Column]) -> list[dict[str, str]]:
    """The data dictionary as CSV rows: one per column, in the export's order."""
    return [asdict(c) for c in columns]


@dataclass(frozen=True)
class DataDictionary:
    """What the API serves: the export it describes, the thresholds its wording uses, and every column."""

    export: str
    options: dict[str, Any]
    columns: list[Column]

    @classmethod
    def of(cls, export: str, categories: tuple[Category, ...], options: GapOptions) -> DataDictionary:
        return cls(export, options.to_dict(), area_columns(categories, options))
