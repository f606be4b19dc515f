"""Admins' pages over HTTP: tokens made (shown once, working at once), refused with the field named,
revoked (the holder's session ends on its next request), sign-in links; organisations added, services
linked and unlinked; all audited under the admin's token, and closed to other roles."""

from __future__ import annotations

import re
from html import unescape

import pytest

from tests.keepers.conftest import csrf_of
from tests.maintain.conftest import cli_here

AIRE = "sample:aire-valley-rehabilitation-unit"
NEW_TOKEN = re.compile(r'<code id="new-token">(rmk_[0-9a-f]{12}_[A-Za-z0-9_-]{43})</code>')


@pytest.fixture
def admin(keepers):
    client = keepers.client()
    keepers.sign_in(client, "admin")
    return client


def admin_who(keepers) -> str:
    return f"admin of the tests (token {keepers.site.token_ids['admin']})"


def test_an_admin_makes_a_provider_token_that_works_at_once(keepers, admin):
    page = admin.get("/keepers/tokens")
    made = admin.post("/keepers/tokens", data={**token_form(page.text), "label": "Cat (bed manager)",
                                               "role": "provider", "organisation": "Aire Trust (fictional)",
                                               "expires": "30"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    token = NEW_TOKEN.search(made.text).group(1)
    assert "This is the only time the token is shown" in made.text
    assert token not in admin.get("/keepers/tokens").text
    me = keepers.client().get("/maintain/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "provider" and me["organisation"] == "Aire Trust (fictional)" and AIRE in me["services"]
    holder = keepers.client()
    form = holder.get("/keepers/sign-in")
    assert holder.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": token}).status_code == 303
    assert "My services" in holder.get("/keepers").text
    entry = keepers.site.directory.audit.entries(resource_type="token")[0][-1]
    assert entry.actor == admin_who(keepers) and entry.action == "create"


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"label": "", "role": "maintainer"}, "label", "Enter a label saying whose token it is"),
    ({"label": "X"}, "role", "Choose what the token may do"),
    *[(data, "organisation", "A provider token needs an organisation, and only a provider token takes one. Choose "
       "one for a provider token, and None for any other role.")
      for data in ({"label": "X", "role": "provider"},
                   {"label": "X", "role": "maintainer", "organisation": "Aire Trust (fictional)"})],
    ({"label": "X", "role": "maintainer", "expires": "0"}, "expires", "a whole number from 1 to 365"),
    ({"label": "X", "role": "admin", "expires": "400"}, "expires", "a whole number from 1 to 365"),
])
def test_a_token_form_with_a_problem_names_the_field_and_makes_nothing(keepers, admin, data, field, message):
    before = len(keepers.site.directory.tokens.all())
    refused = admin.post("/keepers/tokens", data={**token_form(admin.get("/keepers/tokens").text), **data})
    assert refused.status_code == 400 and f'href="#{field}"' in refused.text and message in refused.text
    assert len(keepers.site.directory.tokens.all()) == before


def test_revoking_a_token_ends_its_holders_session_at_once(keepers, admin):
    holder = keepers.client()
    keepers.sign_in(holder, "provider_b")
    assert holder.get("/keepers/my-services").status_code == 200
    page = admin.get("/keepers/tokens").text
    token_id = keepers.site.token_ids["provider_b"]
    assert re.search(rf"\(id {token_id}\)</span></td>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>[^<]*</td>\s*"
                     r'<td class="nhsuk-table__cell">1</td>', page)
    revoked = admin.post("/keepers/tokens/revoke", data={"csrf": csrf_of(page), "token": token_id})
    assert revoked.status_code == 303
    assert f"Token {token_id} is revoked" in admin.get(revoked.headers["location"]).text
    gone = holder.get("/keepers/my-services")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/keepers/sign-in")
    assert keepers.site.directory.sessions.live_for(token_id) == 0
    entry = keepers.site.directory.audit.entries(resource_type="token", resource_id=token_id)[0][-1]
    assert (entry.actor, entry.action) == (admin_who(keepers), "revoke")


def test_an_admin_makes_a_sign_in_link_for_a_token(keepers, admin):
    made = admin.post("/keepers/tokens/sign-in-link", data={"csrf": csrf_of(admin.get("/keepers/tokens").text),
                                                            "token": keepers.site.token_ids["maintainer"]})
    link = re.search(r'<code id="new-link">(/keepers/sign-in/link/[\w-]+)</code>', made.text).group(1)
    holder = keepers.client()
    answer = holder.post(link, data={"csrf": csrf_of(holder.get(link).text)})
    assert answer.status_code == 303 and "maintainer of the tests" in holder.get("/keepers").text


