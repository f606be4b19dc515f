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
import html
import io
import json
import re
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest

from rehabmap.config import Settings
from rehabmap.coverage import Claim, CoverageStore, coverage_map
from rehabmap.gaps.svg import PALETTE
from rehabmap.small_areas import small_area_file
from rehabmap.oruk import oruk_to_fields
from rehabmap.taxonomy import ServiceType
from tests.api import hsds
from tests.cqc_records import DOVETAIL_POSTCODE, FIELD_HOUSE_ID, FIELD_HOUSE_POSTCODE, GROVELANDS, GROVELANDS_ID
from tests.sync.replay import running
from tests.sync.store_fixtures import (ListedConnector, field_house_item, make_home, rehabmap, rehabmap_here,
                                       runner_for, serving)
from tests.web.browser import axe
from tests.web.real_feeds_home import (  # noqa: F401 - the fixtures, for this module too
    DERBYSHIRE, NOTTINGHAMSHIRE, synced, synced_home)
from search.embedded import index_file

pytestmark = pytest.mark.slow

WAITS = "None confirmed yet: 1 candidate awaits review by the directory's maintainers"


def kind_text(page, slug: str) -> str:
    return page.locator(f"section[aria-labelledby='kind-{slug}']").inner_text()


def test_everything_near_says_what_finding_none_of_a_kind_means(browser, synced, axe_source):
    """Before: every kind without a service near the home read "None found within 25 miles", where the
    directory holds no employment, advocacy or community data anywhere, and where a hospital waits in the
    review queue: a person was told there was nothing, when rehabmap simply did not know."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{synced}/find/everything?where={DOVETAIL_POSTCODE.replace(' ', '+')}&within=10")
    # The care homes found are not all the supported accommodation there may be: CQC lists no supported housing.
    # Before, the list said nothing of it, as the API's "Found, but …" does.
    more = ("We do not hold complete information about support at home (floating support) or supported housing "
            "for this area yet, so there may be more near you.")
    assert "Dovetail House" in kind_text(page, "housing") and more in kind_text(page, "housing")
    for slug, title in (("work", "getting back to work"), ("advocacy", "someone to speak up for you"),
                        ("peer-support", "peer and community support")):
        assert (f"We do not hold information about {title} for this area yet, so this does not mean there is "
                "none near you.") in kind_text(page, slug)
    # Field House, a hospital awaiting review 14.5 km away (in Derby and Derbyshire), is within the 10 miles.
    assert "Some services of this kind near you are still being checked" in kind_text(page, "rehabilitation")
    main = page.locator("main").inner_text()
    assert "None found" not in main and "Mind's Infoline" in main
    assert axe(page, axe_source) == []

    page.goto(f"{synced}/find/everything?where={FIELD_HOUSE_POSTCODE.replace(' ', '+')}&within=5")
    assert ("Some services of this kind near you are still being checked by the people who keep this directory"
            in kind_text(page, "rehabilitation"))
    assert "None found" not in page.locator("main").inner_text()
    page.goto(f"{synced}/find/housing?where={DOVETAIL_POSTCODE.replace(' ', '+')}&within=10")
    assert more in page.locator("main").inner_text() and axe(page, axe_source) == []
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


def test_a_held_record_by_id_is_not_listed_yet_rather_than_no_service(synced):
    """The coverage tells a clinician that a candidate awaits review; its id (in a sync report, a source's link)
    answered "No service with id 'cqc:1-112845365'", as if no source gave it. The 404 now says it awaits review.
    A maintainer's reason and name for a rejection stay on the maintainers' API."""
    answer = httpx.get(f"{synced}/services/{FIELD_HOUSE_ID}", timeout=60)
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith(f"'{FIELD_HOUSE_ID}' is not listed yet: its source gives it, "
                                                        "and it awaits review by the directory's maintainers")
    unknown = httpx.get(f"{synced}/services/cqc:1-000000000", timeout=60).json()["error"]["message"]
    assert unknown.startswith("No service with id 'cqc:1-000000000'")
    # A shortlist link holding it, a typo and Dovetail House: before, both absent ids read "no longer listed", as
    # if withdrawn. Nothing of the held record is shown: not its name.
    listed = " ".join(httpx.get(f"{synced}/shortlist", params={"s": ["cqc:1-112779585", FIELD_HOUSE_ID,
                                                                      "cqc:1-000000000"]}, timeout=60).text.split())
    assert "1 service in this link is not listed yet: it is still being checked by the people who keep this " \
           "directory." in listed
    assert "1 service in this link is not in this directory: the link may be incomplete or mistyped." in listed
    assert "no longer listed" not in listed and "Field House" not in listed and "Dovetail House" in listed


def searched(browser, synced: str, service_type: str, within: str, *options: str):
    """The clinicians' results page in Chromium for one type near Dovetail House, within `within` miles."""
    page = browser.new_page()
    page.goto(f"{synced}/alternatives")
    page.fill("input[name=home]", DOVETAIL_POSTCODE)
    page.check(f"input[name=types][value={service_type}]")
    page.locator("summary", has_text="More options").click()
    page.fill("input[name=within]", within)
    for option in options:
        page.check(f"input[name=options][value={option}]")
    page.locator("main form button[type=submit]").last.click()
    page.wait_for_url("**/alternatives/results/*")
    return page


LEFT_OUT = ("1 service within 10.0 miles (16.1 km) of home was left out by the search's options: 1 does not say it "
            "is taking new referrals.")
CARE_HOMES_ONLY = ("The directory holds complete Supported accommodation data here only for 24-hour staffed "
                   "residential care (as of ")
NOT_CARE_HOMES = "floating outreach support and supported housing (high support, on-site staff) are not yet covered."


def test_an_empty_answer_says_what_the_options_left_out_and_which_kinds_are_covered(browser, synced, synced_home,
                                                                                    data_dir, axe_source):
    """Supported accommodation within 10 miles of NG18 2AT, only services taking new referrals. Before, every face
    said "Not yet covered: the directory holds no Supported accommodation data for this area yet": but CQC's
    listing holds every care home there (Dovetail House, 0.1 mile away), and the option left it out because it has
    not said whether it takes referrals. Now each says what the option left out, and which kinds are covered."""
    body = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": ["supported_accommodation"], "max_distance_km": 16.0934,
            "accepting_referrals_only": True}
    [summary] = httpx.post(f"{synced}/match", json=body, timeout=60).json()["summary"]
    coverage = summary["coverage"]
    assert (summary["found"], coverage["status"], coverage["kinds_covered"], coverage["kinds_not_covered"]) == (
        "not_yet_covered", "partly_covered", ["supported_accommodation:residential_24h"],
        ["supported_accommodation:floating_outreach", "supported_accommodation:supported_housing"])
    assert coverage["says"].startswith(f"None found, but t{CARE_HOMES_ONLY[1:]}") and NOT_CARE_HOMES in coverage["says"]
    assert summary["left_out"] == {"total": 1, "by_option": {"accepting_referrals_only": 1}, "says": LEFT_OUT}
    [shown] = httpx.post(f"{synced}/match", json={**body, "accepting_referrals_only": False}, timeout=60).json()[
        "summary"]
    assert shown["left_out"] is None and shown["coverage"]["says"].startswith(f"Found, but t{CARE_HOMES_ONLY[1:]}")
    schema = httpx.get(f"{synced}/openapi.json", timeout=60).json()["components"]["schemas"]
    assert {"kinds_covered", "kinds_not_covered"} <= set(schema["CoverageOut"]["properties"])
    assert "left_out" in schema["TypeSummaryOut"]["properties"] and "by_option" in schema["LeftOutOut"]["properties"]

    done = rehabmap(synced_home, data_dir, None, "match", "--postcode", DOVETAIL_POSTCODE, "--type",
                    "supported_accommodation", "--accepting", "--max-km", "16.0934")
    assert done.returncode == 0, done.stderr
    line = done.stdout.splitlines()[-1]
    assert line.startswith(f"supported_accommodation: {LEFT_OUT} Run again without --accepting to see it. "
                           f"{CARE_HOMES_ONLY}") and line.endswith(NOT_CARE_HOMES)

    page = searched(browser, synced, "supported_accommodation", "10", "accepting_only")
    group = page.locator("#group-supported_accommodation").inner_text()
    assert LEFT_OUT.replace("10.0", "10") in group and CARE_HOMES_ONLY in group and "Not yet covered" not in group
    assert "or fewer 'only show' options." in page.locator("main").inner_text()
    notes = page.locator("#plain-text").input_value()
    assert f"Supported accommodation: {LEFT_OUT.replace('10.0', '10')} {CARE_HOMES_ONLY}" in notes
    assert axe(page, axe_source) == []
    page.get_by_role("button", name="Show it: search again without 'Only services taking new referrals'").click()
    page.wait_for_url("**/alternatives/results/*")
    assert "1. Dovetail House" in page.locator("#group-supported_accommodation").inner_text()
    assert "Only services taking new referrals" not in page.locator("main dl").first.inner_text()
    page.close()


