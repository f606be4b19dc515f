"""Find local alternatives: the clinicians' match form and a printable summary of what it found.

The form is POSTed, so a person's needs and home never sit in a URL, a browser history or a log. A good form
is held for a short time, encrypted, under a key that only the results address carries (`web.held_searches`),
and the browser is sent there (POST, redirect, GET): Back from a service, a reload and "show all" all come
back to the results without sending the form again. The results page is the printable summary for a
discharge or placement review, and carries the form again (filled in) to change the search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError, shorten
from rehabmap.languages import UnknownLanguage, suggestion_text
from rehabmap.match import (ANY_TYPE, MAX_LIMIT, LeftOut, MatchRequest, MatchResponse, fewer_needs_list_some,
                            left_out, match, parse_needs, parse_types)
from rehabmap.orders import ORDERS, Order
from rehabmap.taxonomy import (NEED_LABELS, SUBTYPE_LABELS, SUBTYPES, TYPE_LABELS, ServiceType, language_need,
                               parse_subtypes)
from web.deps import State
from web.forms import Errors, Fields, parse_int, parse_miles, resolve_where
from web.held_searches import HOLD_MINUTES, held_searches
from web.present import MATCH_OPTIONS, ORDER_WORDS, RANKING, in_home_icb_text, none_listed, show_left_out
from web.plain_summary import summary_text
from web.render import BASE_HEADERS, PageRoute, page
from web.resultsmap import Marker, Pin, results_map

if TYPE_CHECKING:
    from markupsafe import Markup

    from geodata.geography import Geography, Home
    from rehabmap.index.base import PersonGender

router = APIRouter(route_class=PageRoute)

LIMITS = (3, 5, 10, 20)  # results per type; the first is the default
OPTIONS = MATCH_OPTIONS
GENDERS = {"": "Not stated", "female": "Female", "male": "Male"}


@dataclass
class MatchForm:
    """What was typed, exactly, so that a form with errors comes back with nothing lost."""

    home: str = ""
    needs: list[str] = field(default_factory=list)
    language: str = ""
    types: list[str] = field(default_factory=list)
    subtypes: list[str] = field(default_factory=list)
    age: str = ""
    gender: str = ""
    placement: str = ""
    within: str = ""
    limit: str = str(LIMITS[0])
    options: list[str] = field(default_factory=list)
    order: str = ORDERS[-1]  # best fit first

    @classmethod
    def of(cls, fields: Fields) -> MatchForm:
        return cls(home=_typed_or_chosen(fields, "home"), needs=fields.getlist("needs"),
                   language=fields.get("language"), types=fields.getlist("types"), subtypes=fields.getlist("subtypes"),
                   age=fields.get("age"), gender=fields.get("gender"), placement=_typed_or_chosen(fields, "placement"),
                   within=fields.get("within"),
                   limit=fields.get("limit") or str(LIMITS[0]), options=fields.getlist("options"),
                   order=fields.get("order") or ORDERS[-1])

    @classmethod
    def held(cls, values: dict[str, object]) -> MatchForm:
        """The form as it was held (`web.held_searches`), read as the body it came from was."""
        return cls.of(Fields(_pairs(values)))

    def widened(self, left: LeftOut) -> list[tuple[str, str]]:
        """This form's fields, as a form posts them, without the options that left services out (`left`)."""
        shown = [o for o in self.options if o not in left.by]
        return _pairs(asdict(replace(self, options=shown + ["include_out_of_catchment"] * (
            "include_out_of_catchment" in left.by))))


def _typed_or_chosen(fields: Fields, name: str) -> str:
    """The place a person chose among those a message offered for what they typed (`match/_form.html`), or what
    is typed now. The choices sit in the form itself, as radios, so that Enter in any field still submits the
    form's own button and nothing else typed is lost; a choice stands only while the text it was offered for is
    unchanged, so a postcode typed over it after all is what is searched from."""
    typed = fields.get(name)
    chosen = fields.get(f"{name}_choice")
    return chosen if chosen and fields.get(f"{name}_choice_for") == typed else typed


def _pairs(values: dict[str, object]) -> list[tuple[str, str]]:
    return [(name, str(v)) for name, value in values.items() for v in (value if isinstance(value, list) else [value])]


@dataclass
class Parsed:
    request: MatchRequest
    home: Home
    placement: Home | None


