"""The all-areas CSV, its sheet-style twin and the data dictionary come from one definition of the columns:
every key an exported row carries has exactly one definition, in the CSV's order, and the API serves them."""

from __future__ import annotations

import csv
import io

import pytest

from rehabmap.gaps.categories import ALL_CATEGORIES, parse_categories
from rehabmap.gaps.columns import AsOf, area_columns
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.coverage import table_with_coverage
from rehabmap.gaps.exports import flat_row, table_csv
from rehabmap.gaps.options import GapOptions
from rehabmap.spreadsheet import BOM
from tests.gaps.conftest import TODAY
from tests.gaps.gaps_api import backend, client, writer  # noqa: F401 (the API fixtures)

AS_OF = AsOf(TODAY)


@pytest.mark.parametrize("level", ["icb", "la", "county"])
def test_every_exported_key_has_one_definition_in_order(analysis, level):
    table = GapTable.of(analysis, level)
    columns = area_columns(table.categories, table.options)
    keys = [c.key for c in columns]
    assert len(keys) == len(set(keys))
    rows = [*table.rows(), table.england_row()]
    exported: list[str] = []
    for row in rows:
        exported += [k for k in flat_row(row, AS_OF) if k not in exported]
    # A row never carries a key the dictionary lacks, and the dictionary has nothing no row carries.
    assert exported == keys
    for column in columns:
        assert column.header and column.meaning.endswith(".") and column.unit and column.source and column.vintage
    assert len({c.header for c in columns}) == len(columns)  # a sheet's headers tell its columns apart


def test_human_headers_head_the_same_cells_in_words(analysis):
    """The sheet's cells are the keyed CSV's, its words in plain words as its headers are: before, it kept `icb`,
    `inpatient_rehab_level1;…` and `False` under "Level", "Parts missing" and "… far if local units were full"."""
    table = GapTable.of(analysis, "icb", GapOptions(community_km=20), parse_categories(["inpatient_rehab_level2"]))
    keyed, human = (list(csv.reader(io.StringIO(table_csv(table, AS_OF, "name", human=h).removeprefix(BOM))))
                    for h in (False, True))
    assert [len(row) for row in keyed] == [len(row) for row in human] and len(keyed) == 44
    columns = area_columns(table.categories, table.options)
    assert keyed[0] == [c.key for c in columns] and human[0] == [c.header for c in columns]
    assert human[0][:2] == ["Area code", "Area name"]
    assert ("Level 2 inpatient rehabilitation unit (higher support): share of adults beyond the threshold "
            "distance (50 km)") in human[0]
    worded = {"level", "missing_parts", "inpatient_rehab_level2.fallback_far"}
    for k, column in enumerate(columns):  # figures, codes and ids as they are
        assert column.key in worded or [row[k] for row in keyed[1:]] == [row[k] for row in human[1:]], column.key
    cells = [dict(zip(keyed[0], row)) for row in human[1:]]
    assert {row["level"] for row in cells} == {"integrated care board", "country"}
    assert {row["inpatient_rehab_level2.fallback_far"] for row in cells[:-1]} == {"yes", "no"}
    assert any("Level 2 inpatient rehabilitation unit (higher support)" in row["missing_parts"] for row in cells)
    assert not any("_" in row[key] for row in cells for key in worded)


def test_thresholds_are_in_the_wording(analysis):
    columns = {c.key: c for c in area_columns(ALL_CATEGORIES, GapOptions(community_km=12.5, inpatient_km=80))}
    assert "(12.5 km)" in columns["community_rehab_team.share_beyond_threshold"].header
    assert "(80 km)" in columns["inpatient_rehab_level2.population_beyond_threshold"].header
    assert "exceeds 80 km" in columns["inpatient_rehab_level2.fallback_far"].meaning
    assert columns["community_rehab_team.per_100k_adults"].unit == "per 100,000 adults"
    assert "Census 2021" in columns["adult_population"].source


def test_api_serves_the_sheet_and_its_dictionary(client):  # noqa: F811
    params = {"level": "la", "type": "community_rehab_team"}
    keyed = client.get("/gaps/areas.csv", params=params)
    sheet = client.get("/gaps/areas.csv", params={**params, "headers": "human"})
    assert sheet.status_code == 200 and 'filename="rehabmap-gaps-la-sheet-' in sheet.headers["content-disposition"]
    keyed_rows, sheet_rows = (list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")))) for r in (keyed, sheet))
    assert [row[:2] for row in keyed_rows[1:]] == [row[:2] for row in sheet_rows[1:]] and len(sheet_rows) == 298
    assert {row[2] for row in sheet_rows[1:]} == {"local authority", "country"}  # the level, in words
    dictionary = client.get("/gaps/dictionary", params={"type": "community_rehab_team"})
    assert dictionary.status_code == 200, dictionary.text
    body = dictionary.json()
    assert body["export"] == "/gaps/areas.csv" and body["options"]["community_threshold_km"] == 30
    assert [c["key"] for c in body["columns"]] == keyed_rows[0]
    assert [c["header"] for c in body["columns"]] == sheet_rows[0]
    as_csv = list(csv.DictReader(io.StringIO(client.get("/gaps/dictionary.csv", params={
        "type": "community_rehab_team"}).content.decode("utf-8-sig"))))
    assert as_csv == [{k: str(v) for k, v in c.items()} for c in body["columns"]]
    bad = client.get("/gaps/areas.csv", params={**params, "headers": "pretty"})
    assert bad.status_code in (400, 422) and "headers" in bad.text


def test_coverage_columns_are_defined(analysis, client):  # noqa: F811
    # The API's table carries the coverage split; its not_covered columns are in the dictionary too.
    state = client.app.state.rehabmap
    table = table_with_coverage(GapTable.of(analysis, "icb"), state.coverage())
    keys = {c.key for c in area_columns(table.categories)}
    assert set(flat_row(table.rows()[0], AS_OF)) <= keys and {"not_covered_parts", "not_covered_count"} <= keys
