"""Any service, for maintainers, through `rehabmap.maintain.edits` (the calls the API makes): in real Chromium
a maintainer finds Aire Valley and changes it, is shown the error summary for a postcode that does not exist
(nothing typed lost, nothing written), adds a service that is then found near LS9 7TF, retires it (gone from
the search) and restores it (back); in-process, each write's audit rows name only what changed, and a
provider or a forged form changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import unquote_plus

import pytest
from playwright.sync_api import expect

from rehabmap.england_day import england_today
from rehabmap.explanation import long_date
from tests.keepers.conftest import Keepers, csrf_of
from tests.keepers.maintainer_browser import signed_in_page
from tests.maintain.conftest import TODAY, stamped_days
from tests.web.browser import axe, shot
from web.keepers.words import AS_KEPT

AIRE = "sample:aire-valley-rehabilitation-unit"
GENDERS = {"female_only", "male_only", "mixed_gender"}
FIND_NEAR_LEEDS = "/find/peer-support?where=LS9+7TF"


def audit_of(keepers: Keepers, service_id: str) -> list[tuple[str, str, object, object]]:
    entries, _ = keepers.site.directory.audit.entries(resource_id=service_id)
    return [(e.action, e.field, e.old, e.new) for e in entries]


def test_an_edit_writes_only_the_fields_changed_and_is_audited(keepers):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    assert form.status_code == 200 and 'value="Aire Valley Rehabilitation Unit' in form.text
    values = {name: value for name, value in _inputs(form.text).items()}
    values.update(csrf=csrf_of(form.text), phone="0113 496 0000", capacity="limited")
    answer = client.post(f"/keepers/services/{AIRE}", data=values)
    assert answer.status_code == 303 and "Saved" in answer.headers["location"]
    changes = [(field, new) for action, field, _, new in audit_of(keepers, AIRE) if action == "update"]
    assert sorted(f for f, _ in changes) == ["capacity", "capacity_as_of", "phone"]
    assert ("phone", "0113 496 0000") in changes and ("capacity", "limited") in changes
    # whom it takes: chosen on the form (before, only the API could state it), then not stated again, which takes
    # its gender needs out of both lists (a PATCH of gender null left them saying it still)
    for gender, met, not_met in (("male_only", {"male_only"}, {"female_only", "mixed_gender"}), ("", set(), set())):
        form = client.get(f"/keepers/services/{AIRE}")
        values = {**_inputs(form.text), "csrf": csrf_of(form.text), "gender": gender}
        answer = client.post(f"/keepers/services/{AIRE}", data=values)
        assert answer.status_code == 303
        said = unquote_plus(answer.headers["location"])
        assert "Saved: Needs it takes, Needs it does not take, Who it takes." in said
        shown = client.get(f"/services/{AIRE}").json()
        assert shown["gender"] == (gender or None)
        assert ({*shown["needs_met"]} & GENDERS, {*shown["needs_not_met"]} & GENDERS) == (met, not_met)
        if gender:  # a page from before the choice, which does not send it, leaves it as it was
            form = client.get(f"/keepers/services/{AIRE}")
            values = {k: v for k, v in _inputs(form.text).items() if k != "gender"} | {"csrf": csrf_of(form.text)}
            saved = client.post(f"/keepers/services/{AIRE}", data={**values, "phone": "0113 496 0001"})
            assert saved.status_code == 303
            assert client.get(f"/services/{AIRE}").json()["gender"] == gender
    assert 'id="gender-4" name="gender" type="radio" value="" checked' in client.get(f"/keepers/services/{AIRE}").text
    # a form opened before another maintainer's word: before, saving it sent that need back as the form had shown
    # it, undoing the other's confirmation unseen
    stale = client.get(f"/keepers/services/{AIRE}")
    other = keepers.client()
    keepers.sign_in(other, "admin")
    confirm = other.get(f"/keepers/services/{AIRE}")
    assert other.post(f"/keepers/services/{AIRE}/needs", data={"csrf": csrf_of(confirm.text), "need": "older_adult",
                                                               "takes": "no"}).status_code == 303
    refused = client.post(f"/keepers/services/{AIRE}", data={**_inputs(stale.text), "csrf": csrf_of(stale.text),
                                                             "phone": "0113 496 0002"})
    assert refused.status_code == 409 and ("This service changed while you had this page open, so nothing was saved: "
                                           "it is shown below as it now is. Make your changes again.") in refused.text
    shown = client.get(f"/services/{AIRE}").json()
    assert "older_adult" in shown["needs_not_met"] and shown["phone"] == "0113 496 0001", "nothing undone or saved"
    again = {**_inputs(refused.text), "csrf": csrf_of(refused.text), "phone": "0113 496 0002"}
    assert again["need-older_adult"] == "no", "shown as it now is"
    assert client.post(f"/keepers/services/{AIRE}", data=again).status_code == 303
    assert client.get(f"/services/{AIRE}").json()["phone"] == "0113 496 0002"
    # a form without its version (a page from before forms carried one) may not change whom it takes or its needs,
    # as a PATCH without If-Match may not (428): it is shown as it now is, nothing saved; other fields still save
    form = client.get(f"/keepers/services/{AIRE}")
    unversioned = {k: v for k, v in _inputs(form.text).items() if k != "version"} | {"csrf": csrf_of(form.text)}
    refused = client.post(f"/keepers/services/{AIRE}", data={**unversioned, "gender": "female_only"})
    assert refused.status_code == 409 and "did not say which version of the service it showed" in refused.text
    assert client.get(f"/services/{AIRE}").json()["gender"] is None, "nothing saved"
    assert client.post(f"/keepers/services/{AIRE}", data={**unversioned, "phone": "0113 496 0003"}).status_code == 303
    assert client.get(f"/services/{AIRE}").json()["phone"] == "0113 496 0003"


def test_a_page_saved_unchanged_after_anothers_change_is_shown_as_it_now_is_and_a_fresh_one_writes_nothing(keepers):
    """A maintainer's page of Aire Valley, opened before another maintainer verified it (a change of nothing the form
    shows, so the page sends back every field as the record now holds it), saved unchanged: "Nothing was changed."
    (since ac2feb27 a form changing nothing was sent without its version), though the page showed the record as it no
    longer is. It is refused as a stale page is (409, shown as it now is); that page saved unchanged is "Nothing was
    changed.", with nothing audited. The refusal asks the maintainer, who changed nothing, to save it again if it is
    right, not to make their changes again."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    stale = client.get(f"/keepers/services/{AIRE}")
    other = keepers.client()
    keepers.sign_in(other, "admin")
    due = other.get("/keepers/verification-due")
    assert other.post("/keepers/verification-due/verify", data={"csrf": csrf_of(due.text), "id": AIRE}).status_code \
        == 303
    audited = audit_of(keepers, AIRE)
    assert [row[:2] for row in audited if row[0] != "link"] == [("verify", "last_verified")]  # (the setup linked it)

    refused = client.post(f"/keepers/services/{AIRE}", data={**_inputs(stale.text), "csrf": csrf_of(stale.text)})

    assert refused.status_code == 409, refused.text  # before, a 303 "Nothing was changed."
    # before, "Another maintainer or a sync changed this service …, so nothing was saved: … Make your changes
    # again.", to a maintainer who made none
    assert ("This service changed while you had this page open: it is shown below as it now is; nothing was saved. "
            "Save it again if it is right.") in refused.text
    assert "Make your changes again" not in refused.text
    saved = client.post(f"/keepers/services/{AIRE}", data={**_inputs(refused.text), "csrf": csrf_of(refused.text)})
    assert saved.status_code == 303 and unquote_plus(saved.headers["location"]).endswith("done=Nothing was changed.")
    assert audit_of(keepers, AIRE) == audited


