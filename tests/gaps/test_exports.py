"""The gap exports (rehabmap.gaps.exports) and an area's coverage (CoverageMap.for_area), held to the plain rules they
were written by before session 34 made them faster: every row a `dataclasses.asdict` of its dataclass, every CSV a
`csv.DictWriter` ignoring extra keys, every area's coverage worked out afresh at each ask. Over the real small areas
and areas of England (tests/gaps/conftest.py's services), with claims that leave areas covered, partly covered, not
covered and awaiting review."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from geodata.england import ENGLAND
from rehabmap.coverage import Claim, CoverageMap, SmallAreaTable
from rehabmap.gaps.analysis import GapAnalysis
from rehabmap.gaps.columns import AsOf
from rehabmap.gaps.comparison import AreaRow, GapTable
from rehabmap.gaps.coverage import small_areas_with_coverage, table_with_coverage
from rehabmap.gaps.exports import csv_text, flat_row, small_areas_csv, small_areas_geojson, table_csv
from rehabmap.gaps.population import LsoaBoundaries
from rehabmap.gaps.report import SmallAreaDistance, SmallAreaDistances
from rehabmap.spreadsheet import BOM, defused
from tests.gaps.conftest import TODAY, WEST_YORKSHIRE_ICB

AS_OF = AsOf(TODAY)
LEEDS = "E08000035"
NORFOLK = "E10000020"  # a county council: its districts are areas of their own
UNKNOWN = "E54999999"

# A type covered in one ICB, a subtype across England, a type in one district, a type in a county's districts but
# one (partly covered there), and a subtype held for review in Leeds while its type is covered nowhere.
CLAIMS = [Claim("community_rehab_team", WEST_YORKSHIRE_ICB, "sync:test", "2026-11-01"),
          Claim("supported_accommodation:24h", ENGLAND, "sync:cqc", "2026-11-02"),
          Claim("advocacy", LEEDS, "curated:advocacy.csv", "2026-10-01", "Ann"),
          *(Claim("ips_employment", lad, "curated:ips.csv", "2026-09-30", "Bo")
            for lad in ("E07000143", "E07000144", "E07000145", "E07000146", "E07000147", "E07000148"))]
PENDING = {("inpatient_rehab_level1", LEEDS): 2, ("advocacy:imha", LEEDS): 1}


def coverage_map(data_dir: Path) -> CoverageMap:
    return CoverageMap(CLAIMS, SmallAreaTable.load(data_dir), PENDING)


def plain_flat_row(row: AreaRow, as_of: AsOf) -> dict[str, Any]:
    """`flat_row` as it was written: the row's `asdict`, less the fields given apart, then those."""
    flat = {k: v for k, v in asdict(row).items()
            if k not in {"types", "partly_covered_parts", "kinds_covered_parts", "unknown", "found_may_be_more_parts",
                         "found_may_be_more_count"}}
    for name in ("missing_parts", "awaiting_review_parts", "not_covered_parts"):
        flat[name] = ";".join(getattr(row, name))
    for key, figures in row.types.items():
        flat.update({f"{key}.{name}": value for name, value in figures.values().items()})
    flat["partly_covered_parts"] = ";".join(f"{key}={share:g}" for key, share in row.partly_covered_parts.items())
    flat["kinds_covered_parts"] = ";".join(f"{key}={','.join(kinds)}" for key, kinds in row.kinds_covered_parts.items())
    flat["figures_unknown"] = ";".join(f"{key}={status}" for key, status in row.unknown.items())
    flat["found_may_be_more_parts"] = ";".join(row.found_may_be_more_parts)
    flat["found_may_be_more_count"] = row.found_may_be_more_count
    return flat | as_of.values()