def test_a_held_candidate_within_the_search_radius_is_awaiting_review_in_any_icb(browser, synced):
    """Field House (Derby and Derbyshire) lies ~14.5 km from Mansfield (Nottingham and Nottinghamshire). Before,
    only candidates in the home's ICB counted: a level 1 search from NG18 2AT within 40 km (the API, the
    clinicians' page) said "None found. The directory holds complete … data", and the public page within 25
    miles "We could not find", beside a hospital a maintainer's decision may list. Now one within the radius
    counts wherever it lies; one beyond it, or outside a search kept to the home's ICB, does not."""
    home = {"postcode": DOVETAIL_POSTCODE}
    found, says = {}, []
    for reach in ({"max_distance_km": 40}, {}, {"max_distance_km": 10}, {"max_distance_km": 40, "own_icb_only": True}):
        body = {"home": home, "types": ["inpatient_rehab_level1"], **reach}
        [summary] = httpx.post(f"{synced}/match", json=body, timeout=60).json()["summary"]
        found[tuple(reach.items())] = (summary["found"], summary["coverage"]["pending_review"])
        says.append(summary["coverage"]["says"])
    assert list(found.values()) == [("awaiting_review", 1), ("awaiting_review", 1), ("none_found", 0),
                                    ("none_found", 0)]
    # And where it waits: "by the directory's maintainers here" read as if it lay in the person's own area.
    assert says[:2] == [f"{WAITS} within 25 miles (40.0 km) of home, outside the person's ICB, so none found does "
                        "not mean there are none.",
                        f"{WAITS} in England (the search has no distance limit), so none found does not mean there "
                        "are none."]
    page = searched(browser, synced, "inpatient_rehab_level1", "25")
    main = page.locator("main").inner_text()
    assert f"{WAITS} within 25 miles (40.2 km) of home, outside the person's ICB" in main
    assert "None found. The directory" not in main
    for within, checked in (("25", True), ("5", False)):
        page.goto(f"{synced}/find/rehabilitation?where={DOVETAIL_POSTCODE.replace(' ', '+')}&within={within}")
        assert ("still being checked" in page.locator("main").inner_text()) is checked, within
    page.close()


# Forest Independent Hospital, Mansfield (NG18 4XX), as the NHS website's 2018 hospital list gives it: held for review
# by `rehabmap index`, as every hospital of that list is, until a maintainer accepts it.
FOREST_ID = "nhs-hospitals-2018:DAM04"
TEAMS = "community rehabilitation teams"
NO_TEAMS = f"We do not hold information about {TEAMS} for this area yet"


def test_a_kind_being_checked_still_says_which_of_its_parts_no_data_is_held_for(cqc_synced_home, tmp_path,
                                                                                data_dir):
    """"Rehabilitation teams and units" is three types: community rehabilitation teams, of which the CQC sync holds
    no data anywhere, and the two inpatient levels, whose candidates await review. Before, a candidate awaiting
    review settled what the page said of the whole kind ("still being checked"), and the teams went unsaid: near
    Mansfield the page listed Forest Independent Hospital (accepted from the real 2018 list) as if it were all the
    rehab support there, and near Field House said only that some were being checked. Each now also says that no
    team data is held there."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    hospitals = data_dir / "services" / "nhs_website_hospitals_2018.csv"
    for args in (("index", str(hospitals)), ("review", "accept", FOREST_ID, "--level", "1")):
        done = rehabmap(home, data_dir, None, *args)
        assert done.returncode == 0, done.stderr
    with serving(home, data_dir) as url:
        def said(path: str, postcode: str, within: int) -> str:
            answer = httpx.get(f"{url}{path}", params={"where": postcode, "within": within}, timeout=60)
            assert answer.status_code == 200
            return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer.text)).split())

        # Found, with more being checked (Field House among them) and no data on the teams.
        for found in (said("/find/rehabilitation", DOVETAIL_POSTCODE, 25),
                      said("/find/everything", DOVETAIL_POSTCODE, 25)):
            assert "Forest Independent Hospital" in found
            assert "Other services of this kind near you are still being checked" in found
            assert f"We do not hold complete information about {TEAMS} for this area yet, so there may be more " \
                   "near you." in found
        # None found within 5 miles of Field House, which awaits review: the same two things.
        none = said("/find/rehabilitation", FIELD_HOUSE_POSTCODE, 5)
        assert "Some services of this kind near you are still being checked by the people who keep this directory, " \
               f"and are not listed yet. {NO_TEAMS}. Your GP or local council can tell you what there is." in none


def test_an_area_holding_every_unit_of_a_level_says_none_is_known_outside(cqc_synced_home, tmp_path, data_dir):
    """Field House accepted as a level 1 unit is the only one in England, in Derby and Derbyshire: "if every local
    unit were full" there is no unit outside the area to measure to, and the area's fallback is flagged far with no
    figure. Before, `rehabmap gaps E54000058` ended in a traceback (TypeError formatting the missing mean) and the
    area page and its printable summary said "the nearest unit outside the area is on average – km away". Now each
    says that rehabmap knows of no such unit outside the area, and the type's own figures say far as the scorecard
    does (before, `far` was null there)."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    accepted = rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "1")
    assert accepted.returncode == 0, accepted.stderr
    none_outside = "rehabmap knows of no unit of this type outside the area, so it cannot say how far the nearest is"
    printed = rehabmap_here(home, data_dir, None, "gaps", DERBYSHIRE)
    assert printed.returncode == 0, printed.stderr
    assert ("Inpatient units whose nearest out-of-area use would be far (mean over the threshold if every local unit "
            "were full): inpatient_rehab_level1 none known outside the area\n") in printed.stdout
    with serving(home, data_dir) as url:
        gaps = httpx.get(f"{url}/gaps/{DERBYSHIRE}", timeout=300).json()
        card = gaps["scorecard"]
        pages = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", httpx.get(f"{url}{path}", timeout=300).text)).split())
                 for path in (f"/pathway-gaps/{DERBYSHIRE}", f"/pathway-gaps/{DERBYSHIRE}/summary")]
    assert [(f["type"], f["fallback_mean_km"], f["none_outside"]) for f in card["inpatient_fallback_far"]] == [
        ("inpatient_rehab_level1", None, True)]
    # The type's own figures say it is far, as the scorecard lists it (before: null).
    [level1] = [i["fallback_if_local_full"] for i in gaps["indicators"] if i["category"] == "inpatient_rehab_level1"]
    assert (level1["mean_km"], level1["far"]) == (None, True)
    for page in pages:
        assert f"Level 1 inpatient rehabilitation unit: {none_outside}." in page
        assert "– km" not in page


# A level 2 unit in Nottingham (NG5 2EW, 12 beds) taking people from Nottingham and Nottinghamshire and from Amber
# Valley only, one of Derby and Derbyshire's districts, as `rehabmap gaps --add-service` adds it.
NOTTINGHAM_UNIT = "inpatient_rehab_level2@NG5 2EW@12@E54000060+E07000032"


