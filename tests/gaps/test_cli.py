"""`rehabmap gaps AREA`: the command on a real embedded index of the known services and real geodata.

The command is tested inside a group built like `cli.main.main` (its error handling), since the lead
registers it there.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.gaps import gaps_command
from cli.main import _Group
from rehabmap.config import get_settings
from rehabmap.gaps.columns import STATUS_WORDS, scorecard_columns
from rehabmap.gaps.comparison import GapTable
from search.embedded import EmbeddedWriter, index_file


@pytest.fixture(scope="module")
def home(tmp_path_factory, geodata_dir: Path, known_services) -> Path:
    home = tmp_path_factory.mktemp("gaps-cli-home")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    EmbeddedWriter(index_file(home)).replace_all(known_services)
    return home


@pytest.fixture()
def run(home: Path, data_dir: Path, monkeypatch):
    monkeypatch.setenv("REHABMAP_HOME", str(home))
    monkeypatch.setenv("REHABMAP_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    group = _Group(commands={"gaps": gaps_command})

    def invoke(*args: str):
        return CliRunner().invoke(group, ["gaps", *args], catch_exceptions=False)

    yield invoke
    get_settings.cache_clear()


def test_scorecard_for_an_icb_by_name(run, tmp_path):
    out = tmp_path / "cornwall.csv"
    done = run("Cornwall and the Isles of Scilly", "--csv", str(out))
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0] == ("NHS Cornwall and the Isles of Scilly Integrated Care Board (E54000036) — "
                        "integrated care board")
    header = lines[3].split()
    assert header[:4] == ["type", "in", "area", "per"]
    # No source or curated table covers Cornwall in this home: the absent part is not covered, not missing.
    assert any(line.startswith("inpatient_rehab_level2") and "NOT COVERED" in line for line in lines)
    assert any(line.startswith("NOT COVERED (") and "inpatient_rehab_level2" in line for line in lines)
    assert not any("MISSING" in line for line in lines)
    # Not covered, so not missing: the nearest is the nearest rehabmap knows of elsewhere, not a fact of the area.
    assert any("inpatient_rehab_level2: nearest known elsewhere" in line for line in lines)
    rows = list(csv.DictReader(out.open(newline="", encoding="utf-8-sig")))
    # Its figures would not be facts (0 services, every adult beyond 50 km): the CSV leaves them empty.
    assert len(rows) == 14 and rows[-1]["category"] == "inpatient_rehab_level2" and rows[-1]["present"] == "False"
    assert [rows[-1][k] for k in ("count", "per_100k_adults", "mean_km", "share_beyond_threshold")] == [""] * 4


def test_one_type_with_furthest_small_areas_and_a_map(run, tmp_path):
    svg = tmp_path / "leeds.svg"
    small = tmp_path / "leeds-small.csv"
    done = run("E08000035", "--type", "inpatient_rehab_level2", "--svg", str(svg), "--smallareas-csv", str(small))
    assert done.exit_code == 0, done.output
    assert "Small areas furthest from a level 2 inpatient" in done.output
    assert 'Legacy "locked rehabilitation" labels inside: 1 — Old Mill locked rehabilitation unit' in done.output
    assert ET.fromstring(svg.read_text()).get("role") == "img"
    assert len(small.read_text(encoding="utf-8-sig").splitlines()) == 1 + 488


def test_all_icbs(run, tmp_path):
    done = run("icb", "--type", "community_rehab_team", "--sort", "community_rehab_team.mean_km", "--desc",
               "--csv", str(tmp_path / "icb.csv"))
    assert done.exit_code == 0, done.output
    rows = [line for line in done.output.splitlines() if line.startswith("E54")]
    assert len(rows) == 42
    # Areas the directory covers for community teams are ranked; the rest ('?': no data yet) come last, as on
    # the compare page and in the API, because their distance says nothing about what is there.
    ranked = [line for line in rows if line.split()[-2] != "?"]
    assert 0 < len(ranked) < 42 and rows[:len(ranked)] == ranked
    means = [float(line.split()[-1]) for line in ranked]
    assert means == sorted(means, reverse=True)
    assert any(line.startswith("E92000001") for line in done.output.splitlines())


@pytest.mark.parametrize("args, message", [
    (("Atlantis",), "No English ICB, local authority or county council is called or coded 'Atlantis'"),
    (("E54999999",), "E54999999"),
    (("E01033010",), "'E01033010' is a lower layer super output area's code (LSOA, E01…, one small area of about "),
    (("E11000006",), "'E11000006' is a metropolitan county's code (E11…, which has no county council: its "),
    (("Leeds", "--type", "hospital"), "Unknown service type 'hospital'"),
    (("Leeds", "--inpatient-km", "0"), "inpatient_km must be a positive number"),
])
def test_errors_end_with_a_message(run, args, message):
    done = run(*args)
    assert done.exit_code == 2
    assert message in done.output


def test_what_if_from_the_command_line(run, home):
    import hashlib

    index = index_file(home)
    stored = hashlib.sha256(index.read_bytes()).hexdigest()
    done = run("E54000036", "--type", "inpatient_rehab_level2", "--add-service", "inpatient_rehab_level2@TR1 3LJ@12")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].startswith("WHAT IF (a scenario: nothing is written")
    assert lines[1].startswith("  + whatif:1 inpatient_rehab_level2 at TR1 3LJ")
    # Nothing covers Cornwall for level 2 units here: the count now is no data (not 0), then the hypothetical one.
    count = next(line.split() for line in lines if line.startswith("E54000036") and " count " in line)
    assert count[-3:] == ["no", "data", "1"]
    assert "No data (level 2 inpatient rehabilitation unit (higher support)): Not yet covered" in done.output
    # The scorecard below is the scenario's: level 2 is present in Cornwall.
    assert any(line.startswith("inpatient_rehab_level2") and " present" in line for line in lines)
    assert hashlib.sha256(index.read_bytes()).hexdigest() == stored


@pytest.mark.parametrize("args, message", [
    (("Cornwall", "--add-service", "inpatient_rehab_level2"), "Write TYPE@POSTCODE"),
    (("Cornwall", "--remove-service", "cqc:nope"), "No active service has the id 'cqc:nope'"),
    (("icb", "--add-service", "ips_employment@TR1 3LJ"), "need one AREA"),
    (("Cornwall", "--add-service", "ips_employment@TR1 3LJ@E08999999"), "catchment code 'E08999999'"),
    # before, a blank was read as nothing asked: the scorecard as it is, exit 0
    (("Cornwall", "--add-service", " "), "The addition given is blank, which names no service to add."),
    (("Cornwall", "--remove-service", ""), "The service id given is blank, which names no service."),
])
def test_what_if_errors(run, args, message):
    done = run(*args)
    assert done.exit_code == 2 and message in done.output and "Traceback" not in done.output


def test_what_if_with_a_catchment_from_the_command_line(run, analysis, geography, data_dir):
    from rehabmap.coverage import CoverageMap, SmallAreaTable
    from rehabmap.gaps.scenario import Scenario, what_if

    spec = "inpatient_rehab_level2@TR1 3LJ@E06000053"  # a unit in Truro for the Isles of Scilly only
    done = run("E54000036", "--type", "inpatient_rehab_level2", "--add-service", spec)
    assert done.exit_code == 0, done.output
    expected = what_if(analysis, "E54000036", Scenario.from_input([spec]), geography,
                       coverage=CoverageMap([], SmallAreaTable.load(data_dir)))  # the home holds no claims
    mean = next(c for c in expected.changes if c.scope == "area" and c.category == "inpatient_rehab_level2"
                and c.indicator == "mean_km")
    assert mean.before is None and mean.before_no_data  # nothing is known of level 2 units in Cornwall now
    line = next(line.split() for line in done.output.splitlines()
                if line.startswith("E54000036") and " mean_km " in line)
    assert line[-3:-1] == ["no", "data"] and float(line[-1]) == pytest.approx(mean.after, abs=0.06)


def test_compare_from_the_command_line(run, analysis, data_dir):
    from rehabmap.coverage import CoverageMap, SmallAreaTable
    from rehabmap.gaps.indicators import indicator_text
    from rehabmap.gaps.ranking import compare

    done = run("West Yorkshire", "--compare", "--type", "community_rehab_team")
    assert done.exit_code == 0, done.output
    expected = compare(analysis, "E54000054", coverage=CoverageMap([], SmallAreaTable.load(data_dir)))
    lines = done.output.splitlines()
    item = expected.of("community_rehab_team", "per_100k_adults")
    row = next(line.split() for line in lines if line.startswith("community_rehab_team") and "per_100k_adults" in line)
    # The home holds no claims: England's figure would be the distance to the services this directory happens to
    # hold, so none is given (before, it was, as if national), and it says why (before, a bare '-').
    assert item.england is None and item.england_unknown == "partly_covered"
    assert row[2:5] == [indicator_text("per_100k_adults", item.value), "partly", "covered"]
    assert ("England's figure is 'partly covered' where rehabmap holds that type's data for only part of England"
            in " ".join(done.output.split()))
    assert row[5:8] == [str(item.rank), "of", str(item.ranked)]
    ranked = [line for line in lines if line.endswith(" <") or " < " in line]
    assert any("West Yorkshire" in line for line in ranked)


def test_englands_scorecard_says_partly_covered_and_why_as_its_csv_does(run, tmp_path, data_dir):
    """Before, `rehabmap gaps England` printed every type as "present" beside a row of '-' (no count either), with no
    reason, while its CSV said "partly covered (no data held for the rest)": the table recomputed the status from
    `present`, ignoring the one `rows_with_coverage` told. Now the table says PARTLY COVERED, as the CSV does, and
    a line per type says why, in the coverage's words."""
    from rehabmap.coverage import CoverageMap, SmallAreaTable

    out = tmp_path / "england.csv"
    done = run("England", "--csv", str(out), "--headers", "human")
    assert done.exit_code == 0, done.output
    columns = {c.key: c.header for c in scorecard_columns()}
    with out.open(newline="", encoding="utf-8-sig") as handle:
        sheet = list(csv.DictReader(handle))
    lines = done.output.splitlines()
    told = [line.split() for line in lines[5:19]]
    assert len(told) == 14 and [row[-2:] for row in told] == [["PARTLY", "COVERED"]] * 14
    assert not any(line.endswith(" present") for line in lines)
    assert len(sheet) == 14 and {row[columns["status"]] for row in sheet} == {STATUS_WORDS["partly_covered"]}
    national = CoverageMap([], SmallAreaTable.load(data_dir)).for_area("E92000001", "vcfse").national()
    assert f"PARTLY COVERED: vcfse: {national}" in lines
    assert national.startswith("No national figure: the directory holds complete Voluntary, community, faith and "
                               "social enterprise support data for no part of England")


