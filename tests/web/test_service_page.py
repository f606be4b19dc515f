"""A service page has what NHS.UK's have: last checked up front, opening times from the record's schedules
(or that they are not known), whether you can refer yourself (or that it is not known), directions as a plain
link out, and the report-a-problem link."""

from __future__ import annotations

import html
from datetime import time

import pytest

from web.service_view import clock, day_range

AIRE = "sample:aire-valley-rehabilitation-unit"
COLLEGE = "sample:leeds-recovery-college"
PEER = "sample:holbeck-peer-support-group"
CHAPELTOWN = "sample:chapeltown-floating-support"


def text(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return html.unescape(response.text)


def test_last_checked_comes_before_the_contact_details(client):
    page = text(client, f"/service/{AIRE}")
    assert "Checked by the rehabmap team or the service: 1 November 2026" in page
    assert page.index("Checked by the rehabmap team") < page.index("How to get in touch")


def test_opening_times_are_the_records_schedules(client):
    page = text(client, f"/service/{COLLEGE}")
    times = page[page.index('id="opening-times"'):page.index("About this service")]
    for shown in ("Monday to Thursday", "9:30am to 4:30pm", "Friday",
                  "9:30am to 1pm (Fridays: enrolment drop-in only)"):
        assert shown in times, shown
    peer = text(client, f"/service/{PEER}")
    assert "Tuesday and Thursday" in peer and "6pm to 8pm" in peer
    aire = text(client, f"/service/{AIRE}")
    assert "Staffed 24 hours a day, every day." in aire


def test_no_schedule_says_opening_times_are_not_known_and_never_closed(client):
    page = text(client, f"/service/{CHAPELTOWN}")
    times = page[page.index('id="opening-times"'):page.index("About this service")]
    assert "Opening times not known" in times
    assert "Closed" not in times


@pytest.mark.parametrize("service, answer", [
    (COLLEGE, "Yes, you can contact the service yourself"),
    (AIRE, "No, you need a referral from a professional"),
    (CHAPELTOWN, "Not known: ask the service"),
])
def test_whether_you_can_refer_yourself_is_the_records_answer(client, service, answer):
    page = text(client, f"/service/{service}")
    assert "Can you refer yourself?" in page
    assert answer in page


def test_directions_link_out_to_the_service_and_never_carry_the_search(client):
    page = text(client, f"/service/{AIRE}?where=LS9+7TF&cat=rehabilitation")
    assert '<a href="https://www.google.com/maps/dir/?api=1&destination=53.806869%2C-1.520359" id="directions">' in page
    link = page[page.index('id="directions"') - 120:page.index('id="directions"')]
    assert "LS9" not in link and "where" not in link


def test_report_a_problem_links_to_the_agreed_form(client):
    page = client.get("/service/sample:aire-valley-rehabilitation-unit").text
    assert '<a href="/report-a-problem?service=sample%3Aaire-valley-rehabilitation-unit" id="report-a-problem">' \
           'Report a problem with this page</a>' in page


def test_times_and_days_read_as_nhs_uk_writes_them():
    assert [clock(t) for t in (time(9), time(17, 30), time(12), time(0), time(0, 30), time(12, 15))] == \
        ["9am", "5:30pm", "midday", "midnight", "12:30am", "12:15pm"]
    assert day_range(["MO", "TU", "WE", "TH", "FR"]) == "Monday to Friday"
    assert day_range(["SA", "SU"]) == "Saturday and Sunday"
    assert day_range(["MO", "WE", "FR"]) == "Monday, Wednesday and Friday"
    assert day_range(["SU"]) == "Sunday"


@pytest.mark.parametrize("service, takes", [
    ("sample:kirkstall-locked-rehabilitation-ward", "Men only"),
    ("sample:halifax-women-s-rehabilitation-unit", "Women only"),
    (AIRE, "Women and men"),
])
def test_who_it_takes_is_said_once_in_peoples_words(client, service, takes):
    """A men-only unit's page said "Not suitable for: Women-only service, Mixed-gender service" (the three gender
    needs its gender derives, named as services): a family reads that as nonsense. It says "Men only" once."""
    page = text(client, f"/service/{service}")
    who = page[page.index("About this service"):page.index("Details for professionals")]
    assert takes in who and "Who it takes" in who
    assert "-only service" not in who and "Mixed-gender" not in who


LEEDS_IMHA = "sample:leeds-imha-service"


def test_a_catchment_is_named_by_its_areas_names(client):
    page = text(client, f"/service/{LEEDS_IMHA}")
    served = page[page.index("Serves people living in"):page.index("Serves people living in") + 400]
    assert "<li>Leeds</li>" in served and "E08000035" not in served


def test_a_county_council_a_sub_icb_location_and_an_icb_are_named_too(web_app):
    """The geography's boundaries hold no county councils, so a county's advocacy service (a curated table's
    `utla_code`, e.g. E10000003) 'served people living in E10000003'. A code nothing knows stays as it is."""
    from web.service_view import professional_rows

    state = web_app.state.rehabmap
    assert [state.area_name(code) for code in ("E10000003", "E38000225", "E54000054", "E08000035", "E99999999")] == [
        "Cambridgeshire", "NHS West Yorkshire ICB - 15F", "NHS West Yorkshire Integrated Care Board", "Leeds",
        "E99999999"]
    service = state.backend.get(LEEDS_IMHA)
    county = service.model_copy(update={"service_area": service.service_area.model_copy(
        update={"codes": ["E10000003", "E06000031"]})})
    rows = dict(professional_rows(county, state.area_name, state.today(), state.source_title))
    assert rows["Serves people living in"] == (
        '<ul class="nhsuk-list nhsuk-list--bullet"><li>Cambridgeshire</li><li>Peterborough</li></ul>')