def test_a_fallback_shut_out_by_catchments_is_far_and_not_said_to_have_none_outside(cqc_synced_home, tmp_path,
                                                                                     data_dir):
    """Field House accepted as England's one level 2 unit, in Derby and Derbyshire, and a unit outside added whose
    catchment takes Amber Valley only: "if every local unit were full" most of the area has no unit outside that
    takes it, so there is no mean, and the type is flagged far. Before, the scorecard line said "none known outside
    the area" though a unit outside was known, the scorecard's `--csv` gave fallback_far blank (null, as the API
    did) where the scorecard listed the type as far, the indicator table had no "fallback far", and the area map
    said "if local units full: n/a". Each now says the same: far, none outside takes people from every part of the
    area, with the share of adults beyond the threshold (finite, neither none nor all)."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    accepted = rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "2")
    assert accepted.returncode == 0, accepted.stderr
    table, svg = tmp_path / "scorecard.csv", tmp_path / "area.svg"
    printed = rehabmap_here(home, data_dir, None, "gaps", DERBYSHIRE, "--add-service", NOTTINGHAM_UNIT,
                       "--type", "inpatient_rehab_level2", "--csv", str(table), "--svg", str(svg))
    assert printed.returncode == 0, printed.stderr
    said = re.search(r"would be far \(mean over the threshold if every local unit were full\): inpatient_rehab_level2 "
                     r"no unit outside the area takes people from every part of it \((\d+\.\d)% of adults beyond 50 "
                     r"km\)\n", printed.stdout)
    assert said is not None, printed.stdout
    assert 0 < float(said[1]) < 100
    assert "none known outside" not in printed.stdout
    [row] = [line for line in printed.stdout.splitlines() if line.startswith("inpatient_rehab_level2 ")]
    assert row.endswith("present, fallback far")
    [far] = [r for r in csv.DictReader(io.StringIO(table.read_text("utf-8-sig")))
             if r["category"] == "inpatient_rehab_level2"]
    assert (far["fallback_mean_km"], far["fallback_far"]) == ("", "True")
    facts = ["".join(t.itertext()) for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert facts[facts.index("if local units full") + 1] == f"{said[1]}% beyond 50 km"


def test_englands_rate_of_a_few_units_is_not_read_as_none(cqc_synced_home, tmp_path, data_dir):
    """Field House accepted as a level 1 unit is England's one: 1 per 46,006,449 adults, 0.002 per 100,000. Before,
    `rehabmap gaps E54000058 --compare` and Derby and Derbyshire's page gave England's rate as "0.00" beside the
    area's 0.12 ranked first, as if England had none; it now reads "<0.01". The area's own figure reads as before."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    accepted = rehabmap(home, data_dir, None, "review", "accept", FIELD_HOUSE_ID, "--level", "1")
    assert accepted.returncode == 0, accepted.stderr
    compared = rehabmap_here(home, data_dir, None, "gaps", DERBYSHIRE, "--compare")
    assert compared.returncode == 0, compared.stderr
    [row] = [line.split() for line in compared.stdout.splitlines()
             if line.startswith("inpatient_rehab_level1") and " per_100k_adults " in line]
    assert row[:4] == ["inpatient_rehab_level1", "per_100k_adults", "0.12", "<0.01"]
    with serving(home, data_dir) as url:
        england = httpx.get(f"{url}/gaps/{DERBYSHIRE}/compare", timeout=300).json()
        page = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", httpx.get(f"{url}/pathway-gaps/{DERBYSHIRE}",
                                                                         timeout=300).text)).split())
    assert 0 < [item["england"] for item in england["comparisons"] if item["category"] == "inpatient_rehab_level1"
                and item["indicator"] == "per_100k_adults"][0] < 0.005
    assert "Level 1 inpatient rehabilitation unit In place 0.12 <0.01 " in page


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
    # ... and now which part it holds: none of the care homes it holds every one of, no information on the rest.
    said = " ".join(housing.text.split())
    assert "We could not find care homes with staff day and night within 5 miles of" in said
    assert ("We do not hold information about support at home (floating support) or supported housing for this area "
            "yet") in said
    # GET /services says the same of its empty answer (before, an empty list and nothing else): none of the care
    # homes, no data on the rest; and, with no type asked, each type's answer, found or not.
    listed = httpx.get(f"{synced}/services", params={"postcode": FIELD_HOUSE_POSTCODE, "radius_km": 5,
                                                     "type": "supported_accommodation"}, timeout=60).json()
    assert listed["total"] == 0 and [(c["category"], c["status"], c["kinds_covered"]) for c in listed["coverage"]] \
        == [("supported_accommodation", "partly_covered", ["supported_accommodation:residential_24h"])]
    assert listed["coverage"][0]["says"].startswith("None found, but the directory holds complete Supported "
                                                   "accommodation data here only for 24-hour staffed residential care")
    every_type = httpx.get(f"{synced}/services", params={"postcode": FIELD_HOUSE_POSTCODE, "radius_km": 2},
                           timeout=60).json()
    says = {c["category"]: c["says"] for c in every_type["coverage"]}
    assert every_type["total"] == 0 and len(says) == 7 and says["ips_employment"].startswith("Not yet covered:")
    dovetail = httpx.get(f"{synced}/services", params={"postcode": DOVETAIL_POSTCODE, "radius_km": 5,
                                                       "type": "supported_accommodation"}, timeout=60).json()
    assert dovetail["total"] >= 1 and dovetail["coverage"][0]["says"].startswith("Found, but")  # 0.1 mile away
    # Several types listed: which of them it found would cost a count each (ask one type); away from a place: none.
    assert httpx.get(f"{synced}/services", params={"postcode": DOVETAIL_POSTCODE, "radius_km": 5},
                     timeout=60).json()["coverage"] is None
    assert httpx.get(f"{synced}/services", timeout=60).json()["coverage"] is None
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
    # CQC covers care homes, not floating support or supported housing: the area's coverage says which kinds.
    says = area["coverage"]["supported_accommodation"]["says"]
    assert says.startswith("Found, but the directory holds complete Supported accommodation data here only for "
                           "24-hour staffed residential care (as of ")
    assert says.endswith("floating outreach support and supported housing (high support, on-site staff) are not yet "
                         "covered, so there may be more.")
    assert area["counts"]["ips_employment"] == 0
    assert area["coverage"]["ips_employment"]["says"].startswith("Not yet covered:")
    near = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": ["supported_accommodation"],
            "subtypes": ["residential_24h"], "max_distance_km": 5}
    [summary] = httpx.post(f"{synced}/match", json=near, timeout=60).json()["summary"]
    assert summary["found"] == "found" and summary["coverage"]["says"].startswith(
        "Found. The directory holds complete Supported accommodation: 24-hour staffed residential care data for this "
        "area (as of ")  # the kind asked for: CQC does not list all supported accommodation
    # The clinicians' page over the same answer: a type wholly covered has no "there may be more" words, and
    # before, the page read them all the same (`more_words[type]`, undefined): a 500 in place of every search
    # listing an option of a type the directory covers (as CQC's listing covers care homes and inpatient units).
    with httpx.Client(base_url=synced, timeout=60, follow_redirects=True) as client:
        page = client.post("/alternatives", data={"home": DOVETAIL_POSTCODE, "types": "supported_accommodation",
                                                  "subtypes": "residential_24h", "within": "3"})
    assert page.status_code == 200 and "1. Dovetail House" in page.text and "there may be more" not in page.text
    notes = html.unescape(re.search(r'<textarea[^>]*id="plain-text"[^>]*>([^<]*)</textarea>', page.text).group(1))
    assert "\n   CQC rating: Good (4 March 2020)\n" in notes  # as the card says it
    parts = {p["type"]: p for p in httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()["scorecard"]
             ["parts"]}  # the commissioners' scorecard words a part it found as the area answer does
    assert parts["supported_accommodation"]["present"] and parts["supported_accommodation"]["coverage"]["says"] == \
        area["coverage"]["supported_accommodation"]["says"]
    assert parts["ips_employment"]["coverage"]["says"].startswith("Not yet covered:")


NOTTINGHAMSHIRE_COUNTY = "E10000024"  # Nottinghamshire County Council: Mansfield (Dovetail House) and six more


def test_a_county_council_is_an_area_holding_the_services_of_its_districts(synced, data_dir):
    """A county council (an upper-tier local authority: it commissions statutory advocacy, and the curated
    advocacy table covers it) is not in the boundaries, only in the small-area table. Before, GET /areas/E10000024
    answered 404 "No ICB, sub-ICB, local authority or region has the code 'E10000024'", untrue of Nottinghamshire
    County Council. Its districts are read here from the small-area file itself."""
    with open(small_area_file(data_dir), newline="", encoding="utf-8") as handle:
        districts = sorted({row["ltla24_code"] for row in csv.DictReader(handle)
                            if row["utla23_code"] == NOTTINGHAMSHIRE_COUNTY})
    assert len(districts) == 7
    county = httpx.get(f"{synced}/areas/{NOTTINGHAMSHIRE_COUNTY.lower()}", params={"per_page": 100},
                       timeout=60).json()
    assert (county["code"], county["name"], county["level"], county["level_label"]) == (
        NOTTINGHAMSHIRE_COUNTY, "Nottinghamshire", "county", "County council")
    each = [httpx.get(f"{synced}/areas/{code}", params={"per_page": 100}, timeout=60).json() for code in districts]
    assert county["total"] == sum(d["total"] for d in each) >= 1  # Dovetail House, in Mansfield
    assert sorted(s["id"] for s in county["services"]) == sorted(s["id"] for d in each for s in d["services"])
    assert county["counts"] == {t: sum(d["counts"][t] for d in each) for t in county["counts"]}
    west, south, east, north = county["bbox"]
    assert all(west <= w and south <= s and e <= east and n <= north for w, s, e, n in (d["bbox"] for d in each))
    # CQC lists every care home: of supported accommodation, the county is covered for those only, as its ICB is
    housing = county["coverage"]["supported_accommodation"]
    assert housing["status"] == "partly_covered" and housing["kinds_covered"] == [
        "supported_accommodation:residential_24h"]
    assert httpx.get(f"{synced}/areas/E10999999", timeout=60).status_code == 404


