"""Curated tables (templates/curated/): recognised by `rehabmap index` from their header, every row checked
against the real geography with errors naming file, line and column, and a verified area made covered.

The filled tables are written by the tests: no real list of IPS services, advocacy providers or community rehab
teams exists anywhere open (that is why the tables exist). The services in them are invented and say so; the
area codes, trust codes and postcodes are real."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from indexer.pipeline import GeographyPlacer, build_index
from rehabmap.england_day import england_today
from indexer.sources import load_source
from indexer.sources.curated import TABLES, TableSpec, blank_template, check_rows, spec_for, table_claims
from indexer.sources.common import CsvTable, csv_table, read_text
from indexer.sync.rebuild import record_curated_coverage, with_directory
from rehabmap.config import Settings
from rehabmap.coverage import CoverageMap, CoverageStore, SmallAreaTable
from search.embedded import EmbeddedWriter, index_file
from tests.sync.store_fixtures import index_record, make_home

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "curated"
SAMPLE = Path(__file__).resolve().parents[2] / "sample"
WEST_YORKSHIRE, NORTH_EAST_LONDON, GREATER_MANCHESTER = "E54000054", "E54000029", "E54000057"
LEEDS, CAMBRIDGESHIRE = "E08000035", "E10000003"

IPS = """icb_code,serves,service_name,organisation,address,postcode,phone,email,website,referral_route,description,\
verified_by,verified_on,notes
E54000054,,Leeds IPS Employment Service (invented),Invented Trust,1 Test Street,LS9 7TF,0113 000 0000,,\
www.example.org,self-referral,Work support for people with autism,Ann Curator,2026-10-01,
E54000029,,none,,,,,,,,,Bob Curator,2026-09-15,no IPS service commissioned
E54000999,,Nowhere IPS (invented),,,LS9 7TF,,,,,,Ann Curator,2026-10-01,
E54000057,,Manchester IPS (invented),,,M13 9WL,,,,,,,,not yet checked
E54000057,,Salford IPS (invented),,,,,,,,,Ann Curator,2026-10-01,
E54000057,E08000003;E99999999,Stockport IPS (invented),,,SK1 3XE,,,,,,Ann Curator,2026-13-01,
"""
ADVOCACY = """utla_code,kind,service_name,organisation,address,postcode,phone,email,website,referral_route,description,\
verified_by,verified_on,notes
E08000035,imha,Leeds Advocacy IMHA (invented),Invented Advocacy,,LS9 7TF,,,,,,Ann Curator,2026-10-01,
E08000035,imca,Leeds Advocacy IMCA (invented),Invented Advocacy,,LS9 7TF,,,,,,,,
E10000003,care_act,none,,,,,,,,,Bob Curator,2026-09-01,
E10000003,bogus,Cambridge Advocacy (invented),,,CB2 0QQ,,,,,,Bob Curator,2026-09-01,
E54000054,imha,An ICB is not a council (invented),,,LS9 7TF,,,,,,Ann Curator,2026-10-01,
"""
TEAMS = """trust_ods_code,serves,team_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
RGD,E08000035,Leeds Community Rehabilitation Team (invented),Leeds and York Partnership NHS Foundation Trust,,\
LS9 7TF,,,,,,Ann Curator,2026-10-01,
ZZ9,E08000032,Mistyped Trust Team (invented),,,LS9 7TF,,,,,,,,
RGD,,No Area Team (invented),,,LS9 7TF,,,,,,,,
"""


def test_the_templates_are_recognised_and_index_nothing(tmp_path, geography):
    for spec in TABLES:
        table = csv_table(read_text(TEMPLATES / spec.file_name))
        assert spec_for(table.header) == spec
        # the copy the keepers' upload page offers for download is this file, byte for byte
        assert blank_template(spec).encode() == (TEMPLATES / spec.file_name).read_bytes()
        # A blank template is an empty source: an import of it alone is refused, not an empty index.
        [empty] = load_source(TEMPLATES / spec.file_name)
        assert empty.fatal and empty.reason == "no rows to import: the file holds no services"
    assert (TEMPLATES / "README.md").is_file()


def dictionary_markdown() -> str:
    """The README's data dictionary as the table specs give it (`TableSpec.dictionary`, the one home of it)."""
    lines = ["## Data dictionary", "",
             "Each table's columns, in the template's order. The keepers' upload page shows the same guide beside",
             "its blank templates. \"Needed\" says when a row must fill the column in; the check names a column",
             "a row lacks."]
    for spec in TABLES:
        lines += ["", f"`{spec.file_name}`:", "", "| column | needed | what it holds |", "|---|---|---|"]
        lines += [f"| `{c.name}` | {c.needed or 'no'} | {c.holds} |" for c in spec.dictionary]
    return "\n".join(lines) + "\n"


