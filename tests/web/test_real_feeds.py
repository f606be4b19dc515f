"""The public and clinicians' pages over a directory filled as a deployment fills it: `rehabmap sync cqc` (a real
process) against the replay of the CQC API serving the 103 real recorded locations (tests/sync/replay.py), then
`rehabmap serve` on 127.0.0.1, read in real headless Chromium and over HTTP. What a person is told where the
directory finds none: none there, none confirmed yet, or no information held for the area at all.

The real records place Dovetail House (a care home registered for mental health) in Mansfield, NG18 2AT, and
Field House (a mental health hospital, held for review with level 1 proposed: nothing it says states a level)
in Alfreton, DE55 7DT. CQC's complete listing covers supported accommodation and inpatient units for England;
nothing covers employment, advocacy, community support or community rehabilitation teams."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sync.replay import running
from tests.sync.store_fixtures import FIELD_HOUSE_POSTCODE, make_home, rehabmap, serving
from tests.web.test_browser import axe

pytestmark = pytest.mark.slow

DOVETAIL_POSTCODE = "NG18 2AT"


@pytest.fixture(scope="module")
def synced_home(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Path:
    """A home that `rehabmap sync cqc` filled from the recorded CQC API."""
    home = make_home(tmp_path_factory.mktemp("real-feeds") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
        assert "held cqc:1-112845365 Field House: inferred: inpatient_rehab_level1" in done.stdout
    return home


@pytest.fixture(scope="module")
def synced(synced_home: Path, data_dir: Path) -> Iterator[str]:
    """The URL of `rehabmap serve` over that home."""
    with serving(synced_home, data_dir) as url:
        yield url


def kind_text(page, slug: str) -> str:
    return page.locator(f"section[aria-labelledby='kind-{slug}']").inner_text()


def test_everything_near_says_what_finding_none_of_a_kind_means(browser, synced, axe_source):
    """Before: every kind without a service near the home read "None found within 25 miles", where the
    directory holds no employment, advocacy or community data anywhere, and where a hospital waits in the
    review queue: a person was told there was nothing, when rehabmap simply did not know."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{synced}/find/everything?where={DOVETAIL_POSTCODE.replace(' ', '+')}&within=10")
    assert "Dovetail House" in kind_text(page, "housing")
    for slug, title in (("work", "getting back to work"), ("advocacy", "someone to speak up for you"),
                        ("peer-support", "peer and community support"),
                        ("rehabilitation", "rehabilitation teams and units")):
        assert (f"We do not hold information about {title} for this area yet, so this does not mean there is "
                "none near you.") in kind_text(page, slug)
    main = page.locator("main").inner_text()
    assert "None found" not in main and "Mind's Infoline" in main
    assert axe(page, axe_source) == []

    page.goto(f"{synced}/find/everything?where={FIELD_HOUSE_POSTCODE.replace(' ', '+')}&within=5")
    assert ("Some services of this kind near you are still being checked by the people who keep this directory"
            in kind_text(page, "rehabilitation"))
    assert "None found" not in page.locator("main").inner_text()
    context.close()


def test_a_held_hospital_is_a_candidate_at_either_level(synced):
    """A mental health hospital held for review may be a level 1 or a level 2 unit: the maintainer says which.
    Before, only its proposed level 1 counted, so a level 2 search beside Field House said "None found. The
    directory holds complete Level 2 inpatient rehabilitation unit data for this area"."""
    for level in ("inpatient_rehab_level1", "inpatient_rehab_level2"):
        body = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": [level], "max_distance_km": 10}
        [summary] = httpx.post(f"{synced}/match", json=body, timeout=60).json()["summary"]
        assert (summary["found"], summary["coverage"]["pending_review"]) == ("awaiting_review", 1), level
        assert summary["coverage"]["says"].startswith("None confirmed yet: 1 candidate awaits review")
    with httpx.Client(base_url=synced, timeout=60, follow_redirects=True) as client:
        page = client.post("/alternatives", data={"home": FIELD_HOUSE_POSTCODE,
                                                  "types": "inpatient_rehab_level2"}).text
    assert "None confirmed yet: 1 candidate awaits review" in page
    # No needs were given, so none can be unmet: the page does not say "No service meets all of these needs".
    assert "No service of these types was found." in page and "these needs" not in page


