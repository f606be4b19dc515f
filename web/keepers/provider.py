"""A provider's pages: "my services", each with its vacancy and referrals changed in one step, "details still
correct" (verify), and the contact details a provider may change (`rehabmap.maintain.auth.PROVIDER_FIELDS`).

Every write is the maintainers' API's own library call (`rehabmap.maintain.edits.Editor`), so who may
change what is decided there: another organisation's service is refused, audited nowhere, written nowhere.
The service is named in the form (a hidden field), never trusted because of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DirectoryUnavailable, DomainError, InvalidEdit
from rehabmap.maintain.auth import Role
from rehabmap.maintain.edits import Editor
from rehabmap.maintain.freshness import SourceConfirmation, source_confirmations
from rehabmap.maintain.retirement import Retirement, retirement
from rehabmap.record import Service, contact_problem, given_text
from web.deps import get_state
from web.forms import Errors, Fields
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import PATH, Keeper, KeepersRoute, Refusal, form_errors, refusal_page, render, requires
from web.keepers.words import as_sent, said
from web.present import CAPACITY_WORDS, capacity_text, long_date

router = APIRouter(route_class=KeepersRoute)
MY_SERVICES = f"{PATH}/my-services"
SECTIONS.append(Section(MY_SERVICES, "My services",
                        "Say whether each of your services has a vacancy and is taking referrals, confirm its "
                        "details are still correct, and correct its contact details.", frozenset({Role.provider})))
CAPACITY_CHOICES = [{"value": value, "text": text} for value, text in CAPACITY_WORDS.items()]
YES_NO = [{"value": "yes", "text": "Yes"}, {"value": "no", "text": "No"}]
CONTACT_FIELDS = {"phone": "Phone", "email": "Email", "website": "Website"}
DETAIL_FIELDS = {**CONTACT_FIELDS, "referral_route": "How to refer"}


@dataclass(frozen=True)
class Card:
    """One of the provider's services as its form shows it (`n` makes its inputs' ids unique)."""

    n: int
    service: Service
    vacancy: str
    capacity: str
    accepting: str
    listings: tuple[SourceConfirmation, ...]  # its sources' listings, as the service's own page shows them
    # Taken off the list (when and why, where the log says): before, its card looked like any other, and saving
    # its vacancy said "Searches show it now" of a service no search shows.
    retired: Retirement | None = None


def _editor(request: Request) -> Editor:
    editor = get_state(request).editor
    if editor is None:
        raise DirectoryUnavailable("The directory's store is not open on this server.")
    return editor


def _cards(request: Request, keeper: Keeper, today: date) -> list[Card]:
    state = get_state(request)
    assert state.directory is not None and keeper.principal.organisation_id is not None
    services = [s for s in (state.backend.get(i) for i in
                            state.directory.organisations.owned_by(keeper.principal.organisation_id)) if s]
    listings = source_confirmations(state.directory, services, state.source_title)
    # A report past the freshness window is not offered again as the answer: the provider says it afresh.
    return [Card(n, s, capacity_text(s, today), s.capacity_now(today) or "",
                 "" if s.accepting_referrals is None else "yes" if s.accepting_referrals else "no",
                 listings.get(s.id, ()), retirement(state.directory, s))
            for n, s in enumerate(sorted(services, key=lambda s: s.name.lower()), start=1)]


def _refused(request: Request, keeper: Keeper, error: DomainError) -> Refusal:
    return Refusal(refusal_page(request, keeper, "This change was not made", error))


@router.get(MY_SERVICES)
def my_services(request: Request, keeper: Keeper = requires(Role.provider)) -> HTMLResponse:
    saved = Fields.of_query(request).get("saved")
    return _my_services_page(request, keeper, Errors(), get_state(request).today(), saved=saved)


def _my_services_page(request: Request, keeper: Keeper, errors: Errors, today: date, *, saved: str = "",
                      typed: Card | None = None, status: int = 200) -> HTMLResponse:
    cards = [typed if typed and typed.service.id == c.service.id else c for c in _cards(request, keeper, today)]
    saved_card = next((c for c in cards if c.service.id == saved), None)
    return render(request, keeper, "keepers/provider/my_services.html",
                  {"cards": cards, "errors": errors, "saved": saved_card, "capacity_choices": CAPACITY_CHOICES,
                   "yes_no": YES_NO, "long_date": long_date, "today": today}, status=status)


@router.post(f"{MY_SERVICES}/update")
async def update_capacity(request: Request, keeper: Keeper = requires(Role.provider)) -> Response:
    """Vacancy and referrals in one step; the vacancy is reported as of today (the editor stamps it)."""
    form = keeper.form
    service_id = form.get("service")
    stamp, today = get_state(request).days()  # one reading for the cards read, the page or the report written
    card = next((c for c in _cards(request, keeper, today) if c.service.id == service_id), None)
    if card is None:
        return await _write(request, keeper, service_id, {}, stamp)  # not theirs, or gone: the editor says which
    errors = form_errors(form)
    capacity, accepting = form.get("capacity"), form.get("accepting")
    if capacity not in CAPACITY_WORDS:
        errors.add(f"capacity-{card.n}", f"Choose whether {card.service.name} has a vacancy")
    if accepting not in ("yes", "no"):
        errors.add(f"accepting-{card.n}", f"Choose whether {card.service.name} is taking referrals")
    if errors:
        typed = replace(card, capacity=capacity, accepting=accepting)
        return _my_services_page(request, keeper, errors, today, typed=typed, status=400)
    return await _write(request, keeper, service_id, {"capacity": capacity, "accepting_referrals": accepting == "yes"},
                        stamp)


@router.post(f"{MY_SERVICES}/verify")
async def verify(request: Request, keeper: Keeper = requires(Role.provider)) -> Response:
    """"Details still correct": the service's last verified date becomes today."""
    service_id = keeper.form.get("service")
    try:
        await run_in_threadpool(_editor(request).verify, keeper.principal, service_id, get_state(request).days()[0])
    except DomainError as error:
        raise _refused(request, keeper, error) from None
    return _saved(service_id)