def parse(form: MatchForm, geography: Geography, errors: Errors) -> Parsed | None:
    """Every problem in the form at once, each against its input's id; None when there is any. Each field is
    read by the domain's own readers (`rehabmap.match`), as the API and the command line read it."""
    home = resolve_where(geography, form.home, "home", errors, "the person's home postcode or town")
    needs = _needs(form, errors)
    types, subtypes = _types(form, errors)
    age = parse_int(form.age, "age", "Age", errors, 0, 120)
    gender: PersonGender | None = "female" if form.gender == "female" else "male" if form.gender == "male" else None
    if form.gender not in GENDERS:
        errors.add("gender", "Select female, male or not stated")
    placement = (resolve_where(geography, form.placement, "placement", errors, placement=True)
                 if form.placement else None)
    within = parse_miles(form.within, "within", "Maximum distance", errors)
    limit = int(form.limit) if form.limit.isdigit() and int(form.limit) in LIMITS else None
    if limit is None:
        errors.add("limit", "Select how many results to show for each type")
    if any(o not in OPTIONS for o in form.options):
        errors.add("options", "Select options from the list")
    order: Order = "nearest" if form.order == "nearest" else "best_fit"
    if form.order not in ORDERS:
        errors.add("order", "Select best fit first or nearest first")
    if errors or home is None:
        return None
    options = set(form.options)
    try:
        request = MatchRequest(
            needs=needs, types=types, subtypes=subtypes, age=age, gender=gender,
            max_distance_km=within, own_icb_only="own_icb_only" in options,
            accepting_only="accepting_only" in options, needs_confirmed="needs_confirmed" in options,
            include_out_of_catchment="include_out_of_catchment" in options, limit=limit or LIMITS[0],
            current_placement=(placement.lat, placement.lon) if placement is not None else None,
            order=order, each_type=True)
    except DomainError as error:
        errors.add_domain(error, {"max_distance_km": "within"}.get(error.field or "", error.field or "home"))
        return None
    return Parsed(request, home, placement)


def _needs(form: MatchForm, errors: Errors) -> tuple[str, ...]:
    """The needs ticked, and the language typed: its English name or ISO 639 code (or language:<either>)."""
    try:
        needs = list(parse_needs(form.needs))
    except DomainError:  # only a form made elsewhere sends a need that is not a box
        errors.add("needs", "Select needs from the list")
        needs = []
    typed = form.language.strip()
    if typed:
        try:
            needs.append(language_need(typed))
        except UnknownLanguage as error:
            errors.add("language", f"No language is called '{shorten(typed)}'. Enter the language's English name "
                                   f"or its ISO 639 code, like Polish or pl.{suggestion_text(error)}")
    return tuple(dict.fromkeys(needs))


def _types(form: MatchForm, errors: Errors) -> tuple[tuple[ServiceType, ...] | None, tuple[str, ...] | None]:
    """The types and the kinds of service ticked. 'Any suitable option' is a box of its own, never ticked
    beside a type; kinds are checked against the types only once those are valid."""
    if ANY_TYPE in form.types and any(t != ANY_TYPE for t in form.types):
        errors.add("types", "Select types of service, or 'any suitable option', not both")
        return None, None
    try:
        types = parse_types(form.types)
    except DomainError:
        errors.add("types", "Select types of service from the list")
        return None, None
    try:
        return types, parse_subtypes(form.subtypes, types)
    except DomainError:
        errors.add("subtypes", "Select kinds of service from the list, each belonging to a type you selected, "
                               "or leave the types unselected")
        return types, None


def form_context(form: MatchForm, errors: Errors) -> dict[str, object]:
    return {
        "form": form, "errors": errors,
        "need_items": [{"value": code, "text": label} for code, label in NEED_LABELS.items()],
        "type_items": [{"value": t.value, "text": TYPE_LABELS[t]} for t in ServiceType]
        + [{"value": "any", "text": "Any suitable option, least restrictive first", "exclusive": True,
            "divider": "or"}],
        "subtype_items": [{"value": sub, "text": f"{TYPE_LABELS[t]}: {SUBTYPE_LABELS[sub]}"}
                          for t, subs in SUBTYPES.items() for sub in subs],
        "gender_items": [{"value": v, "text": t} for v, t in GENDERS.items()],
        "limit_items": [(n, f"{n} of each type") for n in sorted(LIMITS)],
        "option_items": [{"value": v, "text": t} for v, t in OPTIONS.items()],
        "order_items": [{"value": v, "text": ORDER_WORDS[v][0], "hint": ORDER_WORDS[v][1]} for v in reversed(ORDERS)],
    }