def test_a_maintainer_writes_a_description_and_a_longer_one_survives_other_edits(keepers):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    assert 'name="description"' in form.text and "read the service page. Up to 5,000 characters." in form.text
    described = ("A 12-bed level 1 unit in east Leeds for adults recovering from psychosis. " * 8).strip()
    assert 200 < len(described) < 5_000
    values = {**_inputs(form.text), "csrf": csrf_of(form.text), "description": described}
    assert client.post(f"/keepers/services/{AIRE}", data=values).status_code == 303
    assert [(f, new) for action, f, _, new in audit_of(keepers, AIRE) if action == "update"] == [
        ("description", described)]
    assert described[-60:] in client.get(f"/service/{AIRE}").text
    # Saving another field sends the description back unchanged: nothing of it is cut or rewritten.
    form = client.get(f"/keepers/services/{AIRE}")
    values = {**_inputs(form.text), "csrf": csrf_of(form.text), "phone": "0113 496 0999"}
    assert values["description"] == described
    assert client.post(f"/keepers/services/{AIRE}", data=values).status_code == 303
    assert sorted(f for action, f, _, _ in audit_of(keepers, AIRE) if action == "update") == ["description", "phone"]
    # An emptied box takes it out, as the API's "" does (`rehabmap.record.given_text`): before, the record refused
    # the form's none ("description: Input should be a valid string"), so a description could not be taken out.
    form = client.get(f"/keepers/services/{AIRE}")
    values = {**_inputs(form.text), "csrf": csrf_of(form.text), "description": "  "}
    answer = client.post(f"/keepers/services/{AIRE}", data=values)
    assert answer.status_code == 303, answer.text
    assert client.get(f"/services/{AIRE}").json()["description"] == ""
    assert audit_of(keepers, AIRE)[-1] == ("update", "description", described, "")


