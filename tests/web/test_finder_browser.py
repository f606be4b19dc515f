"""The finder's pages as people meet them, in real headless Chromium against a real uvicorn server: a service
page as NHS.UK's, the results map, the clinicians' map and printed summary, what is above the fold, a phone
journey. axe-core finds nothing on any of them, and no page asks any other site for anything."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing

import pytest
from playwright.sync_api import expect

from search.embedded import EmbeddedWriter, index_file
from tests.web.conftest import Watched
from tests.web.site import build_home, make_app, serve
from tests.web.browser import axe

pytestmark = pytest.mark.slow

COLLEGE = "sample:leeds-recovery-college"


def test_service_page_has_what_nhs_uk_service_pages_have_and_asks_no_third_party(watched, axe_source):
    page = watched.page
    watched.goto(f"/service/{COLLEGE}?where=LS9+7TF&cat=peer-support")
    main = page.locator("main")
    expect(main.get_by_text("Checked by the rehabmap team or the service:")).to_be_visible()
    expect(page.get_by_role("heading", name="Opening times")).to_be_visible()
    expect(main.get_by_text("Monday to Thursday")).to_be_visible()
    expect(main.get_by_text("Yes, you can contact the service yourself")).to_be_visible()
    directions = page.get_by_role("link", name="Get directions on Google Maps")
    assert directions.get_attribute("href").startswith("https://www.google.com/maps/dir/?api=1&destination=")
    assert page.get_by_role("link", name="Report a problem with this page").get_attribute("href") == \
        "/report-a-problem?service=sample%3Aleeds-recovery-college"
    assert axe(page, axe_source) == []
    assert watched.requests and all(u.startswith(watched.base_url) for u in watched.requests), watched.requests
    assert watched.base_url.startswith("http://127.0.0.1:")
    watched.assert_clean()


def pdf_pages(pdf: bytes) -> int:
    """Pages in a PDF Chromium wrote: its page objects (`/Type /Page`, not the `/Pages` tree)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf))


BOTH_LEVELS = ["Level 1 inpatient rehabilitation unit", "Level 2 inpatient rehabilitation unit (higher support)"]


def print_summary(watched, types: list[str], placement: str) -> tuple[int, int]:
    """The clinicians' summary for a person at LS9 7TF who is autistic, asked on the form as a clinician asks
    it: its options and the A4 pages Chromium prints it on."""
    page = watched.page
    watched.goto("/alternatives")
    page.get_by_label("Where does the person live?").fill("LS9 7TF")
    page.get_by_label("Autism").check()
    for label in types:
        page.get_by_label(label).check()
    if placement:
        page.get_by_label("Where is the person placed now? (optional)").fill(placement)
    page.get_by_role("button", name="Find local alternatives").click()
    page.wait_for_url("**/alternatives/results/**")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/alternatives/results/[\w=-]{44}", page.url), page.url  # a key only
    return page.locator(".rm-option").count(), pdf_pages(page.pdf(format="A4"))


@pytest.mark.parametrize("types, placement, options", [
    (BOTH_LEVELS[:1], "", 3),
    (BOTH_LEVELS, "M14 5RH", 6),
])
def test_the_clinicians_summary_prints_on_one_or_two_a4_pages(watched, types, placement, options):
    """Before: 3 options took 4 A4 pages (issue 15), and 6 options 3 pages after the first print styles."""
    shown, pages = print_summary(watched, types, placement)
    assert shown == options
    assert 1 <= pages <= 2, pages
    watched.assert_clean()


