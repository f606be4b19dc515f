"""Freshness: results say when a record is due for verification, maintainers list what is due (endpoint
and command), and verifying clears it. Checked against a plain computation over the index's records."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from indexer.sync.rebuild import record_curated_coverage
from rehabmap.coverage import CURATED, Claim, CoverageStore
from rehabmap.maintain.freshness import due_before
from rehabmap.maintain.store import store_of
from search.embedded import EmbeddedIndex, index_file
from tests.maintain.conftest import CURATED_TABLE, OWNED_A, TODAY, AppClient, cli_here, make_app, make_site

DAYS = 12  # the sample's verification dates run from 2026-11-01 to 2026-11-20: some are due, some not


@pytest.fixture(scope="module")
def fresh(sample_index, geodata_dir, data_dir, tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("freshness") / "home", sample_index, geodata_dir, data_dir,
                     verify_after_days=DAYS)
    return site, AppClient(make_app(site.settings))


def due(service, today=TODAY, days=DAYS) -> bool:
    return service.last_verified is None or (today - service.last_verified).days > days


def records(site):
    return {s.id: s for s in EmbeddedIndex(index_file(site.home)).all()}


def test_results_say_whether_a_record_is_due_for_verification(fresh):
    site, api = fresh
    services = records(site)
    assert any(due(s) for s in services.values()) and not all(due(s) for s in services.values())
    listed = api.get("/services", params={"per_page": 100}).json()["results"]
    assert len(listed) == sum(s.status == "active" for s in services.values())
    for item in listed:
        assert item["verification_due"] is due(services[item["id"]]), item["id"]
        assert item["last_verified"] == services[item["id"]].last_verified.isoformat()
    match = api.post("/match", json={"home": {"postcode": "LS9 7TF"}, "types": "any", "limit": 5}).json()
    assert match["results"]
    for item in match["results"] + [t["nearest"] for t in match["summary"] if t["nearest"]]:
        assert item["verification_due"] is due(services[item["id"]]), item["id"]
        assert item["last_verified"] == services[item["id"]].last_verified.isoformat()
    one = next(iter(services))
    assert api.get(f"/services/{one}").json()["verification_due"] is due(services[one])


def test_the_cut_off_a_reply_works_out_once_says_what_the_rule_says():
    """`due_before(today, days)`: a date before it is due exactly when it is more than `days` old, on every
    day around each cut-off, and near the first day a date can be (no cut-off before it: nothing is due)."""
    for today in (TODAY, date(2024, 2, 29), date(2025, 1, 1), date(9999, 12, 31), date(1, 1, 1), date(1, 12, 1)):
        for days in (1, 12, 180, 365, 3650):
            cut = due_before(today, days)
            for back in range(max(days - 3, 0), days + 4):
                if back <= (today - date.min).days:
                    verified = today - timedelta(days=back)
                    assert (verified < cut) is due(SimpleNamespace(last_verified=verified), today, days), (today, back)
    assert due_before(date(1, 1, 5), 10) == date.min


def test_maintainers_list_what_is_due_longest_overdue_first_and_verifying_clears_it(fresh):
    site, api = fresh
    services = records(site)
    expected = sorted((s for s in services.values() if s.status == "active" and due(s)),
                      key=lambda s: (s.last_verified, s.id))
    reply = api.get("/maintain/verification-due", params={"per_page": 500}, headers=site.auth("maintainer")).json()
    assert reply["verify_after_days"] == DAYS and reply["total"] == len(expected)
    assert [r["id"] for r in reply["results"]] == [s.id for s in expected]
    assert reply["results"][0]["days_since_verified"] == (TODAY - expected[0].last_verified).days
    page2 = api.get("/maintain/verification-due", params={"per_page": 3, "page": 2}, headers=site.auth("admin")).json()
    assert [r["id"] for r in page2["results"]] == [s.id for s in expected[3:6]]

    # A provider sees only its own organisation's services.
    mine = api.get("/maintain/verification-due", headers=site.auth("provider_a")).json()
    assert {r["id"] for r in mine["results"]} == {s for s in OWNED_A if due(services[s])}

    target = expected[0].id
    assert api.post(f"/maintain/services/{target}/verify", headers=site.auth("maintainer")).status_code == 200
    after = api.get("/maintain/verification-due", params={"per_page": 500}, headers=site.auth("maintainer")).json()
    assert after["total"] == len(expected) - 1 and target not in {r["id"] for r in after["results"]}
    assert api.get(f"/services/{target}").json()["verification_due"] is False


def test_the_verify_due_command_lists_the_same(fresh):
    site, _api = fresh
    days = (TODAY - date(2026, 11, 10)).days  # a window that splits the sample
    services = records(site)
    expected = sorted((s for s in services.values() if s.status == "active" and due(s, TODAY, days)),
                      key=lambda s: (s.last_verified or date.min, s.id))
    # The command is given the test's date: its own clock would be a day on past a midnight between them.
    done = cli_here(site, "verify-due", "--days", str(days), "--limit", "500", REHABMAP_TODAY=TODAY.isoformat())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{len(expected)} services need verifying (not verified for {days} days")
    listed = [line.split()[0] for line in lines[3:3 + len(expected)]]
    assert listed == [s.id for s in expected]
    assert lines[3 + len(expected)] == f"0 areas a curated table covers were checked more than {days} days ago."


@pytest.fixture
def old_checks(fresh, tmp_path):
    """A statutory advocacy table whose coverage is recorded as a rebuild records it (`record_curated_coverage`),
    and a source's claim as old, which its syncs renew (never listed); taken away after."""
    site, _api = fresh
    table = tmp_path / "statutory_advocacy.csv"
    table.write_text(CURATED_TABLE, encoding="utf-8")
    store = CoverageStore(store_of(site.settings))
    record_curated_coverage(store_of(site.settings), [table])
    store.replace("sync:cqc", [Claim("inpatient_rehab_level1", "E92000001", "sync:cqc", "2026-01-01")])
    yield site
    store.replace(CURATED, [], prefix=True)
    store.replace("sync:cqc", [])