def test_a_services_page_and_its_save_read_the_record_once_and_pass_it_on(keepers, monkeypatch):
    """Before, a service's page read its record from the index twice (to send on an id it is no longer listed under,
    then to show it), and a save three times (to refuse a record merged away, to check the form against, then the
    write's own). The page reads it once; the save once, and the write again, under the index lock (a change since
    must be seen by what it writes), for an active record and one retired alike."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    backend = keepers.app.state.rehabmap.backend
    read: list[str] = []
    get = backend.get

    def counted_get(service_id):
        read.append(service_id)
        return get(service_id)

    monkeypatch.setattr(backend, "get", counted_get)
    for phone, retired in (("0113 496 0997", False), ("0113 496 0998", True)):
        if retired:
            page = client.get(f"/keepers/services/{AIRE}")
            retire = client.post(f"/keepers/services/{AIRE}/retire", data={"csrf": csrf_of(page.text),
                                                                           "reason": "closed in October"})
            assert retire.status_code == 303
        read.clear()
        form = client.get(f"/keepers/services/{AIRE}")
        assert form.status_code == 200 and read == [AIRE]
        read.clear()
        saved = client.post(f"/keepers/services/{AIRE}", data={**_inputs(form.text), "csrf": csrf_of(form.text),
                                                                "phone": phone})
        assert saved.status_code == 303 and "Saved: phone." in unquote_plus(saved.headers["location"])
        assert read == [AIRE, AIRE]
        assert get(AIRE).phone == phone and (get(AIRE).status == "inactive") == retired


def _as_a_browser_sends(text: str) -> str:
    """A textarea's text as a browser sends it: its line breaks read as LF from the page, each sent as CR LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def test_a_descriptions_line_breaks_count_as_one_and_one_held_with_either_sent_back_is_no_change(keepers):
    """A browser sends each line break in a textarea as CR LF. Before, a description of 4,997 characters with 20
    line breaks was refused ("it has 5,017") below the limit its hint says, and one held with LF (from a source or
    the API) saved back unchanged was a change, rewritten with CR LF in the record and the audit log. Now a form's
    line breaks are read as one LF each (`rehabmap.record.typed_text`): the description is kept as typed, and one
    held with LF or with CR LF (as a source gave it), sent back, is no change."""
    from search.embedded import EmbeddedWriter, index_file

    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    paragraph = ("A 12-bed level 1 unit in east Leeds for adults recovering from psychosis. " * 3).strip()
    for held in ("\n".join([paragraph] * 4), "\r\n".join([paragraph] * 4)):
        EmbeddedWriter(index_file(keepers.site.home)).upsert({AIRE: {"description": held}})  # as an import reads it
        assert keepers.app.state.rehabmap.backend.get(AIRE).description == held
        form = client.get(f"/keepers/services/{AIRE}")
        values = {**_inputs(form.text), "csrf": csrf_of(form.text)}
        values["description"] = _as_a_browser_sends(values["description"])
        answer = client.post(f"/keepers/services/{AIRE}", data=values)
        assert "Nothing was changed." in unquote_plus(answer.headers["location"]), repr(held)
        assert keepers.app.state.rehabmap.backend.get(AIRE).description == held

    typed = "\n".join([("Day services, groups and a recovery college. " * 6)[:237]] * 21)
    assert len(typed) == 4_997 and typed.count("\n") == 20
    form = client.get(f"/keepers/services/{AIRE}")
    values = {**_inputs(form.text), "csrf": csrf_of(form.text), "description": _as_a_browser_sends(typed)}
    answer = client.post(f"/keepers/services/{AIRE}", data=values)
    assert answer.status_code == 303, re.findall(r'<a href="#description">[^<]*', answer.text)  # before: "it has 5,017"
    assert keepers.app.state.rehabmap.backend.get(AIRE).description == typed