def test_englands_furthest_small_areas_of_a_partly_covered_type_say_so_not_that_nothing_is_held(run, data_dir):
    """Before, `gaps England --type vcfse` listed under "Small areas furthest from …" "No data: Not yet covered: the
    directory holds no … data for this area yet", of a type found in England (50 services) whose row above it read
    PARTLY COVERED: the area's words for an absent type. Now it is partly covered, for the reason the row gives."""
    from rehabmap.coverage import CoverageMap, SmallAreaTable

    done = run("England", "--type", "vcfse")
    assert done.exit_code == 0, done.output
    national = CoverageMap([], SmallAreaTable.load(data_dir)).for_area("E92000001", "vcfse").national()
    furthest = done.output.split("Small areas furthest from a voluntary")[1].splitlines()
    assert furthest[1] == f"PARTLY COVERED: {national}"
    assert "Not yet covered" not in done.output and "No data" not in done.output


def test_a_what_if_gives_englands_figures_as_no_data_where_they_are_not_national(run, data_dir):
    """Before, `gaps E54000054 --add-service vcfse@LS9` printed "England vcfse mean_km 56.6 → 56.5" and `gaps England
    --add-service 'vcfse@LS9 7TF'` "count 7 → 8" above a scorecard whose count is '-': the scenario asked for a
    reason only where the type was absent, so England's figures of a type held for part of England only read as
    national. Now they are "no data" before and after, with the reason under the table, as the README's rule says."""
    from rehabmap.coverage import CoverageMap, SmallAreaTable

    reason = CoverageMap([], SmallAreaTable.load(data_dir)).for_area("E92000001", "vcfse").national()
    for area, spec in (("E54000054", "vcfse@LS9"), ("England", "vcfse@LS9 7TF")):
        done = run(area, "--add-service", spec)
        assert done.exit_code == 0, done.output
        what_if = done.output.split("\n\n")[1].splitlines()
        england = [line.split() for line in what_if if line.startswith("England ")]
        assert {row[2] for row in england} >= {"count", "mean_km", "share_beyond_threshold"}
        assert all(row[-4:] == ["no", "data", "no", "data"] for row in england)
        assert f"No data (voluntary, community, faith and social enterprise support): {reason}" in what_if
    done = run("E54000054", "--add-service", "vcfse@LS9")
    count = next(row.split() for row in done.output.splitlines() if row.startswith("E54000054") and " count " in row)
    assert int(count[-1]) == int(count[-2]) + 1  # West Yorkshire's own figures of a type found there stay findings