# The commissioners' pathway gaps over the same home (DERBYSHIRE and NOTTINGHAMSHIRE: tests/web/real_feeds_home.py).
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
    # Its map shows the one kind the directory holds data for here (none found), not community teams (no data).
    assert f'src="/gaps/{DERBYSHIRE}/map.svg?type=supported_accommodation%3Aresidential_24h"' in page
    assert ">Missing<" not in page and "are missing" not in page

    table = httpx.get(f"{synced}/gaps", params={"level": "icb"}, timeout=300).json()
    derbyshire = next(a for a in table["areas"] if a["code"] == DERBYSHIRE)
    assert derbyshire["awaiting_review_parts"] == list(INPATIENT) and derbyshire["awaiting_review_count"] == 2
    assert not set(INPATIENT) & set(derbyshire["missing_parts"])
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    row = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == DERBYSHIRE)
    assert row["awaiting_review_parts"] == ";".join(INPATIENT) and row["inpatient_rehab_level2.count"] == ""
    england = httpx.get(f"{synced}/gaps/england.svg", params={"type": "inpatient_rehab_level2",
                                                               "indicator": "per_100k_adults"}, timeout=300).text
    assert f"({DERBYSHIRE}): none confirmed yet (candidates await review)</title>" in england

    done = rehabmap_here(synced_home, data_dir, None, "gaps", DERBYSHIRE)
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
    # Unasked, the map shows a kind the directory holds data for here, and says why: before, it showed community
    # rehabilitation teams, of which a directory synced from CQC holds none anywhere, shading nothing.
    assert f'src="/gaps/{NOTTINGHAMSHIRE}/map.svg?type=supported_accommodation"' in page
    # The API's map, unasked, opens on the same kind by the same rule (`map_default`): before, community teams.
    assert _svg(synced, NOTTINGHAMSHIRE) == _svg(synced, NOTTINGHAMSHIRE, type="supported_accommodation")
    assert _svg(synced, DERBYSHIRE) == _svg(synced, DERBYSHIRE, type="supported_accommodation:residential_24h")
    assert ("The map shows supported accommodation: rehabmap does not yet hold community mental health "
            "rehabilitation team data for Nottingham and Nottinghamshire.") in page
    compared = httpx.get(f"{synced}/pathway-gaps/compare", timeout=300).text  # and so does the England map's
    assert 'src="/gaps/england.svg?type=supported_accommodation&amp;indicator=mean_km&amp;level=icb"' in compared
    assert ("The map shows supported accommodation: no integrated care board has a community mental health "
            "rehabilitation team in rehabmap's directory yet.") in compared

    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    row = next(r for r in csv.DictReader(io.StringIO(sheet)) if r["code"] == NOTTINGHAMSHIRE)
    assert [row[f"vcfse.{k}"] for k in ("count", "share_beyond_threshold", "mean_km")] == ["", "", ""]
    assert row["supported_accommodation.count"] == "2" and "vcfse" in row["not_covered_parts"].split(";")

    done = rehabmap_here(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE)
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
    # No inpatient unit is known anywhere in England, so neither level has a mean distance to rank: before, its
    # "Not ranked" was explained as "rehabmap holds no such data for this area yet", beside parts it covers.
    assert page.count('numeric">No figure</td>') == 2
    assert "No figure: no such service is known anywhere in England, so there is no distance to rank." in page
    done = rehabmap_here(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE, "--compare")
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("inpatient_rehab_level2") and "per_100k_adults" in line
               and line.endswith("all 41 equal") for line in done.stdout.splitlines())


def _svg(url: str, code: str, **params: str) -> str:
    reply = httpx.get(f"{url}/gaps/{code}/map.svg", params=params, timeout=300)
    assert reply.status_code == 200, reply.text
    return reply.text


def _shaded(svg: str) -> bool:
    """Whether any small area (or legend key) is shaded by a distance class."""
    return any(f'fill="{colour}"' in svg for colour in PALETTE)