def test_cqc_covers_care_homes_not_all_supported_accommodation(synced):
    """CQC registers every care home, but not floating support (housing support is not a regulated activity)
    nor supported housing whose staff give no personal care. Before, a complete CQC run claimed supported
    accommodation as a whole: Derby and Derbyshire's scorecard called floating outreach and supported housing
    "missing", and "Somewhere to live with support" near Field House said "We could not find" rather than that
    rehabmap holds no such information there."""
    near = {"home": {"postcode": FIELD_HOUSE_POSTCODE}, "types": ["supported_accommodation"], "max_distance_km": 5}
    found = {}
    for subtypes in (["residential_24h"], ["floating_outreach"], []):
        [summary] = httpx.post(f"{synced}/match", json={**near, "subtypes": subtypes}, timeout=60).json()["summary"]
        found[tuple(subtypes)] = summary["found"]
    assert found == {("residential_24h",): "none_found", ("floating_outreach",): "not_yet_covered",
                     (): "not_yet_covered"}
    housing = httpx.get(f"{synced}/find/housing", params={"where": FIELD_HOUSE_POSTCODE, "within": 5}, timeout=60)
    assert "We do not hold information about somewhere to live with support for this area yet" in housing.text
    card = httpx.get(f"{synced}/gaps/E54000058", timeout=300).json()["scorecard"]  # Derby and Derbyshire
    assert card["missing_subtypes"] == ["supported_accommodation:residential_24h"]
    assert {"supported_accommodation:floating_outreach", "supported_accommodation:supported_housing"} <= set(
        card["not_covered_subtypes"])


def test_coverage_words_fit_an_answer_that_found_some(synced):
    """Before, `says` always read "None found. The directory holds complete …", also beside the two care homes
    GET /areas counts in Nottingham and Nottinghamshire and beside Dovetail House in a match: an API user who
    showed it told a person there were none where the answer listed some."""
    area = httpx.get(f"{synced}/areas/{NOTTINGHAMSHIRE}", timeout=60).json()
    assert area["counts"]["supported_accommodation"] == 2
    assert area["coverage"]["supported_accommodation"]["says"] == (
        "Found, but the directory does not yet hold complete Supported accommodation data for this area: there "
        "may be more.")  # CQC covers care homes, not floating support or supported housing
    assert area["counts"]["ips_employment"] == 0
    assert area["coverage"]["ips_employment"]["says"].startswith("Not yet covered:")
    near = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": ["supported_accommodation"],
            "subtypes": ["residential_24h"], "max_distance_km": 5}
    [summary] = httpx.post(f"{synced}/match", json=near, timeout=60).json()["summary"]
    assert summary["found"] == "found" and summary["coverage"]["says"].startswith(
        "Found. The directory holds complete Supported accommodation data for this area (as of ")


# The commissioners' pathway gaps over the same home. Derby and Derbyshire (E54000058) holds Field House, a
# candidate at either inpatient level; Nottingham and Nottinghamshire (E54000060) holds two care homes and no
# data at all of the parts no source covers.
DERBYSHIRE, NOTTINGHAMSHIRE = "E54000058", "E54000060"
INPATIENT = ("inpatient_rehab_level1", "inpatient_rehab_level2")


def test_gaps_say_none_confirmed_yet_where_candidates_await_review(synced, synced_home, data_dir):
    """Before, Derby and Derbyshire's scorecard called both inpatient levels "Missing" (the command line:
    MISSING) while Field House waited in the review queue and the part's own coverage said "None confirmed
    yet": a guess shown as a fact. Now the part is awaiting review in every face, with no figure."""
    body = httpx.get(f"{synced}/gaps/{DERBYSHIRE}", timeout=300).json()
    card = body["scorecard"]
    assert card["awaiting_review"] == list(INPATIENT) and not set(INPATIENT) & set(card["missing"])
    for part in card["parts"][-2:]:
        assert (part["type"], part["status"], part["coverage"]["pending_review"]) in {
            (level, "awaiting_review", 1) for level in INPATIENT}
    for entry in body["indicators"][-2:]:
        assert entry["status"] == "awaiting_review" and entry["no_data"].startswith("None confirmed yet: 1 candidate")
        assert entry["count"] is entry["mean_km"] is entry["share_beyond_threshold"] is None
    schema = httpx.get(f"{synced}/openapi.json", timeout=60).json()["components"]["schemas"]
    assert "awaiting_review" in schema["PathwayPart"]["properties"]["status"]["anyOf"][0]["enum"]

    page = httpx.get(f"{synced}/pathway-gaps/{DERBYSHIRE}", timeout=300).text
    assert "2 with none confirmed yet while candidates await review" in page and "None confirmed yet" in page
    assert ">Missing<" not in page and "are missing" not in page

    table = httpx.get(f"{synced}/gaps", params={"level": "icb"}, timeout=300).json()
    derbyshire = next(a for a in table["areas"] if a["code"] == DERBYSHIRE)
    assert derbyshire["awaiting_review_parts"] == list(INPATIENT) and derbyshire["awaiting_review_count"] == 2
    assert not set(INPATIENT) & set(derbyshire["missing_parts"])
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).text
    row = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == DERBYSHIRE)
    assert row["awaiting_review_parts"] == ";".join(INPATIENT) and row["inpatient_rehab_level2.count"] == ""
    england = httpx.get(f"{synced}/gaps/england.svg", params={"type": "inpatient_rehab_level2",
                                                               "indicator": "per_100k_adults"}, timeout=300).text
    assert f"({DERBYSHIRE}): none confirmed yet (candidates await review)</title>" in england

    done = rehabmap(synced_home, data_dir, None, "gaps", DERBYSHIRE)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("inpatient_rehab_level1") and line.endswith("AWAITING REVIEW") for line in lines)
    assert "AWAITING REVIEW: inpatient_rehab_level2: None confirmed yet: 1 candidate awaits review" in done.stdout
    assert not any(line.startswith("inpatient") and "MISSING" in line for line in lines)
    assert "residential_24h" in next(line for line in lines if line.endswith("MISSING"))  # CQC covers, none found


