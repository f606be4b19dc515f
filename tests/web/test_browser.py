"""The three journeys end to end in real headless Chromium against a real uvicorn server: with a mouse,
with the keyboard only, and with JavaScript off; axe-core on every page; no CSP violation and no request
to any other site.

Set REHABMAP_SCREENSHOTS=1 (or a directory) to write the README's screenshots (docs/img/pages/).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web.browser import axe, shot, tab_to
from tests.web.site import make_app, serve

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"
WEST_YORKSHIRE = "E54000054"


def checked_in_all(watched, axe_source, name: str | None = None) -> None:
    """Every page a journey passes through: axe finds nothing, and (optionally) a screenshot."""
    assert axe(watched.page, axe_source) == [], watched.page.url
    if name:
        shot(watched.page, name)


# --- 1. find support near you -----------------------------------------------------------------------

def test_find_support_journey(watched, axe_source):
    page = watched.page
    watched.goto("/")
    checked_in_all(watched, axe_source, "01-start")
    page.get_by_role("link", name="Find support near you").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Find support near you")
    checked_in_all(watched, axe_source, "02-find-support-categories")
    page.get_by_role("link", name="Rehabilitation teams and units").click()
    # A bad postcode: the error summary names the field, takes focus, and nothing typed is lost.
    page.get_by_label("Postcode or town").fill("ZZ99 9ZZ")
    page.get_by_label("How far can you travel?").select_option("10")
    page.get_by_role("button", name="Search").click()
    summary = page.locator(".nhsuk-error-summary")
    assert "Postcode 'ZZ99 9ZZ' was not found" in summary.inner_text()
    expect(summary).to_be_focused()  # by the page's script, which may run after the summary is there
    assert page.get_by_label("Postcode or town").input_value() == "ZZ99 9ZZ"
    assert page.get_by_label("How far can you travel?").input_value() == "10"
    assert page.title().startswith("Error: ")
    checked_in_all(watched, axe_source, "04-find-support-error")
    summary.get_by_role("link").click()
    expect(page.locator("#where")).to_be_focused()
    page.get_by_label("Postcode or town").fill("LS9 7TF")
    page.get_by_role("button", name="Search").click()
    # Results: a numbered list with distances, and a map with the same numbers.
    expect(page.locator("#results-heading")).to_have_text(re.compile(r"^\d+ services within 10 miles$"),
                                                          use_inner_text=True)
    assert page.locator(".rm-result").count() >= 3
    first = page.locator(".rm-result").first
    assert "away" in first.inner_text()
    assert page.locator("svg.rm-map .rm-map__pin").count() == page.locator(".rm-result").count()
    first.get_by_role("link", name=re.compile("^Add .* to shortlist$")).click()
    expect(page.locator(".rm-result").first).to_contain_text("On your shortlist", use_inner_text=True)
    checked_in_all(watched, axe_source, "03-find-support-results")
    # A service page: how to get in touch; add it to the shortlist too.
    page.locator(".rm-result").nth(1).locator("h3 a").click()
    expect(page.get_by_role("heading", name="How to get in touch")).to_be_visible()
    page.get_by_role("link", name="Add to shortlist").click()
    checked_in_all(watched, axe_source, "05-service")
    page.get_by_role("link", name=re.compile(r"View your shortlist \(2\)")).click()
    expect(page.locator(".rm-shortlist-card")).to_have_count(2)
    # Made whole by the page's script, from where it is: the script runs after the cards are there.
    share_link = page.get_by_label("Link to this shortlist")
    expect(share_link).to_have_value(re.compile(rf"^{re.escape(watched.base_url)}/shortlist\?"))
    share = share_link.input_value()
    assert "LS9" not in share and share.count("s=sample%3A") == 2
    checked_in_all(watched, axe_source, "06-shortlist")
    # The shortlist is the link: opened fresh (as on another computer), it shows the same two services.
    page.goto(share)
    assert page.locator(".rm-shortlist-card").count() == 2
    # Printing hides the navigation and the buttons.
    page.emulate_media(media="print")
    expect(page.locator(".nhsuk-header")).to_be_hidden()
    expect(page.locator(".rm-shortlist-card").first).to_be_visible()
    page.emulate_media(media="screen")
    watched.assert_clean()


# --- 2. find local alternatives ---------------------------------------------------------------------

def test_find_local_alternatives_journey(watched, axe_source):
    page = watched.page
    watched.goto("/")
    page.get_by_role("link", name="Find local alternatives").first.click()
    checked_in_all(watched, axe_source, "07-alternatives-form")
    page.get_by_label("Where does the person live?").fill("XX9 9XX")
    page.get_by_label("Autism").check()
    page.get_by_label("Detained under the Mental Health Act").check()
    page.get_by_label("Level 1 inpatient rehabilitation unit").check()
    page.get_by_label("Level 2 inpatient rehabilitation unit (higher support)").check()
    page.get_by_label("Age (optional)").fill("34")
    page.get_by_label("Male", exact=True).check()
    page.get_by_label("Where is the person placed now? (optional)").fill("TR1 3LJ")
    page.get_by_role("button", name="Find local alternatives").click()
    # The bad postcode is named; everything else is as it was typed.
    summary = page.locator(".nhsuk-error-summary")
    assert "Postcode 'XX9 9XX' was not found" in summary.inner_text()
    assert summary.get_by_role("link").get_attribute("href") == "#home"
    assert page.get_by_label("Where does the person live?").input_value() == "XX9 9XX"
    assert page.get_by_label("Autism").is_checked()
    assert page.get_by_label("Detained under the Mental Health Act").is_checked()
    assert page.get_by_label("Level 2 inpatient rehabilitation unit (higher support)").is_checked()
    assert page.get_by_label("Age (optional)").input_value() == "34"
    assert page.get_by_label("Male", exact=True).is_checked()
    assert page.get_by_label("Where is the person placed now? (optional)").input_value() == "TR1 3LJ"
    checked_in_all(watched, axe_source, "08-alternatives-error")
    page.get_by_label("Where does the person live?").fill("LS9 7TF")
    page.get_by_role("button", name="Find local alternatives").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Local alternatives near LS9 7TF")
    options = page.locator(".rm-option")
    assert options.count() >= 2
    text = options.first.inner_text()
    for expected in ("miles (160 m) from home", "nearer than the current placement", "Vacancy", "Not known",
                     "In home ICB"):
        assert expected in text, expected
    assert "Why it is listed" not in text  # the rows say it, once
    assert "Halifax Women" not in page.locator("main").inner_text()
    checked_in_all(watched, axe_source, "09-alternatives-results")
    # Back from a service comes back to the results, not to "Confirm Form Resubmission" (POST, redirect, GET),
    # and the address never holds the postcode or the needs: a key only.
    results_url = page.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/alternatives/results/[\w=-]{44}", results_url), results_url
    first_name = options.first.get_by_role("heading").inner_text()
    options.first.get_by_role("link").first.click()
    page.wait_for_url("**/service/**")
    page.go_back()
    page.wait_for_url(results_url)
    assert page.get_by_role("heading", level=1).inner_text() == "Local alternatives near LS9 7TF"
    assert options.first.get_by_role("heading").inner_text() == first_name
    watched.reload()
    assert page.get_by_role("heading", level=1).inner_text() == "Local alternatives near LS9 7TF"
    # The printable summary keeps the results and drops the form and navigation.
    page.emulate_media(media="print")
    expect(page.locator(".rm-match-form")).to_be_hidden()
    expect(options.first).to_be_visible()
    page.emulate_media(media="screen")
    watched.assert_clean()


# --- 3. pathway gaps --------------------------------------------------------------------------------

def test_pathway_gaps_journey(watched, axe_source):
    page = watched.page
    watched.goto("/")
    page.get_by_role("link", name="Pathway gaps").first.click()
    checked_in_all(watched, axe_source, "10-gaps-start")
    page.get_by_role("button", name="Show the pathway").click()  # nothing chosen
    expect(page.locator(".nhsuk-error-summary a[href='#area']")).to_be_visible()
    checked_in_all(watched, axe_source)
    page.get_by_label("Choose an area").select_option(WEST_YORKSHIRE)
    page.get_by_role("button", name="Show the pathway").click()
    page.wait_for_url(f"**/pathway-gaps/{WEST_YORKSHIRE}")
    assert "West Yorkshire" in page.get_by_role("heading", level=1).inner_text()
    expect(page.get_by_role("heading", name="Pathway scorecard")).to_be_visible()
    page.get_by_label("Type of service to map").select_option("inpatient_rehab_level2")
    page.get_by_role("button", name="Show map").click()
    image = page.locator("img.rm-gap-map")
    image.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('img.rm-gap-map').complete")
    assert image.evaluate("img => img.naturalWidth") > 0
    assert "inpatient_rehab_level2" in image.get_attribute("src")
    checked_in_all(watched, axe_source, "11-gaps-area")
    for name in ("(CSV)", "(GeoJSON)", "(JSON)"):
        href = page.get_by_role("link", name=re.compile(re.escape(name))).first.get_attribute("href")
        response = page.request.get(watched.base_url + href)
        assert response.ok, href
    page.get_by_role("link", name="Compare with every other integrated care board").click()
    expect(page.locator("table.rm-compare tbody tr")).to_have_count(42)
    page.get_by_role("link", name=re.compile("^Parts missing")).click()
    expect(page.locator("th[aria-sort='ascending']")).to_have_count(1)
    page.wait_for_function("() => document.querySelector('img.rm-gap-map').complete")
    assert page.locator("img.rm-gap-map").evaluate("img => img.naturalWidth") > 0
    checked_in_all(watched, axe_source, "12-gaps-compare")
    # What if: a level 2 unit in Leeds, from the area page's form; nothing is saved.
    watched.goto(f"/pathway-gaps/{WEST_YORKSHIRE}")
    page.get_by_label("Type of service to add").select_option("inpatient_rehab_level2")
    page.get_by_label("Its postcode").fill("LS9 7TF")
    page.get_by_role("button", name="Show what would change").click()
    expect(page.get_by_text("What if: a scenario, not the directory")).to_be_visible()
    checked_in_all(watched, axe_source, "13-gaps-what-if")
    watched.assert_clean()


# --- every other page, through axe ------------------------------------------------------------------

OTHER_PAGES = ["/find/work", "/find/housing?where=Leeds", "/find/work?where=LS9+7TF&within=5",
               "/shortlist", f"/shortlist?s={AIRE}&s=sample:gone",
               "/service/sample:former-chapel-allerton-rehabilitation-unit", "/service/sample:missing",
               "/pathway-gaps/E54000008", f"/pathway-gaps/{WEST_YORKSHIRE}?community_km=far",
               "/pathway-gaps/compare?level=la&type=advocacy:imha&indicator=share_beyond_threshold",
               "/pathway-gaps/E54000036?add=inpatient_rehab_level2@TR1+3LJ@12",
               "/pathway-gaps/E54000036?add_type=ips_employment&add_postcode=LS99+9ZZ",
               "/pathway-gaps/E10000024", "/pathway-gaps/E10000024/summary", "/pathway-gaps/compare?level=county",
               "/privacy", "/accessibility", "/about-the-data"]


def test_axe_finds_nothing_on_the_other_pages(watched, axe_source):
    found = {}
    for path in OTHER_PAGES:
        watched.goto(path)
        violations = axe(watched.page, axe_source)
        if violations:
            found[path] = violations
    assert found == {}
    watched.assert_clean()


def test_axe_finds_nothing_on_a_phone_screen(browser, live_server, axe_source):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        for path in ("/find/rehabilitation?where=LS9+7TF", f"/pathway-gaps/{WEST_YORKSHIRE}", "/alternatives"):
            page.goto(live_server + path)
            assert axe(page, axe_source) == [], path
            # Nothing but the wide tables (which scroll in their own box) is wider than the screen.
            assert page.evaluate("() => document.documentElement.scrollWidth") <= 375, path
    finally:
        context.close()


def test_axe_finds_nothing_on_the_page_that_says_the_server_cannot_answer(browser, web_home, axe_source, tmp_path):
    """A server whose data folder lacks the small-area file answers its searches with a 503 page, in plain words:
    a real browser shows it, and axe finds nothing on it."""
    with serve(make_app(web_home, tmp_path)) as base_url:  # `tmp_path`: a data folder with nothing in it
        context = browser.new_context()
        page = context.new_page()
        try:
            assert page.goto(base_url + "/find/housing?where=LS9+7TF").status == 503
            expect(page.get_by_role("heading", level=1)).to_have_text("This part of rehabmap is not available")
            assert axe(page, axe_source) == []
        finally:
            context.close()


# --- keyboard only ----------------------------------------------------------------------------------

def test_keyboard_only_journeys(watched):
    page = watched.page
    watched.goto("/")
    tab_to(page, ".nhsuk-skip-link")
    tab_to(page, "main a[href='/find']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/find")
    tab_to(page, "a[href^='/find/work']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/find/work")
    tab_to(page, "#where")
    page.keyboard.type("Leeds")
    page.keyboard.press("Enter")
    page.wait_for_url("**/find/work?where=Leeds*")
    expect(page.locator("#results-heading")).to_be_visible()
    # A clinician's search, keyboard only: type, tick with Space, submit with Enter.
    watched.goto("/alternatives")
    tab_to(page, "#home")
    page.keyboard.type("LS9 7TF")
    tab_to(page, "input[name=needs][value=autism]")
    page.keyboard.press("Space")
    tab_to(page, "input[name=types][value=community_rehab_team]")
    page.keyboard.press("Space")
    tab_to(page, "form.rm-match-form button[type=submit]")
    with page.expect_navigation():  # the POST's page, not the form's load state
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "Local alternatives near LS9 7TF"
    assert "Leeds East Community Rehabilitation Team" in page.locator(".rm-option").first.inner_text()
    # A commissioner's area, keyboard only: the select is operated with the arrow keys.
    watched.goto("/pathway-gaps")
    tab_to(page, "#area")
    page.keyboard.type("NHS West Y")
    tab_to(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/pathway-gaps/{WEST_YORKSHIRE}")
    tab_to(page, ".rm-table-wrap")  # the wide tables scroll from the keyboard
    watched.assert_clean()


# --- no JavaScript ----------------------------------------------------------------------------------

def test_every_core_journey_works_without_javascript(nojs):
    page = nojs.page
    nojs.goto("/find/advocacy")
    page.get_by_label("Postcode or town").fill("LS9 7TF")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".rm-result").first).to_be_visible()
    page.locator(".rm-result").first.get_by_role("link", name=re.compile("to shortlist$")).click()
    page.get_by_role("link", name=re.compile("View your shortlist")).first.click()
    expect(page.locator(".rm-shortlist-card")).to_have_count(1)
    nojs.goto("/alternatives")
    page.get_by_label("Where does the person live?").fill("Manchester")
    page.get_by_label("Step-free access").check()
    page.get_by_role("button", name="Find local alternatives").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Local alternatives near Manchester")
    nojs.goto("/pathway-gaps")
    page.get_by_label("Choose an area").select_option(label="Cornwall")
    page.get_by_role("button", name="Show the pathway").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Cornwall"))
    nojs.assert_clean()


# --- the clinicians' printed summary ---------------------------------------------------------------

def test_the_printed_summary_prints_no_address_of_ours(watched):
    """Before: every link printed its address, and a service's carried the search. (The page count is
    tests/web/test_finder_browser.py's.)"""
    page = watched.page
    watched.goto("/alternatives")
    page.get_by_label("Where does the person live?").fill("LS9 7TF")
    page.get_by_label("Autism").check()
    page.get_by_label("Level 1 inpatient rehabilitation unit").check()
    page.get_by_label("Level 2 inpatient rehabilitation unit (higher support)").check()
    page.get_by_role("button", name="Find local alternatives").click()
    page.wait_for_url("**/alternatives/results/**")
    assert page.locator(".rm-option").count() == 6  # 3 of each of the two types
    page.emulate_media(media="print")
    after = page.evaluate("() => [...document.querySelectorAll('main a[href^=\"/\"]')]"
                          ".map(a => getComputedStyle(a, '::after').content)")
    assert after and set(after) <= {"none", "normal"}, set(after)
    expect(page.locator(".rm-urgent")).to_be_hidden()
    page.emulate_media(media="screen")
    watched.assert_clean()
