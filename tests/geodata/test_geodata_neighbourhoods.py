"""The vendored HoC Library MSOA Names and how a build reads and places them."""

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from geodata.downloads import _MSOA_NAMES, find_sources
from geodata.layout import FORMAT_VERSION
from geodata.neighbourhoods import _names


def test_the_vendored_names_are_every_english_msoa_once() -> None:
    """Version 1.9 has 6,791 English MSOAs (E02, 2011 codes); the file keeps only the code and the name."""
    with _MSOA_NAMES.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert header == ["msoa11cd", "msoa11hclnm"]
    codes = [code for code, _ in rows]
    assert len(rows) == 6_791 and len(set(codes)) == 6_791
    assert all(code.startswith("E02") and len(code) == 9 for code in codes)
    assert all(name.strip() == name and name for _, name in rows)
    assert dict(rows)["E02002382"] == "Harehills South" and dict(rows)["E02002377"] == "Harehills North"


@pytest.mark.parametrize(("local_name", "names"), [
    ("Harehills South", ["Harehills South"]),
    ("Kingston & Southwick", ["Kingston & Southwick", "Kingston", "Southwick"]),
    ("Boltons, Warnell & Solway Coast", ["Boltons, Warnell & Solway Coast", "Boltons", "Warnell", "Solway Coast"]),
    ("Perry Common - College Road", ["Perry Common - College Road", "Perry Common", "College Road"]),
    ("Sutton Coldfield South & Central", ["Sutton Coldfield South & Central", "Sutton Coldfield South"]),
    ("Town Centre & Marlow Hill", ["Town Centre & Marlow Hill", "Marlow Hill"]),
    ("Goring-by-Sea", ["Goring-by-Sea"]),
])
def test_a_combined_name_gives_each_part_that_names_a_place(local_name: str, names: list[str]) -> None:
    assert _names(local_name) == names


def test_a_compass_point_is_cut_from_a_single_name_only(geodata_dir: Path) -> None:
    """Before: 'Sutton Coldfield South & Central' gave the bare name 'Sutton Coldfield South &' (its last
    word is a compass point), and 191 more like it."""
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:
        cut = db.execute("SELECT name FROM places WHERE source = 'msoa' AND (name LIKE '%&' OR name LIKE '%,' "
                         "OR name LIKE '% -')").fetchall()
        sutton = db.execute("SELECT name FROM places WHERE name LIKE 'Sutton Coldfield South%' "
                            "ORDER BY name").fetchall()
    assert cut == []
    assert sutton == [("Sutton Coldfield South",), ("Sutton Coldfield South & Central",)]


def test_the_build_counts_neighbourhoods_and_leaves_out_msoas_it_cannot_place(geodata_dir: Path) -> None:
    """114 of the 2011 MSOA codes have no 2021 MSOA (split or merged in 2021; Tokyngton, Brent, E02000109):
    their names are left out, not placed by a guess."""
    manifest = json.loads((geodata_dir / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_VERSION == 11
    assert manifest["counts"]["msoas_unmatched"] == 114
    # 13,627 in session 40, which keeps the ~3,400 names a place also has (found only with a county)
    assert 12_000 < manifest["counts"]["neighbourhoods"] < 15_000
    assert manifest["sources"]["neighbourhoods"] == ("House of Commons Library MSOA Names 1.9 (msoa_names_1.9.csv), "
                                                     "placed by boundaries/msoa21_simplified.geojson")
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:
        assert db.execute("SELECT count(*) FROM places WHERE name = 'Tokyngton'").fetchone() == (0,)


def test_a_source_folder_without_msoa_boundaries_is_named_as_missing(data_dir: Path, tmp_path: Path) -> None:
    for folder in ("postcodes", "smallareas", "lookups"):
        (tmp_path / folder).symlink_to(data_dir / folder, target_is_directory=True)
    (tmp_path / "boundaries").mkdir()
    for boundary in (data_dir / "boundaries").glob("*.geojson"):
        if not boundary.name.startswith("msoa21"):
            (tmp_path / "boundaries" / boundary.name).symlink_to(boundary)
    with pytest.raises(FileNotFoundError, match=r"missing: MSOA boundaries \(.*msoa21_\*\.geojson\)"):
        find_sources(tmp_path)
