"""Admins' pages: tokens (made with a role, organisation and expiry, shown once; revoked, which ends their
sessions at once; a one-time sign-in link for one) and provider organisations (added; services linked and
unlinked). Every change is the store's own call, audited under the admin's token, as `rehabmap tokens` and
`rehabmap orgs` make it.

The form that makes a token carries a one-time key, kept with the token it made: a reload of the "token made"
page (the browser sends the form again) or a double submit makes no second token, but a page saying the first
was made and that its secret, shown once, cannot be shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError, TokenAlreadyMade
from rehabmap.maintain.auth import Role
from rehabmap.maintain.store import Directory
from rehabmap.random_keys import is_key, new_key
from web.deps import get_state
from web.forms import Errors, Fields
from web.keepers.maintainer_review import held
from web.keepers.maintainer_services import editor_of
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import (PATH, Keeper, KeepersRoute, Refusal, directory_of, form_errors, message_page,
                                 refusal_page, render, requires)
from web.keepers.words import said

router = APIRouter(route_class=KeepersRoute)
TOKENS = f"{PATH}/tokens"
ORGANISATIONS = f"{PATH}/organisations"
ADMIN = frozenset({Role.admin})
SECTIONS.append(Section(TOKENS, "Tokens", "Make tokens for providers, maintainers and admins, send sign-in "
                        "links, and revoke tokens (their sessions end at once).", ADMIN))
SECTIONS.append(Section(ORGANISATIONS, "Organisations", "Add provider organisations and link the services "
                        "each may update.", ADMIN))
ROLE_CHOICES = [{"value": "provider", "text": "Provider", "hint": "Its organisation's services: vacancy, "
                 "referrals, contact details"},
                {"value": "maintainer", "text": "Maintainer", "hint": "Every service"},
                {"value": "admin", "text": "Admin", "hint": "Everything, including tokens and organisations"}]
# The store's field names, as the inputs on these pages are called.
_INPUT = {"name": "label", "organisation": "organisation", "expires": "expires", "role": "role"}


def _refused(request: Request, keeper: Keeper, error: DomainError) -> Refusal:
    """A refusal of something asked of a token (from the tokens page), with the way back to it."""
    return Refusal(message_page(request, keeper, error.status, "That was not done", said(error),
                                link=(TOKENS, "Back to the tokens")))


# --- tokens ---------------------------------------------------------------------------------------------

@router.get(TOKENS)
def tokens_page(request: Request, keeper: Keeper = requires(Role.admin)) -> HTMLResponse:
    query = Fields.of_query(request)
    return _tokens_page(request, keeper, Errors(), {"once": new_key()}, notice=query.get("revoked"))


def _tokens_page(request: Request, keeper: Keeper, errors: Errors, typed: dict[str, str], *, notice: str = "",
                 status: int = 200) -> HTMLResponse:
    """The tokens and the form that makes one; `typed["once"]` is the form's one-time key (a new one on each
    GET; the one sent, when the form comes back with an error and nothing was made)."""
    directory = directory_of(request)
    now = datetime.now(timezone.utc)
    rows = [(t, t.expired(now), directory.sessions.live_for(t.id)) for t in reversed(directory.tokens.all())]
    policy = directory.tokens.policy
    return render(request, keeper, "keepers/admin/tokens.html",
                  {"rows": rows, "errors": errors, "typed": typed, "revoked": notice, "roles": ROLE_CHOICES,
                   "organisations": [("", "None (not a provider)")]
                   + [(o.name, o.name) for o in directory.organisations.all()],
                   "default_days": policy.expiry_days, "max_days": policy.max_expiry_days}, status=status)


@router.post(TOKENS)
async def make_token(request: Request, keeper: Keeper = requires(Role.admin)) -> Response:
    form = keeper.form
    typed = {k: form.get(k) for k in ("label", "role", "organisation", "expires", "once")}
    if not is_key(typed["once"]):
        return message_page(request, keeper, 400, "This form could not be sent",
                            "It was out of date: no token was made. Go back, reload the page and try again.")
    directory = directory_of(request)
    errors = form_errors(form)
    if not typed["label"]:
        errors.add("label", "Enter a label saying whose token it is")
    if typed["role"] not in {r.value for r in Role}:
        errors.add("role", "Choose what the token may do")
    days = typed["expires"]
    if days and not (days.isdigit() and 1 <= int(days) <= directory.tokens.policy.max_expiry_days):
        errors.add("expires", f"Days until it expires must be a whole number from 1 to "
                              f"{directory.tokens.policy.max_expiry_days}")
    if not errors:
        expires_at = datetime.now(timezone.utc) + timedelta(days=int(days)) if days else None
        try:
            info, token = await run_in_threadpool(lambda: directory.tokens.create(
                typed["role"], typed["label"], organisation=typed["organisation"] or None, expires_at=expires_at,
                actor=keeper.principal.who, form_key=typed["once"]))
            return render(request, keeper, "keepers/admin/token_made.html", {"info": info, "token": token})
        except TokenAlreadyMade as made:
            return refusal_page(request, keeper, "This token was made already", made)
        except DomainError as error:
            errors.add(_INPUT.get(error.field or "", "label"), said(error))
    return _tokens_page(request, keeper, errors, typed, status=400)


@router.post(f"{TOKENS}/revoke")
async def revoke_token(request: Request, keeper: Keeper = requires(Role.admin)) -> Response:
    token_id = keeper.form.get("token")
    try:
        await run_in_threadpool(lambda: directory_of(request).tokens.revoke(token_id, actor=keeper.principal.who))
    except DomainError as error:
        raise _refused(request, keeper, error) from None
    return RedirectResponse(f"{TOKENS}?" + urlencode({"revoked": token_id}), status_code=303)


@router.post(f"{TOKENS}/sign-in-link")
async def sign_in_link(request: Request, keeper: Keeper = requires(Role.admin)) -> HTMLResponse:
    token_id = keeper.form.get("token")
    try:
        code, expires = await run_in_threadpool(directory_of(request).sessions.issue_link, token_id)
    except DomainError as error:
        raise _refused(request, keeper, error) from None
    settings = get_state(request).settings
    link = settings.public_url(f"{PATH}/sign-in/link/{code}")
    name = next(t.name for t in directory_of(request).tokens.all() if t.id == token_id)
    return render(request, keeper, "keepers/admin/link_made.html",
                  {"link": link, "absolute": bool(settings.public_base_url), "name": name,
                   "expires": expires})


# --- organisations --------------------------------------------------------------------------------------

@router.get(ORGANISATIONS)
def organisations_page(request: Request, keeper: Keeper = requires(Role.admin)) -> HTMLResponse:
    return _organisations_page(request, keeper, Errors(), {})


def _organisations_page(request: Request, keeper: Keeper, errors: Errors, typed: dict[str, str], *,
                        status: int = 200) -> HTMLResponse:
    directory, backend = directory_of(request), get_state(request).backend
    organisations = directory.organisations.all()
    names = {sid: (s.name if (s := backend.get(sid)) else f"{sid} (not in the directory)")
             for o in organisations for sid in o.service_ids}
    return render(request, keeper, "keepers/admin/organisations.html",
                  {"organisations": organisations, "names": names, "errors": errors, "typed": typed,
                   "choices": [(o.name, o.name) for o in organisations]}, status=status)


@router.post(ORGANISATIONS)
async def add_organisation(request: Request, keeper: Keeper = requires(Role.admin)) -> Response:
    name = keeper.form.get("organisation_name")
    return await _organisation_change(request, keeper, {"organisation_name": name}, "organisation_name",
                                      lambda d: d.organisations.add(name, actor=keeper.principal.who))


@router.post(f"{ORGANISATIONS}/link")
async def link_service(request: Request, keeper: Keeper = requires(Role.admin)) -> Response:
    organisation, service_id = keeper.form.get("organisation"), keeper.form.get("service")
    typed = {"organisation": organisation, "service": service_id}
    if editor_of(request)[1].record(service_id) is None:  # a service made here and kept, which the index lacks, too
        errors = form_errors(keeper.form)
        refused = held(request, service_id) if service_id else None
        errors.add("service", said(refused) if refused else
                   f"There is no service with id '{service_id}'" if service_id else
                   "Enter the id of the service to link, like sample:leeds-recovery-college")
        return _organisations_page(request, keeper, errors, typed, status=400)
    return await _organisation_change(
        request, keeper, typed, "organisation",
        lambda d: d.organisations.link(organisation, [service_id], actor=keeper.principal.who))


@router.post(f"{ORGANISATIONS}/unlink")
async def unlink_service(request: Request, keeper: Keeper = requires(Role.admin)) -> Response:
    organisation, service_id = keeper.form.get("organisation"), keeper.form.get("service")
    return await _organisation_change(
        request, keeper, {}, "organisation",
        lambda d: d.organisations.unlink(organisation, [service_id], actor=keeper.principal.who))


async def _organisation_change(request: Request, keeper: Keeper, typed: dict[str, str], field: str,
                               change: Callable[[Directory], object]) -> Response:
    directory: Directory = directory_of(request)
    errors = form_errors(keeper.form)
    if not errors:
        try:
            await run_in_threadpool(change, directory)
            return RedirectResponse(ORGANISATIONS, status_code=303)
        except DomainError as error:
            errors.add(field, said(error))
    return _organisations_page(request, keeper, errors, typed, status=400)
