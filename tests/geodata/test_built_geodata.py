"""The tests' geodata cache (tests/built_geodata.py) opens a build again only while nothing the build reads has
changed: a changed, added or removed source file makes a new build, from the files as they are now."""

import json
import shutil
from pathlib import Path

import pytest

from tests.built_geodata import built_geodata, inputs_key
from tests.geodata.conftest import onspd_sources


@pytest.fixture
def sources(onspd_source_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of the ONSPD-layout slice that the test may change, and a cache of the test's own."""
    monkeypatch.setenv("REHABMAP_TEST_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "source"
    shutil.copytree(onspd_source_folder, folder, symlinks=True)
    with onspd_sources(folder):
        yield folder


def built_at(out: Path) -> str:
    return json.loads((out / "manifest.json").read_text())["built_at"]


def test_an_unchanged_source_opens_the_same_build(sources: Path) -> None:
    first = built_geodata(sources)
    made = built_at(first)
    (first / "manifest.json").touch()
    again = built_geodata(sources)
    assert again == first and built_at(again) == made
    assert sorted(p.name for p in first.iterdir()) == [
        "geodata.sqlite", "icb.geojson", "icb.wkb", "lad.geojson", "lad.wkb", "manifest.json", "region.geojson",
        "region.wkb", "sub_icb.geojson", "sub_icb.wkb",
    ]  # fmt: skip: nothing of the cache's own inside the folder the tests read


def test_a_changed_postcode_file_is_built_again_from_its_new_content(sources: Path) -> None:
    first = built_geodata(sources)
    postcodes = sources / "postcodes" / "ONSPD_NOV_2025_UK.csv"
    lines = postcodes.read_text(encoding="utf-8").splitlines(keepends=True)
    postcodes.write_text("".join(line for line in lines if not line.startswith("M11 1AA,")), encoding="utf-8")
    second = built_geodata(sources)
    assert second != first
    assert json.loads((first / "manifest.json").read_text())["counts"]["postcodes"] == \
        json.loads((second / "manifest.json").read_text())["counts"]["postcodes"] + 1


def test_a_file_added_beside_the_sources_changes_the_key(sources: Path) -> None:
    before = inputs_key(sources)
    (sources / "postcodes" / "gb_sector_centroids_onspd_nov2025.csv").write_text("sector,lat,lon\n")
    added = inputs_key(sources)
    (sources / "boundaries" / "lad_2024_bsc.geojson").unlink()
    assert len({before, added, inputs_key(sources)}) == 3


def test_geonames_is_an_input(sources: Path) -> None:
    before = inputs_key(sources)
    places = sources / "places.json"
    places.write_text(places.read_text(encoding="utf-8").replace('"Manchester"', '"Manchestre"', 1),
                      encoding="utf-8")
    assert inputs_key(sources) != before
