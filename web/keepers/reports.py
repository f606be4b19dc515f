""""Report a problem with this page": the public form (`web.links.report_problem_url`, no account, no
cookie), and the maintainers' queue where reports are resolved (`/keepers/problem-reports`, audited).

The public form is a plain page of the public site: it sets and reads no cookie, so it carries no CSRF
token either (a forged report is nothing its forger could not send themselves); the store's hourly limits
stop a flood (`rehabmap.maintain.reports`), and the site's per-address rate limit applies as everywhere.
Nothing about the sender is kept but what they type.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError
from rehabmap.maintain.edits import MAINTAINER_ROLES
from rehabmap.record import Service
from rehabmap.maintain.reports import MAX_CONTACT, MAX_NOTE, MAX_WHAT
from web.deps import get_state
from web.forms import Errors, Fields
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import (PATH, Keeper, KeepersRoute, Refusal, directory_of, form_errors, refusal_page, render,
                                 requires)
from web.links import report_problem_url
from web.render import page

public = APIRouter(route_class=KeepersRoute)  # for its refusals only: it has no session or cookie
router = APIRouter(route_class=KeepersRoute)
FORM = report_problem_url("").split("?")[0]
QUEUE = f"{PATH}/problem-reports"
SECTIONS.append(Section(QUEUE, "Problem reports", "What the public has reported wrong with a service's page, "
                        "the oldest first, to check and resolve.", frozenset(MAINTAINER_ROLES)))


def _service_or_404(request: Request, service_id: str) -> Service:
    service = get_state(request).backend.get(service_id) if service_id else None
    if service is None:
        raise Refusal(page(request, "pages/not_found.html", {"what": "That service"}, status=404, private=False))
    return service


@public.get(FORM)
def report_form(request: Request) -> HTMLResponse:
    service = _service_or_404(request, Fields.of_query(request).get("service"))
    return _form_page(request, service, {"what": "", "contact": ""}, Errors())


@public.post(FORM)
async def send_report(request: Request) -> Response:
    # every value whole, to the request layer's limit: the store refuses one too long against its box, saying its
    # length, and the page shows again all that was typed (before, the page cut each at 1,001 characters)
    form = await Fields.of_body(request, max_value=None, max_body=get_state(request).settings.max_body_bytes)
    service = _service_or_404(request, form.get("service"))
    values = {"what": form.get("what"), "contact": form.get("contact")}
    errors = Errors()
    try:
        await run_in_threadpool(directory_of(request).reports.add, service.id, values["what"], values["contact"])
    except DomainError as error:
        errors.add(error.field or "what", error.message)
        return _form_page(request, service, values, errors, status=error.status)
    return RedirectResponse(f"{FORM}/sent?" + urlencode({"service": service.id}), status_code=303)


@public.get(f"{FORM}/sent")
def report_sent(request: Request) -> HTMLResponse:
    service = _service_or_404(request, Fields.of_query(request).get("service"))
    return page(request, "keepers/report/sent.html", {"service": service})


def _form_page(request: Request, service: Service, values: dict[str, str], errors: Errors, *,
               status: int = 200) -> HTMLResponse:
    return page(request, "keepers/report/form.html",
                {"service": service, "values": values, "errors": errors, "max_what": MAX_WHAT,
                 "max_contact": MAX_CONTACT}, status=status)


# --- the maintainers' queue -----------------------------------------------------------------------------

@router.get(QUEUE)
def queue(request: Request, keeper: Keeper = requires(*MAINTAINER_ROLES)) -> HTMLResponse:
    return _queue_page(request, keeper, Errors(), resolved=Fields.of_query(request).get("resolved"))


def _queue_page(request: Request, keeper: Keeper, errors: Errors, *, resolved: str = "",
                notes: dict[int, str] | None = None, status: int = 200) -> HTMLResponse:
    """The open reports, each with its form; `errors` by input id (`note-<report id>`), `notes` what was typed in
    a note refused."""
    state = get_state(request)
    reports = directory_of(request).reports.open()
    names = {r.service_id: (s.name if (s := state.backend.get(r.service_id)) else None) for r in reports}
    return render(request, keeper, "keepers/report/queue.html",
                  {"reports": reports, "names": names, "resolved": resolved, "max_note": MAX_NOTE, "errors": errors,
                   "notes": notes or {}}, status=status)


@router.post(f"{QUEUE}/resolve")
async def resolve(request: Request, keeper: Keeper = requires(*MAINTAINER_ROLES)) -> Response:
    """A note too long is named on its report's box, with what was typed, as every keepers' form names its field
    (`form_errors`, by the store's limit); a report not there (resolved already, a page long open) is a page."""
    report, note = keeper.form.get("report"), keeper.form.get("note")
    report_id = int(report) if report.isdigit() else 0
    errors = Errors()
    for field, message in form_errors(keeper.form).items():  # the note is the form's one text
        errors.add(f"{field}-{report_id}", message)
    if errors:
        return _queue_page(request, keeper, errors, notes={report_id: note}, status=400)
    try:
        await run_in_threadpool(directory_of(request).reports.resolve, report_id, note, actor=keeper.principal.who)
    except DomainError as error:
        raise Refusal(refusal_page(request, keeper, "The report was not resolved", error,
                                   link=(QUEUE, "Back to the problem reports"))) from None
    return RedirectResponse(f"{QUEUE}?" + urlencode({"resolved": report}), status_code=303)
