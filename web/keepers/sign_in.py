"""Signing in (with a token, or a one-time link from `rehabmap tokens sign-in-link`), signing out, and the
keepers' home page. A new session is made at every sign-in, never carried over from before it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError, tell_operator
from rehabmap.maintain.sessions import Session
from web.forms import Errors, Fields
from web.keepers.session import (
    FORM_COOKIE,
    PATH,
    SESSION_COOKIE,
    Keeper,
    KeepersRoute,
    Visitor,
    clear_cookie,
    directory_of,
    form_errors,
    render,
    requires,
    set_cookie,
    visitor,
)
from web.keepers.words import said

router = APIRouter(route_class=KeepersRoute)
MAX_CODE = 100


def safe_next(target: str) -> str:
    """Where to go after signing in: a keepers' page on this site, never anywhere else."""
    if (target == PATH or target.startswith((f"{PATH}/", f"{PATH}?"))) and "//" not in target and "\\" not in target:
        return target
    return PATH


@router.get(PATH)
def home(request: Request, keeper: Keeper = requires()) -> HTMLResponse:
    return render(request, keeper, "keepers/home.html")


@router.get(f"{PATH}/sign-in")
def sign_in_form(request: Request, who: Visitor = visitor()) -> HTMLResponse:
    query = Fields.of_query(request)
    notice = "You have signed out." if query.get("signed_out") else (
        "Sign in to see that page. Sessions end after a time without use." if query.get("next") else "")
    return render(request, who, "keepers/sign_in.html",
                  {"errors": Errors(), "next": safe_next(query.get("next")), "notice": notice})


@router.post(f"{PATH}/sign-in")
async def sign_in(request: Request, who: Visitor = visitor()) -> Response:
    directory = directory_of(request)
    errors = form_errors(who.form)
    token = who.form.get("token")
    if not token:
        errors.add("token", "Enter your token")
    elif not errors:
        try:
            principal = await run_in_threadpool(directory.tokens.authenticate, f"Bearer {token}")
        except DomainError as error:  # the token key file lost: said on the form, its place logged for the operator
            tell_operator(error)
            errors.add("token", said(error))
    if errors:
        return render(request, who, "keepers/sign_in.html",
                      {"errors": errors, "next": safe_next(who.form.get("next")), "notice": ""}, status=400)
    session = await run_in_threadpool(directory.sessions.start, principal)
    return signed_in(request, session, safe_next(who.form.get("next")))


@router.get(PATH + "/sign-in/link/{code}")
def sign_in_link_form(request: Request, code: str, who: Visitor = visitor()) -> HTMLResponse:
    return render(request, who, "keepers/sign_in_link.html", {"failed": False})


@router.post(PATH + "/sign-in/link/{code}")
async def sign_in_link(request: Request, code: str, who: Visitor = visitor()) -> Response:
    directory = directory_of(request)
    session = await run_in_threadpool(directory.sessions.redeem_link, code) if len(code) <= MAX_CODE else None
    if session is None:
        return render(request, who, "keepers/sign_in_link.html",
                      {"failed": True, "link_minutes": int(directory.sessions.policy.link.total_seconds() // 60)},
                      status=400)
    return signed_in(request, session, PATH)


def signed_in(request: Request, session: Session, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    max_age = int(directory_of(request).sessions.policy.absolute.total_seconds())
    set_cookie(response, request, SESSION_COOKIE, session.secret, max_age)
    clear_cookie(response, request, FORM_COOKIE)
    return response


@router.post(f"{PATH}/sign-out")
async def sign_out(request: Request, keeper: Keeper = requires()) -> Response:
    await run_in_threadpool(directory_of(request).sessions.end, keeper.secret)
    response = RedirectResponse(f"{PATH}/sign-in?signed_out=1", status_code=303)
    clear_cookie(response, request, SESSION_COOKIE)
    return response