@pytest.fixture(scope="module")
def team_stated_server(geodata_dir, data_dir, tmp_path_factory) -> Iterator[str]:
    """The sample site after a maintainer stated every inpatient unit's gender and added autism to its needs:
    each option's card then carries the longest tags and needs a clinician's summary shows ("Men only (changed
    by the rehabmap team)"). Written as a maintainer's edit writes the live index (`EmbeddedWriter.upsert`,
    which marks the fields as the directory's)."""
    home = build_home(tmp_path_factory.mktemp("team-stated") / "home", geodata_dir)
    index = index_file(home)
    with closing(sqlite3.connect(index)) as conn:
        docs = [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM services")]
    EmbeddedWriter(index).upsert({
        doc["id"]: {"gender": "male_only", "needs_met": sorted({*doc.get("needs_met", []), "autism"}),
                    "needs_not_met": [need for need in doc.get("needs_not_met", []) if need != "autism"]}
        for doc in docs if doc["service_type"].startswith("inpatient_rehab")})
    with serve(make_app(home, data_dir)) as base_url:
        yield base_url


def test_the_clinicians_summary_prints_on_two_pages_with_every_card_the_teams_word(browser, team_stated_server):
    """Before: the six options' gender tags, said as the team's, wrapped four cards' tags onto a second line and
    the summary printed a third, blank A4 page (the main column's bottom padding past the second); then the needs
    the team added ("Autism (added by the rehabmap team)", W1 of session 25) wrapped their row too."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    try:
        watched = Watched(context.new_page(), team_stated_server)
        shown, pages = print_summary(watched, BOTH_LEVELS, "M14 5RH")
        assert shown == 6
        tags = watched.page.locator(".rm-option .rm-tags")
        expect(tags.filter(has_text="Men only")).to_have_count(6)
        expect(tags.filter(has_text="Men only (added by the rehabmap team)")).to_have_count(3)
        # Halifax's and Aire Valley's own file says another gender: the team changed its word, not added one.
        expect(tags.filter(has_text="Men only (changed by the rehabmap team)")).to_have_count(2)
        expect(watched.page.locator(".rm-option", has_text="Autism (added by the rehabmap team)")).to_have_count(4)
        assert pages == 2, pages
        watched.assert_clean()
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/find/rehabilitation?where=LS9+7TF&within=25",
                                  "/find/everything?where=LS9+7TF&within=25"])
def test_the_first_result_is_on_the_first_screen_of_a_desktop(browser, live_server, axe_source, path):
    """Before: at 1280x900 the results started below the fold (the first result's heading at y=972)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(live_server + path)
        box = page.locator(".rm-result__name").first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box
        assert axe(page, axe_source) == []
    finally:
        context.close()


def test_a_place_asked_about_is_chosen_with_one_tap(browser, live_server, axe_source):
    """390x844: 'Richmond' is asked about (axe clean, nothing wider than the screen), and a tap on 'Richmond, North
    Yorkshire' searches from there. Before, the person had to type the choice back."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()
    try:
        page.goto(live_server + "/find/everything")
        page.get_by_label("Postcode or town").fill("Richmond")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/find/everything?where=Richmond*")
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("There is more than one Richmond in England")
        assert axe(page, axe_source) == []
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        page.get_by_role("link", name="Richmond, North Yorkshire", exact=True).click()
        page.wait_for_url("**/find/everything?where=Richmond%2C+North+Yorkshire*")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Richmond, North Yorkshire")
    finally:
        context.close()


def test_the_clinicians_form_offers_the_places_it_asks_about_and_enter_still_searches(browser, live_server,
                                                                                       axe_source):
    """'Richmond' is asked about on the clinicians' form with a radio for each place (axe clean); one chosen, Enter
    in another field searches from it with the needs ticked before. Before, the choices were named in the message
    only, to be typed back."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        page.goto(live_server + "/alternatives")
        page.get_by_label("Where does the person live?").fill("Richmond")
        page.get_by_label("Autism").check()
        page.get_by_role("button", name="Find local alternatives").click()
        expect(page.locator(".nhsuk-error-summary")).to_contain_text("There is more than one Richmond in England")
        assert axe(page, axe_source) == []
        page.get_by_role("group", name="Did you mean one of these places?").get_by_label(
            "Richmond, North Yorkshire").check()
        page.get_by_label("Language other than English (optional)").press("Enter")
        page.wait_for_url("**/alternatives/results/*")
        expect(page.get_by_role("heading", level=1)).to_have_text("Local alternatives near Richmond, North Yorkshire")
        expect(page.get_by_label("Autism")).to_be_checked()
    finally:
        context.close()


def test_a_phone_journey_from_the_tiles_to_a_service_and_a_shortlist(browser, live_server, axe_source):
    """390x844: a tile, a postcode, the results (the first on screen), a service, Back, a shortlist; nothing
    wider than the screen, axe clean on every page."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  locale="en-GB")
    page = context.new_page()

    def check() -> None:
        assert axe(page, axe_source) == [], page.url
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, page.url

    try:
        page.goto(live_server + "/find")
        check()
        page.get_by_role("link", name="Everything near you").click()
        check()
        page.get_by_label("Postcode or town").fill("LS9 7TF")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url("**/find/everything?where=LS9+7TF*")
        check()
        first = page.locator(".rm-result__name a").first
        box = first.bounding_box()
        assert box is not None and box["y"] < 844, box
        name = re.sub(r"^\s*\d+\.\s*", "", first.inner_text())
        first.click()
        page.wait_for_url("**/service/**")
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading.startswith(name), (heading, name)
        check()
        page.get_by_role("link", name="Add to shortlist").click()
        expect(page.get_by_text("On your shortlist")).to_be_visible()
        page.get_by_role("link", name="View your shortlist (1)").click()
        page.wait_for_url("**/shortlist?**")
        expect(page.get_by_text(name).first).to_be_visible()
        check()
        page.go_back()
        page.go_back()
        page.go_back()
        page.wait_for_url("**/find/everything?**")
        assert page.locator(".rm-result").count() > 0
    finally:
        context.close()
