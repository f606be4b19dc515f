"""Any service, for maintainers: find it, change it, retire it or bring it back, or add a new one.

Every write goes through `rehabmap.maintain.edits.Editor`, the calls the maintainers' API makes: the same
checks, the same audit rows, the same live-index update. A form sends only the fields that differ from the
record as the index holds it, so an edit's audit rows name what the maintainer changed and nothing else. A
refusal (a bad postcode, a maximum age below the minimum) is shown with the NHS error summary against the
field it names, with everything typed kept. A value is kept whole: one longer than its field may hold
(`web.keepers.words.TYPED_FIELDS`, the API's limits) is refused against its box, unless it is the record's own sent
back (a long description from a feed), which is no change. The capacity is shown as every page reads it, with its
report's date: a report past the freshness window as not known, so choosing one re-reports it as of today; one still
current is re-reported by the box saying it is still true today (`reconfirmed`). The form
carries the version of the record it showed (`edits.version_of`): it sends every need and field back as it showed
them, so one saved after another maintainer's or a sync's change would undo it; it is refused instead, the record
shown as it now is.

The needs the service states are one choice each (takes / does not take / not stated), and whom it takes one choice
(men only / women only / women and men / not stated); the needs and the gender rehabmap only read from its listing
are apart, each with its words and a maintainer's answers (`rehabmap.maintain.readings`).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError, InvalidValue, PreconditionRequired, Remedy, ServiceMerged, StaleEdit
from rehabmap.explanation import GENDER_WORDS
from rehabmap.index.base import ServiceQuery
from rehabmap.maintain.audit import REASON_MAX
from rehabmap.maintain.edits import Editor, version_of
from rehabmap.maintain.readings import GENDERS, Reading, editable_needs, readings, stated, stated_needs
from rehabmap.maintain.retirement import restores_taken_back, retirement
from rehabmap.record import Service, given_text
from rehabmap.state import AppState
from rehabmap.taxonomy import TYPE_LABELS, ServiceType, need_label, parse_need
from web.deps import get_state
from web.forms import Errors, Fields, parse_int
from web.keepers.maintainer_review import MAINTAINERS, held, item_path
from web.keepers.navigation import SECTIONS, Section
from web.keepers.paths import SERVICES, history_path, service_path
from web.keepers.session import (Keeper, KeepersRoute, Refusal, directory_of, form_errors, message_page_plain,
                                 refusal_page, render, requires)
from web.keepers.words import as_sent, field_name, said, teams_gender
from web.links import sent_on
from web.present import capacity_text

router = APIRouter(route_class=KeepersRoute)
SECTIONS.append(Section(SERVICES, "Services", "Find any service and change it, retire it or bring it back; add a "
                        "new one.", frozenset(MAINTAINERS)))
SEARCH_LIMIT = 50
TEXT_FIELDS = ("name", "organisation", "subtype", "description", "address", "postcode", "referral_route", "phone",
               "email", "website")
CHOICE_FIELDS: dict[str, set[str]] = {
    "service_type": {t.value for t in ServiceType}, "capacity": {"available", "limited", "none"},
    "accepting_referrals": {"yes", "no"}, "gender": set(GENDERS)}
AGE_FIELDS = {"min_age": "Youngest age", "max_age": "Oldest age"}
FORM_FIELDS = ("name", "organisation", "service_type", "subtype", "description", "address", "postcode", "min_age",
               "max_age", "gender", "referral_route", "phone", "email", "website", "capacity", "accepting_referrals")
# Whom a service takes, as the form offers it (the public pages' words, `rehabmap.explanation.GENDER_WORDS`).
GENDER_CHOICES = [{"value": gender, "text": GENDER_WORDS[gender]} for gender in ("male_only", "female_only",
                                                                                   "mixed_gender")]


STATEMENTS = {"yes": True, "no": False, "": None}  # a need's choice on the form, as `readings.stated` says it
CONFIRMED = "capacity_confirmed"  # the box beside a current capacity: still true today (`reconfirmed`)


def editor_of(request: Request) -> tuple[AppState, Editor]:
    state: AppState = get_state(request)
    if state.editor is None:
        raise Refusal(message_page_plain(request, 503, "Services cannot be changed here",
                                         "The directory's store could not be opened."))
    return state, state.editor


def need_field(need: str) -> str:
    """A need's choice on the form, by a name that is also its radios' id (a language's colon made a dash)."""
    return "need-" + need.replace(":", "-")


def form_values(service: Service | None, today: date) -> dict[str, str]:
    """The record as the form shows it: every value as text, empty for none; each need as its choice."""
    words = {value: text for text, value in STATEMENTS.items()}
    needs = {need_field(n): words[stated(service, n)] for n in editable_needs(service)}
    if service is None:
        return {**{name: "" for name in FORM_FIELDS}, **needs}
    data = shown(service, today)
    values = {name: "" if data.get(name) is None else str(data[name]) for name in FORM_FIELDS}
    values["accepting_referrals"] = {True: "yes", False: "no", None: ""}[service.accepting_referrals]
    return {**values, **needs, "version": version_of(service)}


def typed_values(form: Fields, service: Service | None) -> dict[str, str]:
    """What the maintainer typed, to show again with a refusal (and the version of the record it was made from)."""
    return {name: form.get(name) for name in (*FORM_FIELDS, *map(need_field, editable_needs(service)), "version",
                                              CONFIRMED)}


def given_needs(form: Fields, service: Service | None, errors: Errors) -> dict[str, list[str]]:
    """The two stated lists as the form's choices leave them; a need the form does not send stays as it was."""
    statements = {}
    for need in editable_needs(service):
        name = need_field(need)
        if name in form:
            if form.get(name) not in STATEMENTS:
                errors.add(name, "Choose one of the options")
            statements[need] = STATEMENTS.get(form.get(name))
    return stated_needs(service, statements)


def given_fields(form: Fields, errors: Errors, current: Service | None = None) -> dict[str, Any]:
    """Every field of the form as the record holds it (an empty text as `given_text` keeps it, the API's rule), over
    `current` for an edit; problems into `errors`."""
    given: dict[str, Any] = {name: given_text(name, form.get(name)) for name in TEXT_FIELDS}
    given.update(given_needs(form, current, errors))
    for name, allowed in CHOICE_FIELDS.items():
        if name == "gender" and name not in form:
            continue  # as a need's: a form that does not send the choice (a page from before it) leaves it as it was
        value = form.get(name)
        if value and value not in allowed:
            errors.add(name, "Choose one of the options")
        given[name] = value or None
    if given["accepting_referrals"] is not None:
        given["accepting_referrals"] = given["accepting_referrals"] == "yes"
    for name, label in AGE_FIELDS.items():
        given[name] = parse_int(form.get(name), name, label, errors, 0, 120)
    if not given["name"]:
        errors.add("name", "Enter the service's name")
    if not given["service_type"]:
        errors.add("service_type", "Choose the type of service")
    return given


def shown(service: Service, today: date) -> dict[str, Any]:
    """The record as the form shows it and reads it back: its capacity as every page reads it
    (`Service.capacity_now`), so a report past the freshness window is "Not known", as a provider's form shows it.
    Choosing a capacity is then a change, which the editor stamps with today's date; leaving it is none."""
    return {**service.model_dump(mode="json"), "capacity": service.capacity_now(today)}


def changed(current: Service, given: dict[str, Any], today: date) -> dict[str, Any]:
    """What the form changes of the record as it showed it (`shown`). A text sent back as the record holds it, read
    as its box sends it (`as_sent`: its ends trimmed, its line breaks LF, where a synced record's description,
    however long, may hold CR LF, and none from a one-line box), is no change; nor is an empty box where the record
    holds an empty text."""
    data = shown(current, today)
    return {name: value for name, value in given.items() if data.get(name) != value and not (
        isinstance(data.get(name), str) and (value or "") == as_sent(name, data[name]))}


def reconfirmed(form: Fields, given: dict[str, Any], fields: dict[str, Any], errors: Errors) -> dict[str, Any]:
    """`fields` with the capacity reported again when the box beside it says it is still true today: sent back as
    it was, it is no change (`changed`), where the provider's page and PATCH report the same value again as of
    today, so a maintainer had no way to say so without changing it. A capacity "Not known" cannot be confirmed, and
    the box ticked beside it says two things, so it is refused rather than either taken."""
    if form.get(CONFIRMED) != "yes":
        return fields
    if given["capacity"] is None:
        errors.add(CONFIRMED, "Choose the capacity that is true today, or untick ‘Still true today’")
        return fields
    return {**fields, "capacity": given["capacity"]}


def field_of(error: DomainError) -> str:
    """The form field an edit's refusal is about: the first part of its path (a point follows from the
    postcode here), else the name."""
    named = (error.field or "").split(".")[0]
    if named in ("lat", "lon", "areas"):
        return "postcode"
    if named in ("needs_met", "needs_not_met"):
        return "needs"
    return named if named in FORM_FIELDS else "name"


def form_page(request: Request, keeper: Keeper, service: Service | None, values: dict[str, str], errors: Errors, *,
              today: date, status: int = 200, reason: str | None = None, merged_from: str | None = None
              ) -> HTMLResponse:
    """`today`: the day the route read once, which its `values` are of too."""
    read = readings(service) if service else []
    by_need = {r.need: r for r in read}
    return render(request, keeper, "keepers/maintainer/service_form.html",
                  {"service": service, "values": values, "errors": errors, "service_path": service_path,
                   "history_path": history_path, "capacity_report": capacity_text(service, today) if service else None,
                   "types": [("", "Choose a type"), *[(t.value, TYPE_LABELS[t]) for t in ServiceType]],
                   "capacities": [("", "Not known"), ("available", "Available"), ("limited", "Limited"),
                                  ("none", "None")],
                   "confirmable": service is not None and service.capacity_now(today) is not None,
                   "done": request.query_params.get("done", "")[:200], "reason": reason or "",
                   "reason_max": REASON_MAX,
                   "retired": retirement(directory_of(request), service) if service else None,
                   "questions": directory_of(request).overlay.open_questions(service.id) if service else [],
                   "needs": [(need_field(n), need_label(n), _hint(by_need.get(n))) for n in editable_needs(service)],
                   "genders": [*GENDER_CHOICES, {"value": "", "text": "Not stated"}],
                   "gender_hint": _gender_hint(service, read), "readings": read, "merged_from": merged_from,
                   "unlisted": service is not None and editor_of(request)[1].unlisted(service.id)},
                  status=status)


def _gender_hint(service: Service | None, read: list[Reading]) -> str | None:
    """Beside whom it takes: the service page's words where the gender is the team's word (`teams_gender`: the
    radios alone say "Not stated" of a gender the team removed), and the gender only read from its listing."""
    said = teams_gender(service)
    return " ".join(filter(None, (f"Its service page says “{said}”." if said else None,
                                  _hint(next((r for r in read if r.is_gender), None))))) or None


def _hint(found: Reading | None) -> str | None:
    """A need or gender only read from the listing is said so beside its choice, which stays "not stated"."""
    if found is None:
        return None
    said = f"suggests {found.label.lower()}" if found.is_gender else "mentions it" if found.takes else \
        "suggests it may not take it"
    return f"Its listing {said} (‘{found.words}’): not confirmed. Confirm it above, or choose here."


@router.get(SERVICES)
def services(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    state: AppState = get_state(request)
    text = Fields.of_query(request).get("q")
    found = state.backend.find(ServiceQuery(text=text, include_inactive=True), limit=SEARCH_LIMIT) if text else None
    directory = directory_of(request)
    taken_back = [(t, state.backend.get(t.service_id)) for t in restores_taken_back(directory, limit=SEARCH_LIMIT)]
    questioned = [(i, state.backend.get(i)) for i in directory.overlay.questioned_services(limit=SEARCH_LIMIT)]
    return render(request, keeper, "keepers/maintainer/services.html",
                  {"q": text, "found": found, "service_path": service_path, "limit": SEARCH_LIMIT,
                   "taken_back": taken_back, "questioned": questioned})


@router.get(f"{SERVICES}/new")
def new_form(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    today = get_state(request).today()
    return form_page(request, keeper, None, form_values(None, today), Errors(), today=today)


@router.post(f"{SERVICES}/new")
def create(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    state, editor = editor_of(request)
    stamp, today = state.days()
    errors = form_errors(keeper.form)
    given = {k: v for k, v in given_fields(keeper.form, errors).items() if v is not None}
    if not given.get("postcode"):
        errors.add("postcode", "Enter the service's full postcode")
    if not errors:
        try:
            service, _ = editor.create(keeper.principal, given, stamp)
        except DomainError as error:
            if error.remedy is Remedy.SERVICE_KEPT and error.subject is not None:
                # made and kept, not yet in the index: the form shown again would invite a second one, and so would a
                # page answering this POST (reloaded, it sends the form again), so its own page says it
                return RedirectResponse(service_path(error.subject) + "?" + urlencode({"done": _KEPT}),
                                        status_code=303)
            errors.add(field_of(error), said(error))
    if errors:
        return form_page(request, keeper, None, typed_values(keeper.form, None), errors, today=today, status=400)
    return RedirectResponse(service_path(service.id) + "?" + urlencode({"done": "Added."}), status_code=303)


# The notice of a new service the search index did not take (`Remedy.SERVICE_KEPT`), above its page, which says how it
# comes to be in searches: the index's own words of its failure are in the server's log.
_KEPT = "Added, but not yet in searches: the search index did not take it. Do not add it again, which would make a " \
    "second one."


def _write(request: Request, keeper: Keeper, service_id: str, action: str) -> Response:
    """Retire (with the maintainer's reason) or restore, then back to the service's page saying so; a reason
    refused (too long, as the API and the command line refuse it, or too short) is shown against its box, as it
    was typed, the rest of the page as it was."""
    state, editor = editor_of(request)
    stamp, today = state.days()
    errors = form_errors(keeper.form)
    if not errors:
        try:
            if action == "retire":
                editor.retire(keeper.principal, service_id, keeper.form.get("reason"))
            else:
                editor.update(keeper.principal, service_id, {"status": "active"}, stamp)
        except DomainError as error:
            if error.field != "reason":
                return refusal_page(request, keeper, "This could not be done", error)
            errors.add("reason", said(error))
    if errors:
        current = _current(request, keeper, service_id, editor.record(service_id))  # a kept new service, too
        return form_page(request, keeper, current, form_values(current, today), errors, today=today, status=400,
                         reason=keeper.form.get("reason"))
    done = "Retired: it has left every search." if action == "retire" else "Restored: it is searchable again."
    return RedirectResponse(service_path(service_id) + "?" + urlencode({"done": done}), status_code=303)


@router.post(SERVICES + "/{service_id:path}/keep-edits")
def keep_edits(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """The edits stay over the source's changes (audited); back to the service's page saying so."""
    _, editor = editor_of(request)
    kept = editor.keep_edits(keeper.principal, service_id)
    done = f"Kept: {', '.join(map(field_name, kept))}." if kept else "Nothing was waiting to be kept."
    return RedirectResponse(service_path(service_id) + "?" + urlencode({"done": done}), status_code=303)


@router.post(SERVICES + "/{service_id:path}/needs")
def state_need(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """A need read from its listing, confirmed one way or the other (audited as an edit of the stated needs)."""
    _, editor = editor_of(request)
    takes = STATEMENTS.get(keeper.form.get("takes"))
    try:
        if takes is None:
            raise InvalidValue("Choose whether it takes people with this need or not.", field="takes")
        need = parse_need(keeper.form.get("need"))
        _, names = editor.state_need(keeper.principal, service_id, need, takes)
    except DomainError as error:
        return refusal_page(request, keeper, "This could not be done", error)
    said = "it takes" if takes else "it does not take"
    done = f"Confirmed: {said} {need_label(need)}." if names else "Nothing was changed."
    return RedirectResponse(service_path(service_id) + "?" + urlencode({"done": done}), status_code=303)


@router.post(SERVICES + "/{service_id:path}/gender")
def state_gender(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """The gender read from its listing, confirmed (audited as an edit of `gender`, which brings its needs)."""
    _, editor = editor_of(request)
    gender = keeper.form.get("gender")
    try:
        if gender not in GENDERS:
            raise InvalidValue("Choose whom it takes.", field="gender")
        _, names = editor.state_gender(keeper.principal, service_id, gender)
    except DomainError as error:
        return refusal_page(request, keeper, "This could not be done", error)
    done = f"Confirmed: it takes {GENDER_WORDS[gender].lower()}." if names else "Nothing was changed."
    return RedirectResponse(service_path(service_id) + "?" + urlencode({"done": done}), status_code=303)


@router.post(SERVICES + "/{service_id:path}/retire")
def retire(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    return _write(request, keeper, service_id, "retire")


@router.post(SERVICES + "/{service_id:path}/restore")
def restore(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    return _write(request, keeper, service_id, "restore")


def _current(request: Request, keeper: Keeper, service_id: str, service: Service | None) -> Service:
    """The service as the index holds it (`service`, read by the caller, which asked of it first whether it is
    listed under another id); a record held from a source but not shown (it awaits review, or was rejected) is a
    404 that says so and links to its review page, as the maintainers' API says."""
    if service is None:
        refused = held(request, service_id)
        if refused is None:
            raise Refusal(render(request, keeper, "keepers/message.html", {
                "title": "No such service", "message": f"There is no service with id '{service_id[:80]}'."},
                status=404))
        raise Refusal(refusal_page(request, keeper, "Held for review, not shown", refused,
                                   link=(item_path(service_id), "Decide it in the review queue")))
    return service


def _listed_as(request: Request, keeper: Keeper, service_id: str, merged: ServiceMerged) -> Response:
    """A form posted to a record merged into another since it was opened (its page now sends it on, 307, which
    would post the form again to the other): nothing saved, and the record it is listed as shown in its form, which
    says so and links to it, to make the changes again there (before, the change was written to the record merged
    away, shown nowhere)."""
    kept = get_state(request).backend.get(merged.subject or "")
    if kept is None:
        return refusal_page(request, keeper, "Listed under another id", merged)
    errors = Errors()
    errors.add("service-form", "Nothing was saved: this service is now listed under another id, shown below as it "
                               "is now. Make your changes again.")
    today = get_state(request).today()
    return form_page(request, keeper, kept, form_values(kept, today), errors, today=today, status=409,
                     merged_from=service_id)


@router.get(SERVICES + "/{service_id:path}")
def edit_form(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    """The service's page; a link to an id it is no longer listed under (renamed, or a record merged into another)
    is sent on to the page of the one it is, as the public page is (before, a merged-away id showed its record as
    retired, or no such service after a rebuild, where the service was listed under the other id)."""
    state, editor = editor_of(request)
    found = editor.record(service_id)  # a service made here and kept, which the index lacks, too
    moved_on = sent_on(request, state, service_id, found)
    if moved_on is not None:
        return moved_on
    service = _current(request, keeper, service_id, found)
    today = state.today()
    return form_page(request, keeper, service, form_values(service, today), Errors(), today=today)


def _not_saved(error: StaleEdit | PreconditionRequired, fields: dict[str, Any]) -> str:
    """Why a form was refused unsaved. Stale (`StaleEdit`): the service changed since the page was opened, by
    another maintainer, a sync, or a rebuild or the server's start laying a kept edit (before, "Another maintainer or
    a sync", which was untrue of the last two). A page sent back with nothing changed from the record as it now is
    asks only to be saved again, not for changes the person never made (before, "Make your changes again." to one who
    made none). Without a version (a page from before forms carried one), a change of the needs or the gender is
    refused as the API refuses it (428): it could undo a change made since the page was opened."""
    if isinstance(error, PreconditionRequired):
        return ("This page did not say which version of the service it showed, so nothing was saved: it is shown "
                "below as it now is. Make your changes again.")
    if not fields:
        return ("This service changed while you had this page open: it is shown below as it now is; nothing was "
                "saved. Save it again if it is right.")
    return ("This service changed while you had this page open, so nothing was saved: it is shown below as it now "
            "is. Make your changes again.")


@router.post(SERVICES + "/{service_id:path}")
def edit(request: Request, service_id: str, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    state, editor = editor_of(request)
    found = editor.record(service_id)  # read once here; the write reads it again under the index lock
    try:
        editor.not_merged_away(service_id, found)
    except ServiceMerged as merged:
        return _listed_as(request, keeper, service_id, merged)
    current = _current(request, keeper, service_id, found)
    stamp, today = state.days()
    errors = form_errors(keeper.form, form_values(current, today))
    given = given_fields(keeper.form, errors, current)
    fields = reconfirmed(keeper.form, given, changed(current, given, today), errors)
    names: list[str] = []
    if not errors:
        try:
            # the version the form was opened at: a form sends every need and text as it showed them, so one opened
            # before another maintainer's (or a sync's) change would undo it. A form saved unchanged is still sent,
            # with its version too: one opened before another's change showed the record as it no longer is, and is
            # refused as any such page is (before, "Nothing was changed."); a fresh one writes a write owed of the
            # service (a new service kept, which the index lacks), as the API's verify does (`Editor._laid_again`),
            # and else nothing.
            _, names = editor.update(keeper.principal, service_id, fields, stamp,
                                     if_match=keeper.form.get("version") or None)
        except (StaleEdit, PreconditionRequired) as error:
            errors.add("service-form", _not_saved(error, fields))
            return form_page(request, keeper, current, form_values(current, today), errors, today=today, status=409)
        except DomainError as error:
            errors.add(field_of(error), said(error))
    if errors:
        return form_page(request, keeper, current, typed_values(keeper.form, current), errors, today=today,
                         status=400)
    done = f"Saved: {', '.join(map(field_name, names))}." if names else "Nothing was changed."
    return RedirectResponse(service_path(service_id) + "?" + urlencode({"done": done}), status_code=303)