def test_an_area_map_shows_no_data_where_the_figures_are_unknown(synced, synced_home, data_dir, tmp_path):
    """Before, Nottingham and Nottinghamshire's map of a part no source covers there shaded every small area by
    its distance to services elsewhere and gave the mean distance and "100%" beyond the threshold as findings.
    Now it shades nothing and says no data, with the reason, from the API and the command line alike; a part
    with known figures is still shaded."""
    svg = _svg(synced, NOTTINGHAMSHIRE, type="vcfse")
    desc = ET.fromstring(svg).find("{http://www.w3.org/2000/svg}desc")
    assert desc is not None and desc.text is not None
    assert desc.text.startswith("Map of NHS Nottingham and Nottinghamshire Integrated Care Board for voluntary")
    assert "no data. Not yet covered: the directory holds no Voluntary" in desc.text
    assert not _shaded(svg) and "mean distance" not in svg and "beyond" not in svg and " km</title>" not in svg
    assert "No data: Not yet covered" in svg and ": no data</title>" in svg
    # Its headings name the type, not the distances it does not show (before: "Distance to the nearest …").
    assert ">Voluntary, community, faith and social enterprise support</text>" in svg and "Distance" not in svg
    assert ET.fromstring(svg).find("{http://www.w3.org/2000/svg}title").text == (  # type: ignore[union-attr]
        "NHS Nottingham and Nottinghamshire Integrated Care Board: voluntary, community, faith and social enterprise "
        "support, no data")
    known = _svg(synced, NOTTINGHAMSHIRE, type="supported_accommodation")
    assert _shaded(known) and "mean distance" in known and "No data" not in known
    assert ">Distance to the nearest supported accommodation</text>" in known
    # None found here, and none anywhere in England while Field House awaits review: the legend and each small
    # area say so in the scorecard's words (before: "no service of this type in England", beside a held unit).
    level1 = _svg(synced, NOTTINGHAMSHIRE, type="inpatient_rehab_level1")
    assert "MISSING inside the area" in level1 and "no service of this type in England" not in level1
    legend = [t.text for t in ET.fromstring(level1).iter("{http://www.w3.org/2000/svg}text")]
    assert " ".join(legend[legend.index("over 50 km (beyond)") + 2:][:4]) == (
        "none confirmed anywhere in England yet (1 awaiting review) 100%")  # with its share of the adults
    assert "Mansfield 006A: none confirmed anywhere in England yet (1 awaiting review)</title>" in level1
    # The England map's heading said "England: n/a." for a type it holds no data of anywhere.
    england = httpx.get(f"{synced}/gaps/england.svg", params={"type": "community_rehab_team"}, timeout=300).text
    assert ">England: no figure, none known anywhere in England (rehabmap holds this data for 0% of England&#x27;s " \
           "adults). Adults are people" in england and "n/a." not in england
    # Five ICBs have supported accommodation in it: each was listed among the worst five and the best five alike.
    housing = httpx.get(f"{synced}/gaps/england.svg", params={"type": "supported_accommodation"}, timeout=300).text
    words = [t.text for t in ET.fromstring(housing).iter("{http://www.w3.org/2000/svg}text")]
    assert "Worst five (numbered on the map)" in words and not any(w.startswith("Best") for w in words if w)

    page = httpx.get(f"{synced}/pathway-gaps/{NOTTINGHAMSHIRE}", params={"type": "vcfse"}, timeout=300).text
    # Asked for, it says so above the map, and offers the kinds the directory holds data for here.
    above = page.split('id="map-no-data"', 1)[1].split("</div>", 1)[0]
    assert "So the map shades no small area, which is not the same as finding none." in above
    assert [link.split('"', 1)[0] for link in above.split('href="')[1:]] == [
        f"/pathway-gaps/{NOTTINGHAMSHIRE}?type={kind}#map" for kind in (
            "supported_accommodation", "supported_accommodation%3Aresidential_24h", *INPATIENT)]
    figure = page.split('<figure class="rm-gap-figure">', 1)[1].split('</table>', 1)[0]
    assert "No data, so no small area is shaded: Not yet covered:" in figure
    assert "no small area shaded: no data" in figure  # the map's alt text
    assert "furthest from a voluntary, community, faith and social enterprise support: no data</caption>" in figure
    assert "Distance from each small area" not in figure and "shaded by the distance" not in figure

    done = rehabmap_here(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE, "--type", "vcfse", "--svg",
                    str(tmp_path / "map.svg"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "map.svg").read_text(encoding="utf-8") == svg


def test_an_area_map_follows_a_coverage_change(synced, synced_home):
    """The directory's maps are kept per index generation, but whether a part's figures are known changes with
    the coverage, which a review decision or a sync changes without a new generation: the maps must follow it.
    Here the review queue's counts (as a sync records them) drop Field House's candidacy in Derby and
    Derbyshire: its level 2 map then shows the figures of a part the directory covers, and none found, and the
    England map gives its figure."""
    waiting = _svg(synced, DERBYSHIRE, type="inpatient_rehab_level2")
    assert "No data: None confirmed yet: 1 candidate awaits review" in waiting and not _shaded(waiting)
    england = {"type": "inpatient_rehab_level2", "indicator": "mean_km"}
    tooltip = f"({DERBYSHIRE}): none confirmed yet (candidates await review)</title>"
    assert tooltip in httpx.get(f"{synced}/gaps/england.svg", params=england, timeout=300).text
    store = CoverageStore(synced_home / "directory.sqlite")
    pending = store.snapshot().pending
    try:
        store.replace_pending({key: n for key, n in pending.items() if key[1] != DERBYSHIRE})
        decided = _svg(synced, DERBYSHIRE, type="inpatient_rehab_level2")
        assert _shaded(decided) and "MISSING inside the area" in decided and "No data" not in decided
        decided_england = httpx.get(f"{synced}/gaps/england.svg", params=england, timeout=300).text
        assert f"({DERBYSHIRE}): " in decided_england and tooltip not in decided_england
    finally:
        store.replace_pending(pending)
    assert _svg(synced, DERBYSHIRE, type="inpatient_rehab_level2") == waiting


def test_the_geojson_gives_every_area_the_same_keys(synced):
    """Before, an inpatient type without figures in an area (Derby and Derbyshire, awaiting review) had no
    `fallback_*` properties at all in the all-areas GeoJSON, while the CSV gave empty cells and other areas the
    keys: a GIS saw a different schema per feature. Now every feature has the same keys, null where no data."""
    body = httpx.get(f"{synced}/gaps/areas.geojson", params={"level": "icb"}, timeout=300).json()
    keys = [set(feature["properties"]) for feature in body["features"]]
    assert len(keys) == 42 and all(k == keys[0] for k in keys)
    derbyshire = next(f["properties"] for f in body["features"] if f["id"] == DERBYSHIRE)
    for level in INPATIENT:
        assert [derbyshire[f"{level}.{k}"] for k in ("count", "fallback_mean_km", "fallback_far")] == [None] * 3
    sheet = httpx.get(f"{synced}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    assert keys[0] == set(next(csv.reader(io.StringIO(sheet))))
    table = httpx.get(f"{synced}/gaps", params={"level": "icb"}, timeout=300).json()
    figures = next(a for a in table["areas"] if a["code"] == DERBYSHIRE)["types"]["inpatient_rehab_level2"]
    assert figures["fallback_mean_km"] is None and figures["fallback_far"] is None


def test_what_if_says_no_data_before_where_nothing_is_known(synced, synced_home, data_dir):
    """Before, adding a hypothetical VCFSE service in Mansfield gave Nottingham and Nottinghamshire's count as
    0 → 1 (and distances before) where rehabmap holds no VCFSE data there: a guess as the figure now. Now the
    before is no data, with the reason, and after is what the hypothetical adds, in every face."""
    add = f"vcfse@{DOVETAIL_POSTCODE}"
    body = httpx.get(f"{synced}/gaps/{NOTTINGHAMSHIRE}", params={"add": add, "type": "vcfse"}, timeout=300).json()
    changes = {(c["scope"], c["indicator"]): c for c in body["what_if"]["changes"]}
    count = changes[("area", "count")]
    assert (count["before"], count["after"], count["after_no_data"]) == (None, 1, None)
    assert count["before_no_data"].startswith("Not yet covered: the directory holds no Voluntary")
    assert all(c["before"] is None for (scope, _), c in changes.items() if scope == "area")

    page = httpx.get(f"{synced}/pathway-gaps/{NOTTINGHAMSHIRE}", params={"add": add}, timeout=300).text
    table = page.split('id="what-if-caption"', 1)[1].split("</table>", 1)[0]
    assert ">No data</td>" in table and ">0</td>" not in table
    assert "No data (voluntary, community, faith and social enterprise support): Not yet covered" in page

    done = rehabmap_here(synced_home, data_dir, None, "gaps", NOTTINGHAMSHIRE, "--type", "vcfse", "--add-service", add)
    assert done.returncode == 0, done.stderr
    line = next(line.split() for line in done.stdout.splitlines() if line.startswith(NOTTINGHAMSHIRE)
                and " count " in line)
    assert line[-3:] == ["no", "data", "1"]


AMBER_VALLEY, DERBYSHIRE_COUNTY = "E07000032", "E10000007"  # Field House's district and its county


def copy_of(synced_home: Path, path: Path, geodata_dir: Path) -> Path:
    """A home of its own holding what the synced one holds, for a test that changes it."""
    home = make_home(path, geodata_dir)
    for name in ("directory.sqlite", index_file(home).name):
        with sqlite3.connect(synced_home / name) as source, sqlite3.connect(home / name) as copy:
            source.backup(copy)
    return home


def with_a_floating_support_candidate(synced_home: Path, path: Path, geodata_dir: Path, data_dir: Path,
                                      geography, subtype: str = "floating_outreach") -> Path:
    """A copy of the synced directory where a source also proposes the real Field House record as supported
    accommodation of `subtype` (floating outreach support unless told)."""
    home = copy_of(synced_home, path, geodata_dir)
    item = field_house_item(data_dir / "feeds", type_status="inferred",
                            service_type=ServiceType.supported_accommodation)
    item = replace(item, candidate=replace(item.candidate, fields={**item.candidate.fields, "subtype": subtype}))
    settings = Settings(home=home, data_dir=data_dir)
    runner_for(settings, geography, live=False).run(ListedConnector([item]))
    return home


def assert_counts_are_the_subtypes_and_the_local_authoritys_own(home: Path, data_dir: Path) -> None:
    coverage = coverage_map(CoverageStore(home / "directory.sqlite"), data_dir)
    waiting = {(code, category): coverage.for_area(code, category).pending_review
               for code in (DERBYSHIRE, AMBER_VALLEY, DERBYSHIRE_COUNTY)
               for category in ("supported_accommodation", "supported_accommodation:floating_outreach",
                                "supported_accommodation:residential_24h", "inpatient_rehab_level2")}
    assert waiting == {key: 0 if key[1].endswith("residential_24h") else 1 for key in waiting}
    home_answer = coverage.at_home([DERBYSHIRE, AMBER_VALLEY])
    assert home_answer.for_request(ServiceType.supported_accommodation, ["residential_24h"]).pending_review == 0
    assert home_answer.for_request(ServiceType.supported_accommodation, ["floating_outreach"]).pending_review == 1

    done = rehabmap_here(home, data_dir, None, "gaps", DERBYSHIRE)
    assert done.returncode == 0, done.stderr
    assert "residential_24h" in next(line for line in done.stdout.splitlines() if line.endswith("MISSING"))
    assert "Subtypes missing inside the area: supported_accommodation:residential_24h." in done.stdout
    assert ("Subtypes awaiting review (none confirmed yet): supported_accommodation:floating_outreach."
            in done.stdout)


def test_a_part_awaiting_review_is_being_checked_and_the_others_held_or_not_per_part(synced_home, tmp_path,
                                                                                      geodata_dir, data_dir,
                                                                                      geography):
    """Supported accommodation near Mansfield: CQC lists every care home (Dovetail House among them), the real Field
    House record proposed as supported housing awaits review 9 miles away, and nothing holds floating support.
    Before, the candidate made the type's whole answer settle the page (`HomeCoverage.for_request`: not covered,
    awaiting review), and beside Dovetail House it said "We do not hold information about supported accommodation
    for this area yet", which BASE never said. Each part now answers for itself (`HomeCoverage.parts`): the
    supported housing is being checked, and only floating support is said to be held incompletely."""
    home = with_a_floating_support_candidate(synced_home, tmp_path / "home", geodata_dir, data_dir, geography,
                                             "supported_housing")
    with serving(home, data_dir) as url:
        answer = httpx.get(f"{url}/find/housing", params={"where": DOVETAIL_POSTCODE, "within": 25}, timeout=60)
    assert answer.status_code == 200
    said = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", answer.text)).split())
    assert "Dovetail House" in said
    assert ("Other services of this kind near you are still being checked by the people who keep this directory, and "
            "are not listed yet. We do not hold complete information about support at home (floating support) for "
            "this area yet, so there may be more near you.") in said
    assert "information about supported accommodation" not in said
    assert "information about supported housing" not in said


def test_the_apis_summary_gives_each_part_held_not_held_or_awaiting_review(synced_home, tmp_path, geodata_dir,
                                                                          data_dir, geography):
    """The same home and candidate through POST /match: its summary's coverage is the type's whole answer (not
    covered, a candidate awaiting review: the API's contract, unchanged), and nothing said what the pages say per
    part. Now `parts` does: the care homes held, the supported housing awaiting review, floating support not held."""
    home = with_a_floating_support_candidate(synced_home, tmp_path / "home", geodata_dir, data_dir, geography,
                                             "supported_housing")
    ask = {"home": {"postcode": DOVETAIL_POSTCODE}, "types": ["supported_accommodation"], "max_distance_km": 40.2}
    with serving(home, data_dir) as url:
        answer = httpx.post(f"{url}/match", json=ask, timeout=60)
        schema = httpx.get(f"{url}/openapi.json", timeout=60).json()["components"]["schemas"]
    assert answer.status_code == 200, answer.text
    [summary] = answer.json()["summary"]
    assert (summary["found"], summary["coverage"]["status"], summary["coverage"]["pending_review"]) == (
        "found", "not_covered", 1)
    assert summary["parts"] == [
        {"category": "supported_accommodation:floating_outreach", "status": "not_held", "pending_review": 0},
        {"category": "supported_accommodation:supported_housing", "status": "awaiting_review", "pending_review": 1},
        {"category": "supported_accommodation:residential_24h", "status": "held", "pending_review": 0}]
    assert schema["CoveragePartOut"]["properties"]["status"]["enum"] == ["held", "not_held", "awaiting_review"]
    assert "parts" in schema["TypeSummaryOut"]["properties"]


def test_review_counts_are_the_subtypes_and_the_local_authoritys_own(synced_home, tmp_path, geodata_dir, data_dir,
                                                                     geography):
    """Before, the queue was counted per type only, so every subtype took the type's count: Derby and
    Derbyshire's 24-hour care homes, which CQC covers and none of which is there, read "awaiting review" (none
    confirmed yet) for a floating support candidate. And Derbyshire county (an upper-tier authority, whose
    code no record carries) counted none of the candidates in its districts."""
    home = with_a_floating_support_candidate(synced_home, tmp_path / "home", geodata_dir, data_dir, geography)
    assert_counts_are_the_subtypes_and_the_local_authoritys_own(home, data_dir)


def test_a_store_counted_per_type_is_recounted_on_its_first_open(synced_home, tmp_path, geodata_dir, data_dir,
                                                                  geography):
    """The same directory as a store written before subtypes were counted holds it: per type only (as
    record_pending counted, a held inpatient unit at both levels), at migration 11. Before migration 12 a
    subtype read 0 candidates (supported_accommodation:floating_outreach "none found" beside the candidate)
    until the next sync or review decision; now the first open after the upgrade recounts them."""
    home = with_a_floating_support_candidate(synced_home, tmp_path / "home", geodata_dir, data_dir, geography)
    with sqlite3.connect(home / "directory.sqlite") as conn:
        conn.execute("DELETE FROM coverage_pending WHERE category LIKE '%:%'")
        conn.execute("DELETE FROM schema_migrations WHERE version = 12")
        per_type = conn.execute("SELECT category, count FROM coverage_pending WHERE area_code = ?",
                                (DERBYSHIRE,)).fetchall()
    assert sorted(per_type) == [("inpatient_rehab_level1", 1), ("inpatient_rehab_level2", 1),
                                ("supported_accommodation", 1)]

    assert_counts_are_the_subtypes_and_the_local_authoritys_own(home, data_dir)


NOTTINGHAM_CITY = "E06000018"  # a unitary authority, 28% of Nottingham and Nottinghamshire's adults


@pytest.fixture(scope="module")
def advocacy_partly(synced_home: Path, tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path,
                    data_dir: Path) -> Iterator[tuple[Path, str]]:
    """A copy of the synced directory where a maintainer verified the statutory advocacy table for Nottingham city
    only, so Nottingham and Nottinghamshire is partly covered for advocacy, and the URL of `rehabmap serve` over it:
    made once for the three tests below, which only read them (before, each made its own copy and server)."""
    home = copy_of(synced_home, tmp_path_factory.mktemp("advocacy-partly") / "home", geodata_dir)
    basis = "curated:statutory_advocacy.csv"
    CoverageStore(home / "directory.sqlite").replace(basis, [Claim("advocacy", NOTTINGHAM_CITY, basis, "2026-11-20",
                                                                   "A maintainer")])
    with serving(home, data_dir) as url:
        yield home, url


def test_a_partly_covered_part_says_what_is_known(advocacy_partly, data_dir, browser, axe_source):
    """A maintainer verified the statutory advocacy table for Nottingham city only, so Nottingham and
    Nottinghamshire is partly covered for advocacy: none found where rehabmap holds the data (28% of its adults),
    nothing known of the rest. Before, every face called the part simply not covered: "rehabmap does not yet hold
    this information for Nottingham and Nottinghamshire", and the command line "NOT COVERED (rehabmap holds no
    such data for this area yet …)". No figures are given for the covered part: the distances from it would run
    past the part of the area that is not covered, where a service may be, so they would be guesses too."""
    home, url = advocacy_partly
    says = ("None found, but the directory holds Advocacy data for only 28% of this area's adults (as of "
            "2026-11-20); the rest is not yet covered.")
    body = httpx.get(f"{url}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()
    part = next(p for p in body["scorecard"]["parts"] if p["type"] == "advocacy")
    assert (part["status"], part["coverage"]["status"], part["coverage"]["says"]) == (
        "not_covered", "partly_covered", says)
    advocacy = next(e for e in body["indicators"] if e["category"] == "advocacy")
    assert advocacy["no_data"] == says and advocacy["count"] is advocacy["mean_km"] is None
    page = httpx.get(f"{url}/pathway-gaps/{NOTTINGHAMSHIRE}", timeout=300).text
    sheet = httpx.get(f"{url}/gaps/areas.csv", params={"level": "icb", "headers": "human"},
                      timeout=300).content.decode("utf-8-sig")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    shown = context.new_page()
    shown.goto(f"{url}/pathway-gaps/{NOTTINGHAMSHIRE}", timeout=300_000)
    box = shown.locator(".nhsuk-inset-text", has_text="not yet covered, or only partly").inner_text()
    assert f"Advocacy: {says}" in box and "for the whole of Nottingham and Nottinghamshire" in box
    assert axe(shown, axe_source) == []
    # At 320 px (WCAG reflow) the compare table's caption stays inside its scrolling box and the map keeps its
    # place names readable in a box of its own. Before, the caption (as wide as the table, 644 px) ran off the
    # screen, and the map shrank to 288 px, its labels 3 px high.
    shown.set_viewport_size({"width": 320, "height": 800})
    shown.reload(timeout=300_000)
    assert shown.evaluate("() => document.documentElement.scrollWidth") == 320
    caption = shown.locator("#compare-caption").bounding_box()
    wrap = shown.get_by_role("region", name=re.compile("^Is the pathway complete")).bounding_box()
    assert caption is not None and wrap is not None and caption["width"] <= wrap["width"]
    scroller = shown.get_by_role("region", name=re.compile("^Map of Nottingham and Nottinghamshire"))
    assert shown.locator("img.rm-gap-map").bounding_box()["width"] >= 640
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, inside its box
    assert axe(shown, axe_source) == []
    context.close()
    assert "4 not yet covered by rehabmap's data (1 only partly)." in page
    # The sheet says it in words, as its headers (before: "advocacy=0.2838" under "Parts only partly covered").
    assert next(row for row in csv.DictReader(io.StringIO(sheet)) if row["Area code"] == NOTTINGHAMSHIRE)[
        "Parts only partly covered"] == "Advocacy (data held for 28% of adults)"
    assert "4 of 7 parts of the pathway are not yet covered, or only partly" in page
    assert f"Advocacy: {says}".replace("'", "&#39;") in page and ">Partly covered<" in page
    assert "does not yet hold this information for Nottingham and Nottinghamshire," not in page

    done = rehabmap_here(home, data_dir, None, "gaps", NOTTINGHAMSHIRE)
    assert done.returncode == 0, done.stderr
    assert f"PARTLY COVERED: advocacy: {says}" in done.stdout
    assert ("NOT COVERED (rehabmap holds no such data for this area yet, so none found means nothing): vcfse, "
            "ips_employment, community_rehab_team.") in done.stdout
    row = next(line.split() for line in done.stdout.splitlines() if line.startswith("advocacy "))
    assert row == ["advocacy", "-", "-", "-", "-", "-", "-", "PARTLY", "COVERED"]


def test_the_oruk_feed_publishes_the_synced_records_as_valid_hsds_and_never_a_held_one(synced):
    """The ORUK tests validate the sample and synthetic fixtures; these are CQC's own records as `rehabmap sync
    cqc` stored them (a care home's '24 hours' subtype, its beds, rating and provenance with the source's
    licence), against the HSDS 3.0 schemas and the UK profile, in the list (brief and full) and one by one.
    Field House, held for review, is in none of them: by its id it is unknown, as it is on every other face."""
    listed = [hsds.compiled("service_list"), hsds.entity("service", profile=True)]
    full = [hsds.compiled("service"), hsds.entity("service", profile=True)]
    brief = httpx.get(f"{synced}/oruk/services", params={"per_page": 2}, timeout=60).json()
    assert brief["total_items"] == 6 and brief["total_pages"] == 3
    hsds.assert_page(brief, listed)
    body = httpx.get(f"{synced}/oruk/services", params={"per_page": 500, "full": "true"}, timeout=60).json()
    hsds.assert_page(body, full)
    for service in body["contents"]:
        one = httpx.get(f"{synced}/oruk/services/{service['id']}", timeout=60).json()
        assert one == service
        details = {a["taxonomy_term"]["code"]: a.get("value") for a in one["attributes"]}
        provenance = json.loads(details["provenance"])
        assert (provenance["source"], provenance["licence"]) == ("cqc", "OGL-UK-3.0")
        assert details["id"] == f"cqc:{provenance['source_id']}" and one["status"] == "active"
    assert FIELD_HOUSE_ID not in {a["value"] for s in body["contents"] for a in s["attributes"] if "value" in a}
    held = httpx.get(f"{synced}/oruk/services/{FIELD_HOUSE_ID}", timeout=60)
    assert held.status_code == 404 and held.json()["error"]["code"] == "service_not_found"


def test_the_oruk_feed_gives_the_town_and_county_cqc_gives(synced, data_dir):
    """Each synced record's ORUK address against CQC's own recording of it: `city` is the town CQC names
    (postalAddressTownCity), `state_province` its county, `address_1` the lines before them, and the English
    region (ONS's name, from the point) is `region`. Before, the last part of the joined address was taken for
    the city: Dovetail House's city was 'Nottinghamshire' (its county) and its state_province 'East Midlands'
    (its region). Valid by the HSDS 3.0 schema and the UK profile (as in the test above)."""
    recorded = {item["locationId"]: item for item in
                json.loads((data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json").read_text())}
    body = httpx.get(f"{synced}/oruk/services", params={"per_page": 500, "full": "true"}, timeout=60).json()
    hsds.assert_page(body, [hsds.compiled("service"), hsds.entity("service", profile=True)])
    addresses = {}
    for service in body["contents"]:
        details = {a["taxonomy_term"]["code"]: a.get("value") for a in service["attributes"]}
        [address] = service["service_at_locations"][0]["location"]["addresses"]
        addresses[details["id"].removeprefix("cqc:")] = address
    assert len(addresses) == 6
    for location_id, address in addresses.items():
        cqc = recorded[location_id]
        assert (address["city"], address["state_province"]) == (cqc["postalAddressTownCity"],
                                                                cqc.get("postalAddressCounty") or "")
        lines = (cqc.get("postalAddressLine1"), cqc.get("postalAddressLine2"))
        assert address["address_1"] == ", ".join(line for line in lines if line)
    dovetail = next(a for a in addresses.values() if a["postal_code"] == DOVETAIL_POSTCODE)
    assert (dovetail["address_1"], dovetail["city"], dovetail["state_province"], dovetail["region"]) == (
        "The Park", "Mansfield", "Nottinghamshire", "East Midlands")
    # Another directory reading this feed (rehabmap's own ORUK reader) gets the same parts and the whole address.
    read = [oruk_to_fields(s)[0] for s in body["contents"]]
    assert {(f["address"], f["town"], f["county"]) for f in read if f["postcode"] == DOVETAIL_POSTCODE} == {
        ("The Park, Mansfield, Nottinghamshire", "Mansfield", "Nottinghamshire")}


def test_a_partly_covered_part_is_told_apart_in_every_export(advocacy_partly, tmp_path, data_dir, browser,
                                                             axe_source):
    """The same verified claim (Nottingham city's statutory advocacy table). Before, the all-areas CSV, GeoJSON
    and JSON listed advocacy among Nottingham and Nottinghamshire's `not_covered_parts` with empty figures, and
    the England map drew the ICB "not covered (no data held yet)", as for a part of which nothing is known,
    while its coverage says partly_covered for 28% of its adults: a spreadsheet or a GIS could not tell them
    apart, the compare page said "Not covered", and `rehabmap gaps --csv` gave no status at all. Now
    `partly_covered_parts` (the CSV's last column) gives the part with its share, the map and the compare page
    say "partly covered", the command's CSV ends with each row's status and share, and still no figure is
    given."""
    home, url = advocacy_partly
    area = httpx.get(f"{url}/gaps/{NOTTINGHAMSHIRE}", timeout=300).json()
    table = httpx.get(f"{url}/gaps", params={"level": "icb"}, timeout=300).json()
    sheet = httpx.get(f"{url}/gaps/areas.csv", params={"level": "icb"}, timeout=300).content.decode("utf-8-sig")
    features = httpx.get(f"{url}/gaps/areas.geojson", params={"level": "icb"}, timeout=300).json()["features"]
    dictionary = httpx.get(f"{url}/gaps/dictionary", timeout=300).json()["columns"]
    svg = httpx.get(f"{url}/gaps/england.svg", params={"type": "advocacy", "indicator": "count"},
                    timeout=300).text
    page = httpx.get(f"{url}/pathway-gaps/compare", params={"type": "advocacy", "indicator": "mean_km"},
                     timeout=300).text
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    shown = context.new_page()
    shown.goto(f"{url}/pathway-gaps/compare?type=advocacy&indicator=mean_km", timeout=300_000)
    cells = shown.locator("tr", has=shown.locator(f'a[href="/pathway-gaps/{NOTTINGHAMSHIRE}"]')).locator("td")
    assert cells.last.inner_text() == "Partly covered"
    assert axe(shown, axe_source) == []
    # At 320 px the England map keeps its numbers and labels readable in a box that scrolls, as the area map
    # does; before, it shrank to the screen (288 px for a map drawn at 960).
    shown.set_viewport_size({"width": 320, "height": 800})
    shown.reload(timeout=300_000)
    assert shown.evaluate("() => document.documentElement.scrollWidth") == 320
    scroller = shown.get_by_role("region", name=re.compile("^Map of England by integrated care board"))
    assert shown.locator("img.rm-gap-map").bounding_box()["width"] >= 640
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")
    assert axe(shown, axe_source) == []
    context.close()
    share = next(p for p in area["scorecard"]["parts"] if p["type"] == "advocacy")["coverage"]["share_of_adults"]
    assert 0.27 < share < 0.29

    row = next(a for a in table["areas"] if a["code"] == NOTTINGHAMSHIRE)
    assert "advocacy" in row["not_covered_parts"] and row["partly_covered_parts"] == {"advocacy": share}
    assert row["types"]["advocacy"]["count"] is None
    assert all(a["partly_covered_parts"] == {} for a in table["areas"] if a["code"] != NOTTINGHAMSHIRE)

    header, *rows = list(csv.reader(io.StringIO(sheet)))
    # The parts only partly covered come after every type's columns, then why figures are empty, the parts found
    # where more may be (added in session 52, after the columns before them), then what the data are of (the day,
    # the census).
    assert header[-7:] == ["partly_covered_parts", "kinds_covered_parts", "figures_unknown",
                           "found_may_be_more_parts", "found_may_be_more_count", "as_of", "population_year"]
    assert header == [c["key"] for c in dictionary]
    nottingham = next(dict(zip(header, r)) for r in rows if r[0] == NOTTINGHAMSHIRE)
    assert nottingham["partly_covered_parts"] == f"advocacy={share}"
    assert "advocacy" in nottingham["not_covered_parts"].split(";") and nottingham["advocacy.count"] == ""
    assert [r[-7] for r in rows if r[0] != NOTTINGHAMSHIRE] == [""] * (len(rows) - 1)  # partly_covered_parts
    assert "advocacy=partly_covered" in nottingham["figures_unknown"].split(";")
    properties = next(f["properties"] for f in features if f["id"] == NOTTINGHAMSHIRE)
    assert properties["partly_covered_parts"] == f"advocacy={share}" and properties["advocacy.count"] is None
    assert properties["figures_unknown"] == nottingham["figures_unknown"]

    shape = next(t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}title")
                 if t.text and t.text.startswith("NHS Nottingham and Nottinghamshire"))
    assert shape.endswith(f"({NOTTINGHAMSHIRE}): partly covered (no data held for the rest)")
    assert "partly covered: no data for the rest" in svg and "1 only partly covered" in svg
    compared = next(r for r in page.split("<tr ") if f'href="/pathway-gaps/{NOTTINGHAMSHIRE}"' in r)
    assert compared.count("Partly covered") == 2 and "Not covered" in compared  # advocacy; VCFSE, IPS, CRT

    done = rehabmap_here(home, data_dir, None, "gaps", NOTTINGHAMSHIRE, "--csv", str(tmp_path / "scorecard.csv"))
    assert done.returncode == 0, done.stderr
    card = {r["category"]: r for r in csv.DictReader((tmp_path / "scorecard.csv").open(encoding="utf-8-sig"))}
    assert list(card["advocacy"])[-4:] == ["status", "share_of_adults_covered", "as_of", "population_year"]
    assert [card["advocacy"][k] for k in ("status", "share_of_adults_covered", "count", "mean_km")] == [
        "partly_covered", str(share), "", ""]
    assert [card["vcfse"][k] for k in ("status", "share_of_adults_covered", "count")] == ["not_covered", "0.0", ""]
    assert card["supported_accommodation:residential_24h"]["status"] == "present"


SMALL_AREA_TYPES = ("vcfse", "advocacy", "supported_accommodation", "inpatient_rehab_level2")


def test_the_small_area_exports_give_no_distance_where_the_area_map_says_no_data(advocacy_partly, tmp_path, data_dir):
    """Before, `/gaps/{code}/smallareas.csv` and `.geojson` (and `rehabmap gaps AREA --smallareas-csv`) gave every
    small area of Nottingham and Nottinghamshire a distance to the nearest known VCFSE service, where rehabmap
    holds no VCFSE data and the area's map says "No data": a guess as a fact. Now a type the map leaves unshaded
    (not covered, partly covered, none confirmed yet) has no distance and no nearest id, and each row says why in
    a status column per type, after every column there was; a type whose figures are facts keeps them."""
    home, url = advocacy_partly
    reply = httpx.get(f"{url}/gaps/{NOTTINGHAMSHIRE}/smallareas.csv", params={"type": SMALL_AREA_TYPES},
                      timeout=300)
    features = httpx.get(f"{url}/gaps/{NOTTINGHAMSHIRE}/smallareas.geojson", params={"type": SMALL_AREA_TYPES},
                         timeout=300).json()["features"]
    waiting = httpx.get(f"{url}/gaps/{DERBYSHIRE}/smallareas.csv", params={"type": "inpatient_rehab_level2"},
                        timeout=300).content.decode("utf-8-sig")
    england = httpx.get(f"{url}/gaps/E92000001/smallareas.csv", params={"type": SMALL_AREA_TYPES},
                        timeout=300).content.decode("utf-8-sig")
    maps = {key: _svg(url, NOTTINGHAMSHIRE, type=key) for key in SMALL_AREA_TYPES}
    derbyshire_map = _svg(url, DERBYSHIRE, type="inpatient_rehab_level2")
    assert reply.status_code == 200, reply.text
    header, *rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert header == ["lsoa21_code", "lsoa21_name", "icb_code", "la_code", "la_name", "lat", "lon", "adult_population",
                      *(f"{key}.{column}" for key in SMALL_AREA_TYPES for column in ("km", "nearest_id")),
                      *(f"{key}.status" for key in SMALL_AREA_TYPES), "county_code", "county_name", "as_of",
                      "population_year"]
    records = [dict(zip(header, row)) for row in rows]
    assert len(records) == len(features) > 500
    expected = {"vcfse": "not_covered", "advocacy": "partly_covered", "supported_accommodation": "present",
                "inpatient_rehab_level2": "missing"}
    for key, status in expected.items():
        assert {r[f"{key}.status"] for r in records} == {status}
        unknown = "No data" in maps[key]  # the area's map of the same type, read as it is served
        assert unknown == (status in ("not_covered", "partly_covered")), key
        if unknown:
            assert {(r[f"{key}.km"], r[f"{key}.nearest_id"]) for r in records} == {("", "")}
            assert {(f["properties"][f"{key}.km"], f["properties"][f"{key}.nearest_id"]) for f in features} == {
                (None, None)}
        elif key == "supported_accommodation":
            assert all(float(r[f"{key}.km"]) >= 0 and r[f"{key}.nearest_id"] for r in records)
        else:  # missing: none is held anywhere in England yet (Field House awaits review), so there is no nearest
            assert {(r[f"{key}.km"], r[f"{key}.nearest_id"]) for r in records} == {("", "")}
    assert all(f["properties"]["vcfse.status"] == "not_covered" for f in features)

    # England's reads each small area with its ICB's, as the England map does (England as one area is partly
    # covered for advocacy, which would blank every ICB's figures).
    england_rows = {row[0]: row for row in csv.reader(io.StringIO(england))}
    assert all(england_rows[row[0]] == row for row in rows) and len(england_rows) == 1 + 33_755
    assert {row[-7] for code, row in england_rows.items() if code.startswith("E01")} == {"partly_covered",
                                                                                          "not_covered"}

    # None confirmed yet (Field House awaits review in Derby and Derbyshire): no distance either, as its map.
    assert "No data: None confirmed yet" in derbyshire_map
    derbyshire = list(csv.DictReader(io.StringIO(waiting)))
    assert derbyshire and {(r["inpatient_rehab_level2.km"], r["inpatient_rehab_level2.status"])
                           for r in derbyshire} == {("", "awaiting_review")}

    types = [arg for key in SMALL_AREA_TYPES for arg in ("--type", key)]
    done = rehabmap_here(home, data_dir, None, "gaps", NOTTINGHAMSHIRE, *types, "--smallareas-csv",
                    str(tmp_path / "small.csv"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "small.csv").read_bytes() == reply.content


def test_a_service_the_directory_no_longer_lists_is_not_said_to_have_closed(browser, tmp_path, geodata_dir, data_dir,
                                                                             axe_source):
    """CQC stops registering Devonshire Manor for mental health: the home is open, but no longer on the pathway,
    so the next sync retires its record. Before, its page (kept for old links) said "This service has closed",
    a guess shown as a fact (CQC also deregisters a home that only changes provider), and a shortlist link made
    before still offered it with its phone and referral route. Now its page says the directory no longer lists
    it, and what that may mean, and the shortlist names it apart."""
    devonshire = "1-112779616"
    home = make_home(tmp_path / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        assert rehabmap(home, data_dir, replay, "sync", "cqc").returncode == 0
        replay.cqc.alter(devonshire, specialisms=[s for s in replay.cqc.records[devonshire]["specialisms"]
                                                  if "Mental" not in s["name"]])
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
        assert (f"retired cqc:{devonshire} Devonshire Manor: the source's record can no longer be used: not a rehab "
                "pathway service") in done.stdout
    with serving(home, data_dir) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = context.new_page()
        page.goto(f"{url}/service/cqc:{devonshire}")
        main = page.locator("main").inner_text()
        assert "This service is no longer listed" in main and "closed" not in main.replace("It may have closed", "")
        assert "It may have closed, changed provider or stopped offering this kind of support." in main
        # Why, in people's words: before, the classifier's ("the source's record can no longer be used: not a rehab
        # pathway service: 'Residential homes | Care home service without nursing' with no mental health specialism"),
        # which the report above still gives the operator.
        today = datetime.now(timezone.utc).date()
        # CQC's own word, as its registration says it (until session 51 "Care Quality Commission (CQC) no longer
        # describes it as a mental health rehabilitation or recovery service", words CQC never says).
        assert (f"Taken off the list on {today.day} {today:%B %Y}: Care Quality Commission (CQC) no longer registers "
                "it for the 'Mental health conditions' service user band.") in main
        assert axe(page, axe_source) == []

        # A shortlist link made before: Devonshire Manor is named as no longer listed, not offered with its phone.
        page.goto(f"{url}/shortlist?s=cqc:1-112779585&s=cqc:{devonshire}")
        main = page.locator("main").inner_text()
        assert main.count("Phone") == 1 and "01623 420690" in main and "0115 962 2538" not in main
        assert main.startswith("Your shortlist\n\n1 service. ")
        assert "No longer listed since it was shortlisted (not shown in searches; the page says what that may " \
               "mean): Devonshire Manor." in main
        assert page.get_by_role("link", name="Devonshire Manor").get_attribute("href").startswith(
            f"/service/cqc:{devonshire}?")
        assert axe(page, axe_source) == []
        context.close()


@pytest.fixture(scope="module")
def retired(synced_home: Path, tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path,
            data_dir: Path) -> Iterator[str]:
    """The URL of `rehabmap serve` over a copy of the synced home after CQC deregistered Grovelands Lodge and
    `rehabmap sync cqc` ran again (its changes window), so the record is retired."""
    home = copy_of(synced_home, tmp_path_factory.mktemp("retired") / "home", geodata_dir)
    for replay in running(data_dir / "feeds"):
        replay.cqc.deregister(GROVELANDS, date(2021, 3, 1))
        done = rehabmap(home, data_dir, replay, "sync", "cqc")
        assert done.returncode == 0, done.stderr
        assert f"retired {GROVELANDS_ID} Grovelands Lodge: deregistered by CQC on 2021-03-01" in done.stdout
    with serving(home, data_dir) as url:
        yield url


def test_a_retired_service_is_not_offered_and_says_since_when_and_why(browser, retired):
    """Before, Grovelands Lodge's page said "This service has closed" and still offered "Add to shortlist" and
    "Contact the service to ask"; GET /services/{id} gave no day or reason and asked for it to be verified."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.goto(f"{retired}/service/{GROVELANDS_ID}")
    main = page.locator("main").inner_text()
    today = datetime.now(timezone.utc).date()
    assert "This service is no longer listed" in main
    # In people's words: before, "deregistered by CQC on 2021-03-01 (registrationStatus 'Deregistered')", the
    # sync's detail for the operator, which the report and the audit log still give.
    assert (f"Taken off the list on {today.day} {today:%B %Y}: deregistered by the Care Quality Commission (CQC) "
            "on 1 March 2021.") in main
    assert "Add to shortlist" not in main and "Contact the service" not in main and "Get directions" not in main
    # A shortlist shared before it was retired: before, its card read as any other, "Contact the service to ask".
    page.goto(f"{retired}/shortlist?s={GROVELANDS_ID}&s=cqc:1-112779585")
    assert "No longer listed since it was shortlisted (not shown in searches; the page says what that may " \
           "mean): Grovelands Lodge." in page.locator("main").inner_text()
    assert page.locator(".rm-shortlist-card").all_inner_texts() == [
        page.locator(".rm-shortlist-card", has_text="Dovetail House").inner_text()]
    context.close()

    record = httpx.get(f"{retired}/services/{GROVELANDS_ID}", timeout=60).json()
    assert (record["status"], record["retired_on"], record["verification_due"]) == ("inactive", today.isoformat(),
                                                                                   False)
    assert record["retired_reason"] == "deregistered by the Care Quality Commission (CQC) on 1 March 2021"
    active = httpx.get(f"{retired}/services/cqc:1-112779585", timeout=60).json()  # Dovetail House
    assert (active["status"], active["retired_on"], active["retired_reason"]) == ("active", None, None)
    schema = httpx.get(f"{retired}/openapi.json", timeout=60).json()["components"]["schemas"]["ServiceOut"]
    assert {"retired_on", "retired_reason"} <= set(schema["properties"]) and "retired_on" not in schema["required"]


def test_health_counts_active_services_and_the_closed_apart(retired):
    """Before, /health said 12 services while GET /services listed 11: the retired record was counted."""
    health = httpx.get(f"{retired}/health", timeout=60).json()
    listed = httpx.get(f"{retired}/services", timeout=60).json()["total"]
    assert (health["services"], health["inactive"]) == (listed, 1)
