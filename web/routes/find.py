"""Find support near you: category tiles, a postcode or town, results with distance and a map, service
pages, and a shortlist kept only in the link (ids in the URL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from geodata.geography import Home
from geodata.distance import great_circle_km
from indexer.sync.moved import listed_now
from rehabmap.errors import DomainError
from rehabmap.maintain.freshness import source_listings
from rehabmap.maintain.retirement import retirement
from rehabmap.match import MatchRequest, MatchResponse, MatchResult, left_out, match
from web import service_view
from web.deps import State
from web.forms import Errors, Fields, resolve_where
from web.links import SearchContext, report_problem_url, sent_on
from geodata.distance import KM_PER_MILE
from web.present import (CATEGORIES, CATEGORY_BY_SLUG, EVERYTHING, PUBLIC_PART_WORDS, PUBLIC_RADII_MILES, VIEW_BY_SLUG,
                         SupportCategory)
from web.render import PageRoute, page
from web.resultsmap import Marker, Pin, results_map

if TYPE_CHECKING:
    from datetime import date

    from markupsafe import Markup

    from rehabmap.coverage import HomeCoverage, Reach
    from rehabmap.state import AppState

router = APIRouter(route_class=PageRoute)

MAX_RESULTS = 20



@dataclass(frozen=True)
class NoneMeans:
    """What finding none of a kind of support means at a home (README "Coverage"), with the parts of the kind
    the directory holds all of here (`held`: there are none of those near) and those it holds none of yet
    (`not_held`: there may well be some), named for the page to say which is which."""

    state: Literal["being_checked", "covered", "partly_covered", "not_covered"]
    held: tuple[str, ...] = ()
    not_held: tuple[str, ...] = ()


def not_found(request: Request, what: str) -> HTMLResponse:
    return page(request, "pages/not_found.html", {"what": what}, status=404, private=False)


@router.get("/find")
def find_start(request: Request) -> HTMLResponse:
    context = SearchContext.of(Fields.of_query(request))
    return page(request, "find/start.html", {"search": context}, private=bool(context.where or context.shortlist))


def _home_or_form(request: Request, state: AppState, fields: Fields, search: SearchContext, template: str,
                  context: dict[str, object]) -> Home | HTMLResponse:
    """The home searched from; or the page itself: the form alone when nothing was searched, the error against
    the field (400) when the place is not found."""
    if "where" not in fields:
        return page(request, template, context, private=bool(search.shortlist))
    errors = Errors()
    home = resolve_where(state.geography, search.where, "where", errors)
    if home is None:
        context["errors"] = errors
        return page(request, template, context, status=400)
    return home


def _request(category: SupportCategory, within_miles: int, limit: int) -> MatchRequest:
    return MatchRequest(types=category.types, max_distance_km=within_miles * KM_PER_MILE, limit=limit)


def _nearest(state: AppState, home: Home, category: SupportCategory, within_miles: int, limit: int,
             today: date) -> MatchResponse:
    return match(state.backend, home, _request(category, within_miles, limit), today)


def _outside_catchment(state: AppState, home: Home, category: SupportCategory, request: MatchRequest,
                       response: MatchResponse) -> int:
    """Of a kind found none of near a home, how many services within the distance serve a catchment (the area a
    service says it takes people from) that does not include the home: the page said "No services found" with
    one a mile away that takes only its own borough's residents, and a family read it as "none near". They are
    not listed (they would not take the person), but said (`rehabmap.match.left_out`, as the clinicians' page)."""
    found = (left_out(state.backend, home, request, response, t) for t in category.types)
    return sum(lo.by.get("include_out_of_catchment", 0) for lo in found if lo is not None)  # NARROWING's


def _reach(home: Home, within_miles: int) -> Reach:
    """Where a search looks, so that a candidate awaiting review within it is "being checked" wherever it lies."""
    return home.lat, home.lon, within_miles * KM_PER_MILE


def _map(state: AppState, home: Home, results: list[MatchResult]) -> Markup | None:
    """The results' map, pins numbered as the page lists them; none without results."""
    pins = [Pin(n, r.service.lat, r.service.lon, r.service.name) for n, r in enumerate(results, 1)]
    return results_map(state.geography, Marker(home.lat, home.lon, home.label), pins) if results else None


def _none_means(at_home: HomeCoverage, category: SupportCategory) -> NoneMeans:
    """Candidates are still being checked (with the parts of the kind it holds no data on here, which a candidate
    of another part says nothing of), the directory holds all of the kind here (so there are none), holds
    some parts of it (CQC lists every care home, not supported housing or floating support: none of the one, and
    no information about the others), or holds none of it here yet (so there may well be some). Every public page
    that can find none says which, never a bare "none found". Each part is judged by its own answer
    (`HomeCoverage.parts`), so a part awaiting review is neither held nor said to have no data: a supported housing
    candidate near Mansfield made the page say it held no information about supported accommodation beside the
    care homes it listed."""
    held: list[str] = []
    not_held: list[str] = []
    checking = False
    for service_type in category.types:
        for part, answer in at_home.parts(service_type).items():
            status = answer.part_status
            if status == "awaiting_review":
                checking = True
            else:
                (held if status == "held" else not_held).append(PUBLIC_PART_WORDS[part])
    if checking:  # and of the kind's other parts, those not held: near Mansfield, units being checked, no team data
        return NoneMeans("being_checked", tuple(held), tuple(not_held))
    if not held:
        return NoneMeans("not_covered")
    return NoneMeans("partly_covered" if not_held else "covered", tuple(held), tuple(not_held))


PER_KIND = 3


@router.get(f"/find/{EVERYTHING.slug}")
def find_everything(request: Request, state: State) -> HTMLResponse:
    """Every kind of support near a place: the nearest few of each kind, the kind with the nearest service
    first, numbered across the page as the one map is."""
    fields = Fields.of_query(request)
    search = SearchContext.of(fields, EVERYTHING.slug)  # so that a service opened here leads back here
    context: dict[str, object] = {"search": search, "radii": PUBLIC_RADII_MILES, "errors": Errors(), "groups": None,
                                  "slug": EVERYTHING.slug}
    home = _home_or_form(request, state, fields, search, "find/everything.html", context)
    if not isinstance(home, Home):
        return home
    today = state.today()
    at_home = state.coverage().at_home(home.areas.codes(), _reach(home, search.within))
    groups = []
    for category in CATEGORIES:
        response = _nearest(state, home, category, search.within, PER_KIND, today)
        groups.append((category, response.results, sum(g.total for g in response.groups),
                       _none_means(at_home, category)))
    groups.sort(key=lambda g: g[1][0].distance_km if g[1] else math.inf)  # stable: kinds with none keep their order
    results = [r for _, found, _, _ in groups for r in found]
    # Where a kind has none that may be there all the same, where else to ask, as a kind's own page says.
    national_help = any(not found and means.state != "covered" for _, found, _, means in groups) or not results
    context.update(home=home, groups=groups, count=len(results), map=_map(state, home, results),
                   national_help=national_help)
    return page(request, "find/everything.html", context, today=today)


@router.get("/find/{slug}")
def find_category(request: Request, slug: str, state: State) -> HTMLResponse:
    category = CATEGORY_BY_SLUG.get(slug)
    if category is None:
        return not_found(request, "That kind of support")
    fields = Fields.of_query(request)
    search = SearchContext.of(fields, slug)
    context: dict[str, object] = {"category": category, "search": search, "radii": PUBLIC_RADII_MILES,
                                  "errors": Errors(), "results": None}
    home = _home_or_form(request, state, fields, search, "find/category.html", context)
    if not isinstance(home, Home):
        return home
    today = state.today()
    asked = _request(category, search.within, MAX_RESULTS)
    response = match(state.backend, home, asked, today)
    results = response.results
    context["outside_catchment"] = 0 if results else _outside_catchment(state, home, category, asked, response)
    context["none_means"] = _none_means(state.coverage().at_home(home.areas.codes(), _reach(home, search.within)),
                                        category)
    context.update(
        home=home, results=results, map=_map(state, home, results),
        others=[c for c in CATEGORIES if c.slug != slug], wider=[r for r in sorted(PUBLIC_RADII_MILES)
                                                                  if r > search.within])
    return page(request, "find/category.html", context, today=today)


@router.get("/shortlist")
def shortlist(request: Request, state: State) -> HTMLResponse:
    fields = Fields.of_query(request)
    search = SearchContext.of(fields)
    records = {i: listed_now(state, i) for i in search.shortlist}
    found = list({s.id: s for s in records.values() if s is not None}.values())  # two ids of one record: once
    # A link outlives what it lists: a service retired since (deregistered, say) is named apart, never shown
    # with its phone and referral route as if it could still be chosen.
    services = [s for s in found if s.status == "active"]
    unlisted = [s for s in found if s.status != "active"]
    # An id the directory does not hold was never listed: a typo, or a record held for review. Before, both read
    # "no longer listed", as if a service had gone. A held one is said to await review, and nothing more of it.
    absent = [i for i, s in records.items() if s is None]
    waiting = sum(1 for i in absent if _awaits_review(request, i))
    home = None
    if search.where:
        home = resolve_where(state.geography, search.where, "where", Errors())
    distances = {s.id: great_circle_km(home.lat, home.lon, s.lat, s.lon) for s in services} if home else {}
    # Absolute only on the configured public address: the Host header is the caller's to forge.
    share_url = state.settings.public_url(search.shortlist_only_url()) if services else ""
    return page(request, "find/shortlist.html", {
        "search": search, "services": services, "unlisted": unlisted, "missing": len(absent) - waiting,
        "waiting": waiting, "home": home,
        "distances": distances, "share_url": share_url}, today=state.today())


def _awaits_review(request: Request, service_id: str) -> bool:
    """Whether a source gives the record and it awaits review (the review queue the composition root leaves on
    the application, as GET /services/{id} reads it); False without one."""
    opener = getattr(request.app.state, "open_review", None)
    try:
        item = opener().item(service_id) if opener is not None else None
    except DomainError:
        return False
    return item is not None and item.state == "pending"


@router.get("/service/{service_id:path}")
def service_page(request: Request, service_id: str, state: State) -> Response:
    service = state.backend.get(service_id)
    moved_on = sent_on(request, state, service_id, service)  # a bookmark of its old id
    if moved_on is not None:
        return moved_on
    if service is None:
        return not_found(request, "That service")
    search = SearchContext.of(Fields.of_query(request))
    home = None
    if search.where:
        home = resolve_where(state.geography, search.where, "where", Errors())
    distance = great_circle_km(home.lat, home.lon, service.lat, service.lon) if home else None
    today = state.today()
    return page(request, "service.html", {
        "service": service, "search": search, "home": home, "distance": distance,
        "contact": service_view.contact_rows(service), "who": service_view.who_rows(service),
        "opening": service_view.opening_rows(service.schedules), "directions": service_view.directions_url(service),
        "report_url": report_problem_url(service.id), "retired": retirement(state.directory, service),
        "listings": source_listings(state.directory, service, state.source_title),
        "professional": service_view.professional_rows(service, state.area_name, today, state.source_title),
        "category": VIEW_BY_SLUG.get(search.category)}, today=today,
        private=bool(search.where or search.shortlist))