def plain_small_area_record(area: SmallAreaDistance) -> dict[str, Any]:
    facts = asdict(area)
    record = {k: v for k, v in facts.items() if k not in ("nearest", "status", "county_code", "county_name")}
    for key, (km, service_id) in area.nearest.items():
        record |= {f"{key}.km": km, f"{key}.nearest_id": service_id}
    record |= {f"{key}.status": status for key, status in area.status.items()}
    return record | {"county_code": facts["county_code"], "county_name": facts["county_name"]} | AS_OF.values()


def plain_csv(rows: list[dict[str, Any]], columns: list[str], headers: list[str] | None = None) -> str:
    """`csv_text` as it was written: a `DictWriter` that ignores keys no column names."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n", extrasaction="ignore")
    writer.writerow(dict(zip(columns, headers or columns, strict=True)))
    for row in rows:
        writer.writerow({k: defused(v) if isinstance(v, str) else v for k, v in row.items()})
    return buffer.getvalue()


def plain_records(distances: SmallAreaDistances) -> list[tuple[str, dict[str, tuple[float | None, str | None]]]]:
    """Each small area's nearest of each type, read cell by cell from the analysis's arrays."""
    a = distances.analysis
    out = []
    for k, i in enumerate(distances.rows):
        unknown = distances.unknown[k] if distances.unknown else frozenset()
        nearest = {}
        for category in distances.categories:
            j = a.category_index(category)
            km, row = round(float(a.distance_km[j, i]), 3), int(a.nearest_row[j, i])
            nearest[category.key] = (None, None) if category.key in unknown else (
                km if math.isfinite(km) else None, a.points.ids[row] if row >= 0 else None)
        out.append((a.small_areas.codes[i], nearest))
    return out


@pytest.mark.parametrize("code", [WEST_YORKSHIRE_ICB, LEEDS, NORFOLK, "E07000145"])
def test_small_area_exports_are_the_plain_rules(analysis: GapAnalysis, data_dir: Path, code: str) -> None:
    distances = small_areas_with_coverage(SmallAreaDistances.of(analysis, code), code, coverage_map(data_dir))
    records = distances.records()
    assert [(r.lsoa21_code, r.nearest) for r in records] == plain_records(distances)
    # Some figures given, some blanked (their type's figures not facts there).
    assert any(km is not None for r in records for km, _ in r.nearest.values()) and any(distances.unknown)
    columns = list(plain_small_area_record(records[0]))
    assert small_areas_csv(distances, AS_OF) == plain_csv([plain_small_area_record(r) for r in records], columns)


def plain_geojson(distances: SmallAreaDistances, geometry_of: Any) -> str:
    """The small areas' GeoJSON as it was written before session 34: one document, dumped whole."""
    features = []
    for area in distances.records():
        geometry = geometry_of(area.lsoa21_code) if geometry_of else None
        features.append({"type": "Feature", "id": area.lsoa21_code,
                         "geometry": geometry or {"type": "Point", "coordinates": [area.lon, area.lat]},
                         "properties": plain_small_area_record(area)})
    return json.dumps({"type": "FeatureCollection", "features": features, "properties": AS_OF.values()},
                      separators=(",", ":"))


@pytest.mark.parametrize("code", [LEEDS, NORFOLK, "E07000145"])
def test_small_areas_geojson_is_the_whole_document_written_a_feature_at_a_time(analysis: GapAnalysis,
                                                                               data_dir: Path, code: str) -> None:
    distances = small_areas_with_coverage(SmallAreaDistances.of(analysis, code), code, coverage_map(data_dir))
    geometry_of = LsoaBoundaries.load(data_dir).geometry
    for shapes in (geometry_of, None):  # polygons, or each small area's point where none are held
        pieces = list(small_areas_geojson(distances, AS_OF, shapes))
        assert "".join(pieces) == plain_geojson(distances, shapes)
        assert len(pieces) == len(distances.records()) + 2  # streamed: the head, a piece a feature, the tail


