import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import Point

import geodata.areas as areas_module
from geodata.areas import AreaCodes
from geodata.geography import Geography
from geodata.errors import InvalidCoordinates, OutsideEngland, UnknownArea
from geodata.layout import AREA_LEVELS, boundary_path, boundary_wkb_path
from geodata.shapes import _parsed, read_boundaries

SAMPLE = 3000


@pytest.fixture(scope="module")
def lsoa_sample(data_dir: Path) -> list[dict[str, str]]:
    """A seeded random sample of English LSOA population-weighted centroids with their official areas."""
    with (data_dir / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 33755
    picks = np.random.default_rng(20240401).choice(len(rows), SAMPLE, replace=False)
    return [rows[i] for i in picks]


def _located(geography: Geography, rows: list[dict[str, str]]) -> dict[str, np.ndarray]:
    return geography.areas.locate_many(
        np.array([float(r["lat"]) for r in rows]), np.array([float(r["lon"]) for r in rows])
    )


def test_icb_by_point_in_polygon_equals_the_official_lsoa_lookup(
    geography: Geography, lsoa_sample: list[dict[str, str]]
) -> None:
    found = _located(geography, lsoa_sample)["icb"]
    wrong = [
        (r["lsoa21_code"], r["icb24_code"], f)
        for r, f in zip(lsoa_sample, found, strict=True)
        if f != r["icb24_code"]
    ]
    assert wrong == []


def test_sub_icb_by_point_in_polygon_agrees_with_the_official_lookup(
    geography: Geography, lsoa_sample: list[dict[str, str]]
) -> None:
    found = _located(geography, lsoa_sample)
    sub_icb = np.mean([f == r["sicbl24_code"] for r, f in zip(lsoa_sample, found["sub_icb"], strict=True)])
    lad = np.mean([f == r["ltla24_code"] for r, f in zip(lsoa_sample, found["lad"], strict=True)])
    region = np.mean([f == r["region24_code"] for r, f in zip(lsoa_sample, found["region"], strict=True)])
    print(
        f"agreement with the official LSOA lookup: sub-ICB {sub_icb:.4%}, LAD {lad:.4%}, region {region:.4%}"
    )
    assert sub_icb >= 0.99
    assert lad >= 0.99
    assert region >= 0.99


def test_locate_many_equals_locate(geography: Geography, lsoa_sample: list[dict[str, str]]) -> None:
    rows = lsoa_sample[:200]
    many = _located(geography, rows)
    for i, row in enumerate(rows):
        one = geography.locate(float(row["lat"]), float(row["lon"]))
        assert (one.icb_code, one.sub_icb_code, one.lad_code, one.region_code) == (
            many["icb"][i],
            many["sub_icb"][i],
            many["lad"][i],
            many["region"][i],
        )


def test_locate_all_equals_locate(geography: Geography, lsoa_sample: list[dict[str, str]]) -> None:
    lats = [float(r["lat"]) for r in lsoa_sample]
    lons = [float(r["lon"]) for r in lsoa_sample]
    lads: list[str | None] = [None] * len(lats)
    # Postcode LADs: a known code (Barnsley's boundary code), the 2025 re-code the boundaries do not
    # know (E08000038, which falls back to the polygon), a neighbour's code, and rubbish.
    for i, code in enumerate(["E08000016", "E08000038", "E08000035", "E99999999", "E06000001"] * 40):
        lads[i * 7] = code
    # Just off generalised coasts, outside England, and far out at sea.
    extra = [(53.6, -3.1, None), (50.05, -5.72, None), (52.95, 1.35, "E07000147"), (54.0, -3.3, None),
             (55.9533, -3.1883, None), (51.4816, -3.1791, "E08000035"), (48.8566, 2.3522, None),
             (53.55, -3.08, None), (51.15, 1.42, None), (50.57, -2.45, None)]
    lats += [e[0] for e in extra]
    lons += [e[1] for e in extra]
    lads += [e[2] for e in extra]
    found = geography.locate_all(lats, lons, lads)
    expected: list[AreaCodes | None] = []
    for lat, lon, lad in zip(lats, lons, lads, strict=True):
        try:
            expected.append(geography.locate(lat, lon, lad))
        except OutsideEngland:
            expected.append(None)
    assert found == expected
    assert sum(f is None for f in found) >= 4
    assert any(f is not None and f.lad_code == "E08000016" for f in found)
    assert geography.locate_all([], [], []) == []


def test_locate_many_marks_points_outside_england_with_none(geography: Geography) -> None:
    found = geography.areas.locate_many(
        np.array([53.806869, 55.9533, 48.8566]), np.array([-1.520359, -3.1883, 2.3522])
    )
    assert list(found["icb"]) == ["E54000054", None, None]
    assert found["lad"].dtype == object
    junk = geography.areas.locate_many(np.array([np.nan, 53.8, 200.0]), np.array([0.0, np.nan, -1.5]))
    assert all(list(codes) == [None, None, None] for codes in junk.values())
    assert geography.areas.locate_many(np.array([]), np.array([]))["icb"].shape == (0,)


def test_locate_names_every_level(geography: Geography) -> None:
    areas = geography.locate(53.806869, -1.520359)
    assert areas == AreaCodes(
        icb_code="E54000054",
        icb_name="NHS West Yorkshire Integrated Care Board",
        sub_icb_code="E38000225",
        sub_icb_name="NHS West Yorkshire ICB - 15F",
        lad_code="E08000035",
        lad_name="Leeds",
        region_code="E12000003",
        region_name="Yorkshire and The Humber",
    )
    assert areas.codes() == ("E54000054", "E38000225", "E08000035", "E12000003")


def test_lad_code_from_the_directory_wins_and_brings_its_region(geography: Geography) -> None:
    areas = geography.locate(53.806869, -1.520359, lad_code="E08000036")  # Wakefield
    assert (areas.lad_code, areas.lad_name, areas.region_code) == ("E08000036", "Wakefield", "E12000003")
    assert areas.icb_code == "E54000054"
    # A code the boundaries do not know falls back to the polygon.
    assert geography.locate(53.806869, -1.520359, lad_code="E99999999").lad_code == "E08000035"


def test_locate_makes_one_areacodes_per_combination_of_areas(
        geography: Geography, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two homes in the same four areas share one (frozen) AreaCodes: a request's home is not a new object of
    eight fields each time. The directory's LAD is part of what is kept by; past the bound, none is kept."""
    leeds = geography.locate(53.806869, -1.520359)
    assert geography.locate(53.8005, -1.5491) is leeds  # Leeds city centre: the same ICB, sub-ICB, LAD, region
    wakefield = geography.locate(53.806869, -1.520359, lad_code="E08000036")
    assert wakefield is not leeds and wakefield.lad_code == "E08000036" and leeds.lad_code == "E08000035"
    assert geography.locate(53.806869, -1.520359, lad_code="E08000036") is wakefield
    monkeypatch.setattr(areas_module, "_MADE_AT_MOST", 0)
    monkeypatch.setattr(geography.areas, "_made", {})
    first, again = geography.locate(53.806869, -1.520359), geography.locate(53.806869, -1.520359)
    assert first == again == leeds and first is not again


def test_point_just_off_a_generalised_coast_belongs_to_the_nearest_area(geography: Geography) -> None:
    # In the sea off Southport, inside 5 km of the Sefton coast.
    assert geography.locate(53.6, -3.1).icb_code == "E54000008"


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(55.9533, -3.1883), (51.4816, -3.1791), (48.8566, 2.3522), (54.0, -3.3)],
    ids=["Edinburgh", "Cardiff", "Paris", "Irish Sea"],
)
def test_outside_england(geography: Geography, lat: float, lon: float) -> None:
    with pytest.raises(OutsideEngland, match="outside England"):
        geography.locate(lat, lon)