def test_parts_not_covered_show_no_figures(synced, synced_home, data_dir):
    """Before, a part rehabmap holds no data of in Nottingham and Nottinghamshire still showed "Adults beyond
    threshold 100%", and the all-areas CSV gave it 0 services and a share of 1.0: figures as facts where
    nothing is known. Now each face says no data, with the reason; what is known is still given."""
    body = httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()
    entries = {e["category"]: e for e in body["indicators"]}
    vcfse, housing = entries["vcfse"], entries["supported_accommodation:residential_24h"]
    assert vcfse["status"] == "not_covered" and vcfse["no_data"].startswith("Not yet covered")
    assert vcfse["count"] is vcfse["share_beyond_threshold"] is vcfse["mean_km"] is None
    assert housing["status"] == "present" and housing["count"] == 2 and housing["mean_km"] == pytest.approx(8.9, 0.01)

    page = httpx.get(f"{synced}/pathway-gaps/{NOTTINGHAMSHIRE}", timeout=300).text
    assert "No data: Not yet covered: the directory holds no Voluntary, community, faith and social enterprise " \
           "support data for this area yet." in page

    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).text
    row = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == NOTTINGHAMSHIRE)
    assert [row[f"vcfse.{k}"] for k in ("count", "share_beyond_threshold", "mean_km")] == ["", "", ""]
    assert row["supported_accommodation.count"] == "2" and "vcfse" in row["not_covered_parts"].split(";")

    done = rehabmap(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE)
    vcfse_line = next(line for line in done.stdout.splitlines() if line.startswith("vcfse "))
    assert vcfse_line.split() == ["vcfse", "-", "-", "-", "-", "-", "-", "NOT", "COVERED"]


def test_a_rank_among_equal_figures_is_not_given(synced, synced_home, data_dir):
    """Before, every ICB with no level 2 unit read "Rank 1 of 42" for level 2 services per 100,000 adults: all
    equal figures share rank 1, which says nothing. Now the figure is given and the rank is "all equal"."""
    comparison = httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}/compare", timeout=300).json()
    level2 = next(c for c in comparison["comparisons"]
                  if (c["category"], c["indicator"]) == ("inpatient_rehab_level2", "per_100k_adults"))
    # Derby and Derbyshire awaits review, so 41 ICBs share the figure 0.
    assert (level2["value"], level2["rank"], level2["standing"], level2["ranked"]) == (0, None, "all_equal", 41)
    assert {a["standing"] for a in level2["table"]} == {"all_equal", "awaiting_review"}
    housing = next(c for c in comparison["comparisons"]
                   if (c["category"], c["indicator"]) == ("supported_accommodation", "per_100k_adults"))
    assert housing["standing"] == "ranked" and housing["rank"] == 1

    page = httpx.get(f"{synced}/pathway-gaps/{NOTTINGHAMSHIRE}", timeout=300).text
    assert "All 41 equal" in page and "1 of 41" not in page and "1 of 42" not in page
    done = rehabmap(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE, "--compare")
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("inpatient_rehab_level2") and "per_100k_adults" in line
               and line.endswith("all 41 equal") for line in done.stdout.splitlines())
