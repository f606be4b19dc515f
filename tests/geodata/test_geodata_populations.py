"""GeoNames populations checked against the people living around each town's point (`geodata.populations`), on the
real cities500 towns and the 2021 small areas."""

import csv
import json
from pathlib import Path

import pytest

from geodata.distance import great_circle_km
from geodata.downloads import find_sources, read_geonames, read_small_areas
from geodata.errors import AmbiguousPlace
from geodata.geography import Geography
from geodata.populations import unsupported

MISPLACED = ["Watton", "Stone", "Ryton", "Loughton", "Ingleby Greenhow", "Fylde", "Burwell", "Mendip", "High Peak"]


def test_the_towns_whose_population_no_one_around_them_could_be(data_dir: Path) -> None:
    """Nine of the 1,563 towns of 5,000 or more: a namesake's population (Loughton, Essex's 33,346 under the hamlet in
    Shropshire, with no small area's centre within 4.6 km), or a district's at one point (High Peak, Fylde,
    Mendip). Each is recounted here by brute force over every small area."""
    sources = find_sources(data_dir)
    towns = read_geonames(sources.places).england
    small_areas = read_small_areas(sources.small_areas)
    found = unsupported(towns, small_areas)
    assert [d.town.name for d in found] == MISPLACED
    for doubtful in found:
        within = sum(a.population for a in small_areas
                     if great_circle_km(doubtful.town.lat, doubtful.town.lon, a.lat, a.lon) <= doubtful.reach_km)
        assert doubtful.people_within_reach == int(within) and doubtful.town.population > 2 * within
    assert found[3].describe() == "Loughton (52.43333, -2.56667): 33,346 stated, 0 live within 4.6 km"


def test_a_namesake_with_a_towns_population_no_longer_takes_its_searches(geography: Geography,
                                                                         geodata_dir: Path) -> None:
    """Before, 'Loughton' searched from the hamlet in Shropshire, shown as the home; now both Loughtons GeoNames
    lists are asked about, and since session 41 Loughton, Essex (not in its list: its MSOAs' name, in Epping
    Forest) beside them. The build's manifest names each population counted as unknown."""
    with pytest.raises(AmbiguousPlace) as raised:
        geography.places.lookup("Loughton")
    assert raised.value.choices == ["Loughton, Epping Forest", "Loughton, Shropshire", "Loughton, Milton Keynes"]
    manifest = json.loads((geodata_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [line.split(" (")[0] for line in manifest["populations_unsupported"]] == MISPLACED


def test_a_district_filed_on_a_moor_is_the_district_at_the_centre_of_its_people(geography: Geography,
                                                                                data_dir: Path) -> None:
    """GeoNames' High Peak (92,666 people at a point on Kinder Scout's moors, 1,045 living within 5.7 km) took the
    district's name, so the district's own centre was never a place: 'High Peak' searched from the moor."""
    from rehabmap.small_areas import small_area_file

    people = lat = lon = 0.0
    with open(small_area_file(data_dir), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["ltla24_name"] == "High Peak":
                weight = float(row["pop_total_c2021"])
                people, lat, lon = people + weight, lat + weight * float(row["lat"]), lon + weight * float(row["lon"])
    place = geography.places.lookup("High Peak")
    assert (place.lat, place.lon, place.population) == (round(lat / people, 6), round(lon / people, 6), int(people))


@pytest.mark.parametrize(("typed", "choices"), [("Hayes", ["Hayes, Hillingdon", "Hayes, Bromley"]),
                                                ("Warton", ["Warton, Lancaster", "Warton, Fylde"]),
                                                ("Stone, Kent", ["Stone, Dartford", "Stone, Ashford"])])
def test_places_of_one_name_and_county_are_told_apart_by_their_authority(geography: Geography, typed: str,
                                                                         choices: list[str]) -> None:
    """Before, 'Hayes' offered 'Hayes, Greater London' twice, and either, typed back, asked again."""
    with pytest.raises(AmbiguousPlace) as raised:
        geography.places.lookup(typed)
    assert raised.value.choices == choices
    assert [geography.places.lookup(choice).label for choice in choices] == choices
