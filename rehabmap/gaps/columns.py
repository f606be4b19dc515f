"""The gaps exports' columns, defined once: each column's key, the header a person reads, what it means,
its unit, where its figures come from and of when. The CSV with machine names, the sheet-style CSV with human
headers and the data dictionary the API serves are all made from `area_columns`, so they cannot drift apart
(a test checks that every key of an exported row has exactly one definition here); the command line's one-area
CSV from `scorecard_columns`, in the same words.

Every download says what its data are of (`AsOf`): the directory's services on the day it was made and the census
year of its population, in its last two columns (`as_of`, `population_year`) and in its file name. Columns, not a
line above the header: that would break RFC 4180 readers (the first line is the header) and Excel would take it
for the header; as the last columns, a sheet that reads the others by position keeps working."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from typing import Any

from rehabmap.gaps.categories import ALL_CATEGORIES, Category
from rehabmap.gaps.indicators import FALLBACK_INDICATORS, INDICATOR_LABELS, INDICATORS, UNITS
from rehabmap.gaps.options import ADULT_DEFINITION, GapOptions
from rehabmap.gaps.population import LEVEL_LABELS
from rehabmap.gaps.report import ScorecardRow

# Where the figures come from, and of when.
CENSUS = "ONS Census 2021 usual residents by age, per LSOA (2021 boundaries)"
SMALL_AREAS = ("ONS LSOA 2021 population-weighted centroids (V3) and the LSOA 2021 to sub-ICB/ICB 2024 and LAD 2024 "
               "lookup")
AREAS = ("ONS ICB (April 2023, codes unchanged in 2024), local authority district (May 2024) and upper-tier local "
         "authority (2023) codes and names")
DIRECTORY = "the rehabmap directory as indexed when the file was made (each service's own sources)"
DIRECTORY_AND_CENSUS = f"{DIRECTORY}; adults from {CENSUS}"
DIRECTORY_AND_CENTROIDS = f"{DIRECTORY}; distances from {SMALL_AREAS}, weighted by {CENSUS}"
NOW = "when the file was made"
CENSUS_YEAR = 2021


@dataclass(frozen=True)
class AsOf:
    """What a download's figures are of: the directory's services on `services` (the day the file was made: the
    figures are worked out from the directory as it stands) and the population of the census `population_year`."""

    services: date
    population_year: int = CENSUS_YEAR

    def values(self) -> dict[str, Any]:
        """The last two columns of every row."""
        return {"as_of": self.services.isoformat(), "population_year": self.population_year}

    def file_name(self, stem: str, extension: str) -> str:
        """'rehabmap-gaps-icb-2026-12-02-census2021.csv': the date a person sees before opening it."""
        return f"{stem}-{self.services.isoformat()}-census{self.population_year}.{extension}"


# A type's status in an area in the words a person reads (the sheet-style CSV's cells; the pages' tags).
STATUS_WORDS = {"present": "found in the area", "missing": "missing (covered, none found)",
                "awaiting_review": "none confirmed yet (candidates await review)",
                "not_covered": "not covered (no data held yet)",
                "partly_covered": "partly covered (no data held for the rest)"}
_LABELS = {c.key: c.label for c in ALL_CATEGORIES}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    meaning: str
    unit: str
    source: str
    vintage: str

    def readable(self, value: Any) -> Any:
        """The value as the sheet-style CSV gives it, in words as its header is: a level, a list of parts, a yes or
        no and a status as a person reads them (the sheet kept `inpatient_rehab_level1`, `partly_covered` and
        `False` under headers in plain words); figures, codes and ids as they are."""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if not isinstance(value, str) or not value:
            return value
        if self.key == "level":
            return LEVEL_LABELS.get(value, value)
        if self.key == "status":
            return STATUS_WORDS.get(value, value)
        if self.unit == "list of type codes":
            return "; ".join(_LABELS.get(key, key) for key in value.split(";"))
        if self.unit.startswith("list of type=proportion"):
            return "; ".join(f"{_LABELS.get(key, key)} (data held for {float(share):.0%} of adults)"
                             for key, share in (item.split("=") for item in value.split(";")))
        if self.unit == "list of type=status":
            return "; ".join(f"{_LABELS.get(key, key)}: {STATUS_WORDS.get(status, status)}"
                             for key, status in (item.split("=") for item in value.split(";")))
        if self.unit == "list of type=kinds":
            return "; ".join(f"{_LABELS.get(key, key)} (data held only for "
                             f"{', '.join(_LABELS.get(kind, kind) for kind in kinds.split(','))})"
                             for key, kinds in (item.split("=") for item in value.split(";")))
        return value


# The facts of an area, in the order of the export (the fields of `comparison.AreaRow` except its types).
_AREA_FACTS: tuple[Column, ...] = (
    Column("code", "Area code", "The ONS code of the area (E54… ICB, E06–E09… local authority, E10… county "
           "council, E92000001 England).", "code", AREAS, "2024"),
    Column("name", "Area name", "The area's name.", "text", AREAS, "2024"),
    Column("level", "Level", "'icb' (integrated care board), 'la' (local authority), 'county' (county council) or "
           "'england'.", "text", AREAS, "2024"),
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


def far_meaning(threshold: str) -> str:
    """What fallback_far means, one meaning wherever it is given (the API, the CSVs, the scorecard's
    `inpatient_fallback_far`, which lists the types it is true of): before, a type flagged far with no mean was
    listed by the scorecard and null in the API and the CSVs."""
    return (f"true where the mean distance to the nearest unit outside the area exceeds {threshold}, and where "
            "there is no mean because some of the area's adults have no unit outside it that takes them (rehabmap "
            "knows of none outside the area, or the catchments of those outside leave part of it out); false where "
            "the mean is within it; empty (null) where England has no unit of the type, and where the area's "
            "figures of the type are unknown.")


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
            f"{category.label}: {far_meaning(_threshold_text(category, options))}",
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

# After the partly covered parts, so that the columns before it kept their places when it came.
_KINDS_COVERED = Column(
    "kinds_covered_parts", "Parts covered for some kinds only", "Of the parts not covered, those for which rehabmap "
    "holds complete data here for some of their kinds only, each as '<type>=<kind>,<kind>' (kinds as "
    "'type:subtype'), separated by ';': CQC's listing is complete for 24-hour staffed care homes, not for the rest "
    "of supported accommodation. None was found of the kinds covered; nothing is known of the rest, so the part's "
    "figures are left empty.", "list of type=kinds", DIRECTORY, NOW)

# After the kinds covered, so that the columns before it kept their places when it came.
_FIGURES_UNKNOWN = Column(
    "figures_unknown", "Why figures are empty", "Each type (or 'type:subtype') whose figures in this row are left "
    "empty because they would not be facts, as '<type>=<status>', separated by ';': not_covered (no data held "
    "here), partly_covered (data held for only part of the area or some kinds; England's, unless rehabmap holds "
    "the type's data for all of England) or awaiting_review (none confirmed yet). An empty figure of a type not "
    "listed here is empty for another reason (no service of the type known anywhere).", "list of type=status",
    DIRECTORY_AND_CENSUS, NOW)

# After why figures are empty, so that the columns before them kept their places when they came (session 52).
_FOUND_MAY_BE_MORE = (
    Column("found_may_be_more_parts", "Parts found, may be more", "The parts found inside the area (not missing) "
           "for which rehabmap does not hold all the data here, or candidates await review: some are found, but "
           "there may be more, so the row is not complete although nothing is missing. Separated by ';'.",
           "list of type codes", DIRECTORY, NOW),
    Column("found_may_be_more_count", "Number of parts found, may be more", "How many parts are found but may have "
           "more (the list above).", "count", DIRECTORY, NOW),
)

# The last two columns of every download (`AsOf`).
DATED: tuple[Column, ...] = (
    Column("as_of", "Services as of", "The day the file was made: its services are rehabmap's directory's on that "
           "day (ISO 8601, YYYY-MM-DD).", "date", DIRECTORY, NOW),
    Column("population_year", "Population year", "The census year of the population figures and weights.", "year",
           CENSUS, "Census 2021"),
)


def area_columns(categories: tuple[Category, ...], options: GapOptions | None = None) -> list[Column]:
    """Every column of the all-areas export for these categories, in order."""
    options = options or GapOptions()
    return [*_AREA_FACTS, *(c for category in categories for c in _category_columns(category, options)),
            _PARTLY_COVERED, _KINDS_COVERED, _FIGURES_UNKNOWN, *_FOUND_MAY_BE_MORE, *DATED]


_SCORECARD: dict[str, Column] = {c.key: c for c in (
    Column("category", "Type code", "The part of the pathway (or 'type:subtype') the row is about.", "type code",
           DIRECTORY, NOW),
    Column("label", "Type", "The type's name.", "text", DIRECTORY, NOW),
    Column("present", "Found in the area", "true where some of the type are inside the area.", "true/false",
           DIRECTORY, NOW),
    Column("threshold_km", "Threshold distance (km)", "The distance beyond which an adult counts as far from the "
           "type.", "km", DIRECTORY, NOW),
    Column("fallback_far", "Far if local units were full", f"Inpatient types: {far_meaning('the threshold distance')}",
           "true/false", DIRECTORY_AND_CENTROIDS, NOW),
    Column("nearest_provider_id", "Nearest service to the area's centre (id)", "The rehabmap id of the service "
           "nearest the area's population-weighted centre (ties to the lower id).", "service id", DIRECTORY, NOW),
    Column("nearest_provider_name", "Nearest service to the area's centre (name)", "Its name.", "text", DIRECTORY,
           NOW),
    Column("nearest_provider_icb", "Nearest service's ICB", "The ICB the nearest service is in.", "text",
           DIRECTORY, NOW),
    Column("status", "Status", "present, missing (covered, none found), awaiting_review (none confirmed yet), "
           "not_covered or partly_covered (rehabmap holds no such data for the area, or for only part of it).",
           "text", DIRECTORY, NOW),
    Column("share_of_adults_covered", "Share of adults the directory holds this type's data for", "Of the area's "
           "adults, the share living where rehabmap holds the type's data.", "proportion (0-1)",
           DIRECTORY_AND_CENSUS, NOW),
)}


def _scorecard_indicator(name: str) -> Column:
    """An indicator of the row's type, in the indicator's own words (its threshold is the row's)."""
    label = INDICATOR_LABELS[name]
    unit = "adults" if name == "population_beyond_threshold" else _UNIT_NAMES[UNITS[name]]
    return Column(name, label[0].upper() + label[1:], f"The row's type: {label}.", unit,
                  _SOURCES.get(name, DIRECTORY_AND_CENTROIDS), f"{NOW}; Census 2021")


def scorecard_columns() -> list[Column]:
    """Every column of one area's scorecard CSV (the command line's `--csv`: one row a type), in `ScorecardRow`
    order, then the dated ones; the area's facts and the indicators in the all-areas export's words."""
    facts = {c.key: c for c in _AREA_FACTS}
    own = {"area_code": replace(facts["code"], key="area_code"), "area_name": replace(facts["name"], key="area_name")}
    return [*(own.get(f.name) or (_scorecard_indicator(f.name) if f.name in INDICATOR_LABELS else _SCORECARD[f.name])
              for f in fields(ScorecardRow)), *DATED]


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