def test_a_county_council_by_name_its_sheet_a_what_if_and_its_peers(run, tmp_path, analysis):
    """Before, `rehabmap gaps Nottinghamshire` (and E10000024) said it was a county council and listed its districts;
    now it is an area: its scorecard, a what-if in it, its place among the 21 county councils and, with
    `--headers human`, the CSV in the words of the web's sheet-style download (`scorecard_columns`), where before
    it had machine keys only."""
    keyed, sheet = tmp_path / "notts.csv", tmp_path / "notts-sheet.csv"
    done = run("Nottinghamshire", "--csv", str(keyed))
    assert done.exit_code == 0, done.output
    assert done.output.splitlines()[0] == "Nottinghamshire (E10000024) — county council"
    assert run("E10000024", "--csv", str(sheet), "--headers", "human").exit_code == 0
    keys, headers = (list(csv.reader(path.open(newline="", encoding="utf-8-sig"))) for path in (keyed, sheet))
    assert keys[0] == [c.key for c in scorecard_columns()] and headers[0] == [c.header for c in scorecard_columns()]
    assert headers[0][:4] == ["Area code", "Area name", "Type code", "Type"] and headers[0][-2:] == [
        "Services as of", "Population year"]
    assert len(keys) == len(headers) == 1 + 14 and {row[0] for row in keys[1:]} == {"E10000024"}
    status, present = keys[0].index("status"), keys[0].index("present")  # the sheet's in words, as its headers
    assert {row[present] for row in headers[1:]} <= {"yes", "no"} and {row[present] for row in keys[1:]} <= {
        "True", "False"}
    assert [STATUS_WORDS.get(row[status], row[status]) for row in keys[1:]] == [row[status] for row in headers[1:]]

    done = run("E10000024", "--type", "ips_employment", "--add-service", "ips_employment@NG18 1AA", "--compare")
    assert done.exit_code == 0, done.output
    count = next(line.split() for line in done.output.splitlines()
                 if line.startswith("E10000024") and " count " in line)
    before = next(r for r in GapTable.of(analysis, "county").rows() if r.code == "E10000024").types["ips_employment"]
    # The hypothetical one is in Mansfield, a district of the county.
    assert before.count and count[-2:] == [str(before.count), str(before.count + 1)]
    assert "among the 21 county councils" in " ".join(done.output.split())

    for level, first, areas in (("county", "All county councils;", 21), ("la", "All local authorities;", 296)):
        table = run(level, "--type", "vcfse")  # the local authorities' read "All local authoritys" before
        assert table.exit_code == 0, table.output
        assert table.output.startswith(first)
        rows = [line for line in table.output.splitlines() if line[:3] in ("E06", "E07", "E08", "E09", "E10")]
        assert len(rows) == areas


