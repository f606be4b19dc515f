import sqlite3
from pathlib import Path

import numpy as np
import pytest

from geodata.geography import Geography
from geodata.errors import InvalidCoordinates, InvalidLocation, InvalidPostcode, OutsideEngland, UnknownPostcode


def test_full_postcode_in_leeds(geography: Geography) -> None:
    home = geography.resolve(postcode=" ls97tf ")
    assert (home.lat, home.lon) == (53.806869, -1.520359)
    assert (home.label, home.precision, home.district) == ("LS9 7TF", "postcode", "LS9")
    assert (home.areas.lad_code, home.areas.lad_name) == ("E08000035", "Leeds")
    assert (home.areas.icb_code, home.areas.icb_name) == (
        "E54000054",
        "NHS West Yorkshire Integrated Care Board",
    )
    assert home.areas.region_code == "E12000003"


def test_full_postcode_in_manchester(geography: Geography) -> None:
    home = geography.resolve(postcode="M1 1AA")
    assert (home.lat, home.lon) == (53.487362, -2.227197)
    assert (home.areas.lad_code, home.areas.lad_name) == ("E08000003", "Manchester")
    assert (home.areas.icb_code, home.areas.sub_icb_code) == ("E54000057", "E38000217")
    assert home.areas.region_name == "North West"


def test_islands_are_covered(geography: Geography) -> None:
    home = geography.resolve(postcode="TR21 0HE")  # St Mary's, Isles of Scilly
    assert (home.areas.lad_code, home.areas.icb_code) == ("E06000053", "E54000036")


def test_an_island_district_and_sector_are_placed_on_the_island(geography: Geography) -> None:
    """TR21 is St Mary's, Isles of Scilly, but 16 of its 103 postcodes (TR21 0AA among them) lie at one point at
    Penzance, 57–60 km from the others: the mean of its postcodes, the ONS-derived centroid, lay in the sea 7 km
    east of the island, more than 5 km from any English area, and `TR21` and `TR21 0` were refused as outside
    England. Each is placed at its postcode nearest that mean, on St Mary's."""
    island = geography.resolve(postcode="TR21 0HE")
    for given in ("TR21", "TR21 0"):
        home = geography.resolve(postcode=given)
        assert (home.areas.lad_code, home.areas.icb_code) == ("E06000053", "E54000036")
        assert -6.33 < home.lon < -6.26 and 49.90 < home.lat < 49.94  # St Mary's
        assert abs(home.lat - island.lat) < 0.05 and abs(home.lon - island.lon) < 0.05


def test_sector_and_district(geography: Geography) -> None:
    sector = geography.resolve(postcode="ls9 7")
    district = geography.resolve(postcode="LS9")
    assert (sector.label, sector.precision, sector.district) == ("LS9 7", "sector", "LS9")
    assert (district.label, district.precision, district.district) == ("LS9", "district", "LS9")
    assert sector.areas.icb_code == district.areas.icb_code == "E54000054"


def test_place(geography: Geography) -> None:
    home = geography.resolve(place="st. albans")
    assert (home.label, home.precision, home.district) == ("St Albans, Hertfordshire", "place", None)
    assert (home.areas.lad_code, home.areas.icb_code) == ("E07000240", "E54000025")


def test_point(geography: Geography) -> None:
    home = geography.resolve(lat=53.48095, lon=-2.23743)
    assert (home.precision, home.district, home.label) == ("point", None, "53.48095, -2.23743")
    assert home.areas.lad_code == "E08000003"


def test_errors_name_the_postcode(geography: Geography) -> None:
    with pytest.raises(InvalidPostcode, match="'LS9 7TFX'"):
        geography.resolve(postcode="LS9 7TFX")
    with pytest.raises(UnknownPostcode, match="'ZZ1 1ZZ'"):
        geography.resolve(postcode="zz1 1zz")


@pytest.mark.parametrize(
    ("given", "said"),
    [({}, "longitude."), ({"postcode": "LS9 7TF", "place": "Leeds"}, "(got postcode and place)."),
     ({"postcode": "LS9 7TF", "lat": 53.8, "lon": -1.5}, "(got postcode and lat/lon)."),
     ({"place": "Leeds", "lon": -1.5}, "(got place and lat/lon).")],
)
def test_exactly_one_kind_of_location(geography: Geography, given: dict[str, object], said: str) -> None:
    with pytest.raises(InvalidLocation, match="exactly one") as raised:
        geography.resolve(**given)  # type: ignore[arg-type]
    assert str(raised.value).endswith(said)


def test_coordinates_must_be_complete_in_range_and_in_england(geography: Geography) -> None:
    with pytest.raises(InvalidCoordinates):
        geography.resolve(lat=53.8)
    with pytest.raises(InvalidCoordinates) as raised:
        geography.resolve(lat=53.8, lon=200.0)
    assert raised.value.field == "lon"
    with pytest.raises(OutsideEngland):
        geography.resolve(lat=55.9533, lon=-3.1883)  # Edinburgh


def test_a_homes_areas_equal_the_polygon_test_at_every_level(geography: Geography, geodata_dir: Path) -> None:
    """`locate` for one home skips the LAD and region polygons the directory's LAD overrides, and finds
    candidates without the tree: over real postcodes, sectors and districts it must give exactly what the
    batch path gives after testing every level's polygons."""
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:
        postcodes = db.execute("SELECT pcds FROM postcodes WHERE doterm IS NULL").fetchall()
        sectors = db.execute("SELECT sector FROM sectors").fetchall()
        districts = db.execute("SELECT district FROM districts").fetchall()
    rng = np.random.default_rng(20261201)
    asked = [postcodes[i][0] for i in rng.choice(len(postcodes), 4000, replace=False)]
    asked += [sectors[i][0] for i in rng.choice(len(sectors), 1000, replace=False)] + [d[0] for d in districts]
    points, homes = [], []
    for text in asked:
        point = geography.postcodes.lookup(text)
        points.append(point)
        try:
            homes.append(geography.locate(point.lat, point.lon, point.lad_code))  # not `resolve`: it refuses more
        except OutsideEngland:
            homes.append(None)
    expected = geography.locate_all(
        [p.lat for p in points], [p.lon for p in points], [p.lad_code for p in points]
    )
    assert homes == expected
    assert sum(home is not None for home in homes) > len(asked) - 10
