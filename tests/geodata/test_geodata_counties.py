"""The hand tables of county names (`geodata.counties`) against the small-area file: every district in a
ceremonial county, every member an area of the file. A reorganisation (a new unitary authority, as Cumberland in
2023) fails here until the tables say where it lies."""

import csv
from collections import Counter
from pathlib import Path

import pytest

from geodata.counties import CEREMONIAL_COUNTIES, FORMER_COUNTIES, METROPOLITAN_COUNTIES, OLD_COUNTIES, SHORT_FORMS


@pytest.fixture(scope="module")
def councils(data_dir: Path) -> dict[str, tuple[str, str]]:
    """Each district's code → its name and its upper-tier authority's, as the small-area file gives them."""
    from rehabmap.small_areas import small_area_file

    with open(small_area_file(data_dir), newline="", encoding="utf-8") as handle:
        return {row["ltla24_code"]: (row["ltla24_name"], row["utla23_name"]) for row in csv.DictReader(handle)}


def test_every_district_lies_in_one_ceremonial_county(councils: dict[str, tuple[str, str]]) -> None:
    """A unitary, metropolitan or London district by its code, a county council's district by its council's name;
    only Stockton-on-Tees lies in two (the Tees divides it between County Durham and North Yorkshire)."""
    held = Counter(member for members in CEREMONIAL_COUNTIES.values() for member in members)
    counts = {code: held[code] if name == upper else held[upper] for code, (name, upper) in councils.items()}
    assert {code: n for code, n in counts.items() if n != 1} == {"E06000004": 2}
    assert all(upper in CEREMONIAL_COUNTIES[upper] for name, upper in councils.values() if name != upper)


def test_every_member_is_an_area_of_the_small_area_file(councils: dict[str, tuple[str, str]]) -> None:
    county_councils = {upper for name, upper in councils.values() if name != upper}
    members = {member for table in (CEREMONIAL_COUNTIES, FORMER_COUNTIES, OLD_COUNTIES)
               for ms in table.values() for member in ms}
    assert members <= county_councils | set(councils), sorted(members - county_councils - set(councils))
    assert sorted(code for ms in METROPOLITAN_COUNTIES.values() for code in ms) == sorted(
        code for code in councils if code.startswith("E08"))
    assert set(CEREMONIAL_COUNTIES["Greater London"]) == {code for code in councils if code.startswith("E09")}


def test_every_short_form_is_of_a_county_or_a_council(councils: dict[str, tuple[str, str]]) -> None:
    names = {name for pair in councils.values() for name in pair} | set(CEREMONIAL_COUNTIES) | set(OLD_COUNTIES)
    assert set(SHORT_FORMS) <= names