def test_a_value_is_kept_whole_to_its_fields_limit_and_one_longer_is_refused_not_cut(keepers):
    """Before, every keepers' form cut every value to 200 characters without a word: a 300-character reason for
    retiring was stored cut mid-sentence, and a "How to refer" the API takes at 1,000 was saved cut ("Saved:
    referral_route"). Now each value is kept to its field's own limit (the API's), and one longer is refused against
    its box, with everything typed shown again and nothing written."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    for name, limit in (("name", 300), ("address", 300), ("referral_route", "1,000"), ("phone", 50)):
        assert f'<div class="nhsuk-hint" id="{name}-hint">Up to {limit} characters.</div>' in form.text, name
    assert "maxlength" not in form.text  # a browser enforces one by cutting a paste short without a word
    route = ("Referral from the care coordinator by email, with the latest CPA review and risk assessment. " * 10)
    name, address = "Aire Valley Rehabilitation Unit " + "x" * 220, "Unit 4, " * 35
    assert 200 < len(name) <= 300 and 200 < len(address) <= 300 and 200 < len(route.strip()) <= 1000
    values = {**_inputs(form.text), "csrf": csrf_of(form.text), "referral_route": route, "name": name,
              "address": address}
    assert client.post(f"/keepers/services/{AIRE}", data=values).status_code == 303
    shown = client.get(f"/services/{AIRE}").json()
    assert (shown["referral_route"], shown["name"], shown["address"]) == (route.strip(), name, address.strip())

    form = client.get(f"/keepers/services/{AIRE}")
    longer = "By email. " * 120 + "Then call."
    assert len(longer) == 1210
    refused = client.post(f"/keepers/services/{AIRE}", data={**_inputs(form.text), "csrf": csrf_of(form.text),
                                                             "referral_route": longer, "phone": "0113 496 0123"})
    assert refused.status_code == 400
    assert '<a href="#referral_route">How to refer must be 1,000 characters or fewer: it has 1,210</a>' in refused.text
    again = _inputs(refused.text)
    assert (again["referral_route"], again["phone"]) == (longer, "0113 496 0123")  # all typed, none of it cut
    assert client.get(f"/services/{AIRE}").json()["referral_route"] == route.strip()  # nothing written

    reason = ("Closed in October 2026 when the trust moved its level 1 beds to Field House; its residents went "
              "with them, and referrals now go to the Field House team. ") * 2
    assert 200 < len(reason.strip()) <= 500
    retired = client.post(f"/keepers/services/{AIRE}/retire", data={"csrf": csrf_of(form.text), "reason": reason})
    assert retired.status_code == 303
    assert ("retired_reason", reason.strip()) in [(f, new) for _, f, _, new in audit_of(keepers, AIRE)]
    assert reason.strip()[-60:] in client.get(f"/service/{AIRE}").text
    client.post(f"/keepers/services/{AIRE}/restore", data={"csrf": csrf_of(form.text)})
    too_long = "x" * 501
    refused = client.post(f"/keepers/services/{AIRE}/retire", data={"csrf": csrf_of(form.text), "reason": too_long})
    assert refused.status_code == 400
    assert f'<a href="#reason">The reason must be 500 characters or fewer: it has 501, {AS_KEPT}</a>' in refused.text
    assert f">{too_long}</textarea>" in refused.text
    assert client.get(f"/services/{AIRE}").json()["status"] == "active"


def test_a_name_sent_with_a_line_break_is_refused_against_its_box_and_nothing_is_written(keepers):
    """A name's box is one line, but a form sent by a script (or a page changed in the browser) may hold a line break:
    before, it was saved as sent, and the service's page, its CSV row and its feed entry had a name on two lines. Now
    it is refused against the name's box, with what was typed shown again, and nothing written."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    before = client.get(f"/services/{AIRE}").json()["name"]
    refused = client.post(f"/keepers/services/{AIRE}", data={**_inputs(form.text), "csrf": csrf_of(form.text),
                                                             "name": "Aire Valley\r\nRehabilitation Unit"})
    assert refused.status_code == 400
    assert re.search(r'<a href="#name">[^<]*name: holds a line break \(U\+000A\) after &#39;Aire Valley&#39;: a '
                     r'name is one line', refused.text), re.findall(r'<a href="#name">[^<]*', refused.text)
    assert client.get(f"/services/{AIRE}").json()["name"] == before