def _options_map(geography: Geography, parsed: Parsed, response: MatchResponse) -> Markup:
    """The options as numbered pins, in the order the page numbers them (group by group), with the home and
    the current placement marked."""
    options = [r for group in response.groups for r in group.results]
    pins = [Pin(n, r.service.lat, r.service.lon, r.service.name) for n, r in enumerate(options, 1)]
    placement = Marker(parsed.placement.lat, parsed.placement.lon, parsed.placement.label) if parsed.placement else None
    return results_map(geography, Marker(parsed.home.lat, parsed.home.lon, parsed.home.label), pins,
                       map_id="options-map", placement=placement)


@router.get("/alternatives")
def alternatives_form(request: Request) -> HTMLResponse:
    return page(request, "match/form.html", form_context(MatchForm(), Errors()), private=False)


@router.post("/alternatives")
async def alternatives_search(request: Request, state: State) -> Response:
    form = MatchForm.of(await Fields.of_body(request))
    errors = Errors()
    if parse(form, state.geography, errors) is None:
        return page(request, "match/form.html", form_context(form, errors), status=400)
    key = held_searches(state.settings).hold(asdict(form))
    return RedirectResponse(f"/alternatives/results/{key}", status_code=303,
                            headers={**BASE_HEADERS, "Cache-Control": "no-store"})


@router.get("/alternatives/results/{key}")
def alternatives_results(request: Request, state: State, key: str, order: str = "",
                         show: str = "") -> HTMLResponse:
    """The results of a held search. `order` (nearest or best_fit) and `show=all` change only how it is
    shown, so they may sit in the address; what was searched for never does."""
    held = held_searches(state.settings).read(key)
    if held is None:
        return page(request, "match/expired.html", {"hold_minutes": HOLD_MINUTES}, status=404)
    form = MatchForm.held(held)
    if order in ORDERS:
        form.order = order
    errors = Errors()
    parsed = parse(form, state.geography, errors)
    if parsed is None:  # held while it was good: only a geography rebuilt since could refuse it now
        return page(request, "match/form.html", form_context(form, errors), status=400)
    match_request = parsed.request
    if show == "all":
        match_request = replace(match_request, limit=MAX_LIMIT)
    today = state.today()
    coverage, listings = state.coverage_read()
    response = match(state.backend, parsed.home, match_request, today, state.unconfirmed_listings(today, listings))
    context = form_context(form, errors)
    context["map"] = _options_map(state.geography, parsed, response) if response.results else None
    at_home = coverage.at_home(parsed.home.areas.codes(), match_request.reach(parsed.home))
    # As the API answers: each subtype asked narrows its own type's coverage too (CQC covers care homes, not all
    # supported accommodation).
    answers = {t.service_type: at_home.for_request(t.service_type, match_request.subtypes)
               for t in response.summary}
    # What the search's own options left out of a type it lists none of, and a button to search again without them.
    left: dict[ServiceType, LeftOut] = {}
    for group in response.groups:  # one type each (`each_type`)
        service_type = next(iter(group.types))
        if not group.results and (found := left_out(state.backend, parsed.home, match_request, response, service_type)):
            left[service_type] = found
    none_words = {t: none_listed(a, bool(match_request.needs), left[t].says(match_request) if t in left else None)
                  for t, a in answers.items()}
    widen = {t: (show_left_out(found), form.widened(found)) for t, found in left.items()}
    in_icb = {t.service_type: in_home_icb_text(t.in_home_icb, coverage, parsed.home.areas.icb_code, t.service_type,
                                               match_request.subtypes) for t in response.summary}
    # Beside the options of a type, whether there may be more (the API's "Found, but …"): a list of the care homes
    # near Mansfield read as all the supported accommodation there, and one of level 1 units beside a hospital
    # awaiting review as all the units near.
    more_words = {t: a.some_found() for t, a in answers.items() if a.may_be_more}
    context["plain_text"] = summary_text(parsed.home, parsed.placement, match_request, response, today, none_words,
                                         more_words)
    context.update(home=parsed.home, placement=parsed.placement, match=match_request, response=response,
                   ranking=RANKING, type_labels=TYPE_LABELS, need_labels=NEED_LABELS,
                   option_labels=OPTIONS, none_words=none_words, in_icb=in_icb, more_words=more_words, widen=widen,
                   answers=answers, left_out=left,
                   fewer_needs=not response.results and fewer_needs_list_some(state.backend, parsed.home,
                                                                              match_request),
                   results_path=f"/alternatives/results/{key}", show_all=show == "all",
                   order_words=ORDER_WORDS, max_limit=MAX_LIMIT, hold_minutes=HOLD_MINUTES)
    return page(request, "match/results.html", context, today=today)
