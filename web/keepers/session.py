"""Who is signed in to the keepers' pages, the CSRF token of every form, and the keepers' layout.

The cookie holds a session secret (`rehabmap.maintain.sessions`): HttpOnly, SameSite=Strict, Secure when
the site is served over HTTPS (the configured public base URL says so, or the request came in over HTTPS as
uvicorn's trusted proxy headers report it; the Host header is never consulted), and scoped to `PATH`, so no
public or clinician page ever receives it. Its Max-Age is the session's absolute limit; the store decides
whether it is still good.

CSRF: a synchroniser token derived from the session secret (`HMAC(secret, ...)`), so it is bound to the
session, needs no storage and dies with it. Every non-GET request through `requires` has its form read and
its `csrf` field checked before the route runs; a route cannot forget. Forms shown before sign-in (the
sign-in forms) use a pre-session cookie instead, checked the same way (`visitor`).

A dependency that refuses (not signed in, wrong role, bad CSRF token) raises `Refusal`, which `KeepersRoute`
turns into its page; the router of every keepers' module must use `route_class=KeepersRoute`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError, tell_operator
from rehabmap.maintain.auth import Principal, Role
from rehabmap.maintain.sessions import Session
from web.deps import get_state
from web.forms import Errors, Fields
from web.keepers.navigation import sections_for
from web.keepers.words import (AS_KEPT, KEPT_AS, TEXT_LIMITS, TYPED_FIELDS, as_sent, field_name, field_value,
                               long_day, long_moment, review_state, said, with_code)
from web.render import PageRoute, page

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from rehabmap.maintain.store import Directory
    from rehabmap.state import AppState

PATH = "/keepers"
SESSION_COOKIE = "rm_keeper"
FORM_COOKIE = "rm_keeper_form"  # before sign-in: the sign-in forms' CSRF token is bound to it
FORM_COOKIE_SECONDS = 3600
SAFE_METHODS = frozenset({"GET", "HEAD"})
_CSRF_MESSAGE = b"rehabmap keepers csrf"
UPLOAD_MAX_BYTES = 48 * 1024  # within the app's request body limit (REHABMAP_MAX_BODY_BYTES, 64 KiB by default)


class Refusal(Exception):
    """Raised by a keepers' dependency or route to answer with `response` instead (see `KeepersRoute`)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class KeepersRoute(PageRoute):
    """The route class of every keepers' router: a `Refusal` becomes its response (and, as on every page, a 503
    domain error the page that says so)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def refusing(request: Request) -> Response:
            try:
                return await handler(request)
            except Refusal as refusal:
                return refusal.response

        return refusing


@dataclass(frozen=True)
class Upload:
    """A file sent with a form: the name it had on the sender's computer, and its bytes (at most
    `UPLOAD_MAX_BYTES`; `too_large` when it was longer, and the rest was not read)."""

    filename: str
    data: bytes
    too_large: bool


@dataclass(frozen=True)
class Keeper:
    """A signed-in person: their token's principal, the CSRF token for the forms on their page, and the
    form they POSTed (already checked; empty on a GET)."""

    principal: Principal
    csrf: str
    form: Fields
    secret: str  # the session's secret, for sign-out only
    files: dict[str, Upload] = field(default_factory=dict)  # a multipart form's files, by field name


@dataclass(frozen=True)
class Visitor:
    """Someone not signed in, on a sign-in form: the pre-session cookie's value (`fresh` when this reply
    must set it) and the form they POSTed, checked."""

    csrf: str
    form: Fields
    cookie: str
    fresh: bool


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_MESSAGE, hashlib.sha256).hexdigest()


def directory_of(request: Request) -> Directory:
    """The maintainers' store, or the page saying it is unavailable."""
    state: AppState = get_state(request)
    if state.directory is None:
        raise Refusal(message_page_plain(request, 503, "The keepers' pages are unavailable",
                                         "The directory's store could not be opened. Ask whoever runs this "
                                         "site to check that REHABMAP_HOME is writable."))
    return state.directory


