"""Signing in to the keepers' pages over HTTP (the app in-process, cookies kept per path as a browser keeps
them): with a token or a one-time link from `rehabmap tokens sign-in-link`, the cookie's attributes, CSRF
on every form (a cross-site POST is refused), sign-out, a role's pages, and the session dying with its
token."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from rehabmap.maintain.auth import Role
from tests.keepers.conftest import Keepers, csrf_of, make_keepers
from tests.maintain.conftest import cli
from web.keepers.session import Keeper, KeepersRoute, render, requires
from web.keepers.sign_in import safe_next


def cookie_of(response, name: str):
    cookies = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    return cookies[name]


def add_probe_pages(keepers: Keepers) -> None:
    """Two pages the foundation's interface is tested through: one for admins only, one form for anyone."""
    router = APIRouter(route_class=KeepersRoute)

    @router.get("/keepers/probe/admin")
    def admin_page(request: Request, keeper: Keeper = requires(Role.admin)) -> HTMLResponse:
        return render(request, keeper, "keepers/message.html",
                      {"title": "Admins only", "message": keeper.principal.who})

    @router.post("/keepers/probe/form")
    def form(keeper: Keeper = requires()) -> Response:
        return PlainTextResponse(f"got {keeper.form.get('value')} from {keeper.principal.role.value}")

    keepers.app.include_router(router)  # type: ignore[attr-defined]


def test_signing_in_with_a_token_gives_a_strict_http_only_cookie_for_the_keepers_pages_only(keepers):
    client = keepers.client()
    assert client.get("/keepers").headers["location"] == "/keepers/sign-in?next=%2Fkeepers"
    form = client.get("/keepers/sign-in?next=/keepers")
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    pre = cookie_of(form, "rm_keeper_form")
    assert pre["path"] == "/keepers" and pre["httponly"] and pre["samesite"] == "strict" and not pre["secure"]
    answer = client.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": keepers.site.tokens["admin"],
                                                    "next": "/keepers"})
    assert answer.status_code == 303 and answer.headers["location"] == "/keepers"
    session = cookie_of(answer, "rm_keeper")
    assert session["path"] == "/keepers" and session["httponly"] and session["samesite"] == "strict"
    assert int(session["max-age"]) == 8 * 3600
    assert keepers.site.tokens["admin"] not in session.value
    assert cookie_of(answer, "rm_keeper_form")["max-age"] == "0"  # the pre-session cookie goes
    home = client.get("/keepers")
    assert home.status_code == 200 and "admin of the tests" in home.text and "Sign out" in home.text
    assert 'name="robots" content="noindex, nofollow"' in home.text


def test_cookies_are_secure_when_the_public_address_is_https(keepers):
    secure = make_keepers(keepers.site, public_base_url="https://rehabmap.example.org")
    client = secure.client("https://testserver")  # a Secure cookie is sent back over HTTPS only
    form = client.get("/keepers/sign-in")
    assert cookie_of(form, "rm_keeper_form")["secure"]
    answer = client.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": keepers.site.tokens["admin"]})
    assert cookie_of(answer, "rm_keeper")["secure"]


def test_a_wrong_token_is_named_in_the_error_summary_and_gives_no_session(keepers):
    client = keepers.client()
    csrf = csrf_of(client.get("/keepers/sign-in").text)
    for token, message in [("", "Enter your token"),
                           ("rmk_000000000000_" + "a" * 43, "The token is not valid"),
                           ("hello", "is not a rehabmap token")]:
        answer = client.post("/keepers/sign-in", data={"csrf": csrf, "token": token})
        assert answer.status_code == 400 and message in answer.text
        assert 'href="#token"' in answer.text and "rm_keeper=" not in answer.headers.get("set-cookie", "")
    keepers.site.directory.tokens.revoke(keepers.site.token_ids["maintainer"], actor="test")
    answer = client.post("/keepers/sign-in", data={"csrf": csrf, "token": keepers.site.tokens["maintainer"]})
    assert answer.status_code == 400 and "The token was revoked" in answer.text