def test_the_areas_a_curated_table_covers_on_an_old_check_are_listed_oldest_first(fresh, old_checks):
    """Only a person renews a curated table's claim that an area is covered (a `none` row, or every service
    listed): until then searches there say "none found" on that word. Before, no list said which were old."""
    site, api = fresh
    reply = api.get("/maintain/verification-due", headers=site.auth("maintainer")).json()
    assert [(a["area_code"], a["area_name"], a["category"], a["table"], a["verified_on"], a["verified_by"],
             a["days_since_verified"]) for a in reply["areas_due"]] == [
        ("E10000003", "Cambridgeshire", "advocacy:imha", "statutory_advocacy.csv", "2026-06-01", "Bob Curator",
         (TODAY - date(2026, 6, 1)).days),
        # the area's oldest check among its rows, by everyone who checked them
        ("E08000035", "Leeds", "advocacy:care_act", "statutory_advocacy.csv", "2026-09-30",
         "Ann Curator; Cy Curator", (TODAY - date(2026, 9, 30)).days)]  # IMCA, checked 3 days ago, is not due
    assert api.get("/maintain/verification-due", headers=site.auth("provider_a")).json()["areas_due"] == []

    done = cli_here(site, "verify-due", "--days", str(DAYS), REHABMAP_TODAY=TODAY.isoformat())
    assert done.returncode == 0, done.stderr
    tail = done.stdout.split(f"2 areas a curated table covers were checked more than {DAYS} days ago", 1)[1]
    rows = [line.split() for line in tail.splitlines()[3:]]
    assert [row[:5] for row in rows] == [
        ["E10000003", "Cambridgeshire", "advocacy:imha", "statutory_advocacy.csv", "2026-06-01"],
        ["E08000035", "Leeds", "advocacy:care_act", "statutory_advocacy.csv", "2026-09-30"]]


def test_token_and_organisation_commands(fresh):
    site, api = fresh
    made = cli_here(site, "tokens", "create", "--role", "provider", "--organisation", "Aire Trust (fictional)",
               "--name", "Aire bed manager")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("rmk_") and "shown only this once" in made.stderr
    token_id = token.split("_")[1]
    me = api.get("/maintain/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "provider" and me["organisation"] == "Aire Trust (fictional)"

    listing = cli_here(site, "tokens", "list")
    assert token_id in listing.stdout and "Aire bed manager" in listing.stdout and token not in listing.stdout
    assert cli_here(site, "tokens", "revoke", token_id).returncode == 0
    assert api.get("/maintain/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "revoked" in api.get("/maintain/me", headers={"Authorization": f"Bearer {token}"}).json()["error"]["message"]

    bad = cli_here(site, "tokens", "create", "--role", "provider")
    assert (bad.returncode, bad.stderr) == (2, "error: A provider token needs an organisation, and only a provider "
                                               "token takes one. Give --organisation with --role provider, and only "
                                               "then.\n")
    unknown = cli_here(site, "tokens", "create", "--role", "provider", "--organisation", "Nobody Ltd")
    assert unknown.returncode == 2 and "No organisation 'Nobody Ltd'" in unknown.stderr

    assert cli_here(site, "orgs", "add", "Harbourlight (fictional)").returncode == 0
    linked = cli_here(site, "orgs", "link", "Harbourlight (fictional)", "sample:kirkstall-locked-rehabilitation-ward")
    assert linked.returncode == 0 and "now owns 1 services" in linked.stdout
    missing = cli_here(site, "orgs", "link", "Harbourlight (fictional)", "sample:no-such-service")
    assert missing.returncode == 2 and "sample:no-such-service" in missing.stderr
    assert "Harbourlight (fictional)" in cli_here(site, "orgs", "list").stdout
    audit = cli_here(site, "audit", "--service", "sample:kirkstall-locked-rehabilitation-ward", "--hsds")
    assert audit.returncode == 0 and '"replacement_value": "Harbourlight (fictional)"' in audit.stdout