def secure_cookies(request: Request) -> bool:
    public = get_state(request).settings.public_base_url
    return public.startswith("https://") if public else request.url.scheme == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, secure=secure_cookies(request), httponly=True,
                        samesite="strict")


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, secure=secure_cookies(request), httponly=True, samesite="strict")


async def _checked_form(request: Request, expected: str) -> tuple[Fields, dict[str, Upload]]:
    """The POSTed form and its files, if its CSRF token is `expected`; else the refusal page. Forms are
    urlencoded (`web.forms.Fields`), or multipart when they carry a file (read by python-multipart, FastAPI's
    own parser; its text fields are trimmed as `Fields` trims them). Every value is kept whole, never cut: one
    too long for its field is refused by the route (`form_errors`), with all that was typed shown again."""
    if request.method in SAFE_METHODS:
        return Fields([]), {}
    files: dict[str, Upload] = {}
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        pairs: list[tuple[str, str]] = []
        try:
            parts = await request.form(max_files=1, max_fields=50)
        except HTTPException:  # a malformed body, or more files or fields than any keepers' form has
            raise Refusal(message_page_plain(request, 400, "This form could not be read",
                                             "Go back, reload the page and try again.")) from None
        try:
            for name, value in parts.multi_items():
                if isinstance(value, str):
                    pairs.append((name, value))
                else:
                    data = await value.read(UPLOAD_MAX_BYTES + 1)
                    files[name] = Upload(value.filename or "", data[:UPLOAD_MAX_BYTES], len(data) > UPLOAD_MAX_BYTES)
        finally:
            await parts.close()  # the spooled files
        form = Fields(pairs, max_value=None)
    else:
        form = await Fields.of_body(request, max_value=None, max_body=get_state(request).settings.max_body_bytes)
        if not form.complete:  # (the request layer refuses such a body first)
            raise Refusal(message_page_plain(request, 413, "This form was too long to read",
                                             "Nothing was saved. Go back, shorten what you typed and try again."))
    if not hmac.compare_digest(form.get("csrf").encode(), expected.encode()):
        raise Refusal(message_page_plain(request, 403, "This form could not be sent",
                                         "It was out of date, or it came from another site. Go back, reload "
                                         "the page and try again."))
    return form, files


def form_errors(form: Fields, current: Mapping[str, object] | None = None) -> Errors:
    """Where every keepers' route's errors start: one for each value longer than its field may hold
    (`TYPED_FIELDS`), against its input, as the API and the command line would refuse it. The form keeps the value
    whole, so the page shows again everything typed. A value the form sends back as `current` holds it (the record
    it showed) is no change, however long (a feed's description), so it is never an error a person did not make."""
    errors = Errors()
    for name, length in form.too_long(TEXT_LIMITS, KEPT_AS).items():
        if current is None or form.get(name) != as_sent(name, current.get(name)):
            label, limit = TYPED_FIELDS[name]
            counted = f", {AS_KEPT}" if name in KEPT_AS else ""
            errors.add(name, f"{label} must be {limit:,} characters or fewer: it has {length:,}{counted}")
    return errors


def requires(*roles: Role) -> Any:
    """`keeper: Keeper = requires(Role.maintainer, Role.admin)`: the signed-in person, if their role is one of
    `roles` (none: any role); else the sign-in page (not signed in) or a 403 page (another role). On a POST
    their form is read and its CSRF token checked first (`keeper.form`)."""

    async def signed_in(request: Request) -> Keeper:
        directory = directory_of(request)
        session: Session | None = await run_in_threadpool(directory.sessions.check,
                                                          request.cookies.get(SESSION_COOKIE, ""))
        if session is None:
            target = request.url.path + (f"?{request.url.query}" if request.method in SAFE_METHODS
                                         and request.url.query else "")
            response = RedirectResponse(f"{PATH}/sign-in?" + urlencode({"next": target}), status_code=303)
            if SESSION_COOKIE in request.cookies:
                clear_cookie(response, request, SESSION_COOKIE)
            raise Refusal(response)
        keeper = Keeper(session.principal, csrf_token(session.secret), Fields([]), session.secret)
        if roles and keeper.principal.role not in roles:
            allowed = " or ".join(r.value for r in roles)
            raise Refusal(message_page(request, keeper, 403, "You cannot use this page",
                                       f"It is for {allowed} tokens; you signed in with a "
                                       f"{keeper.principal.role.value} token."))
        form, files = await _checked_form(request, keeper.csrf)
        return replace(keeper, form=form, files=files)

    return Depends(signed_in)