def test_the_readme_repeats_the_data_dictionary_of_the_code():
    readme = (TEMPLATES / "README.md").read_text(encoding="utf-8")
    assert readme[readme.index("## Data dictionary"):] == dictionary_markdown(), (
        "templates/curated/README.md's data dictionary differs from TableSpec.dictionary; replace its last "
        "section with tests.sync.test_curated.dictionary_markdown()")


_FULL = {"icb_code": "E54000054", "utla_code": "E08000035", "trust_ods_code": "RGD", "serves": "E08000035",
         "kind": "imha", "service_name": "A service (invented)", "team_name": "A team (invented)",
         "organisation": "Invented Trust", "address": "1 Test Street, Leeds", "postcode": "LS9 7TF",
         "phone": "0113 000 0000", "email": "team@example.org", "website": "www.example.org",
         "referral_route": "self-referral", "description": "Support for people with autism",
         "verified_by": "Ann Curator", "verified_on": "2026-10-01", "notes": "checked by phone"}


def _problem_without(spec: TableSpec, *empty: str, **values: str) -> str | None:
    header = ",".join(spec.columns)
    row = ",".join('""' if column in empty else f'"{values.get(column, _FULL[column])}"' for column in spec.columns)
    [checked] = check_rows(csv_table(f"{header}\n{row}\n"), spec, spec.file_name)
    return checked.problem


@pytest.mark.parametrize("spec", TABLES, ids=[t.file_name for t in TABLES])
def test_the_data_dictionary_says_which_columns_a_row_needs_as_the_checks_do(spec, data_dir):
    """The guide a maintainer reads is held to the checks: a column it says is needed ("yes") rejects a row
    without it, naming the column; one it says is not ("no") never does; the conditional ones as they say."""
    assert _problem_without(spec) is None
    for column in spec.dictionary:
        problem = _problem_without(spec, column.name)
        if column.needed == "yes":
            assert problem is not None and f"column {column.name}: " in problem, column.name
        elif not column.needed:
            assert problem is None, (column.name, problem)
    assert "column postcode: " in (_problem_without(spec, "postcode") or "")    # "for a service"
    assert _problem_without(spec, spec.name_column, "postcode") is not None     # the name column is needed
    # "to cover the area, and on a `none` row" / "with `verified_by`": neither is listed but not verified
    assert _problem_without(spec, "verified_by", "verified_on") is None
    assert "column verified_on: " in (_problem_without(spec, "verified_on") or "")
    assert "column verified_by: " in (_problem_without(spec, "verified_by", "verified_on",
                                                        **{spec.name_column: "none"}) or "")


@pytest.fixture
def twelve_hours_behind_utc(monkeypatch):
    """This process's clock in the time zone furthest west (UTC-12, as POSIX writes it: needing no zone files),
    where the date is earliest: more than a day behind the latest (UTC+14)."""
    monkeypatch.setenv("TZ", "UTC+12")
    time.tzset()
    assert time.timezone == 12 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_table_verified_today_in_england_is_taken_on_any_server_and_one_after_it_is_refused(
        twelve_hours_behind_utc):
    """A `verified_on` is in the future after the day in England (`england_today`), whatever the server's clock: on
    a machine twelve hours behind UTC, whose date is England's or the day before, a row verified today in England is
    taken, and one dated tomorrow there is refused, saying so (two days on, where midnight passed meanwhile).
    Before, the day where it is latest (UTC+14): a row dated tomorrow in England was taken from 10:00 there (11:00
    in summer) on."""
    spec = TABLES[0]
    today = england_today()
    assert _problem_without(spec, verified_on=today.isoformat()) is None
    later = today + timedelta(days=1)
    said = _problem_without(spec, verified_on=later.isoformat())
    if england_today() != today:  # midnight passed: tomorrow is today
        later += timedelta(days=1)
        said = _problem_without(spec, verified_on=later.isoformat())
    assert said == f"column verified_on: {later.isoformat()} is in the future"


