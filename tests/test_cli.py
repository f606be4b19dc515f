"""The `rehabmap` command as a user runs it: a real process, a real index file, real geodata."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from search.embedded import index_file
from tests.commands import rehabmap, rehabmap_here


@pytest.fixture(scope="module")
def home(tmp_path_factory, geodata_dir) -> Path:
    home = tmp_path_factory.mktemp("home")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    return home


@pytest.fixture(scope="module")
def sample_index(home, data_dir):
    done = rehabmap(home, data_dir, "index", "sample/", "--no-progress")
    assert done.returncode == 0, done.stderr
    return done


def test_index_sample_reports_counts(sample_index):
    first = sample_index.stdout.splitlines()[0]
    assert first.startswith("read ") and "indexed" in first and "rejected 0" in first
    read = int(first.split()[1].rstrip(","))
    assert read >= 50


def test_match_prints_ranked_table(sample_index, home, data_dir):
    done = rehabmap(home, data_dir, "match", "--postcode", "ls9 7tf", "--need", "autism",
                    "--type", "inpatient_rehab_level2,community_rehab_team", "--current-postcode", "TR1 3LJ")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "West Yorkshire" in lines[0] and "E54000054" in lines[0]
    assert lines[1] == "Nearest first: distance only, in the person's own ICB first."
    header = lines[2].split()
    assert header[:6] == ["#", "miles", "(km)", "ICB", "type", "service"] and header[-3:] == ["saved", "miles", "(km)"]
    rows = [line for line in lines[4:] if line[:1].isdigit() and " from home" not in line]
    distances = [(float(r.split()[1]), float(r.split()[2].strip("()"))) for r in rows]
    assert distances and all(km == pytest.approx(miles * 1.609344, abs=0.15) for miles, km in distances)
    # Before: '6.3 km from home'; every distance a person reads is in miles with km in brackets.
    assert any(re.search(r"\d miles? \(\d+\.\d km\) from home", line) for line in lines)


def test_match_orders_best_fit_first_when_asked_and_says_so(sample_index, home, data_dir):
    """Before session 35 the command had no --order: best fit first was the clinicians' page's alone. Its rule is
    held by tests/index/test_matching_bruteforce.py; here, that the command asks it and says which order it shows:
    the needs each service confirms (the table's "meets") come first."""
    ask = ("match", "--postcode", "LS9 7TF", "--need", "autism,substance_misuse", "--type",
           "supported_accommodation,inpatient_rehab_level1", "--limit", "20")
    best, nearest = rehabmap(home, data_dir, *ask, "--order", "best_fit"), rehabmap(home, data_dir, *ask)
    assert best.returncode == nearest.returncode == 0, best.stderr + nearest.stderr
    assert best.stdout.splitlines()[1] == ("Best fit first: needs confirmed, taking referrals, a recent vacancy, "
                                           "then distance.")

    def table(out: str) -> list[tuple[str, int]]:
        """Each row's service, and how many of the two needs it confirms."""
        header = out.splitlines()[2]
        at, meets = header.index("service"), header.index("meets")
        rows = [line for line in out.splitlines()[4:] if line[:1].isdigit() and ". " not in line[:4]]
        return [(row[at:meets].strip(), 0 if row[meets:].split()[0] == "-" else len(row[meets:].split()[0].split(",")))
                for row in rows]

    shown, by_distance = table(best.stdout), table(nearest.stdout)
    confirmed = [n for _, n in shown]
    assert len(shown) > 10 and confirmed == sorted(confirmed, reverse=True) and confirmed[0] > confirmed[-1]
    assert [s for s, _ in shown] != [s for s, _ in by_distance]


@pytest.mark.parametrize("postcode, message", [
    ("LS99 9ZZ", "'LS99 9ZZ' was not found"),
    ("NOT A POSTCODE", "'NOT A POSTCODE' is not a valid UK postcode"),
    ("SE1 9ZZ", "'SE1 9ZZ' was terminated (December 1998)"),  # in the default directory, without a flag
])
def test_bad_postcode_is_a_clear_error(sample_index, home, data_dir, postcode, message):
    done = rehabmap(home, data_dir, "match", "--postcode", postcode)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("placement, message", [
    ("LD7", "error: The current placement 'LD7' is a postcode district that crosses the border between England and "
            "Wales: its main local authority is in Wales, and 24 of its postcodes are in England. Give its full "
            "postcode, so that rehabmap can tell which side of the border it is on, or leave the current placement "
            "out: the options and their order are the same without it.\n"),
    ("EH1 1YZ", "error: The current placement 'EH1 1YZ' is outside England, and rehabmap knows places in England "
                "only, so it cannot say how much nearer home each option is than that placement. Leave the current "
                "placement out: the options and their order are the same without it.\n"),
], ids=["LD7", "EH1 1YZ"])
def test_a_current_placement_beyond_england_or_across_the_border_is_told_as_the_placement(
        sample_index, home, data_dir, placement, message):
    """Before: the home's words, not said of the placement: "'LD7' is a postcode district that … Give the full
    postcode, … (rehabmap lists services in England only: for services in Wales, see NHS 111 Wales …)", and
    "'EH1 1YZ' is a postcode in Scotland. …", where the API and the clinicians' form named the placement."""
    done = rehabmap(home, data_dir, "match", "--postcode", "LS9 7TF", "--current-postcode", placement)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", message)


def test_a_misspelt_command_is_told_the_one_meant(home, data_dir):
    """The commands are imported when asked for (cli/main.py); a name none has still gets click's suggestion."""
    done = rehabmap_here(home, data_dir, "snyc")
    assert done.returncode == 2 and "No such command 'snyc'. Did you mean 'sync'?" in done.stderr


def test_a_search_before_any_index_names_the_file_to_make(tmp_path, geodata_dir, data_dir):
    """The operator's console says where the index should be (a reply of the API never does: tests/api)."""
    (tmp_path / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    done = rehabmap_here(tmp_path, data_dir, "match", "--postcode", "LS9 7TF")
    assert done.returncode == 2 and "No index has been built" in done.stderr
    assert f"first. ({index_file(tmp_path)})" in done.stderr


def test_unknown_need_is_a_clear_error(sample_index, home, data_dir):
    done = rehabmap(home, data_dir, "match", "--postcode", "LS9 7TF", "--need", "dementia")
    assert done.returncode == 2 and "Unknown need 'dementia'" in done.stderr
    assert "Learning disability (learning_disability)" in done.stderr  # the need in words, with its code


def test_match_that_finds_nothing_says_what_it_did_not_find_and_what_that_means(sample_index, home, data_dir):
    """Before: "No services meet these needs. Try a larger distance or fewer needs.", with no need given. The
    nearest level 2 unit (Harehills) is 0.7 km from LS9 7TF."""
    done = rehabmap(home, data_dir, "match", "--postcode", "LS9 7TF", "--type", "inpatient_rehab_level2",
                    "--max-km", "0.5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The sample is no complete listing: the headline says the directory holds no level 2 data here, as the type's
    # line does. Before: "No service of these types was found within 0.3 miles (0.5 km). Try more types …".
    assert lines[1] == ("No service of these types was found within 0.3 miles (0.5 km), and the directory holds no "
                        "data for these types for this area yet: finding none does not mean there are none. Try more "
                        "types of service or a larger distance. For each type asked for, what finding none means:")
    assert lines[2] == ("inpatient_rehab_level2: Not yet covered: the directory holds no Level 2 inpatient "
                        "rehabilitation unit (higher support) data for this area yet.") and len(lines) == 3
    # Two types in one list of 1: before, the community team that passes every filter but comes second read only
    # the coverage's words, as if there were none.
    done = rehabmap(home, data_dir, "match", "--postcode", "LS9 7TF", "--type", "inpatient_rehab_level2", "--type",
                    "community_rehab_team", "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith(
        "community_rehab_team: 1 service in England was left out by the search's limit: 1 passes every filter but "
        "comes after the first result. Run again with a larger --limit to see it. ")


def test_match_whose_options_left_out_every_service_does_not_blame_the_needs(sample_index, home, data_dir):
    """Wirral (CH31 9FU): the 9 advocacy services each serve a catchment that leaves it out, and none says it does not
    meet autism. Before: "No service of these types meets all of these needs. Try fewer needs or more types of
    service.", which fewer needs do not change."""
    done = rehabmap(home, data_dir, "match", "--postcode", "CH31 9FU", "--type", "advocacy", "--need", "autism")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == ("No service of these types that meets all of these needs passes the search's options. Try more "
                        "types of service. For each type asked for, what finding none means:")
    assert lines[2].startswith("advocacy: 9 services in England were left out by the search's options: 9 serve a "
                               "catchment that does not include the person's home.")


def test_match_whose_confirmed_needs_left_out_every_unit_still_says_fewer_needs(sample_index, home, data_dir):
    """LS9 7TF, level 1 and 2 units, --confirmed: the units near have not confirmed all four needs, and autism
    alone lists them. Before: "No service of these types that meets all of these needs passes the search's options.
    Try more types of service or fewer 'only show' options.", advising against fewer needs and saying as a fact
    that the units left out meet the needs."""
    asked = ["--postcode", "LS9 7TF", "--type", "inpatient_rehab_level1", "--type", "inpatient_rehab_level2",
             "--confirmed"]
    done = rehabmap(home, data_dir, "match", *asked, "--need", "autism,older_adult,acquired_brain_injury,"
                    "sensory_adapted")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == ("No service of these types passes the search's options with these needs. Try fewer needs, "
                        "more types of service or fewer 'only show' options. For each type asked for, what finding "
                        "none means:")
    assert all("have not confirmed every need given" in line for line in lines[2:]) and len(lines) == 4
    fewer = rehabmap(home, data_dir, "match", *asked, "--need", "autism")
    assert fewer.returncode == 0 and "For each type asked for" not in fewer.stdout, fewer.stdout


def data_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:  # the 2019 list is cp1252
        return sum(1 for _ in csv.DictReader(f))


def report_counts(stdout: str) -> tuple[int, int, int, int]:
    first = stdout.splitlines()[0].replace(",", "").split()
    return int(first[1]), int(first[3]), int(first[5]), int(first[7])


def test_real_hospital_file_through_mapping(home, data_dir, tmp_path):
    """The other dated NHS hospital list (1,093 rows) through the generic CSV importer: every row accounted for.
    None of its mental health hospitals names a rehab ward, so none is a rehab unit: they are held for review,
    nothing is left to index, and the command says so rather than build an empty index (and queues nothing: a
    refused import changes nothing). Four Cygnet rows are given twice (the same but for their OrganisationID):
    the review queue took each once without a word; the report now says so, and that nothing is lost."""
    source = data_dir / "services" / "nhs_website_hospitals_2019.csv"
    isolated = tmp_path / "home"
    isolated.mkdir()
    (isolated / "geodata").symlink_to(home / "geodata", target_is_directory=True)
    done = rehabmap(isolated, data_dir, "index", str(source), "--no-progress")  # its mapping chosen by its name
    assert done.returncode == 2 and "error: nothing to index" in done.stderr and "Traceback" not in done.stderr
    assert "The 238 rows held for review go to the review queue only with an import that goes live" in done.stderr
    assert report_counts(done.stdout) == (data_rows(source), 0, 4, data_rows(source) - 238 - 4)
    assert done.stdout.splitlines()[0].endswith(", held for review 238")
    merged = [line for line in done.stdout.splitlines() if line.startswith("merged ")]
    assert merged == [f"merged nhs_website_hospitals_2019.csv:{again} into nhs_website_hospitals_2019.csv:{first} "
                      f"(same id nhs-hospitals-2015:{code}: the same row, nothing lost)"
                      for first, again, code in ((937, 942, "NMJ05"), (938, 943, "NMJ06"), (939, 950, "NMJ13"),
                                                 (940, 951, "NMJ14"))]
    rejected = [line for line in done.stdout.splitlines() if line.startswith("rejected ")]
    assert len(rejected) == data_rows(source) - 238 - 4
    assert not any("Day Hospital | Somerset Partnership" in line for line in rejected)  # Chantry House: held
    assert not index_file(isolated).exists() and not (isolated / "directory.sqlite").exists()


def test_real_nhs_lists_index_what_names_itself(home, data_dir, tmp_path):
    """The hospital list and the ODS sites together (30,616 rows): the sites named as rehab units or teams
    are indexed, the mental health hospitals and the sites whose names only mention rehabilitation held for
    review, the rest rejected with a reason, and indexed + merged + rejected + held = read."""
    sources = [data_dir / "services" / name for name in ("nhs_website_hospitals_2018.csv",
                                                         "ods_trusts_and_sites_2018_geocoded.csv")]
    isolated = tmp_path / "home"
    isolated.mkdir()
    (isolated / "geodata").symlink_to(home / "geodata", target_is_directory=True)
    done = rehabmap(isolated, data_dir, "index", *map(str, sources), "--no-progress")
    assert done.returncode == 0, done.stderr
    read, indexed, merged, rejected = report_counts(done.stdout)
    assert read == sum(map(data_rows, sources)) == 30_616
    held = int(done.stdout.splitlines()[0].rsplit(" ", 1)[1])
    assert (indexed, held) == (15, 289 + 9 + 45) and indexed + merged + rejected + held == read
    assert sum(1 for line in done.stdout.splitlines() if line.startswith("rejected ")) == rejected
    # Level 1 only where the name says so (a "community rehabilitation unit"); "... REHAB UNIT" is held.
    assert "  inpatient_rehab_level1: 2" in done.stdout and "  community_rehab_team: 13" in done.stdout
    # An NHS trust's site is no voluntary service, whatever its name: "LUPUS STREET (COMMUNITY SUPPORT & …)" is held.
    assert "  vcfse:" not in done.stdout


def test_match_refuses_a_distance_or_limit_out_of_range_by_the_option_it_names():
    """Before, `rehabmap match --max-km 0` said "max_distance_km must be more than 0 and at most 1000" (the API's
    field, not the option typed), and `--limit` had no help while refusing 0 with "between 1 and 100". The option's
    range is the request's own (`MAX_LIMIT`)."""
    from click.testing import CliRunner

    from cli.match import match_command
    from rehabmap.match import MAX_LIMIT

    limit = next(p for p in match_command.params if p.name == "limit")
    assert (limit.type.min, limit.type.max) == (1, MAX_LIMIT) and "of each type" in (limit.help or "")
    for args, option in ((["--max-km", "0"], "'--max-km'"), (["--limit", "0"], "'--limit'")):
        done = CliRunner().invoke(match_command, ["--postcode", "LS9 7TF", *args])
        assert done.exit_code == 2 and f"Invalid value for {option}" in done.output, done.output


def test_a_store_the_machine_will_not_write_is_one_error_line_in_any_command(tmp_path, data_dir):
    """`rehabmap orgs add` over a real SQLite store, in a process that may write no byte to a file (`prlimit
    --fsize=0`: RLIMIT_FSIZE 0 refuses every write, wherever the file's end is, so whether the store's last change
    is still in its WAL or checkpointed: EFBIG, which SQLite says as "disk I/O error"; a disk really full is
    "database or disk is full", tests/sync/test_runner.py's): the machine's fault (`machines_words`), one `error:`
    line for its operator and exit status 2, as a sync's runs say it. Before, any command but `sync` ended so with a
    traceback. A fault of rehabmap's own (a table not there) keeps it. (Python ignores SIGXFSZ itself: the write is
    refused, the process not killed.)"""
    import sqlite3
    import subprocess
    import sys

    from tests.commands import ROOT, environment

    assert rehabmap_here(tmp_path, data_dir, "orgs", "add", "Harbourlight (fictional)").returncode == 0
    [store] = tmp_path.rglob("directory.sqlite")
    with sqlite3.connect(store) as conn:  # the change checkpointed into the file: the WAL starts again from empty
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0

    done = subprocess.run(["/usr/bin/prlimit", "--fsize=0", "--", sys.executable, "-m", "cli", "orgs", "add",
                           "Second Light (fictional)"], cwd=ROOT,
                          env=environment(tmp_path, data_dir, PYTHONDONTWRITEBYTECODE="1"),  # no bytecode cut short
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: OperationalError of the store: disk I/O error. A fault of this machine's, "
                                  "not of rehabmap: mend it (a disk full, a file's permissions, a path that is a "
                                  "folder), then run the command again"), done.stderr
    assert "Traceback" not in done.stderr
    assert "Second Light" not in rehabmap_here(tmp_path, data_dir, "orgs", "list").stdout

    with sqlite3.connect(store) as conn:
        conn.execute("DROP TABLE organisations")
    bug = rehabmap(tmp_path, data_dir, "orgs", "list")
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "no such table: organisations" in bug.stderr, bug