def test_a_reason_is_measured_as_it_is_kept_its_runs_of_spaces_made_one_as_the_api_measures_it(keepers):
    """The reason is kept with its runs of spaces made one (`rehabmap.maintain.audit.given_reason`), and the API
    measures it so. Before, the pages measured it as typed: a reason of 499 characters as kept, typed with two
    spaces between its words (665), was refused here ("it has 665") and taken by the API."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    reason = "no  " * 166 + "y"
    kept = " ".join(reason.split())
    assert len(reason) == 665 and len(kept) == 499
    retired = client.post(f"/keepers/services/{AIRE}/retire", data={"csrf": csrf_of(form.text), "reason": reason})
    assert retired.status_code == 303, re.findall(r'<a href="#reason">[^<]*', retired.text)
    assert ("retired_reason", kept) in [(f, new) for _, f, _, new in audit_of(keepers, AIRE)]
    client.post(f"/keepers/services/{AIRE}/restore", data={"csrf": csrf_of(form.text)})
    longer = {"csrf": csrf_of(form.text), "reason": reason + "  xy"}
    refused = client.post(f"/keepers/services/{AIRE}/retire", data=longer)
    assert refused.status_code == 400  # 502 as it would be kept, as the API counts it
    assert f'<a href="#reason">The reason must be 500 characters or fewer: it has 502, {AS_KEPT}</a>' in refused.text


def test_a_stale_capacity_shows_as_not_known_with_its_date_and_choosing_one_restamps_it(keepers):
    """Before, the form showed a capacity report past the freshness window as current ("None" chosen, no date),
    while every public page said it was unknown; sent back unchanged it was "Nothing was changed", so a maintainer
    could not report it afresh. Now the form reads it as the provider's form does: not known, its report's date said
    beside it; left so it is no change, and choosing a capacity reports it as of today."""
    site = keepers.site
    old = (TODAY - timedelta(days=15)).isoformat()
    patched = keepers.client().patch(f"/maintain/services/{AIRE}", json={"capacity": "none", "capacity_as_of": old},
                                     headers=site.auth("maintainer"))
    assert patched.status_code == 200, patched.text
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    assert _inputs(form.text)["capacity"] == ""
    assert "Unknown: the last report (no vacancy, 15 days ago, on 8 November 2026) is older than 14 days" in form.text
    unchanged = {**_inputs(form.text), "csrf": csrf_of(form.text)}
    answer = client.post(f"/keepers/services/{AIRE}", data=unchanged)
    assert "Nothing+was+changed" in answer.headers["location"]
    held = keepers.app.state.rehabmap.backend.get(AIRE)
    assert (held.capacity, held.capacity_as_of.isoformat()) == ("none", old)  # left as it was, not cleared
    day = england_today()
    answer = client.post(f"/keepers/services/{AIRE}", data={**unchanged, "capacity": "none"})
    assert answer.status_code == 303 and "Saved: capacity_as_of." in unquote_plus(answer.headers["location"])
    held = keepers.app.state.rehabmap.backend.get(AIRE)
    # stamped with England's real day, which the app, answering as of TODAY (before it), reads as today
    assert held.capacity == "none" and held.capacity_as_of.isoformat() in stamped_days(day)
    form = client.get(f"/keepers/services/{AIRE}")
    assert _inputs(form.text)["capacity"] == "none"
    assert f"No vacancy, reported today, on {long_date(held.capacity_as_of)}" in form.text


def test_a_current_capacity_confirmed_still_true_is_reported_again_as_of_today(keepers):
    """Before, a maintainer could not re-stamp a capacity still current without changing it: the form sent back as
    it was is "Nothing was changed", its date kept, where the provider's page and PATCH report the same value again
    as of today. Now a box beside the capacity says it is still true today, which reports it so; ticked with the
    capacity "Not known" it is refused against the box, with the error summary, nothing written."""
    site = keepers.site
    recent = (TODAY - timedelta(days=3)).isoformat()
    patched = keepers.client().patch(f"/maintain/services/{AIRE}", json={"capacity": "limited",
                                                                          "capacity_as_of": recent},
                                     headers=site.auth("maintainer"))
    assert patched.status_code == 200, patched.text
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    form = client.get(f"/keepers/services/{AIRE}")
    assert _inputs(form.text)["capacity"] == "limited"
    box = re.search(r'<input class="nhsuk-checkboxes__input" id="capacity_confirmed" name="capacity_confirmed" '
                    r'type="checkbox" value="yes"[^>]*>\s*<label [^>]*for="capacity_confirmed">([^<]+)</label>',
                    form.text)
    assert box and "Still true today" in box.group(1)
    unchanged = {**_inputs(form.text), "csrf": csrf_of(form.text)}
    assert "Nothing+was+changed" in client.post(f"/keepers/services/{AIRE}", data=unchanged).headers["location"]
    before = audit_of(keepers, AIRE)
    refused = client.post(f"/keepers/services/{AIRE}", data={**unchanged, "capacity": "", "capacity_confirmed": "yes"})
    assert refused.status_code == 400
    assert re.search(r'<a href="#capacity_confirmed">Choose the capacity that is true today', refused.text)
    assert 'id="capacity_confirmed-error"' in refused.text and re.search(r'id="capacity_confirmed"[^>]* checked',
                                                                          refused.text)
    assert audit_of(keepers, AIRE) == before
    day = england_today()
    answer = client.post(f"/keepers/services/{AIRE}", data={**unchanged, "capacity_confirmed": "yes"})
    assert answer.status_code == 303 and "Saved: capacity_as_of." in unquote_plus(answer.headers["location"])
    held = keepers.app.state.rehabmap.backend.get(AIRE)
    assert held.capacity == "limited" and held.capacity_as_of.isoformat() in stamped_days(day)
    assert [(f, new) for _, f, _, new in audit_of(keepers, AIRE)[len(before):]] == [("capacity_as_of",
                                                                                     held.capacity_as_of.isoformat())]


def test_a_provider_and_a_forged_form_change_nothing(keepers):
    provider = keepers.client()
    keepers.sign_in(provider, "provider_a")
    assert provider.get(f"/keepers/services/{AIRE}").status_code == 403
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    assert maintainer.post(f"/keepers/services/{AIRE}/retire", data={"csrf": "f" * 64}).status_code == 403
    for action in ("gender", "needs"):  # a gender or need confirmed only by a maintainer, from the form itself
        assert maintainer.post(f"/keepers/services/{AIRE}/{action}", data={"csrf": "f" * 64, "gender": "male_only",
                                                                           "need": "autism", "takes": "yes"}
                               ).status_code == 403
        assert provider.post(f"/keepers/services/{AIRE}/{action}", data={"gender": "male_only"}).status_code == 403
    assert [a for a in audit_of(keepers, AIRE) if a[0] != "link"] == []  # (the setup linked it to its owner)


def _inputs(html: str) -> dict[str, str]:
    """The text inputs, selected options, checked radios and the version of the service form, as a browser would
    send them."""
    from html import unescape

    inputs = re.findall(r'<input class="nhsuk-input[^"]*" id="[^"]+" name="([^"]+)" type="text" value="([^"]*)"', html)
    values = {name: unescape(value) for name, value in inputs}
    for name, block in re.findall(r'<select[^>]* name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', block)
        values[name] = chosen.group(1) if chosen else ""
    for name, text in re.findall(r'<textarea[^>]* name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        values[name] = unescape(text)
    values.update(re.findall(r'name="([^"]+)" type="radio" value="([^"]*)" checked', html))  # each group's choice
    values.update(re.findall(r'<input type="hidden" name="(version)" value="([^"]*)">', html))  # the form's own
    return values


@pytest.fixture
def maintainer_page(browser, keepers_server, shared_keepers) -> Iterator:
    with signed_in_page(browser, keepers_server, shared_keepers.site.tokens["maintainer"]) as page:
        yield page


@pytest.mark.slow
def test_a_maintainer_edits_a_service_and_is_shown_what_is_wrong(maintainer_page, keepers_server, axe_source):
    page = maintainer_page
    page.goto(keepers_server + "/keepers/services")
    page.get_by_label("Find a service").fill("Aire Valley")
    page.get_by_role("button", name="Search").click()
    assert axe(page, axe_source) == []
    shot(page, "27-keepers-services")
    page.get_by_role("link", name="Aire Valley Rehabilitation Unit").click()
    assert axe(page, axe_source) == []
    page.get_by_label("Postcode").fill("ZZ99 9ZZ")
    page.get_by_label("Phone (optional)").fill("0113 496 0999")
    page.get_by_role("button", name="Save").click()
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_visible()
    assert page.title().startswith("Error:")
    summary.get_by_role("link").first.click()
    assert page.evaluate("() => document.activeElement.id") == "postcode"
    assert page.get_by_label("Phone (optional)").input_value() == "0113 496 0999"  # nothing typed is lost
    assert axe(page, axe_source) == []
    page.get_by_label("Postcode").fill("LS9 7TF")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved: phone")).to_be_visible()
    assert page.get_by_label("Phone (optional)").input_value() == "0113 496 0999"


@pytest.mark.slow
def test_a_maintainer_adds_retires_and_restores_a_service_by_keyboard(maintainer_page, keepers_server, axe_source):
    page = maintainer_page
    name = "Harehills Hearing Voices Group (test)"
    page.goto(keepers_server + "/keepers/services/new")
    assert axe(page, axe_source) == []
    page.get_by_label("Name").fill(name)
    page.get_by_label("Type", exact=True).select_option("vcfse")
    page.get_by_label("Postcode").fill("LS9 7TF")
    page.get_by_label("Postcode").press("Enter")  # the keyboard sends the form
    page.wait_for_url("**done=Added*")
    expect(page.get_by_text("Added.")).to_be_visible()
    assert page.get_by_role("heading", level=1).inner_text().startswith(name)
    service_url = page.url.split("?")[0]

    page.goto(keepers_server + FIND_NEAR_LEEDS)
    assert page.get_by_role("link", name=name).count() >= 1

    page.goto(service_url)
    page.get_by_label("Why it is retired").fill("closed in October 2026")
    page.get_by_role("button", name="Retire this service").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**done=Retired*")
    expect(page.get_by_text("Retired: it has left every search.")).to_be_visible()
    assert axe(page, axe_source) == []
    page.goto(keepers_server + FIND_NEAR_LEEDS)
    assert page.get_by_role("link", name=name).count() == 0

    page.goto(service_url)
    page.get_by_role("button", name="Restore this service").click()
    expect(page.get_by_text("Restored: it is searchable again.")).to_be_visible()
    page.goto(keepers_server + FIND_NEAR_LEEDS)
    assert page.get_by_role("link", name=name).count() >= 1


@pytest.mark.slow
def test_adding_a_service_works_without_javascript(browser, keepers_server, shared_keepers):
    with signed_in_page(browser, keepers_server, shared_keepers.site.tokens["maintainer"], "/keepers/services/new",
                        javascript=False) as page:
        page.get_by_role("button", name="Add the service").click()
        expect(page.get_by_role("link", name="Enter the service's name")).to_be_visible()
        page.get_by_label("Name").fill("Gipton Recovery Café (test)")
        page.get_by_label("Type", exact=True).select_option("vcfse")
        page.get_by_label("Postcode").fill("LS9 7TF")
        page.get_by_role("button", name="Add the service").click()
        expect(page.get_by_text("Added.")).to_be_visible()


IRWELL = "sample:irwell-rehabilitation-unit"


@pytest.mark.slow
def test_a_reason_box_takes_what_the_server_keeps_and_says_on_the_box_when_it_is_too_long(
        maintainer_page, keepers_server, shared_keepers, axe_source):
    """The server measures a reason as kept, its runs of spaces and line breaks made one, as the API does; before,
    its box had maxlength 500, which Chromium counts as typed, so a reason written with a blank line and double
    spaces, 577 characters typed and 488 kept, was cut to its first 500 as it was pasted, without a word, and kept
    so. Now the box has no maxlength and the page says how it counts: the reason is kept whole, and one too long as
    kept is refused against the box (the error summary focused, linking to it), everything typed still there."""
    page = maintainer_page
    page.goto(keepers_server + f"/keepers/services/{IRWELL}")
    reason = "Closed in October 2026.\n\n" + "The  ward  moved  to  the  new  hospital  site;  " * 11 + "see its page."
    kept = " ".join(reason.split())
    assert (len(reason), len(kept)) == (577, 488)
    box = page.get_by_label("Why it is retired")
    expect(box).to_have_attribute("aria-describedby", "reason-hint")
    assert "a run of spaces or line breaks counting as one" in page.locator("#reason-hint").inner_text()
    box.fill(reason)
    page.get_by_role("button", name="Retire this service").click()
    page.wait_for_url("**done=Retired*")
    assert audit_of(shared_keepers, IRWELL)[-1][1:] == ("retired_reason", None, kept)  # whole, as kept
    page.get_by_role("button", name="Restore this service").click()
    page.wait_for_url("**done=Restored*")

    longer = reason + "\nIt  will  not  reopen."
    page.get_by_label("Why it is retired").fill(longer)
    page.get_by_role("button", name="Retire this service").click()
    said = "The reason must be 500 characters or fewer: it has 508, a run of spaces or line breaks counting as one"
    summary = page.locator(".nhsuk-error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link", name=said)).to_have_attribute("href", "#reason")
    expect(page.locator("#reason-error")).to_contain_text(said)
    assert page.get_by_label("Why it is retired").input_value() == longer  # nothing typed is lost
    assert axe(page, axe_source) == []
    summary.get_by_role("link", name=said).click()
    assert page.evaluate("() => document.activeElement.id") == "reason"
    assert audit_of(shared_keepers, IRWELL)[-1][1] == "status"  # the restore: nothing written since