@pytest.mark.parametrize("spec", TABLES, ids=[t.file_name for t in TABLES])
def test_every_field_a_row_gives_is_named_with_the_cells_it_is_read_from(spec, data_dir):
    """A row with every column filled in, marked as a part of a row cut in two that may have lost every cell: each
    field its record gives (the table's own type aside), its label text and its id, which the import may reject it
    for later, is one a lost cell gives, so that rejection says first that the row is short. Before, a list beside the
    reading said which columns give which field, and left out the advocacy table's kind (the subtype) and the id."""
    table = csv_table(",".join(spec.columns) + "\n" + ",".join(f'"{_FULL[c]}"' for c in spec.columns) + "\n",
                      short_rows=True)
    [row] = list(table.rows)
    cut = replace(row, cut="may be cut", cut_cells=tuple(table.header), short="row may be cut")
    [checked] = check_rows(CsvTable(table.header, table.header_line, iter([cut])), spec, spec.file_name)
    candidate = checked.candidate
    assert checked.problem is None and candidate is not None and candidate.warnings == ["may be cut"]
    assert candidate.fields["service_type"] == spec.service_type
    assert candidate.lost_fields == {*candidate.fields, "label_text", "id"} - {"service_type"}


@pytest.fixture
def tables(tmp_path) -> dict[str, Path]:
    out = {}
    for name, text in (("ips.csv", IPS), ("advocacy.csv", ADVOCACY), ("teams.csv", TEAMS)):
        out[name] = tmp_path / name
        out[name].write_text(text, encoding="utf-8")
    return out


def rebuild(home: Path, geography, sources: list[Path]):
    directory = home / "directory.sqlite"
    rows = with_directory(directory, sources, (row for path in sources for row in load_source(path)))
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index_file(home)), progress=False)
    record_curated_coverage(directory, sources, [(r.origin.file, r.origin.line) for r in report.rejected])
    return report


def test_rows_are_checked_against_the_real_geography_with_file_line_and_column(tmp_path, geography, geodata_dir,
                                                                               tables):
    home = make_home(tmp_path / "home", geodata_dir)
    report = rebuild(home, geography, list(tables.values()))
    rejected = sorted(str(r).replace(str(tmp_path) + "/", "") for r in report.rejected)
    assert rejected == [
        "advocacy.csv:5: column kind: 'bogus' is not one of imha, imca, care_act",
        "advocacy.csv:6: column utla_code: 'E54000054' is not an upper-tier local authority code (E06…, E08…, "
        "E09…, E10…) in England's current geography",
        "ips.csv:4: column icb_code: 'E54000999' is not an ICB code (E54…) in England's current geography",
        "ips.csv:6: column postcode: empty; a service needs the full postcode of its base",
        "ips.csv:7: column serves: 'E99999999' is not an ONS code of an English ICB, sub-ICB location or local "
        "authority; column verified_on: '2026-13-01' is not a date (use YYYY-MM-DD or DD/MM/YYYY)",
        "teams.csv:4: column serves: empty; give the ONS codes of the areas the team serves (ICB, sub-ICB or "
        "local authority)",
    ]
    assert report.indexed == 6 and report.read == 14 - 2  # 14 rows; the two 'none' rows make no record
    assert any("'ZZ9' is not in the 2021 list of NHS trusts" in w for w in report.warnings)
    leeds_ips = index_record(home, "curated-ips:e54000054-leeds-ips-employment-service-invented")
    assert leeds_ips["service_type"] == "ips_employment" and leeds_ips["last_verified"] == "2026-10-01"
    assert leeds_ips["service_area"]["codes"] == [WEST_YORKSHIRE] and leeds_ips["needs_met"] == []
    assert leeds_ips["needs_read_from_text"] == {"autism": "autism"}  # its description's words: read, not stated
    assert leeds_ips["website"] == "https://www.example.org"
    imha = index_record(home, "curated-advocacy:e08000035-imha-leeds-advocacy-imha-invented")
    assert (imha["service_type"], imha["subtype"]) == ("advocacy", "imha")