async def _write(request: Request, keeper: Keeper, service_id: str, fields: dict, stamp: date) -> Response:
    try:
        await run_in_threadpool(_editor(request).update, keeper.principal, service_id, fields, stamp)
    except DomainError as error:
        raise _refused(request, keeper, error) from None
    return _saved(service_id)


def _saved(service_id: str) -> RedirectResponse:
    return RedirectResponse(f"{MY_SERVICES}?" + urlencode({"saved": service_id}), status_code=303)


# --- contact details ------------------------------------------------------------------------------------

@router.get(f"{MY_SERVICES}/details")
def details_form(request: Request, keeper: Keeper = requires(Role.provider)) -> HTMLResponse:
    service = _editable(request, keeper, Fields.of_query(request).get("service"))
    return _details_page(request, keeper, service, _details_of(service), Errors())


@router.post(f"{MY_SERVICES}/details")
async def save_details(request: Request, keeper: Keeper = requires(Role.provider)) -> Response:
    """Only what the provider changed is checked and written: a value sent back as the record holds it (a "How to
    refer" a maintainer wrote longer than this form's box, a phone an import kept) is left alone, never refused."""
    service = _editable(request, keeper, keeper.form.get("service"))
    current = _details_of(service)
    values = {f: keeper.form.get(f) for f in DETAIL_FIELDS}
    changed = {f: v for f, v in values.items() if v != as_sent(f, current[f])}
    errors = form_errors(keeper.form, current)
    for field, label in CONTACT_FIELDS.items():
        if changed.get(field) and (problem := contact_problem(field, changed[field])):
            errors.add(field, f"{label}: {problem}")
    if not errors:
        try:
            await run_in_threadpool(_editor(request).update, keeper.principal, service.id,
                                    {f: given_text(f, v) for f, v in changed.items()}, get_state(request).days()[0])
            return _saved(service.id)
        except InvalidEdit as error:
            errors.add(error.field if error.field in DETAIL_FIELDS else "phone", said(error))
        except DomainError as error:
            raise _refused(request, keeper, error) from None
    return _details_page(request, keeper, service, values, errors, status=400)


def _details_of(service: Service) -> dict[str, str]:
    """The contact details as the form shows them (empty for none)."""
    return {f: getattr(service, f) or "" for f in DETAIL_FIELDS}


def _editable(request: Request, keeper: Keeper, service_id: str) -> Service:
    try:
        return _editor(request).editable(keeper.principal, service_id)
    except DomainError as error:
        raise _refused(request, keeper, error) from None


def _details_page(request: Request, keeper: Keeper, service: Service, values: dict[str, str], errors: Errors, *,
                  status: int = 200) -> HTMLResponse:
    return render(request, keeper, "keepers/provider/details.html",
                  {"service": service, "values": values, "errors": errors}, status=status)