@pytest.mark.parametrize(("lat", "lon"), [(91, 0), (0, 181), (float("nan"), 0), ("north", 0)])
def test_impossible_coordinates(geography: Geography, lat: object, lon: object) -> None:
    with pytest.raises(InvalidCoordinates):
        geography.locate(lat, lon)  # type: ignore[arg-type]


def test_areas_get_and_level_of(geography: Geography) -> None:
    index = geography.areas
    assert [len(index.areas(level)) for level in ("icb", "sub_icb", "lad", "region")] == [42, 106, 296, 9]
    leeds = index.get("E08000035")
    assert (leeds.name, leeds.level) == ("Leeds", "lad")
    assert leeds.geometry.contains(Point(-1.520359, 53.806869))
    assert index.level_of("E54000057") == "icb"
    assert index.level_of("E38000217") == "sub_icb"
    assert index.level_of("E12000007") == "region"
    assert all(area.code.startswith(("E06", "E07", "E08", "E09")) for area in index.areas("lad"))


def test_unknown_area_code_is_named(geography: Geography) -> None:
    with pytest.raises(UnknownArea, match="'W06000015'"):
        geography.areas.get("W06000015")


def test_the_binary_boundaries_are_the_geojson_s_and_never_read_stale(geodata_dir: Path, tmp_path: Path) -> None:
    """The build's binary form gives every level's properties and every polygon's WKB as the GeoJSON parsed;
    once the GeoJSON differs from what it was made from, the GeoJSON is read."""
    for level in AREA_LEVELS:
        assert boundary_wkb_path(geodata_dir, level).is_file()
        properties, geometries = read_boundaries(geodata_dir, level)
        parsed_properties, parsed = _parsed(boundary_path(geodata_dir, level).read_bytes())
        assert properties == parsed_properties
        assert shapely.to_wkb(geometries).tolist() == shapely.to_wkb(parsed).tolist()
    for path in (boundary_path(geodata_dir, "region"), boundary_wkb_path(geodata_dir, "region")):
        shutil.copy(path, tmp_path)
    edited = boundary_path(tmp_path, "region")
    edited.write_bytes(edited.read_bytes().replace(b'"London"', b'"Greater London"'))
    properties, _ = read_boundaries(tmp_path, "region")
    assert "Greater London" in [feature["name"] for feature in properties]