def test_a_table_saved_without_its_rows_trailing_empty_cells_reads_as_the_whole_table(tmp_path):
    """The IPS table as an older Excel saves a sheet, each row without the empty cells at its end (four of its six
    rows leave out their notes, or more). Before, every such row was rejected as short ("row has 13 of the header's 14
    columns"), the verified ones with the rest. Now each is read with those cells empty, to the same record or the
    same reason as in the whole table; a row cut before its postcode (as a line break in an unquoted cell cuts one)
    is rejected for the empty postcode, saying first that it is short, by file and line."""
    whole, saved = tmp_path / "whole" / "ips.csv", tmp_path / "saved" / "ips.csv"
    for path, text in ((whole, IPS), (saved, "".join(line.rstrip(",") + "\n" for line in IPS.splitlines()))):
        path.parent.mkdir()
        path.write_text(text + "E54000054,,Wakefield IPS (invented),Invented Trust,2 Test Street\n", encoding="utf-8")

    def read(path: Path) -> list[tuple[int, object]]:
        return [(r.origin.line, getattr(r, "reason", None) or getattr(r, "fields", r)) for r in load_source(path)]

    assert sum(len(line.split(",")) < 14 for line in saved.read_text().splitlines()) == 4 + 1
    assert read(saved) == read(whole)
    assert str(list(load_source(saved))[-1]).endswith(
        "ips.csv:8: row has 5 of the header's 14 columns (cells left out, or a line break inside a cell that is not "
        "quoted): column postcode: empty; a service needs the full postcode of its base")


def test_a_row_a_line_break_cut_in_two_is_listed_with_a_warning_and_an_excel_export_warns_of_none(
        tmp_path, geography, geodata_dir):
    """The IPS table with a line break typed in the Leeds service's description, a cell not quoted: the row is cut
    in two. Its first part, its verified_by, verified_on and notes read as empty, is listed as a service no one has
    verified; its second part, those cells in the wrong columns, is rejected. Before, the report said nothing of the
    first part, whose area's verification was lost. Now it warns of it by file and line. The table as an older
    Excel saves it (four rows short) warns of none."""
    cut, saved = tmp_path / "cut" / "ips.csv", tmp_path / "saved" / "ips.csv"
    for path, text in ((cut, IPS.replace("for people with autism", "for people\nwith autism")),
                       (saved, "".join(line.rstrip(",") + "\n" for line in IPS.splitlines()))):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    home = make_home(tmp_path / "home", geodata_dir)
    report = rebuild(home, geography, [cut])
    assert [w for w in report.warnings if "cells empty" in w] == [
        "ips.csv:2: read with its last 3 cells empty: the next row, line 3, has 4, which would complete it if a "
        "line break inside a cell that is not quoted cut it in two: check the row"]
    assert any(r.origin.line == 3 for r in report.rejected)
    leeds_ips = index_record(home, "curated-ips:e54000054-leeds-ips-employment-service-invented")
    assert leeds_ips["description"] == "Work support for people" and "last_verified" not in leeds_ips
    assert not [w for w in rebuild(make_home(tmp_path / "saved-home", geodata_dir), geography, [saved]).warnings
                if "cells empty" in w]


@pytest.mark.parametrize(("cut", "reason"), [
    ("LS9\n7TF", "column postcode: 'LS9' is only a district; a service needs the full postcode of its base"),
    ("2026-10-\n01", "column verified_on: '2026-10-' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")])
def test_a_row_a_line_break_cut_in_its_last_cell_is_rejected_saying_it_is_short(tmp_path, geography, geodata_dir,
                                                                                cut, reason):
    """The IPS table with a line break typed in the Leeds service's postcode, or its verified_on, a cell not quoted:
    the row is cut in two inside that cell, which keeps what comes before the break. 'LS9' passes the table's checks
    (a district is a postcode's text) and the import rejects it; '2026-10-' is no date. Before, each rejection said
    only that, though its cell was the one the cut broke: only a cell the row leaves out made a reason say the row
    is short. Now the cell a row cut in two breaks counts as one it may have lost, and the row's rejection, by the
    table's checks or later by the import, says first that it is short."""
    table = tmp_path / "ips.csv"
    table.write_text(IPS.replace("LS9 7TF" if "LS9" in cut else "2026-10-01", cut, 1), encoding="utf-8")
    report = rebuild(make_home(tmp_path / "home", geodata_dir), geography, [table])
    [rejected] = [r for r in report.rejected if r.origin.line == 2]
    cells = 6 if "LS9" in cut else 13
    assert rejected.reason == (f"row has {cells} of the header's 14 columns (cells left out, or a line break inside "
                               f"a cell that is not quoted): {reason}")