async def _visitor(request: Request) -> Visitor:
    cookie = request.cookies.get(FORM_COOKIE, "")
    if request.method not in SAFE_METHODS and not cookie:
        raise Refusal(message_page_plain(request, 403, "This form could not be sent",
                                         "Your browser did not send it back with the cookie this site set "
                                         "for it. Go back, reload the page and try again."))
    fresh = not cookie
    cookie = cookie or secrets.token_urlsafe(32)
    csrf = csrf_token(cookie)
    form, _ = await _checked_form(request, csrf)
    return Visitor(csrf, form, cookie, fresh)


def visitor() -> Any:
    """`who: Visitor = visitor()`: for the forms shown before sign-in, CSRF-checked like `requires`."""
    return Depends(_visitor)


def render(request: Request, who: Keeper | Visitor, template: str, context: dict[str, Any] | None = None, *,
           status: int = 200) -> HTMLResponse:
    """A page in the keepers' layout (`keepers/layout.html`): never cached; `keeper` (the principal, or None),
    `keeper_sections` (their pages), `csrf_input` (the hidden field every form carries), `source_title` (a
    source as a person reads it, as the public pages name it) and the words of `web.keepers.words` (fields, values
    and times as a maintainer reads them, `text_limits`, the most each text box's field keeps, which its hint says,
    and `as_kept`, how a text kept otherwise than typed is counted) are in its context."""
    keeper = who.principal if isinstance(who, Keeper) else None
    values = {"keeper": keeper, "keeper_sections": sections_for(keeper.role) if keeper else [],
              "csrf_input": Markup('<input type="hidden" name="csrf" value="{}">').format(who.csrf),
              "source_title": get_state(request).source_title, "long_moment": long_moment, "long_day": long_day,
              "field_name": field_name, "field_value": field_value, "review_state": review_state,
              "with_code": with_code, "text_limits": TEXT_LIMITS, "as_kept": AS_KEPT, **(context or {})}
    response = page(request, template, values, status=status, private=True)
    if isinstance(who, Visitor) and who.fresh:
        set_cookie(response, request, FORM_COOKIE, who.cookie, FORM_COOKIE_SECONDS)
    return response


def page_number(request: Request, key: str = "page") -> int:
    """The page of a long list a keepers' page was asked for (`?page=`, from 1, or the query's `key`), as its Previous
    and Next links (the `pagination` macro) ask: anything else, a hand-typed "0" or "two", is the first page, not an
    error."""
    text = request.query_params.get(key, "")[:5]
    return int(text) if text.isdigit() and int(text) >= 1 else 1


def message_page(request: Request, keeper: Keeper, status: int, title: str, message: str, *,
                 link: tuple[str, str] | None = None) -> HTMLResponse:
    """A page that says one thing (a refusal, say) in the keepers' layout; `link` (its path and words) is where
    to go next, such as the page the refusal is about."""
    return render(request, keeper, "keepers/message.html",
                  {"title": title, "message": message, **({"link": link} if link else {})}, status=status)


def refusal_page(request: Request, keeper: Keeper, title: str, error: DomainError, *,
                 link: tuple[str, str] | None = None) -> HTMLResponse:
    """A domain error's own page (`message_page`), at its status, in the keepers' words (`said`): the one way the
    pages say a refusal, so what a keeper can do about it (its remedy) is never dropped for the bare message; one
    about a file of the server's is logged for the operator with its place (`tell_operator`), which the page never
    names."""
    tell_operator(error)
    return message_page(request, keeper, error.status, title, said(error), link=link)


def message_page_plain(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """A refusal before anyone is known: no form, so no CSRF token and no cookie."""
    return page(request, "keepers/message.html", {"keeper": None, "keeper_sections": [], "csrf_input": "",
                                                  "title": title, "message": message}, status=status, private=True)