def test_an_export_to_a_folder_not_there_is_one_error_line_not_a_traceback(run, tmp_path):
    """Before, `gaps Leeds --csv /no/such/folder/x.csv` printed the scorecard, then a FileNotFoundError's traceback
    (exit 1), where every other problem a person can cause is one `error:` line and exit status 2."""
    missing = tmp_path / "no-such-folder" / "leeds.csv"
    for option in ("--csv", "--smallareas-csv", "--svg"):
        done = run("Leeds", option, str(missing))
        assert done.exit_code == 2, done.output
        assert done.output.splitlines() == [f"error: No such file or directory: {missing}"]  # nothing printed first


@pytest.mark.parametrize("args, error", [
    (("icb", "--svg", "{tmp}/icb.svg", "--indicator", "nope"), "Unknown indicator 'nope'. Use one of: count,"),
    (("icb", "--svg", "{tmp}/icb.svg", "--type", "vcfse", "--indicator", "fallback_mean_km"),
     "'fallback_mean_km' is only computed for inpatient types."),
    (("Leeds", "--indicator", "nope"), "Unknown indicator 'nope'."),
    (("icb", "--sort", "vcfse.nope"), "Cannot sort by 'vcfse.nope'. Use one of code, name,"),
    (("la", "--type", "vcfse", "--sort", "advocacy.mean_km"), "Cannot sort by 'advocacy.mean_km'."),
    (("England", "--svg", "{tmp}/england.svg"), "--svg of England: give AREA icb, la or county for an England map"),
    (("England", "--compare"), "--compare needs an ICB, a local authority or a county council (England is what"),
    (("England", "--add-service", "vcfse@LS1", "--compare"), "--compare needs an ICB, a local authority"),
    (("Leeds", "--sort", "vcfse.mean_km"), "--sort orders the all-areas table: give AREA icb, la or county."),
    (("Leeds", "--desc"), "--desc orders the all-areas table"),
    (("Leeds", "--indicator", "count"), "--indicator colours the England map of every area: give AREA icb, la or "
                                        "county, with --svg."),
    (("England", "--indicator", "mean_km"), "--indicator colours the England map"),
    (("icb", "--indicator", "mean_km"), "--indicator colours the England map of every area: give --svg FILE too."),
    (("la", "--indicator", "count", "--csv", "{tmp}/la.csv"), "--indicator colours the England map of every area"),
    (("Leeds", "--headers", "human"), "--headers names the columns of the --csv file: give --csv FILE too."),
    (("icb", "--headers", "keys"), "--headers names the columns of the --csv file"),
    (("icb", "--compare"), "--compare is of one area (an ICB, a local authority or a county council), not of 'icb'"),
    (("county", "--smallareas-csv", "{tmp}/x.csv"), "--smallareas-csv is of one area"),
    (("la", "--furthest", "5"), "--furthest is of one area"),
    (("icb", "--add-service", "vcfse@LS1"), "--add-service/--remove-service need one AREA"),
    (("icb", "--csv", "{tmp}/no-such-folder/icb.csv"), "No such file or directory: {tmp}/no-such-folder/icb.csv"),
    # A type that names none, blank or beside the shortcut for every type, as the API refuses it (no test before).
    (("Leeds", "--type", ""), "The service type given is blank, which names no type. Use one of: vcfse, "),
    (("icb", "--type", "imha,", "--csv", "{tmp}/icb.csv"), "'imha,' has a blank service type beside a comma, which "
                                                          "names no type. Use one of: "),
    (("Leeds", "--type", "all,bogus"), "Unknown service type 'bogus'. Use one of: "),
])
def test_a_bad_option_is_refused_before_anything_is_printed(run, tmp_path, args, error):
    """Before, `gaps icb --svg map.svg --indicator nope` printed the all-areas table, then the error; `gaps England
    --svg` and `--compare` the whole scorecard (after any what-if), then click's usage and an "Error:" line; `--sort`
    and `--desc` of one area, and `--compare`, `--smallareas-csv` or `--furthest` of every area, were not read at
    all, nor was `--indicator` of one area or without `--svg`, nor `--headers` without `--csv` (each has a default,
    so a check of its value could not tell it was given).
    Now each is one `error:` line, exit status 2, and nothing else is printed or written."""
    done = run(*(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert done.exit_code == 2
    assert len(done.output.splitlines()) == 1 and done.output.startswith("error: " + error.replace("{tmp}",
                                                                                                    str(tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_a_fallback_indicator_without_a_map_is_refused_for_the_map_not_for_its_type(run, tmp_path):
    """The inpatient rule is the map's: `gaps icb --indicator fallback_mean_km` with no `--svg` was refused "only
    computed for inpatient types" because the first type shown is VCFSE, though no map would draw it; then it was
    accepted and not read, as nothing but the --svg map reads --indicator (the all-areas table and its CSV show
    every indicator). Now it is refused for what it lacks, the map, as the default named without --svg is; with
    the map of an inpatient type it is drawn."""
    done = run("icb", "--indicator", "fallback_mean_km")
    assert done.exit_code == 2
    assert done.output == "error: --indicator colours the England map of every area: give --svg FILE too.\n"
    svg = tmp_path / "icb.svg"
    done = run("icb", "--type", "inpatient_rehab_level2", "--indicator", "fallback_mean_km", "--svg", str(svg))
    assert done.exit_code == 0, done.output
    assert ET.parse(svg).getroot().tag.endswith("svg")