def test_a_row_warned_of_as_cut_in_two_says_it_is_short_only_where_the_reason_is_about_a_cell_it_may_have_lost(
        tmp_path, geography, geodata_dir):
    """The IPS table with a line break typed in the Leeds service's description, a cell not quoted (the row warned of
    as cut in two, its verified_by, verified_on and notes read as empty), and a postcode no directory holds, which
    the row holds whole. Before, every reason the import rejected a row for said first that it is short once the row
    was warned of, so the unknown postcode's did too, as if the cut may be why. Now a reason says so only where it is
    about a cell the row may have lost (a postcode cut to 'LS9' still does: the test above)."""
    table = tmp_path / "ips.csv"
    table.write_text(IPS.replace("for people with autism", "for people\nwith autism").replace("LS9 7TF,0113",
                                                                                              "ZZ99 9ZZ,0113", 1),
                     encoding="utf-8")
    report = rebuild(make_home(tmp_path / "home", geodata_dir), geography, [table])
    assert [w for w in report.warnings if w.startswith("ips.csv:2: read with its last 3 cells empty")]
    [leeds] = [r.reason for r in report.rejected if r.origin.line == 2]
    assert leeds.startswith("column postcode: ") and "ZZ99 9ZZ" in leeds


NONE_ROWS = """trust_ods_code,serves,team_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
ZZ9,E08000032,none,,,,,,,,,Ann Curator,2026-10-01,
RGD,E08000035,none,,,,,,,,,Bob Curator,2026-09-15\n(by phone),no team commissioned
"""


def test_a_none_rows_warnings_are_reported_as_a_services_are(tmp_path, geography, geodata_dir):
    """Two `none` rows of a community rehab team table: one with a trust code the 2021 list of NHS trusts does not
    hold (mistyped, or a newer trust), one with a line break typed in its verified_on, a cell not quoted, so that its
    notes fall to the next line. Before, neither was warned of: a row's warnings travelled on the service it makes,
    and a `none` row makes none, so a mistyped trust code said nothing where a service's row says "check the code".
    Now each is reported by file and line, as a service's row is; their areas are still covered, and still no row
    of theirs is counted as read or makes a record."""
    table = tmp_path / "teams.csv"
    table.write_text(NONE_ROWS, encoding="utf-8")
    home = make_home(tmp_path / "home", geodata_dir)
    report = rebuild(home, geography, [SAMPLE, table])
    assert [w for w in report.warnings if w.startswith("teams.csv")] == [
        "teams.csv:2: column trust_ods_code: 'ZZ9' is not in the 2021 list of NHS trusts (a newer trust is fine; "
        "check the code)",
        "teams.csv:3: read with its last 1 cells empty: the next row, line 4, has 2, which would complete it if a line "
        "break inside a cell that is not quoted cut it in two: check the row"]
    assert report.read == len(list(load_source(SAMPLE))) + 1, "the next row, line 4, alone"
    assert [r.origin.line for r in report.rejected if r.origin.file == table.name] == [4]
    claims = CoverageStore(home / "directory.sqlite").claims()
    assert sorted((c.category, c.area_code) for c in claims) == [("community_rehab_team", "E08000032"),
                                                                 ("community_rehab_team", LEEDS)]