def test_a_form_without_its_csrf_token_or_from_another_site_is_refused(keepers):
    add_probe_pages(keepers)
    client = keepers.client()
    keepers.sign_in(client, "provider_a")
    csrf = csrf_of(client.get("/keepers").text)
    assert client.post("/keepers/probe/form", data={"csrf": csrf, "value": "x"}).text == "got x from provider"
    assert client.post("/keepers/probe/form", data={"value": "x"}).status_code == 403
    assert client.post("/keepers/probe/form", data={"csrf": "0" * 64, "value": "x"}).status_code == 403
    # Another session's token is no good here either.
    other = keepers.client()
    keepers.sign_in(other, "provider_a")
    refused = client.post("/keepers/probe/form", data={"csrf": csrf_of(other.get("/keepers").text), "value": "x"})
    assert refused.status_code == 403 and "came from another site" in refused.text
    # A cross-site page's POST: the browser sends no SameSite=Strict cookie, so nobody is signed in.
    cross = keepers.client().post("/keepers/probe/form", data={"csrf": csrf, "value": "x"},
                                  headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 303 and cross.headers["location"].startswith("/keepers/sign-in")
    # Nor can another site sign someone in: the sign-in form needs its own cookie and token.
    assert keepers.client().post("/keepers/sign-in", data={"csrf": csrf,
                                                           "token": keepers.site.tokens["admin"]}).status_code == 403


def test_a_page_for_one_role_refuses_another(keepers):
    add_probe_pages(keepers)
    provider = keepers.client()
    keepers.sign_in(provider, "provider_b")
    refused = provider.get("/keepers/probe/admin")
    assert refused.status_code == 403 and "It is for admin tokens" in refused.text
    admin = keepers.client()
    keepers.sign_in(admin, "admin")
    assert admin.get("/keepers/probe/admin").status_code == 200


def test_signing_out_ends_the_session_even_for_a_kept_cookie(keepers):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    kept = client.cookies.get("rm_keeper", path="/keepers")
    out = client.post("/keepers/sign-out", data={"csrf": csrf_of(client.get("/keepers").text)})
    assert out.status_code == 303 and out.headers["location"] == "/keepers/sign-in?signed_out=1"
    assert "You have signed out" in client.get(out.headers["location"]).text
    replay = keepers.client()
    replay.cookies.set("rm_keeper", kept, path="/keepers")
    assert replay.get("/keepers").status_code == 303


def test_revoking_the_token_ends_its_session_on_the_next_request(keepers):
    client = keepers.client()
    keepers.sign_in(client, "provider_a")
    assert client.get("/keepers").status_code == 200
    keepers.site.directory.tokens.revoke(keepers.site.token_ids["provider_a"], actor="test")
    gone = client.get("/keepers")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/keepers/sign-in")
    assert cookie_of(gone, "rm_keeper")["max-age"] == "0"


def test_a_session_idle_too_long_sends_the_browser_to_sign_in_and_back(keepers):
    client = keepers.client()
    keepers.sign_in(client, "admin")
    keepers.clock.advance(minutes=31)
    gone = client.get("/keepers?x=1")
    assert gone.headers["location"] == "/keepers/sign-in?next=%2Fkeepers%3Fx%3D1"
    form = client.get(gone.headers["location"])
    assert 'name="next" value="/keepers?x=1"' in form.text
    back = client.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": keepers.site.tokens["admin"],
                                                  "next": "/keepers?x=1"})
    assert back.headers["location"] == "/keepers?x=1"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/keepers", "/find", "/keepers//evil",
                                    "/keepersx", "/keepers\\..\\x", ""])
def test_after_sign_in_the_browser_goes_to_a_keepers_page_only(target):
    assert safe_next(target) == "/keepers"


def test_a_sign_in_link_from_the_command_signs_in_once(keepers):
    made = cli(keepers.site, "tokens", "sign-in-link", keepers.site.token_ids["maintainer"],
               REHABMAP_PUBLIC_BASE_URL="https://rehabmap.example.org")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith("https://rehabmap.example.org/keepers/sign-in/link/") and "working until" in made.stderr
    path = link.removeprefix("https://rehabmap.example.org")
    client = keepers.client()
    page = client.get(path)
    assert page.status_code == 200 and "Continue to sign in" in page.text
    answer = client.post(path, data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/keepers"
    assert "maintainer of the tests" in client.get("/keepers").text
    again = keepers.client()
    again_page = again.get(path)
    used = again.post(path, data={"csrf": csrf_of(again_page.text)})
    assert used.status_code == 400 and "This sign-in link does not work" in used.text
    assert "rm_keeper=" not in used.headers.get("set-cookie", "")


def test_a_lost_token_key_is_told_to_a_keeper_as_the_operators_to_mend_not_a_command_to_run(keepers, caplog):
    """The token key file gone (a new server: nothing of it in memory), signing in was refused with "run
    'rehabmap tokens new-key'", a command a keeper on a web page has no way to run. The operator's log names the
    file, once (before, nothing was logged); the page never does."""
    key_file = keepers.site.home / "token.key"
    key_file.unlink()
    client = make_keepers(keepers.site).client()
    form = client.get("/keepers/sign-in")
    with caplog.at_level("ERROR", logger="rehabmap.api"):
        refused = client.post("/keepers/sign-in", data={"csrf": csrf_of(form.text),
                                                        "token": keepers.site.tokens["maintainer"]})
    assert caplog.messages == ["The token key file token.key is missing, so no token made with it can be checked. "
                               f"({key_file})"] and str(key_file) not in refused.text
    assert refused.status_code == 400 and (
        '<a href="#token">The token key file token.key is missing, so no token made with it can be checked. Whoever '
        "runs rehabmap here must restore it from its backup or make a new key; until then no one can sign in with a "
        "token.</a>") in refused.text


def test_the_command_refuses_a_link_for_a_revoked_token_in_one_line(keepers):
    keepers.site.directory.tokens.revoke(keepers.site.token_ids["provider_b"], actor="test")
    made = cli(keepers.site, "tokens", "sign-in-link", keepers.site.token_ids["provider_b"])
    assert made.returncode == 2 and made.stdout == ""
    assert made.stderr == (f"error: No live token has the id '{keepers.site.token_ids['provider_b']}': a revoked or "
                           "expired token gets no sign-in link. 'rehabmap tokens list' shows them.\n")
