"""Out-of-area placements: the five real monthly files in ../shared/data/oaps (Oct 2016 – Feb 2017, three
layouts), read against the raw rows; suppressed values stay suppressed; CCG codes map to today's sub-ICB
locations only where the shared lookup has the code; a bad row is rejected with its line, the rest land."""

from __future__ import annotations

import csv
import html
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from cli.gaps import gaps_command
from cli.main import _Group
from cli.oaps import oaps
from rehabmap.config import get_settings
from rehabmap.gaps.oaps import (ACTIVE, BED_DAYS, OapStore, PlacementsReport, band_order, for_icb, read_month,
                                 sub_icb_locations)
from search.embedded import EmbeddedWriter, index_file
from tests.commands import rehabmap_here
from tests.web.site import make_app

FILES = {"oaps-open-data-oct-2016.csv": "2016-10", "oaps-open-data-nov-2016.csv": "2016-11",
         "oaps-open-data-dec-2016.csv": "2016-12", "oaps-open-data-jan-2017.csv": "2017-01",
         "oaps-open-data-feb-2017.csv": "2017-02"}


def raw(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [r for r in csv.DictReader(handle) if not r.get("Breakdown2")]


@pytest.fixture(scope="module")
def nhs_codes(data_dir) -> dict[str, str]:
    with (data_dir / "lookups" / "lookup_lsoa21_icb24.csv").open(newline="", encoding="utf-8") as handle:
        return {r["sicbl24_code_nhs"]: r["icb24_code"] for r in csv.DictReader(handle)}


@pytest.mark.parametrize("name, month", FILES.items())
def test_each_real_month_reads_as_the_raw_rows_say(data_dir, nhs_codes, name, month):
    path = data_dir / "oaps" / name
    result = read_month(path, data_dir)
    rows = raw(path)
    assert result.month == month and result.rejected == []
    england = next(r for r in rows if r["Breakdown1"] == "England" and r["Question"] == ACTIVE)
    assert result.england.active_at_end.value == float(england["value"])
    ccg_rows = [r for r in rows if r["Breakdown1"] == "Ccg" and r["Breakdown1Code"] not in ("England", "")]
    codes = {r["Breakdown1Code"] for r in ccg_rows}
    assert {c.code for c in result.ccgs} == codes
    for ccg in result.ccgs:
        assert (ccg.icb is not None) == (ccg.code in nhs_codes)
        if ccg.icb is not None:
            assert ccg.icb == nhs_codes[ccg.code]
        for question, figure in ((ACTIVE, ccg.placements.active_at_end), (BED_DAYS, ccg.placements.bed_days)):
            value = next(r["value"] for r in ccg_rows if r["Breakdown1Code"] == ccg.code and r["Question"] == question)
            if value == "*":
                assert figure.suppressed and figure.value is None  # never 0
            else:
                assert not figure.suppressed and figure.value == float(value)
    providers = [r for r in rows if r["Breakdown1"] == "ReceivingProvider" and r["Question"] == ACTIVE
                 and r["Breakdown1Code"] not in ("England", "")]
    assert len(result.receiving_providers) == len(providers) > 0


def test_an_icb_sums_its_mapped_ccgs_and_counts_the_suppressed(data_dir, nhs_codes):
    path = data_dir / "oaps" / "oaps-open-data-feb-2017.csv"
    rows = raw(path)
    for icb in sorted(set(nhs_codes.values())):
        mine = [r for r in rows if r["Breakdown1"] == "Ccg" and nhs_codes.get(r["Breakdown1Code"]) == icb
                and r["Question"] == ACTIVE]
        area = for_icb(read_month(path, data_dir), icb)
        published = [float(r["value"]) for r in mine if r["value"] != "*"]
        assert area.active_at_end == (sum(published) if published else None)  # a sum of nothing is no figure
        assert area.active_suppressed == sum(1 for r in mine if r["value"] == "*")
        assert sorted(area.ccgs) == sorted(r["Breakdown1Code"] for r in mine)


def test_a_bad_row_is_rejected_with_its_line_and_the_rest_land(data_dir, tmp_path):
    source = (data_dir / "oaps" / "oaps-open-data-jan-2017.csv").read_text(encoding="utf-8-sig").splitlines()
    line = next(i for i, text in enumerate(source) if '"Ccg","02T"' in text and '"OAPs active at period end"' in text)
    source[line] = source[line].rsplit(",", 1)[0] + ',"n/a"'
    path = tmp_path / "oaps-open-data-jan-2017.csv"
    path.write_text("\n".join(source) + "\n", encoding="utf-8")
    result = read_month(path, data_dir)
    assert [(r.line, r.reason) for r in result.rejected] == [(line + 1, "value 'n/a' is neither a number nor '*'")]
    calderdale = next(c for c in result.ccgs if c.code == "02T")
    assert calderdale.placements.active_at_end is None and calderdale.placements.bed_days is not None
    assert len(result.ccgs) == 210


def test_a_file_whose_month_cannot_be_told_needs_month(data_dir, tmp_path):
    path = tmp_path / "placements.csv"
    shutil.copy(data_dir / "oaps" / "oaps-open-data-oct-2016.csv", path)
    with pytest.raises(Exception) as caught:
        read_month(path, data_dir)
    assert "--month" in str(caught.value)
    assert read_month(path, data_dir, "2016-10").month == "2016-10"


@pytest.fixture
def oaps_home(data_dir, tmp_path, monkeypatch, known_services, geodata_dir) -> Iterator[Path]:
    """A home of the known services on the real geodata, the settings read from it (and read afresh after)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    EmbeddedWriter(index_file(home)).replace_all(known_services)
    monkeypatch.setenv("REHABMAP_HOME", str(home))
    monkeypatch.setenv("REHABMAP_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def test_import_all_five_and_show_the_latest_beside_the_scorecard(data_dir, oaps_home):
    home = oaps_home
    group = _Group(commands={"oaps": oaps, "gaps": gaps_command})
    for name, month in FILES.items():
        done = CliRunner().invoke(group, ["oaps", "import", str(data_dir / "oaps" / name)])
        assert done.exit_code == 0, done.output
        assert done.output.startswith(f"{month}: 210 sending CCGs (71 mapped")
    assert OapStore(home).months() == sorted(FILES.values())
    done = CliRunner().invoke(group, ["gaps", "E54000054"])
    assert done.exit_code == 0, done.output
    assert "Out-of-area placements, 2017-02 (NHS Digital open data," in done.output
    assert "  Placements active at the month's end: 40 (02T, 03R only)" in done.output
    bad = CliRunner().invoke(group, ["oaps", "import", str(data_dir / "lookups" / "names_icb.json")])
    assert bad.exit_code == 2 and bad.output.startswith("error: ")
    # The API and the page show the same month and figures.
    with TestClient(make_app(home, data_dir)) as client:
        body = client.get("/gaps/E54000054/oaps").json()
        assert body["month"] == "2017-02" and body["area"]["active_at_end"] == 40
        assert body["area"]["ccgs"] == ["02T", "03R"] and len(body["unmapped_ccgs"]) == 139
        assert client.get("/gaps/E08000035/oaps").status_code == 400
        page = html.unescape(client.get("/pathway-gaps/E54000054").text)
        assert "NHS Digital open data for 2017-02, published 2017/04:" in page.replace("<strong>", "").replace(
            "</strong>", "")
        area = for_icb(OapStore(home).latest(), "E54000054", sub_icb_locations(data_dir, "E54000054"))
        for label, text in PlacementsReport(**{**body, "area": area, "receiving_providers_england": []}).rows():
            assert label in page and text in page


@pytest.mark.parametrize("name", FILES)
def test_unmapped_ccgs_are_listed_with_their_names_never_guessed(data_dir, name):
    """The 139 CCGs no sub-ICB location has the code of today: no shared lookup maps them (not the sub-ICB
    codes of 2024, whose names end in that code, nor the 2019 CCG codes of names_ccgs.json), so each is
    listed with the name the file gives it, and counts in no ICB."""
    import json

    month = read_month(data_dir / "oaps" / name, data_dir)
    ccg19 = {v["ccg19cdh"] for v in json.loads((data_dir / "lookups" / "names_ccgs.json").read_text()).values()}
    with (data_dir / "lookups" / "lookup_lsoa21_icb24.csv").open(newline="", encoding="utf-8") as handle:
        today = {row["sicbl24_name"].rsplit(" - ", 1)[-1] for row in csv.DictReader(handle)}
    report = PlacementsReport.of(month, "E54000054", month_date(month.month), data_dir)
    assert len(report.unmapped_ccgs) == 139
    for ccg in report.unmapped_ccgs:
        assert ccg.code not in today and ccg.code not in ccg19
    names = {c.code: c.name for c in report.unmapped_ccgs}
    described = "Breakdown1Description" in raw(data_dir / "oaps" / name)[0]
    if described:
        assert names["00C"] == "NHS Darlington CCG" and all(names.values())
    else:
        assert set(names.values()) == {None}  # this layout has no names: none is made up
    mapped = [c for c in month.ccgs if c.sub_icb is not None]
    assert all(c.code in today for c in mapped) and len(mapped) == 71


@pytest.fixture
def feb_2017_home(data_dir, tmp_path, monkeypatch, known_services, geodata_dir):
    """A home with the known services indexed and the real Feb 2017 OAP month imported; the settings read it."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    EmbeddedWriter(index_file(home)).replace_all(known_services)
    OapStore(home).save(read_month(data_dir / "oaps" / "oaps-open-data-feb-2017.csv", data_dir))
    monkeypatch.setenv("REHABMAP_HOME", str(home))
    monkeypatch.setenv("REHABMAP_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def faces(home: Path, data_dir: Path, icb: str) -> tuple[str, dict, str, str]:
    """The ICB's placements as `rehabmap gaps` prints them, the API's JSON, the area page and its summary."""
    done = CliRunner().invoke(_Group(commands={"gaps": gaps_command}), ["gaps", icb])
    assert done.exit_code == 0, done.output
    with TestClient(make_app(home, data_dir)) as client:
        body = client.get(f"/gaps/{icb}/oaps").json()
        page = html.unescape(client.get(f"/pathway-gaps/{icb}").text)
        summary = html.unescape(client.get(f"/pathway-gaps/{icb}/summary").text)
    return done.output.split("Out-of-area placements, ", 1)[1], body, page, summary


def test_an_icb_none_of_whose_ccgs_is_mapped_has_no_data_not_zero_placements(feb_2017_home, data_dir):
    """Before, North East London (whose one sub-ICB location, A3A8R, no CCG of Feb 2017 had the code of) printed
    "sending CCGs none mapped ... Placements active at the month's end: 0 / Bed days in the month: 0": a sum of
    no figures shown as none placed. Now every face says no data, and why."""
    cli, body, page, summary = faces(feb_2017_home, data_dir, "E54000029")
    assert body["area"]["ccgs"] == [] and body["area"]["active_at_end"] is None and body["area"]["bed_days"] is None
    assert [p["code"] for p in body["area"]["without_figures"]] == ["A3A8R"]
    assert body["scope"].startswith("No data for this ICB: none of its sub-ICB locations today (A3A8R (Barking and "
                                    "Dagenham, City of London, Hackney,")
    assert body["scope"] in cli and body["scope"] in page and body["scope"] in summary
    for text in (cli, page, summary):
        assert "Placements active at the month's end: 0" not in text and "0 active at the month's end" not in text
    assert "Placements active at the month" not in cli and "no data (NHS Digital, " in summary


def test_a_partial_figure_says_whose_it_is_and_names_what_it_leaves_out(feb_2017_home, data_dir):
    """Before, West Yorkshire printed "Placements active at the month's end: 40 / Bed days 824" (02T's 20 and 329
    plus 03R's 20 and 495) as the ICB's own, though Leeds, Bradford and Kirklees were in no CCG of Feb 2017 it
    could map; its distance bands came in the file's order. Now each figure says whose it is, the ICB's sub-ICB
    locations without a figure are named with their local authorities, and the bands read nearest first."""
    cli, body, page, summary = faces(feb_2017_home, data_dir, "E54000054")
    area = body["area"]
    assert area["ccgs"] == ["02T", "03R"] and area["active_at_end"] == 40 == 20 + 20 and area["bed_days"] == 824
    assert [(p["code"], p["local_authorities"]) for p in area["without_figures"]] == [
        ("15F", ["Leeds"]), ("36J", ["Bradford", "North Yorkshire"]), ("X2C4Y", ["Kirklees"])]
    assert body["scope"] == ("Only part of the ICB: the figures are of CCGs 02T (Calderdale), 03R (Wakefield); no "
                             "figure for 15F (Leeds), 36J (Bradford, North Yorkshire), X2C4Y (Kirklees): no CCG of "
                             "2017-02 had the code of these (the CCGs there then have merged since: they are among "
                             "the CCGs not mapped, which count in no ICB here).")
    assert "  Placements active at the month's end: 40 (02T, 03R only)\n  Bed days in the month: 824 (02T, 03R only)" \
        in cli
    assert body["scope"] in cli and body["scope"] in page and body["scope"] in summary
    assert "40 (02T, 03R only) active at the month's end, 824 (02T, 03R only) bed days" in summary
    bands = list(area["distance_bands"])
    assert bands == ["less than 25 km", "25km or greater and less than 50km", "50km or greater and less than 100km",
                     "100km or greater and less than 200km", "200km or greater and less than 300km", "300km or greater"]
    assert area["distance_bands"]["less than 25 km"] is None and area["bands_suppressed"]["less than 25 km"] == 2
    assert "Active in the month, less than 25 km: not published (suppressed for 2 CCGs)" in cli
    printed = [line.split(", ", 1)[1].split(":")[0] for line in cli.splitlines() if "Active in the month" in line]
    assert printed == bands


def test_a_total_lacking_a_counted_ccgs_figure_says_whose_it_is(feb_2017_home, data_dir, tmp_path):
    """A counted CCG whose row of one figure the month lacks (Feb 2017 without Wakefield's, 03R's, bed days row):
    before, West Yorkshire's bed days read "329 (02T, 03R only)", Calderdale's alone given as both CCGs'. Now
    that total says it is 02T's only, on every face, and the API names the CCG it lacks; the placements, which
    both CCGs give, still read as theirs."""
    source = data_dir / "oaps" / "oaps-open-data-feb-2017.csv"
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        every = list(reader)
        columns = reader.fieldnames
    rows = [r for r in every if not (r["Breakdown1Code"] == "03R" and r["Question"] == BED_DAYS)]
    assert columns is not None and len(rows) == len(every) - 1
    edited = tmp_path / "oaps-open-data-feb-2017.csv"
    with edited.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    OapStore(feb_2017_home).save(read_month(edited, data_dir))
    cli, body, page, summary = faces(feb_2017_home, data_dir, "E54000054")
    assert "  Placements active at the month's end: 40 (02T, 03R only)\n  Bed days in the month: 329 (02T only)" in cli
    area = body["area"]
    assert area["ccgs"] == ["02T", "03R"] and area["bed_days"] == 329 and area["ccgs_lacking"] == {"bed_days": ["03R"]}
    assert "Bed days in the month" in page and "329 (02T only)" in page
    assert "40 (02T, 03R only) active at the month's end, 329 (02T only) bed days" in summary


@pytest.mark.parametrize("name", [name for name in FILES if name != "oaps-open-data-oct-2016.csv"])  # no bands
def test_distance_bands_read_nearest_first_in_every_layout(data_dir, name):
    """Before, an ICB's bands came in whatever order its CCGs' rows gave them ("50km ... 100km", "300km or
    greater", "100km ...", "25km ...", ...). Now nearest first, in the Nov 2016 bands as in those of Dec 2016."""
    month = read_month(data_dir / "oaps" / name, data_dir)
    bands = list(for_icb(month, "E54000054").distance_bands)
    assert bands and bands[0].startswith("less than")
    starts = [band_order(b) for b in bands]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def month_date(month: str):
    from datetime import date

    year, number = month.split("-")
    return date(int(year), int(number), 28)


@pytest.mark.parametrize(("given", "says"), [
    ("../index-sources", "--month must be a month written YYYY-MM, like 2017-02 (got '../index-sources')."),
    ("2017-13", "--month must be a month written YYYY-MM"),
    ("2031-01", "--month 2031-01 is after this month"),
    ("2016-11", "'oaps-open-data-jan-2017.csv' says it is for 2017-01 (its PublicationPeriod column or its name), not "
                "2016-11: leave --month out.")])
def test_a_month_given_is_a_real_month_the_file_agrees_with(data_dir, tmp_path, given, says):
    """Before, --month was taken as typed and named the stored file: '../index-sources' wrote over the rebuild's
    list of sources (outside the months' folder), '2017-13' was kept as a month, '2031-01' became the latest month
    shown beside every scorecard, and '2016-11' filed January 2017's figures as November's."""
    home = tmp_path / "home"
    done = rehabmap_here(home, data_dir, "oaps", "import", str(data_dir / "oaps" / "oaps-open-data-jan-2017.csv"),
                         "--month", given)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not list(home.rglob("*.json"))


def test_one_suppressed_ccg_is_one_ccg(feb_2017_home, data_dir):
    """Nottingham and Nottinghamshire (E54000060) in the real Feb 2017 month: its one mapped CCG, 02Q, had its
    placements and bed days suppressed, and every face read "not published (suppressed for 1 CCGs)"."""
    cli, body, page, summary = faces(feb_2017_home, data_dir, "E54000060")
    assert body["area"]["ccgs"] == ["02Q"] and body["area"]["active_suppressed"] == 1
    assert "  Placements active at the month's end: not published (suppressed for 1 CCG)\n" in cli
    assert "Bed days in the month: not published (suppressed for 1 CCG)" in cli
    assert "suppressed for 1 CCG)" in page
    for text in (cli, page, summary):
        assert "1 CCGs" not in text


def test_one_unmapped_ccg_is_counted_in_the_singular(data_dir):
    """The command line's line under an ICB's placements counts the month's unmapped CCGs: with one left (the real
    month's list cut to its first), it read "1 CCGs of … have no sub-ICB location today and count in no ICB"."""
    import dataclasses

    from cli.gaps_report import render_placements

    month = read_month(data_dir / "oaps" / next(iter(FILES)), data_dir)
    report = PlacementsReport.of(month, "E54000054", month_date(month.month), data_dir)
    one = dataclasses.replace(report, unmapped_ccgs=report.unmapped_ccgs[:1])
    assert f"  1 CCG of {report.month} has no sub-ICB location today and counts in no ICB here." in (
        render_placements(one).splitlines())
    assert f"  139 CCGs of {report.month} have no sub-ICB location today and count in no ICB here." in (
        render_placements(report).splitlines())


def test_one_unmapped_ccg_reads_in_the_singular_on_the_area_page(data_dir, tmp_path, oaps_home):
    """The area page's note on the month's unmapped CCGs, with one left (February 2017's real file without the
    other 138's rows): it read "1 clinical commissioning groups of 2017-02 are not mapped to an ICB"."""
    name = "oaps-open-data-feb-2017.csv"
    month = read_month(data_dir / "oaps" / name, data_dir)
    unmapped = [c.code for c in PlacementsReport.of(month, "E54000054", month_date(month.month), data_dir)
                .unmapped_ccgs]
    with (data_dir / "oaps" / name).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    kept = [r for r in rows if not (r[3] == "Ccg" and r[4] in unmapped[1:])]
    cut = tmp_path / name
    with cut.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, quoting=csv.QUOTE_ALL).writerows(kept)
    home = oaps_home
    done = CliRunner().invoke(_Group(commands={"oaps": oaps}), ["oaps", "import", str(cut)])
    assert done.exit_code == 0, done.output
    with TestClient(make_app(home, data_dir)) as client:
        page = html.unescape(client.get("/pathway-gaps/E54000054").text)
    assert "1 clinical commissioning group of 2017-02 is not mapped to an ICB" in page
    assert "It has merged since and no sub-ICB location has its code today; its placements count" in page