def test_a_verified_table_makes_its_areas_covered_and_a_rebuild_without_it_uncovers_them(
        tmp_path, geography, geodata_dir, data_dir, tables):
    home = make_home(tmp_path / "home", geodata_dir)
    rebuild(home, geography, list(tables.values()))
    store = CoverageStore(home / "directory.sqlite")
    claims = {(c.category, c.area_code): c for c in store.claims()}
    # Verified: West Yorkshire's IPS row, North East London's 'none', Leeds IMHA, Cambridgeshire Care Act
    # 'none', the Leeds team. Not: Greater Manchester (a row unverified, another rejected), Leeds IMCA
    # (unverified), Cambridgeshire's bogus kind.
    assert set(claims) == {("ips_employment", WEST_YORKSHIRE), ("ips_employment", NORTH_EAST_LONDON),
                           ("advocacy:imha", LEEDS), ("advocacy:care_act", CAMBRIDGESHIRE),
                           ("community_rehab_team", LEEDS)}
    west_yorkshire = claims[("ips_employment", WEST_YORKSHIRE)]
    assert (west_yorkshire.as_of, west_yorkshire.verified_by, west_yorkshire.basis) == (
        "2026-10-01", "Ann Curator", "curated:ips.csv")

    coverage = CoverageMap(store.claims(), SmallAreaTable.load(data_dir))
    assert coverage.for_area(LEEDS, "ips_employment").status == "covered"
    assert coverage.for_area(NORTH_EAST_LONDON, "ips_employment").as_of == "2026-09-15"
    assert coverage.for_area(GREATER_MANCHESTER, "ips_employment").status == "not_covered"
    assert coverage.for_area(LEEDS, "advocacy:imha").status == "covered"
    assert coverage.for_area(LEEDS, "advocacy:imca").status == "not_covered"
    # Advocacy as a whole: the IMHA kind is listed in full, community advocacy and the rest are not (session 20: an
    # area's coverage names its kinds, as a home's does).
    leeds_advocacy = coverage.for_area(LEEDS, "advocacy")
    assert leeds_advocacy.status == "partly_covered" and leeds_advocacy.kinds_covered == ("advocacy:imha",)
    assert "advocacy:community" in leeds_advocacy.kinds_not_covered
    assert coverage.for_area(WEST_YORKSHIRE, "community_rehab_team").status == "partly_covered"

    rebuild(home, geography, [SAMPLE])
    assert CoverageStore(home / "directory.sqlite").claims() == []


def test_a_table_whose_every_row_says_none_is_a_statement_not_an_empty_source(tmp_path, geography, geodata_dir):
    home = make_home(tmp_path / "home", geodata_dir)
    table = tmp_path / "none.csv"
    table.write_text(IPS.splitlines()[0] + "\n" + IPS.splitlines()[2] + "\n", encoding="utf-8")
    assert [(type(r).__name__, r.origin.line) for r in load_source(table)] == [("Stated", 2)]  # no record, no rejection
    rebuild(home, geography, [SAMPLE, table])
    claims = CoverageStore(home / "directory.sqlite").claims()
    assert [(c.category, c.area_code, c.as_of) for c in claims] == [("ips_employment", NORTH_EAST_LONDON,
                                                                    "2026-09-15")]


def test_a_refused_import_leaves_the_coverage_of_the_live_index(tmp_path, geodata_dir, data_dir, tables):
    from tests.sync.store_fixtures import rehabmap

    home = make_home(tmp_path / "home", geodata_dir)
    assert rehabmap(home, data_dir, None, "index", str(tables["ips.csv"]), "--no-progress").returncode == 0
    before = CoverageStore(home / "directory.sqlite").claims()
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"not gzip at all")
    done = rehabmap(home, data_dir, None, "index", str(tables["advocacy.csv"]), str(broken), "--no-progress")
    assert done.returncode == 2 and "cannot read the file" in done.stderr, done.stderr
    assert before and CoverageStore(home / "directory.sqlite").claims() == before