def test_england_small_areas_are_the_plain_rules(analysis: GapAnalysis, data_dir: Path) -> None:
    categories = tuple(c for c in analysis.categories if c.key in ("community_rehab_team", "advocacy"))
    distances = small_areas_with_coverage(SmallAreaDistances.of(analysis, ENGLAND, categories), ENGLAND,
                                          coverage_map(data_dir))
    records = distances.records()
    assert len(records) == len(analysis.small_areas)
    assert [(r.lsoa21_code, r.nearest) for r in records] == plain_records(distances)
    assert small_areas_csv(distances, AS_OF) == plain_csv([plain_small_area_record(r) for r in records],
                                                          list(plain_small_area_record(records[0])))


@pytest.mark.parametrize("level", ["icb", "la", "county"])
def test_area_rows_are_the_plain_rule(analysis: GapAnalysis, data_dir: Path, level: str) -> None:
    table = table_with_coverage(GapTable.of(analysis, level), coverage_map(data_dir))
    rows = [*table.rows(), table.england_row()]
    flats = [flat_row(row, AS_OF) for row in rows]
    assert flats == [plain_flat_row(row, AS_OF) for row in rows]
    assert all(list(f) == list(plain_flat_row(r, AS_OF)) for f, r in zip(flats, rows, strict=True))  # in order
    assert any(row.unknown for row in rows) and any(row.not_covered_parts for row in rows)


def test_csv_text_writes_as_a_dict_writer_ignoring_extras() -> None:
    rng = random.Random(34)
    texts = ["", "Leeds", "=SUM(A1)", "+44 113", "-3", "@x", "\tx", "\rx", 'say "hi"', "a,b", "a\r\nb", "Café —",
             " lead", "'quoted"]
    keys = [f"k{i}" for i in range(8)]
    for _ in range(300):
        columns = rng.sample(keys, rng.randint(1, len(keys)))
        rows = [{k: rng.choice([None, rng.choice(texts), rng.randint(-5, 5), rng.uniform(-1e6, 1e6), math.nan,
                                True])
                 for k in rng.sample(keys, rng.randint(0, len(keys)))} for _ in range(rng.randint(0, 6))]
        headers = [rng.choice(texts) or "h" for _ in columns] if rng.random() < 0.3 else None
        assert csv_text(rows, columns, headers) == plain_csv(rows, columns, headers)
    with pytest.raises(ValueError):
        csv_text([{}], ["a", "b"], ["only one"])


