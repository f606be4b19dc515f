"""A gap analysis as files a commissioner opens elsewhere: CSV for a spreadsheet, GeoJSON for a GIS.

One flat row per area (or small area), each indicator a column named '<type>.<indicator>', then what the data are
of (`columns.AsOf`: the services' day and the population's census year). A CSV starts with a UTF-8 byte order mark
and text a spreadsheet would run as a formula is written with a leading apostrophe, as in the services export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from rehabmap.gaps.columns import AsOf, Column, area_columns, dictionary_rows, scorecard_columns
from rehabmap.gaps.comparison import AreaRow, GapTable
from rehabmap.gaps.report import ScorecardRow, SmallAreaDistance, SmallAreaDistances
from rehabmap.spreadsheet import BOM, defused

GeometryOf = Callable[[str], dict[str, Any] | None]


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None,
             headers: list[str] | None = None) -> str:
    """Rows as CSV after the byte order mark Excel reads UTF-8 by (`rehabmap.spreadsheet.BOM`: without it "—"
    showed as "â€”"), header first (the column keys, or `headers` in their place); None is an empty cell; text
    that a spreadsheet would run is quoted."""
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    buffer.write(BOM)
    # CRLF, as RFC 4180 and the services export: with "\n" a value holding a carriage return went unquoted and
    # split its row for most readers.
    writer = csv.writer(buffer, lineterminator="\r\n")
    if headers is not None and len(headers) != len(columns):
        raise ValueError(f"{len(headers)} headers for {len(columns)} columns")
    writer.writerow(headers or columns)
    # Each row's cells read in the columns' order (a key a row lacks is an empty cell; one no column names is not
    # written), as a `DictWriter` ignoring extras wrote them, without its dict a row and generator a cell.
    for row in rows:
        writer.writerow([defused(v) if isinstance(v, str) else v for v in map(row.get, columns)])
    return buffer.getvalue()


def _fields(item: Any, leave_out: frozenset[str]) -> dict[str, Any]:
    """A dataclass's fields in their order, but `leave_out`, each value the object itself: `asdict` copied every
    value deep (an area's figures of each type, a small area's nearest services and statuses) only for the row
    to leave it out or replace it, ~70% of a small-area CSV's time (bench/RESULTS.md, session 34). Every value
    kept is text, a number, None or a list the row replaces by its joined text."""
    return {k: v for k, v in vars(item).items() if k not in leave_out}


# An area's fields not given as they are: its types (flattened), the parts partly covered or covered for some kinds,
# and the statuses behind the empty figures (each a list in one cell); the parts found that may have more, after
# them (the CSV's columns before kept their places).
_NOT_FLAT = frozenset({"types", "partly_covered_parts", "kinds_covered_parts", "unknown", "found_may_be_more_parts",
                       "found_may_be_more_count"})


def flat_row(row: AreaRow, as_of: AsOf) -> dict[str, Any]:
    """An area of a comparison as one flat record: its facts, then '<type>.<indicator>' for every type, then
    the parts only partly covered as '<type>=<share of adults>' (after the others, as it came after them), those
    covered for some kinds only as '<type>=<kinds>', the types whose figures are unknown as '<type>=<status>' (the
    empty cells' reason, which a reader of the CSV had no other way to tell), the parts found that may have more,
    then what the data are of."""
    flat = _fields(row, _NOT_FLAT)
    flat["missing_parts"] = ";".join(row.missing_parts)
    flat["awaiting_review_parts"] = ";".join(row.awaiting_review_parts)
    flat["not_covered_parts"] = ";".join(row.not_covered_parts)
    for category_key, figures in row.types.items():
        for name, value in figures.values().items():
            flat[f"{category_key}.{name}"] = value
    flat["partly_covered_parts"] = ";".join(f"{key}={share:g}" for key, share in row.partly_covered_parts.items())
    flat["kinds_covered_parts"] = ";".join(f"{key}={','.join(kinds)}" for key, kinds in row.kinds_covered_parts.items())
    flat["figures_unknown"] = ";".join(f"{key}={status}" for key, status in row.unknown.items())
    flat["found_may_be_more_parts"] = ";".join(row.found_may_be_more_parts)
    flat["found_may_be_more_count"] = row.found_may_be_more_count
    return flat | as_of.values()


def _headed(rows: list[dict[str, Any]], columns: list[Column], human: bool) -> str:
    """Rows under their columns' keys or, `human`, the headers and cells a person reads (the sheet-style CSV)."""
    if not human:
        return csv_text(rows, [c.key for c in columns])
    readable = [{c.key: c.readable(row.get(c.key)) for c in columns} for row in rows]
    return csv_text(readable, [c.key for c in columns], [c.header for c in columns])


def table_csv(table: GapTable, as_of: AsOf, sort: str | None = None, order: str | None = None,
              human: bool = False) -> str:
    """Every area of the level, sorted, then England as the last row; its columns are `area_columns`'."""
    rows = [flat_row(r, as_of) for r in table.sorted_rows(sort, order)] + [flat_row(table.england_row(), as_of)]
    return _headed(rows, area_columns(table.categories, table.options), human)


def dictionary_csv(columns: list[Column]) -> str:
    """The data dictionary of an export as CSV: one row per column."""
    return csv_text(dictionary_rows(columns))


def _compact(value: Any) -> str:
    """JSON without spaces, as every GeoJSON download here is written."""
    return json.dumps(value, separators=(",", ":"))


def table_geojson(table: GapTable, geometry_of: Callable[[str], str | None], as_of: AsOf) -> str:
    """Areas with their indicators as properties, as compact GeoJSON text; `geometry_of(code)` gives each its
    geometry as GeoJSON text already written (the outlines are made once a process, `maps.area_geojson`), spliced
    in as it is: the figures are written per request, the shapes never again."""
    features = ",".join(f'{{"type":"Feature","id":{_compact(row.code)},"geometry":{geometry_of(row.code) or "null"},'
                        f'"properties":{_compact(flat_row(row, as_of))}}}' for row in table.rows())
    properties = {"level": table.level, **table.options.to_dict(), **as_of.values(),
                  "england": flat_row(table.england_row(), as_of)}
    return f'{{"type":"FeatureCollection","features":[{features}],"properties":{_compact(properties)}}}'


def scorecard_csv(rows: list[ScorecardRow], as_of: AsOf, human: bool = False) -> str:
    """One area's scorecard, a row a type (the command line's `--csv`)."""
    return _headed([asdict(r) | as_of.values() for r in rows], scorecard_columns(), human)


# Each small area's county council, after its statuses (they came later; a sheet reading by position keeps working).
_COUNTY = ("county_code", "county_name")
# A small area's fields given apart: each type's nearest and status (a column each), its county (after them).
_NOT_SMALL_FLAT = frozenset({"nearest", "status", *_COUNTY})


def _small_area_record(area: SmallAreaDistance, as_of: AsOf) -> dict[str, Any]:
    """The area's facts, '<type>.km' and '<type>.nearest_id' for every type, then each type's status (after
    the others, as it came after them: a spreadsheet reading columns by position keeps working), its county
    council, then what the data are of."""
    record = _fields(area, _NOT_SMALL_FLAT)
    for key, (km, service_id) in area.nearest.items():
        record[f"{key}.km"] = km
        record[f"{key}.nearest_id"] = service_id
    for key, status in area.status.items():
        record[f"{key}.status"] = status
    return record | {k: getattr(area, k) for k in _COUNTY} | as_of.values()


def small_areas_csv(distances: SmallAreaDistances, as_of: AsOf) -> str:
    columns = ["lsoa21_code", "lsoa21_name", "icb_code", "la_code", "la_name", "lat", "lon", "adult_population"]
    for category in distances.categories:
        columns += [f"{category.key}.km", f"{category.key}.nearest_id"]
    columns += [f"{category.key}.status" for category in distances.categories]
    return csv_text([_small_area_record(a, as_of) for a in distances.records()],
                    [*columns, *_COUNTY, *as_of.values()])


def small_areas_geojson(distances: SmallAreaDistances, as_of: AsOf,
                        geometry_of: GeometryOf | None = None) -> Iterator[str]:
    """Small areas as compact GeoJSON text, a feature at a time: their polygon from `geometry_of(code)` when given
    (and known), else their population-weighted centroid as a point. The text of the whole collection's
    `json.dumps` (compact), written a feature at a time so that it is streamed: England's is 79 MB, and as one
    document it was ~3x that in memory while it was written (bench/RESULTS.md, session 34)."""
    yield '{"type":"FeatureCollection","features":['
    for n, area in enumerate(distances.records()):
        geometry = geometry_of(area.lsoa21_code) if geometry_of else None
        if geometry is None:
            geometry = {"type": "Point", "coordinates": [area.lon, area.lat]}
        yield ("," if n else "") + _compact({"type": "Feature", "id": area.lsoa21_code, "geometry": geometry,
                                             "properties": _small_area_record(area, as_of)})
    yield f'],"properties":{_compact(as_of.values())}}}'
