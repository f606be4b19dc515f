"""Real Chromium against a real uvicorn server: someone reports a problem with a service's page (no
account, no cookie), and a maintainer finds it in the queue and resolves it; axe-core finds nothing on the
pages on the way."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.browser import axe
from web.links import report_problem_url

pytestmark = pytest.mark.slow

AIRE = "sample:aire-valley-rehabilitation-unit"


def test_a_public_report_reaches_the_maintainers_queue_and_is_resolved(browser, keepers_server, shared_keepers,
                                                                       axe_source):
    public = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = public.new_page()
    page.goto(keepers_server + report_problem_url(AIRE))
    assert page.get_by_role("heading", level=1).inner_text() == "Report a problem with this page"
    assert axe(page, axe_source) == []
    page.get_by_role("button", name="Send report").click()
    expect(page.locator(".nhsuk-error-summary")).to_contain_text("Say what is wrong with the page", use_inner_text=True)
    assert axe(page, axe_source) == []
    page.get_by_label("What is wrong?").fill("The phone number rings a fax machine")
    page.get_by_label("Your email or phone (optional)").fill("ann@example.org")
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report was sent")
    assert axe(page, axe_source) == []
    assert public.cookies() == []
    public.close()

    keeper = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = keeper.new_page()
    page.goto(keepers_server + "/keepers/sign-in")
    page.get_by_label("Your token").fill(shared_keepers.site.tokens["maintainer"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Keepers' pages").get_by_role("link", name="Problem reports").click()
    card = page.locator("section.nhsuk-card").filter(has_text="The phone number rings a fax machine")
    assert "ann@example.org" in card.inner_text()
    assert axe(page, axe_source) == []
    card.get_by_label("What was done (optional)").fill("Phone number corrected")
    card.get_by_role("button", name="Resolve report").click()
    expect(page.get_by_role("status")).to_contain_text("is resolved", use_inner_text=True)
    assert "The phone number rings a fax machine" not in page.locator("main").inner_text()
    keeper.close()


def test_the_public_report_forms_errors_are_summarised_focused_and_named_on_their_boxes(browser, keepers_server,
                                                                                       axe_source):
    """The public form's refusals in real Chromium, where only the words were checked before: sent empty, then with
    contact details too long, the page's title says there is an error, the error summary takes the focus and links
    to the box, the box says the error itself (announced with it: its aria-describedby), what was typed is still
    there, and axe-core finds nothing. Nothing is sent."""
    public = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = public.new_page()
    page.goto(keepers_server + report_problem_url(AIRE))
    what, contact = page.get_by_label("What is wrong?"), page.get_by_label("Your email or phone (optional)")
    too_long = "ann@example.org, or ask for Ann on the ward's phone " * 4 + "x" * 4
    for fill, box, said in ((None, "what", "Say what is wrong with the page"),
                            ("The unit has moved to Field House", "contact",
                             "Contact details must be 200 characters or fewer")):
        if fill:
            what.fill(fill)
            contact.fill(too_long)
        page.get_by_role("button", name="Send report").click()
        summary = page.locator(".nhsuk-error-summary")
        expect(summary).to_be_focused()
        assert page.title().startswith("Error:")
        link = summary.get_by_role("link", name=said)
        expect(link).to_have_attribute("href", f"#{box}")
        expect(page.locator(f"#{box}-error")).to_contain_text(said)
        assert f"{box}-error" in page.locator(f"#{box}").get_attribute("aria-describedby").split()
        assert what.input_value() == (fill or "") and contact.input_value() == (too_long if fill else "")
        assert axe(page, axe_source) == []
        link.click()
        assert page.evaluate("() => document.activeElement.id") == box
    assert public.cookies() == []
    public.close()


def test_what_is_wrong_is_sent_whole_and_one_too_long_is_refused_on_its_box(browser, keepers_server, shared_keepers,
                                                                             axe_source):
    """Before, the box had maxlength 1,000, which Chromium enforces by cutting a paste short without a word: a report
    of 1,050 characters was cut to its first 1,000 and sent, and kept so, its end lost. Now the box takes it whole
    and its hint says the limit; one too long is refused against the box, saying its length (the error summary
    focused, linking to it), all that was typed still there and nothing kept; shortened, it is sent whole."""
    public = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = public.new_page()
    page.goto(keepers_server + report_problem_url(AIRE))
    what = page.get_by_label("What is wrong?")
    typed = ("The ward's phone number on this page rings a fax machine; the unit moved to Field House in May. " * 11
             )[:1050]
    reports = shared_keepers.site.directory.reports
    before = len(reports.open())
    what.fill(typed)
    assert what.input_value() == typed  # before: its first 1,000 characters
    assert page.locator("#what-hint").inner_text().endswith("Up to 1,000 characters.")
    page.get_by_role("button", name="Send report").click()
    said = "Say what is wrong in 1,000 characters or fewer: it has 1,050"
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_focused()
    link = summary.get_by_role("link", name=said)
    expect(link).to_have_attribute("href", "#what")
    expect(page.locator("#what-error")).to_contain_text(said)
    assert page.get_by_label("What is wrong?").input_value() == typed  # nothing typed is lost
    assert len(reports.open()) == before  # nothing kept
    assert axe(page, axe_source) == []
    link.click()
    assert page.evaluate("() => document.activeElement.id") == "what"

    shortened = typed[:1000].strip()
    page.get_by_label("What is wrong?").fill(shortened)
    page.get_by_role("button", name="Send report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report was sent")
    assert reports.open()[-1].what == shortened
    public.close()


def test_what_is_wrong_counts_each_line_break_as_one_and_keeps_it_as_typed(browser, keepers_server, shared_keepers):
    """A browser sends each line break in a textarea as two characters (CR LF), so before, a report of 990
    characters with 20 line breaks reached the store as 1,010 and was refused ("it has 1,010") below the limit its
    hint says, and one that was kept held each break as CR LF. Now a form's values read line breaks as one LF
    (`web.forms.typed_text`): the report is kept as typed, counted as the box showed it."""
    public = browser.new_context(viewport={"width": 1100, "height": 900}, locale="en-GB")
    page = public.new_page()
    page.goto(keepers_server + report_problem_url(AIRE))
    typed = "\n".join(["The ward's phone rings a fax machine; the unit moved to Field House."[:48]] * 21)[:990]
    assert len(typed) == 990 and typed.count("\n") == 20
    page.get_by_label("What is wrong?").fill(typed)
    with page.expect_navigation():
        page.get_by_role("button", name="Send report").click()
    assert page.locator("#what-error").count() == 0, page.locator("#what-error").text_content()
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you: your report was sent"
    assert shared_keepers.site.directory.reports.open()[-1].what == typed
    public.close()
