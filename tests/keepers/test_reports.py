"""Problem reports: the public form (no cookie, nothing kept but what is typed, limited per hour) and the
maintainers' queue (resolving is audited), in the real store and over HTTP."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from rehabmap.maintain.reports import ProblemReports, ReportPolicy, TooManyReports
from tests.keepers.conftest import Clock, csrf_of
from web.links import report_problem_url

AIRE = "sample:aire-valley-rehabilitation-unit"
SEACROFT = "sample:seacroft-community-rehabilitation-unit"


def stored(keepers) -> list[tuple]:
    with sqlite3.connect(keepers.site.directory.database.path) as conn:
        return conn.execute("SELECT * FROM problem_reports ORDER BY id").fetchall()


def test_a_report_keeps_only_what_was_typed_and_resolving_it_is_audited(keepers):
    reports = keepers.site.directory.reports
    with sqlite3.connect(keepers.site.directory.database.path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(problem_reports)")]
    assert columns == ["id", "service_id", "what", "contact", "created_at", "resolved_at", "resolved_by", "note"]
    first = reports.add(AIRE, "  The phone number is wrong ", "")
    second = reports.add(SEACROFT, "It closed in May", "ann@example.org")
    assert (first.what, first.contact) == ("The phone number is wrong", None)
    assert [r.id for r in reports.open()] == [first.id, second.id]
    done = reports.resolve(first.id, "Phone corrected", actor="Ben (token abc)")
    assert done.resolved_by == "Ben (token abc)" and done.note == "Phone corrected"
    reports.resolve(first.id, "again", actor="someone else")  # already resolved: nothing changes
    assert [r.id for r in reports.open()] == [second.id]
    entries, _ = keepers.site.directory.audit.entries(resource_type="problem_report")
    assert [(e.actor, e.action, e.field, e.new) for e in entries][-1] == \
        ("Ben (token abc)", "resolve", "note", "Phone corrected")
    assert len(entries) == 2


def test_reports_are_limited_per_service_and_per_site_each_hour(keepers):
    clock = Clock(datetime.now(timezone.utc).replace(microsecond=0))
    reports = ProblemReports(keepers.site.directory.database, keepers.site.directory.audit,
                             policy=ReportPolicy(per_hour=4, per_service_per_hour=2), clock=clock)
    reports.add(AIRE, "one", None)
    reports.add(AIRE, "two", None)
    with pytest.raises(TooManyReports):
        reports.add(AIRE, "three", None)
    reports.add(SEACROFT, "three", None)
    reports.add(SEACROFT, "four", None)
    with pytest.raises(TooManyReports):
        reports.add("sample:leeds-recovery-college", "five", None)
    clock.advance(hours=1)
    assert reports.add(AIRE, "an hour later", None).what == "an hour later"


def test_the_public_form_sets_no_cookie_and_keeps_nothing_of_the_sender(keepers):
    client = keepers.client()
    form = client.get(report_problem_url(AIRE))
    assert form.status_code == 200 and "Report a problem with this page" in form.text
    assert "Aire Valley Rehabilitation Unit (sample)" in form.text and "set-cookie" not in form.headers
    # each box says its limit, which the store holds it to, and has no maxlength: a browser would cut a paste to it
    assert "medical details. Up to 1,000 characters." in form.text
    assert "contact you about this report. Up to 200 characters." in form.text and "maxlength" not in form.text
    assert client.get(report_problem_url("sample:no-such-service")).status_code == 404
    empty = client.post("/report-a-problem", data={"service": AIRE, "what": " ", "contact": "me@example.org"})
    assert empty.status_code == 400 and '<a href="#what">Say what is wrong with the page</a>' in empty.text
    assert 'value="me@example.org"' in empty.text
    # before, the page cut each value at 1,001 characters: what was typed past that was gone from the page
    long = "The phone number on the page rings a fax machine. " * 30
    too_long = client.post("/report-a-problem", data={"service": AIRE, "what": long, "contact": "x" * 1200})
    assert too_long.status_code == 400
    assert '<a href="#what">Say what is wrong in 1,000 characters or fewer: it has 1,499</a>' in too_long.text
    assert f'aria-describedby="what-hint what-error">{long.strip()}</textarea>' in too_long.text
    assert 'value="' + "x" * 1200 + '"' in too_long.text
    contact = client.post("/report-a-problem", data={"service": AIRE, "what": "Wrong number", "contact": "x" * 1200})
    assert '<a href="#contact">Contact details must be 200 characters or fewer: it has 1,200</a>' in contact.text
    sent = client.post("/report-a-problem", data={"service": AIRE, "what": "Wrong phone number", "contact": ""},
                       headers={"Referer": "http://testserver/find/rehab?where=LS9+7TF",
                                "X-Forwarded-For": "203.0.113.9"})
    assert sent.status_code == 303 and "set-cookie" not in sent.headers
    thanks = client.get(sent.headers["location"])
    assert "Thank you: your report was sent" in thanks.text and "set-cookie" not in thanks.headers
    rows = stored(keepers)
    assert len(rows) == 1 and rows[0][1:4] == (AIRE, "Wrong phone number", None)
    for kept in ("LS9", "203.0.113", "testclient", "127.0.0.1"):
        assert kept not in repr(rows)
    assert not list(client.cookies.jar)


def test_too_many_reports_about_one_service_get_a_429_page(keepers):
    client = keepers.client()
    for n in range(5):
        assert client.post("/report-a-problem", data={"service": AIRE, "what": f"problem {n}"}).status_code == 303
    refused = client.post("/report-a-problem", data={"service": AIRE, "what": "one more"})
    assert refused.status_code == 429 and "Too many problems have been reported in the last hour" in refused.text
    assert len(stored(keepers)) == 5


def test_maintainers_resolve_reports_from_the_queue_and_providers_cannot_see_it(keepers):
    keepers.site.directory.reports.add(AIRE, "Wrong phone number", "ann@example.org")
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    queue = maintainer.get("/keepers/problem-reports")
    assert queue.status_code == 200 and "Wrong phone number" in queue.text and "ann@example.org" in queue.text
    assert 'href="/keepers/problem-reports"' in queue.text
    report_id = stored(keepers)[0][0]
    done = maintainer.post("/keepers/problem-reports/resolve",
                           data={"csrf": csrf_of(queue.text), "report": str(report_id), "note": "Phone corrected"})
    assert done.status_code == 303
    after = maintainer.get(done.headers["location"]).text
    assert f"Report {report_id} is resolved" in after and "There are no open problem reports" in after
    entry = keepers.site.directory.audit.entries(resource_type="problem_report")[0][-1]
    assert entry.actor == f"maintainer of the tests (token {keepers.site.token_ids['maintainer']})"
    assert maintainer.post("/keepers/problem-reports/resolve",
                           data={"csrf": csrf_of(queue.text), "report": "999"}).status_code == 404
    provider = keepers.client()
    keepers.sign_in(provider, "provider_a")
    assert provider.get("/keepers/problem-reports").status_code == 403


def test_a_report_not_there_is_refused_saying_where_the_open_ones_are(keepers):
    """A report not there (an id from a form made elsewhere) was refused with the store's fact alone, "No problem
    report 999.", a page that showed an error's message and would have lost any remedy it carried. Now the keepers'
    pages say every refusal one way (`said`): the fact, what a maintainer can do about it, and the way back."""
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    queue = maintainer.get("/keepers/problem-reports")
    refused = maintainer.post("/keepers/problem-reports/resolve", data={"csrf": csrf_of(queue.text), "report": "999"})
    assert refused.status_code == 404 and "<h1>The report was not resolved</h1>" in refused.text
    assert "<p>No problem report 999. The problem reports page lists those still open.</p>" in refused.text
    assert '<a href="/keepers/problem-reports">Back to the problem reports</a>' in refused.text


def test_a_note_too_long_is_named_on_its_box_with_what_was_typed_kept(keepers):
    """Before, a note of more than 200 characters gave a page saying only "The report was not resolved": the
    note was lost, and nothing pointed at the box. Now the queue comes back with the error summary on that report's
    note (as every keepers' form names its field), what was typed in it, and the report still open."""
    keepers.site.directory.reports.add(AIRE, "Wrong phone number", None)
    keepers.site.directory.reports.add(SEACROFT, "Closed last month", None)
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    queue = maintainer.get("/keepers/problem-reports")
    first, second = (row[0] for row in stored(keepers))
    note = "Rang the ward: " + "the number is right now " * 10
    refused = maintainer.post("/keepers/problem-reports/resolve",
                              data={"csrf": csrf_of(queue.text), "report": str(second), "note": note})
    assert refused.status_code == 400
    assert f'<a href="#note-{second}">The note must be 200 characters or fewer: it has {len(note.strip())}</a>' \
        in refused.text
    assert f'id="note-{second}" name="note" rows="2" aria-describedby="note-{second}-hint note-{second}-error">' \
           f"{note.strip()}</textarea>" in refused.text
    assert f'id="note-{first}" name="note" rows="2" aria-describedby="note-{first}-hint"></textarea>' in refused.text
    assert f'<div class="nhsuk-hint" id="note-{first}-hint">Up to 200 characters.</div>' in refused.text
    assert [row[5] for row in stored(keepers)] == [None, None]