def test_an_areas_coverage_is_worked_out_once_and_as_afresh(data_dir: Path, analysis: GapAnalysis) -> None:
    kept = coverage_map(data_dir)
    table = kept.table
    codes = sorted(table.codes_of("icb") | table.codes_of("utla"))[::3] + [LEEDS, NORFOLK, "E07000145", ENGLAND]
    categories = [c.key for c in analysis.categories] + ["advocacy:imha"]
    pairs = [(code, category) for code in codes for category in categories]
    random.Random(7).shuffle(pairs)
    for code, category in pairs + pairs[: len(pairs) // 2]:  # each asked once, half of them again
        assert kept.for_area(code, category) == coverage_map(data_dir).for_area(code, category), (code, category)
    assert {a.status for a in (kept.for_area(c, k) for c, k in pairs)} >= {"covered", "partly_covered",
                                                                          "not_covered"}
    assert kept.for_area(LEEDS, "inpatient_rehab_level1").pending_review == 2
    # An unknown code is answered (nothing there), never kept: a request can name any code it likes.
    held = len(kept._areas)
    for code in (f"E54999{n:03d}" for n in range(500)):
        assert kept.for_area(code, "advocacy") == coverage_map(data_dir).for_area(code, "advocacy")
    assert kept.for_area(UNKNOWN, "advocacy").status == "not_covered"
    assert len(kept._areas) == held


def test_an_area_every_kind_of_which_is_covered_is_covered_in_its_row(analysis: GapAnalysis, data_dir: Path) -> None:
    """Every advocacy kind claimed for Nottingham and Nottinghamshire ICB, advocacy as a whole not: its row said
    advocacy "not covered" (or found "may be more") while a search from a home in the ICB said "complete Advocacy
    data". Now the area's answer is the kinds' (`CoverageMap.for_area`), as at a home: covered, so none found there is
    a fact (missing) and any found are all there are; the CSV's flat row says the same."""
    notts = "E54000060"
    claims = [Claim(f"advocacy:{kind}", notts, f"curated:{kind}.csv", "2026-12-01") for kind in
              ("imha", "imca", "care_act", "community")]
    table = table_with_coverage(GapTable.of(analysis, "icb"), CoverageMap(claims, SmallAreaTable.load(data_dir)))
    row = next(r for r in table.rows() if r.code == notts)
    found = row.types["advocacy"].count > 0
    assert "advocacy" not in row.not_covered_parts and "advocacy" not in row.unknown
    assert "advocacy" not in row.found_may_be_more_parts and "advocacy" not in row.kinds_covered_parts
    assert ("advocacy" in row.missing_parts) is not found
    flat = flat_row(row, AS_OF)
    assert "advocacy" not in str(flat["not_covered_parts"]) and "advocacy" not in str(flat["found_may_be_more_parts"])


def test_a_figure_that_may_be_more_ranks_as_the_bound_it_is_in_either_order(analysis: GapAnalysis,
                                                                            data_dir: Path) -> None:
    """Rows tied on a figure were ordered by code alone: an ICB whose community teams the directory holds all of
    sat beside one with as many found where there may be more ("2" and "2+" on the compare page) as if equal. A
    count found where there may be more is a lower bound: ascending "2, 2+", descending "2+, 2", then the code;
    adults beyond the threshold, where there may be more services, an upper bound: the other way. Until the
    review, "2" came before "2+" in both orders. Sorted by the parts missing, found-may-be-more counts as less
    complete. One sort: the CSV's rows are the API's."""
    teams = "community_rehab_team"
    found = sorted((r for r in GapTable.of(analysis, "icb").rows() if r.types[teams].count),
                   key=lambda r: r.code)
    claimed = [r.code for r in found[1::2]]  # every other ICB with a team, by code: the ties mix both
    claims = [Claim(teams, code, "curated:teams.csv", "2026-11-20", "Ann") for code in claimed]
    table = table_with_coverage(GapTable.of(analysis, "icb"), CoverageMap(claims, SmallAreaTable.load(data_dir)))
    for indicator, lower_bound in (("count", True), ("population_beyond_threshold", False)):
        for order in ("asc", "desc"):
            sort = f"{teams}.{indicator}"
            rows = table.sorted_rows(sort, order)
            figures = [r.types[teams].values()[indicator] for r in rows if teams not in r.unknown]
            assert figures == sorted(figures, reverse=order == "desc")
            ties = [[((teams in r.found_may_be_more_parts) == lower_bound, r.code) for r in rows
                     if teams not in r.unknown and r.types[teams].values()[indicator] == n] for n in set(figures)]
            assert any(len({bound for bound, _ in tie}) == 2 for tie in ties), sort  # some tie has both kinds
            assert all(tie == sorted(tie, key=lambda t: (t[0] == (order == "asc"), t[1])) for tie in ties), (
                sort, order)
            sheet = csv.DictReader(io.StringIO(table_csv(table, AS_OF, sort, order).removeprefix(BOM)))
            assert [r["code"] for r in sheet][:-1] == [r.code for r in rows]
    by_gaps = table.sorted_rows("missing_count")
    keys = [(r.missing_count, r.awaiting_review_count + r.not_covered_count, r.found_may_be_more_count)
            for r in by_gaps]
    assert keys == sorted(keys) and len({k[:2] for k in keys}) < len(set(keys))  # may-be-more splits some ties
    assert [r.code for r in table.sorted_rows("missing_count", "desc")] == [
        r.code for r in sorted(by_gaps, key=lambda r: (-r.missing_count, -(r.awaiting_review_count
                                                                           + r.not_covered_count),
                                                        -r.found_may_be_more_count, r.code))]