def test_a_token_refused_on_the_tokens_page_says_where_the_tokens_are_not_a_command(keepers, admin):
    """A token revoked since the page was shown gets no sign-in link, and an id not there is not revoked: the
    page says so, that the tokens page lists them and the way back to it, where it said "'rehabmap tokens list'
    shows them", a command a keeper on a web page cannot run. The command line still names the command."""
    token_id = keepers.site.token_ids["provider_b"]
    keepers.site.directory.tokens.revoke(token_id, actor="test")
    csrf = csrf_of(admin.get("/keepers/tokens").text)
    link = admin.post("/keepers/tokens/sign-in-link", data={"csrf": csrf, "token": token_id})
    revoke = admin.post("/keepers/tokens/revoke", data={"csrf": csrf, "token": "0123456789ab"})
    for refused, fact in ((link, f"No live token has the id '{token_id}': a revoked or expired token gets no "
                                 "sign-in link."),
                          (revoke, "No token has the id '0123456789ab'.")):
        assert refused.status_code == 404 and f"<p>{fact} The tokens page lists them.</p>" in unescape(refused.text)
        assert '<a href="/keepers/tokens">Back to the tokens</a>' in refused.text
    command = cli_here(keepers.site, "tokens", "revoke", "0123456789ab")
    assert command.returncode == 2
    assert command.stderr == "error: No token has the id '0123456789ab'. 'rehabmap tokens list' shows them.\n"


def test_organisations_are_added_and_services_linked_and_unlinked(keepers, admin):
    csrf = csrf_of(admin.get("/keepers/organisations").text)
    added = admin.post("/keepers/organisations", data={"csrf": csrf, "organisation_name": "Calder Trust"})
    assert added.status_code == 303
    again = admin.post("/keepers/organisations", data={"csrf": csrf, "organisation_name": "calder trust"})
    assert again.status_code == 400 and "There is already an organisation called" in again.text
    missing = admin.post("/keepers/organisations/link", data={"csrf": csrf, "organisation": "Calder Trust",
                                                               "service": "sample:nope"})
    assert missing.status_code == 400 and "There is no service with id" in missing.text
    linked = admin.post("/keepers/organisations/link", data={"csrf": csrf, "organisation": "Calder Trust",
                                                              "service": AIRE})
    assert linked.status_code == 303
    organisations = keepers.site.directory.organisations
    assert AIRE in organisations.get("Calder Trust").service_ids
    assert AIRE not in organisations.get("Aire Trust (fictional)").service_ids
    page = admin.get("/keepers/organisations").text
    assert "Unlink<span" in page and "Aire Valley Rehabilitation Unit (sample)" in page
    assert admin.post("/keepers/organisations/unlink", data={"csrf": csrf, "organisation": "Calder Trust",
                                                              "service": AIRE}).status_code == 303
    assert organisations.get("Calder Trust").service_ids == []
    again = admin.post("/keepers/organisations/unlink", data={"csrf": csrf, "organisation": "Calder Trust",
                                                              "service": AIRE})
    assert again.status_code == 400
    assert f"{AIRE}&#39; is not linked to Calder Trust: no organisation owns it" in again.text
    actions = [(e.actor, e.action) for e in keepers.site.directory.audit.entries(resource_id=AIRE)[0]][-2:]
    assert actions == [(admin_who(keepers), "link"), (admin_who(keepers), "unlink")]


def test_an_organisation_not_there_is_refused_against_its_choice_not_with_a_command(keepers, admin):
    """An organisation the store does not hold (sent by a form made elsewhere) was refused
    with "Add it with 'rehabmap orgs add NAME' or POST /maintain/organisations", neither of which a keeper on a
    web page can do. Now the tokens form and the organisations' link and unlink say to choose another or add it."""
    before = len(keepers.site.directory.tokens.all())
    words = "No organisation 'Nobody Ltd'. Choose one from the list, or add it on the Organisations page."
    token = admin.post("/keepers/tokens", data={**token_form(admin.get("/keepers/tokens").text), "label": "X",
                                                "role": "provider", "organisation": "Nobody Ltd"})
    csrf = csrf_of(admin.get("/keepers/organisations").text)
    link = admin.post("/keepers/organisations/link", data={"csrf": csrf, "organisation": "Nobody Ltd",
                                                          "service": AIRE})
    unlink = admin.post("/keepers/organisations/unlink", data={"csrf": csrf, "organisation": "Nobody Ltd",
                                                              "service": AIRE})
    for refused in (token, link, unlink):
        assert refused.status_code == 400 and f'<a href="#organisation">{words}</a>' in unescape(refused.text)
    assert len(keepers.site.directory.tokens.all()) == before
    assert AIRE in keepers.site.directory.organisations.get("Aire Trust (fictional)").service_ids