def test_index_command_reads_a_curated_table(tmp_path, geodata_dir, data_dir, tables):
    from tests.sync.store_fixtures import rehabmap

    home = make_home(tmp_path / "home", geodata_dir)
    done = rehabmap(home, data_dir, None, "index", str(tables["ips.csv"]), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "read 5, indexed 2, merged 0, rejected 3"
    assert "rejected ips.csv:4: column icb_code: 'E54000999'" in done.stdout
    assert Settings(home=home).directory_path.is_file()


HERTS_IMHA = """utla_code,kind,service_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
E10000015,imha,Hertfordshire IMHA (invented),Invented Advocacy,,AL1 3JX,,,,,,Ann Curator,2026-10-01,
"""


def test_a_county_councils_service_serves_the_homes_of_its_districts(tmp_path, geography, geodata_dir):
    """Statutory advocacy is commissioned by the upper-tier council, so a county's row serves the county (its
    `utla_code`, E10…). The boundaries hold no counties, and a home's areas were its ICB, sub-ICB, district and
    region only: before, Hertfordshire's IMHA was out of catchment for every home, its own street's too (the match
    left it out, or listed it 'out of catchment'), and the finder said no IMHA covered St Albans."""
    from rehabmap.match import MatchRequest, match
    from rehabmap.taxonomy import ServiceType
    from search.embedded import EmbeddedIndex

    table = tmp_path / "advocacy.csv"
    table.write_text(HERTS_IMHA, encoding="utf-8")
    home = make_home(tmp_path / "home", geodata_dir)
    assert rebuild(home, geography, [table]).indexed == 1
    backend = EmbeddedIndex(index_file(home))

    def found(postcode: str, **options) -> list[tuple[str, bool]]:
        request = MatchRequest(types=(ServiceType.advocacy,), subtypes=("imha",), **options)
        answer = match(backend, geography.resolve(postcode=postcode), request, date.today())
        return [(r.service.name, r.out_of_catchment) for r in answer.results]

    # St Albans (its own district), Watford and Stevenage: districts of Hertfordshire County Council.
    for postcode in ("AL1 3JX", "WD17 1DS", "SG1 1HN"):
        assert geography.resolve(postcode=postcode).areas.county_code == "E10000015"
        assert found(postcode) == [("Hertfordshire IMHA (invented)", False)], postcode
    # Luton, a unitary authority beside it, is not the county's: left out, or marked when asked to be shown.
    luton = geography.resolve(postcode="LU1 2LJ")
    assert luton.areas.county_code is None and "E10000015" not in luton.areas.codes()
    assert found("LU1 2LJ") == []
    assert found("LU1 2LJ", include_out_of_catchment=True) == [("Hertfordshire IMHA (invented)", True)]


UNPLACED_IPS = """icb_code,serves,service_name,organisation,address,postcode,phone,email,website,referral_route,\
description,verified_by,verified_on,notes
E54000054,,Leeds IPS Employment Service (invented),Invented Trust,1 Test Street,LS9 7TF,,,,,,Ann Curator,2026-10-01,
E54000057,,Manchester IPS (invented),Invented Trust,1 Test Street,ZZ99 9ZZ,,,,,,Ann Curator,2026-10-01,
"""


def test_a_verified_row_the_import_rejects_covers_nothing(tmp_path, geography, geodata_dir, data_dir):
    """A verified row whose postcode no directory holds passes the table's own checks, then the import rejects it:
    it makes no service. Before, its area was claimed covered all the same, so Greater Manchester read "None found.
    The directory holds complete IPS data for this area" where its one service had failed to import. Now the row
    covers nothing, by `rehabmap index` (a real process) as by a rebuild in process; the verified row beside it
    still covers West Yorkshire."""
    from tests.sync.store_fixtures import rehabmap

    table = tmp_path / "ips.csv"
    table.write_text(UNPLACED_IPS, encoding="utf-8")
    home = make_home(tmp_path / "home", geodata_dir)
    report = rebuild(home, geography, [table])
    assert [(r.origin.line, "ZZ99 9ZZ" in r.reason) for r in report.rejected] == [(3, True)]
    claims = [(c.category, c.area_code) for c in CoverageStore(home / "directory.sqlite").claims()]
    assert claims == [("ips_employment", WEST_YORKSHIRE)]

    command = make_home(tmp_path / "command", geodata_dir)
    done = rehabmap(command, data_dir, None, "index", str(table), "--no-progress")
    assert done.returncode == 0 and "rejected ips.csv:3: " in done.stdout, done.stdout + done.stderr
    assert [(c.category, c.area_code) for c in CoverageStore(command / "directory.sqlite").claims()] == claims


def test_a_header_naming_a_column_twice_refuses_the_table_naming_it(tmp_path, data_dir):
    """The IPS table with its organisation column headed 'Service_Name' too, as a header a person retyped may name
    two columns alike. A row's cells are read by the header's names, so the last was read: the Leeds service was
    listed as 'Invented Trust', its organisation, and its area claimed as verified, without a word. Now the table is
    refused, naming the column, as a mapped CSV whose header names a column its mapping reads twice is, and claims
    no area."""
    table = tmp_path / "ips.csv"
    table.write_text(IPS.replace(",organisation,", ",Service_Name,", 1), encoding="utf-8")
    [refused] = load_source(table)
    assert refused.fatal and str(refused) == (
        "ips.csv:0: the ips_services.csv table reads column(s) ['service_name'], which the file's header names more "
        "than once, so which of them it means cannot be told: give each column of the header its own name")
    assert table_claims([table]) == []