def test_admin_pages_are_for_admins_only(keepers):
    maintainer = keepers.client()
    keepers.sign_in(maintainer, "maintainer")
    for path in ("/keepers/tokens", "/keepers/organisations"):
        assert maintainer.get(path).status_code == 403
    csrf = csrf_of(maintainer.get("/keepers").text)
    refused = maintainer.post("/keepers/tokens/revoke", data={"csrf": csrf, "token": keepers.site.token_ids["admin"]})
    assert refused.status_code == 403
    admin = next(t for t in keepers.site.directory.tokens.all() if t.id == keepers.site.token_ids["admin"])
    assert admin.revoked_at is None


def token_form(page: str) -> dict[str, str]:
    """The token form's hidden fields: its CSRF token and its one-time key."""
    once = re.search(r'name="once" value="([\w-]+)"', page)
    assert once, "the token form carries a one-time key"
    return {"csrf": csrf_of(page), "once": once.group(1)}


def test_the_same_token_form_sent_twice_makes_one_token_and_says_so(keepers, admin):
    """A double submit, or a reload of the reply: one token; the second reply names it and shows no secret."""
    form = {**token_form(admin.get("/keepers/tokens").text), "label": "Jo (twice)", "role": "maintainer"}
    first = admin.post("/keepers/tokens", data=form)
    secret = NEW_TOKEN.search(first.text).group(1)
    again = admin.post("/keepers/tokens", data=form)
    [made] = [t for t in keepers.site.directory.tokens.all() if t.name == "Jo (twice)"]
    assert again.status_code == 409 and "This token was made already" in again.text
    assert f"Jo (twice) (id {made.id}) when it was first sent. Its secret was shown once, then, and cannot be shown " \
           "again. If it was not copied, revoke it on the tokens page and make another." in unescape(again.text)
    assert secret not in again.text and 'id="new-token"' not in again.text
    assert [e.action for e in keepers.site.directory.audit.entries(resource_id=made.id)[0]].count("create") == 3
    fresh = {**token_form(admin.get("/keepers/tokens").text), "label": "Jo (twice)", "role": "maintainer"}
    assert fresh["once"] != form["once"] and admin.post("/keepers/tokens", data=fresh).status_code == 200


def test_a_token_form_without_its_one_time_key_makes_nothing(keepers, admin):
    before = len(keepers.site.directory.tokens.all())
    page = admin.get("/keepers/tokens").text
    answer = admin.post("/keepers/tokens", data={"csrf": csrf_of(page), "label": "Kim", "role": "maintainer"})
    assert answer.status_code == 400 and "reload the page" in answer.text
    assert len(keepers.site.directory.tokens.all()) == before


@pytest.mark.parametrize(("page", "box", "limit", "said", "data"), [
    ("/keepers/organisations", "organisation_name", 200, "The organisation's name", {}),
    ("/keepers/tokens", "label", 100, "The label", {"role": "maintainer"}),
])
def test_an_organisations_name_and_a_tokens_label_have_their_limit_on_the_box(keepers, admin, page, box, limit,
                                                                                said, data):
    """Before, the store alone held these limits (2 to 200, 1 to 100), and one too long was answered with the store's
    words, not the count on the box as every other keepers' form says it. Now they have one home beside the record's
    (rehabmap.record), which the store, the API and these pages read: the box's hint says its limit and how it is
    counted, and a longer value (measured as kept, its runs of spaces made one) is refused against it, kept as typed,
    nothing made. The box has no maxlength: a browser counts that as typed, and would cut a paste short."""
    shown = admin.get(page).text
    assert re.search(rf'<input [^>]*name="{box}"', shown) and not re.search(rf'<input [^>]*name="{box}"[^>]*maxlength',
                                                                            shown)
    assert f"At most {limit} characters, a run of spaces or line breaks counting as one." in unescape(shown)
    form = token_form(shown) if box == "label" else {"csrf": csrf_of(shown)}
    before = (len(keepers.site.directory.tokens.all()), len(keepers.site.directory.organisations.all()))
    fits = "Calder  Trust " + "x" * (limit - 13)  # two spaces kept as one: limit characters as kept
    typed = "Calder Trust " + "x" * (limit - 12)
    refused = admin.post(page, data={**form, **data, box: typed})
    assert refused.status_code == 400
    assert (f'<a href="#{box}">{said} must be {limit} characters or fewer: it has {limit + 1}, a run of spaces or '
            'line breaks counting as one</a>') in unescape(
        refused.text)
    assert f'value="{typed}"' in refused.text
    assert (len(keepers.site.directory.tokens.all()), len(keepers.site.directory.organisations.all())) == before
    made = admin.post(page, data={**form, **data, box: fits})
    assert made.status_code in (200, 303), made.text
    kept = " ".join(fits.split())
    assert kept in ([t.name for t in keepers.site.directory.tokens.all()]
                    + [o.name for o in keepers.site.directory.organisations.all()]), "made, as kept"
