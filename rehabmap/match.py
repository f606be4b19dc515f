"""Matching and ranking (DESIGN.md §4), as plain functions over an index backend.

The rule is `RANKING_RULE` below: the API returns it with every answer and the README repeats it. What a
person asks is read into a `MatchRequest` one way, by `MatchRequest.from_input` and the field readers it uses
(`parse_types`, `parse_needs`), for the API, the pages and the command line alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import date
from math import floor
from typing import Any, NamedTuple, Protocol, TypeVar

import shapely
from shapely.geometry import shape

from geodata.distance import great_circle_km, miles_and_km
from rehabmap.errors import InvalidValue
from rehabmap.explanation import RECORD_WORDS, Explainer, Unconfirmed, measured_from, unconfirmed_listing
from rehabmap.fit import Fit
from rehabmap.index.base import Coverage, Hit, IndexBackend, PersonGender, ServiceQuery, effective_key
from rehabmap.orders import ORDERS, Order
from rehabmap.record import (
    Capacity, Service, capacity_current_since, capacity_max_age_days, capacity_reported_since,
)
from rehabmap.taxonomy import (GENDER_NEEDS, ServiceType, least_restrictive_first, parse_asked_need, parse_subtypes,
                               parse_type)

OUT_OF_AREA_MARGIN_KM = 5.0
RANKING_RULE = (
    "1. Hard filters: type, every stated need met or not stated by the service (a service that says it does "
    "not meet a need never appears), age, gender (a service the service or a maintainer states is "
    "for the other gender only), active, accepting referrals if asked, within the radius, "
    "and coverage: a service whose catchment does not include the home is left out, or listed and marked "
    "out_of_catchment when the caller asks to see those. A need or a gender read from a service's own words (its "
    "name, description or label) is a guess, not a statement: it never leaves a service out, never counts as "
    "confirmed (needs_confirmed asks for needs the service or a maintainer stated), and ranks as not said; "
    "the result names it (needs_read_from_text, needs_read_not_met, gender_read_from_text) and its explanation "
    "quotes the words, a read gender as a caution (\"Its listing suggests it takes women only ('women-only'); "
    "not confirmed: ask the service.\"). "
    f"2. Order: by effective distance = great-circle km, plus {OUT_OF_AREA_MARGIN_KM:g} km for services "
    "outside the person's ICB, so a service in the home ICB comes first unless an out-of-area one is more "
    f"than {OUT_OF_AREA_MARGIN_KM:g} km nearer. Ties break by raw distance, then id. "
    "3. Any suitable option (no types given), or each type on its own (`each_type`): each type in turn, least "
    "restrictive first, up to `limit` of each. "
    "4. Best fit first (order=best_fit), instead of 2: most stated needs confirmed first, then taking referrals "
    "(yes, not said, no), then capacity reported within the capacity window (vacancy, limited, not known, "
    "none), then as 2.")
MAX_LIMIT = 100
ANY_TYPE = "any"  # asks for any suitable option, as naming no type does
Frozen = TypeVar("Frozen")


def _frozen(cls: type[Frozen], values: dict[str, Any]) -> Frozen:
    """An instance of the frozen dataclass `cls` from `values`, every field in the dataclass's order: what its
    `__init__` makes (no `__post_init__` run), its fields set in one `__dict__` update rather than one
    `object.__setattr__` call each, a frozen dataclass's way: `_base_query`'s `ServiceQuery` of 12 fields took ~23k
    instructions a match, ~9k so (bench/RESULTS.md, "outside the index pass", session 26). Tests hold the requests,
    queries and coverages made so equal, field by field, to `cls(...)`; the golden answers hold `MatchResponse`'s."""
    made = object.__new__(cls)
    made.__dict__.update(values)
    return made


class HomeAreas(Protocol):
    @property
    def icb_code(self) -> str | None: ...

    @property
    def icb_name(self) -> str | None: ...

    def codes(self) -> tuple[str, ...]: ...


class HomeLike(Protocol):
    """A person's home as matching needs it (geodata.Home is one; so is any frozen point with areas)."""

    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...

    @property
    def areas(self) -> HomeAreas: ...

    @property
    def precision(self) -> str: ...  # 'postcode', 'sector', 'district', 'place' or 'point' (`geodata.Home`)

    @property
    def district(self) -> str | None: ...

    @property
    def place(self) -> str | None: ...  # the place a place name was read as (`geodata.Home.place`): distances' words


@dataclass(frozen=True)
class MatchRequest:
    needs: tuple[str, ...] = ()
    types: tuple[ServiceType, ...] | None = None  # None: any suitable option
    subtypes: tuple[str, ...] | None = None
    age: int | None = None
    gender: PersonGender | None = None
    max_distance_km: float | None = None
    own_icb_only: bool = False
    accepting_only: bool = False
    needs_confirmed: bool = False
    include_out_of_catchment: bool = False
    limit: int = 10
    current_placement: tuple[float, float] | None = None  # (lat, lon)
    order: Order = "nearest"
    each_type: bool = False  # named types ranked one at a time, up to `limit` of each, as "any" is

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise InvalidValue(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}.", field="order")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidValue(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}.", field="limit")
        if self.max_distance_km is not None and not 0 < self.max_distance_km <= 1000:
            raise InvalidValue("max_distance_km must be more than 0 and at most 1000.",
                               field="max_distance_km")
        if self.age is not None and not 0 <= self.age <= 120:
            raise InvalidValue("age must be between 0 and 120.", field="age")

    def reach(self, home: HomeLike) -> tuple[float, float, float | None] | None:
        """Where this search looks, as coverage counts the candidates awaiting review within it
        (`rehabmap.coverage.HomeCoverage`): around the home up to the radius; None where it looks only in
        the home's ICB."""
        return None if self.own_icb_only else (home.lat, home.lon, self.max_distance_km)

    @classmethod
    def from_input(cls, *, needs: Iterable[str] = (), types: str | Iterable[str] | None = None,
                   subtypes: Iterable[str] | None = None, age: int | None = None,
                   gender: PersonGender | None = None, max_distance_km: float | None = None,
                   own_icb_only: bool = False, accepting_only: bool = False, needs_confirmed: bool = False,
                   include_out_of_catchment: bool = False, limit: int = 10,
                   current_placement: tuple[float, float] | None = None, order: Order = "nearest",
                   each_type: bool = False) -> MatchRequest:
        """The request from the codes a person gave (any case; each need and type counted once); the first
        code or value it refuses raises a caller's error naming its field.

        Every field is given here, so the instance is made by `_frozen` (~30k of this call's ~60k instructions
        a `POST /match` were `__init__`'s; bench/RESULTS.md, "Outside `match()`", session 17), then checked by
        `__post_init__`."""
        wanted = parse_types(types)
        request = _frozen(cls, dict(
            needs=parse_needs(needs), types=wanted,
            subtypes=parse_subtypes(list(subtypes) if subtypes is not None else None, wanted), age=age, gender=gender,
            max_distance_km=max_distance_km, own_icb_only=own_icb_only, accepting_only=accepting_only,
            needs_confirmed=needs_confirmed, include_out_of_catchment=include_out_of_catchment, limit=limit,
            current_placement=current_placement, order=order, each_type=each_type))
        request.__post_init__()
        return request


def parse_types(values: str | Iterable[str] | None) -> tuple[ServiceType, ...] | None:
    """The service types asked for, each once, or None for any suitable option. 'any' names no type: alone
    it asks for any suitable option, beside named types it adds nothing."""
    named = [values] if isinstance(values, str) else list(values or ())
    return tuple(dict.fromkeys(parse_type(v) for v in named if v.strip().lower() != ANY_TYPE)) or None


def parse_needs(values: Iterable[str]) -> tuple[str, ...]:
    """The needs stated, each once, in the order given. At most one of the gender needs: no service is both
    women-only and men-only (or mixed), so asking for two found nothing, as if none were near."""
    needs = tuple(dict.fromkeys(parse_asked_need(v) for v in values))
    if len(gendered := [n for n in needs if n in GENDER_NEEDS]) > 1:
        raise InvalidValue(f"Ask for at most one of {', '.join(GENDER_NEEDS)}: no service is both "
                           f"{' and '.join(gendered)}.", field="needs")
    return needs


def round_km(distance_km: float) -> float:
    """`round(distance_km, 3)`, a distance to the metre as answers give it, without round's two decimal
    conversions (~4k instructions; ~10 a match). The same float: below 1e9 km the product x * 1000 is within
    half an ulp of 1e12 (6.1e-5) of the exact one, so outside a band of 1e-4 around a half its nearest
    integer N is the one the exact product rounds to, and N / 1000 (one IEEE division) is the double nearest
    the decimal N/1000, which is what round returns. A value in that band (a tie, or near one), zero (round
    keeps -0.0), negative or out of range is given to round itself."""
    if 0.0 < distance_km < 1e9:
        scaled = distance_km * 1000.0
        whole = floor(scaled)
        fraction = scaled - whole  # exact: a double's fractional part is a double
        if not 0.4999 < fraction < 0.5001:
            return (whole + (fraction > 0.5)) / 1000.0
    return round(distance_km, 3)


class MatchResult(NamedTuple):
    """One service in an answer. A named tuple: as immutable as a frozen dataclass (a summary's result may
    be the same object as a group's), and about a third of the cost to make, ~10 times a match."""

    service: Service
    distance_km: float
    in_home_icb: bool
    matched_needs: list[str]
    unknown_needs: list[str]  # not stated either way; some may be read from its words (the next two)
    needs_read_from_text: tuple[str, ...]  # of the unknown needs, those its words suggest it meets
    needs_read_not_met: tuple[str, ...]  # of the unknown needs, those its words suggest it does not meet
    out_of_catchment: bool
    capacity: Capacity | None
    explanation: str
    distance_saved_km: float | None = None
    # How old the listing is where no live source has confirmed it lately (`dated_listing`, or for a record whose
    # live sources have not confirmed it within the window, `unconfirmed_listing`); None otherwise.
    dated_listing: str | None = None

    @property
    def fit(self) -> Fit:
        return Fit.of(self.service, self.matched_needs, self.capacity)


class TypeGroup(NamedTuple):
    """The results of one type (or of the types named together), and how many pass the filters in all. Named
    tuples, this and `TypeSummary`: as immutable as frozen dataclasses, for half the cost to make (~3k
    instructions against ~6k: a frozen dataclass sets each field through `object.__setattr__`)."""

    types: frozenset[ServiceType]
    results: list[MatchResult]
    total: int
    # Of types named together: per type the index counted in the ranking's pass (one its k nearest hold none of,
    # `Around.totals_of_types`), how many of `total` are of it; else None (`left_out` counts them).
    totals_of_types: dict[ServiceType, int] | None = None


class TypeSummary(NamedTuple):
    service_type: ServiceType
    in_home_icb: int
    nearest: MatchResult | None


@dataclass(frozen=True)
class MatchResponse:
    results: list[MatchResult]
    summary: list[TypeSummary] = field(default_factory=list)
    current_placement_km: float | None = None
    groups: list[TypeGroup] = field(default_factory=list)


def covers(service: Service, home: HomeLike) -> bool:
    """Whether the home lies in the service's catchment (no stated catchment means it does)."""
    area = service.service_area
    if not area.restricted:
        return True
    if set(area.codes) & set(home.areas.codes()):
        return True
    return area.polygon is not None and shape(area.polygon).intersects(shapely.Point(home.lon, home.lat))


def _coverage(request: MatchRequest, home: HomeLike) -> Coverage | None:
    """The home as the catchment filter reads it; one object for all of a match's questions, so an index
    can remember what it worked out about the home for as long as the match holds it, and no longer."""
    if request.include_out_of_catchment:
        return None
    return _frozen(Coverage, {"codes": frozenset(home.areas.codes()), "lat": home.lat, "lon": home.lon})


# Each `ServiceQuery` field's default, for the fields `_base_query` does not set.
_QUERY_DEFAULTS = {f.name: f.default for f in dataclass_fields(ServiceQuery)}


def _base_query(request: MatchRequest, coverage: Coverage | None,
                types: frozenset[ServiceType] | None) -> ServiceQuery:
    """The request's filters as the index asks them, of `types`, made by `_frozen`."""
    return _frozen(ServiceQuery, {
        **_QUERY_DEFAULTS, "types": types, "subtypes": frozenset(request.subtypes) if request.subtypes else None,
        "needs": request.needs, "needs_confirmed": request.needs_confirmed, "age": request.age,
        "gender": request.gender, "covers": coverage, "accepting_only": request.accepting_only})


def _effective_key(icb: str | None) -> Callable[[Hit], tuple[float, float, str]]:
    """A hit's place in the nearest order for a home in `icb` (effective distance, distance, id)."""
    return effective_key(icb, OUT_OF_AREA_MARGIN_KM)


def _ranked(backend: IndexBackend, home: HomeLike, query: ServiceQuery, k: int, radius_km: float | None,
            own_icb_only: bool, *, count_icb: bool = False, nearest: tuple[list[Hit], list[Hit]] | None = None
            ) -> tuple[list[Hit], list[Hit] | None, int | None, dict[ServiceType, int] | None,
                       dict[ServiceType, int] | None]:
    """Top k by effective distance; the k nearest overall it looked at (None when it did not look), then,
    where the index tells them from the same pass, each of the query's types' nearest within the radius
    that those k leave out (so the first hit of a type in this list is its nearest passing the query); with
    a radius, how many pass within it (None without one); with `count_icb`, where the same call could
    count them, per type how many pass in the home ICB (`_counts_in_icb` of the query's types; else None);
    and where the same call counted them, per type the k nearest hold none of, how many pass within the
    radius (`Around.totals_of_types`; else None). `nearest`: without a radius, the k nearest inside the home
    ICB and overall when the caller asked them already (`_nearest_of_types`).

    Exact: the top k by effective key always lie in the union of the k nearest inside the home ICB and the
    k nearest overall (the margin is one constant). With a radius, the three (or four) are asked of the
    same circle in one call (`IndexBackend.around`)."""
    icb = home.areas.icb_code
    if own_icb_only:
        if not icb:
            return [], None, 0, None, None
        query = replace(query, area_codes=frozenset({icb}))
        if radius_km is None:
            inside = nearest[0] if nearest is not None else backend.nearest(home.lat, home.lon, query, k=k)
            return inside, None, None, None, None
        found = backend.around(home.lat, home.lon, query, k=k, radius_km=radius_km)
        return found.nearest, None, found.total, None, None
    counts = of_totals = None
    of_types: dict[ServiceType, Hit] | None = None
    ranked: list[Hit] | None = None  # when the index ranks them (`Around.ranked`)
    if radius_km is None and nearest is not None:
        (inside, overall), total = nearest, None
    elif radius_km is None:
        inside = backend.nearest(home.lat, home.lon, replace(query, area_codes=frozenset({icb})), k=k) if icb else []
        overall, total = backend.nearest(home.lat, home.lon, query, k=k), None
    else:
        found = backend.around(home.lat, home.lon, query, k=k, radius_km=radius_km,
                               within=frozenset({icb}) if icb else None, count_within=count_icb, each_type=True,
                               margin_km=OUT_OF_AREA_MARGIN_KM if icb else None)
        inside, overall, total, counts = found.nearest_within, found.nearest, found.total, found.within_by_type
        of_types, ranked, of_totals = found.nearest_of_types, found.ranked, found.totals_of_types
    known = [*overall, *of_types.values()] if of_types else overall
    if ranked is None:
        merged = {h.service.id: h for h in [*inside, *overall]}
        ranked = sorted(merged.values(), key=_effective_key(icb))[:k]
    return ranked, known, total, counts, of_totals


def best_fit_hits(backend: IndexBackend, home: HomeLike, query: ServiceQuery, k: int, radius_km: float | None,
                  own_icb_only: bool, today: date, max_age_days: int) -> list[Hit]:
    """Top k by (fit, effective distance, distance, id), as the index ranks them (`IndexBackend.best_fit`).
    `max_age_days`: the capacity window."""
    icb = home.areas.icb_code
    if own_icb_only:
        if not icb:
            return []
        query = replace(query, area_codes=frozenset({icb}))
    return backend.best_fit(home.lat, home.lon, query, k=k, radius_km=radius_km, within=icb or None,
                            margin_km=OUT_OF_AREA_MARGIN_KM, since=capacity_current_since(today, max_age_days))


_held_words, _words_of = RECORD_WORDS.held.get, RECORD_WORDS.of  # `ResultMaker.result`'s, looked up once


class ResultMaker:
    """Makes one match's results. What they share is worked out once, when the match starts, and goes with
    it: the home's ICB, the request's needs, the oldest capacity report that holds (from the capacity window,
    `capacity_max_age_days`, read once per match), and the `Explainer` that words them."""

    __slots__ = ("_home", "_icb", "_needs", "_unknown", "_outside_counts", "_since", "_explainer", "_unconfirmed")

    def __init__(self, home: HomeLike, request: MatchRequest, today: date, max_age_days: int,
                 unconfirmed: Unconfirmed | None = None, measured: str | None = None) -> None:
        self._home = home
        self._icb = home.areas.icb_code or None
        self._needs = request.needs
        # Per set of the stated needs a service says it meets, the stated needs left unknown: ~10 results
        # share one or two sets.
        self._unknown: dict[tuple[str, ...], tuple[str, ...]] = {(): request.needs}
        # Without `include_out_of_catchment` every hit passed the catchment filter: no need to test it again.
        self._outside_counts = request.include_out_of_catchment
        self._since = capacity_current_since(today, max_age_days)
        self._explainer = Explainer(home.areas.icb_name, request.needs, max_age_days,
                                    measured or measured_from(home.precision, home.district, home.place))
        # The listings no live source has confirmed within the window (`unconfirmed_listings`): none while every
        # source syncs, when a result asks nothing of them.
        self._unconfirmed = unconfirmed if unconfirmed is not None and unconfirmed.listed else None

    def result(self, hit: Hit, placement_km: float | None) -> MatchResult:
        service, distance = hit
        # What the record alone says, made once per record object (`RECORD_WORDS`): its fields are not read, nor
        # its own words written, again for each result (bench/RESULTS.md, "a match's results", session 28).
        held = _held_words(id(service))
        words = held[1] if held is not None else _words_of(service)
        in_icb = self._icb is not None and words.icb_code == self._icb
        matched = tuple(filter(words.needs_met.__contains__, self._needs)) if self._needs else ()
        unknown = self._unknown.get(matched)
        if unknown is None:
            unknown = self._unknown[matched] = tuple(n for n in self._needs if n not in matched)
        outside = self._outside_counts and not covers(service, self._home)
        # Shared and empty for most results: most records read no need from their words.
        read: tuple[str, ...] = ()
        read_not: tuple[str, ...] = ()
        if unknown:
            said, said_not = words.read, words.read_not
            if said or said_not:
                read = tuple(filter(said.__contains__, unknown))
                read_not = tuple(filter(said_not.__contains__, unknown))
        capacity = capacity_reported_since(words.capacity, words.as_of, self._since)
        # + 0.0: the current placement itself (or a service beside it) saves nothing, not -0.0 km ("less than
        # 0.1 miles nearer").
        saved = None if placement_km is None else round_km(placement_km - distance) + 0.0
        dated, unconfirmed = words.dated, ""
        if self._unconfirmed is not None and (stale := unconfirmed_listing(service, self._unconfirmed)):
            dated, unconfirmed = stale, f" {stale}"
        # Every field given, in order: made as `MatchResult._make` makes it, without the named tuple's `__new__`
        # (a Python call that only passes its twelve arguments on: ~1.5k instructions of a result's ~25k).
        return tuple.__new__(MatchResult, (
            service, round_km(distance), in_icb, [*matched], [*unknown], read, read_not, outside, capacity,
            self._explainer.explain(service, words, distance, in_icb, matched, outside, capacity, read, read_not,
                                    unconfirmed),
            saved, dated))


def match(backend: IndexBackend, home: HomeLike, request: MatchRequest, today: date,
          unconfirmed: Unconfirmed | None = None, measured: str | None = None) -> MatchResponse:
    """`unconfirmed`: the listings no live source has confirmed within the window (`unconfirmed_listings`), which
    a result resting on them says (`unconfirmed_listing`); None: none said. `measured`: where the explanations say
    distances run from, for a caller that may name more than a reply echoes (the local command line names the
    sector searched, `measured_from` with its label); None: as a reply says it, no more than the district."""
    window = capacity_max_age_days()  # once per match, for every result's capacity and best-fit step
    maker = ResultMaker(home, request, today, window, unconfirmed, measured)
    placement_km = None
    if request.current_placement is not None:
        placement_km = great_circle_km(home.lat, home.lon, *request.current_placement)
    asked = frozenset(request.types or ServiceType)
    if request.types and not request.each_type:
        type_groups = [asked]
    else:
        type_groups = [frozenset({t}) for t in least_restrictive_first(request.types or ServiceType)]
    groups: list[TypeGroup] = []
    nearest_known: dict[ServiceType, Hit | None] = {}
    # A result without a placement distance is the summary's result for the same hit: made once.
    made: dict[ServiceType, tuple[list[Hit], list[MatchResult]]] = {}
    coverage = _coverage(request, home)
    # The summary counts the types asked for in the home ICB with the group's own query when there is one
    # group of exactly those types: the ranking's pass over the circle may count them too.
    count_icb = type_groups == [asked]
    icb_counts: dict[ServiceType, int] | None = None
    counted: dict[ServiceType, int] | None = None  # without a radius, per type asked, how many pass anywhere
    # Without a radius, each type its own list: every type's nearest in the home ICB and overall, one pass each.
    of_types = None
    if request.order != "best_fit" and request.max_distance_km is None and len(type_groups) > 1:
        of_types = _nearest_of_types(backend, home, request, _base_query(request, coverage, asked))
        # Each type's nearest anywhere passing the request's filters, or none: the summary's.
        nearest_known.update((t, hits[0] if hits else None) for t, hits in of_types[1].items())
    for types in type_groups:
        query = _base_query(request, coverage, types)
        overall: list[Hit] | None = None
        total: int | None = None
        of_totals: dict[ServiceType, int] | None = None
        if request.order == "best_fit":
            hits = best_fit_hits(backend, home, query, request.limit, request.max_distance_km,
                                 request.own_icb_only, today, window)
        else:
            asked_already = None
            if of_types is not None:
                (only,) = types
                asked_already = (of_types[0].get(only, []), of_types[1].get(only, []))
            hits, overall, total, icb_counts, of_totals = _ranked(
                backend, home, query, request.limit, request.max_distance_km, request.own_icb_only,
                count_icb=count_icb, nearest=asked_already)
        results = [maker.result(h, placement_km) for h in hits]
        if placement_km is None:
            made.update(dict.fromkeys(types, (hits, results)))
        if total is None and len(results) < request.limit:
            total = len(results)
        elif total is None and request.max_distance_km is None and len(type_groups) > 1:
            # Without a radius a group's count is a pass over every row whatever its types: the groups (one a
            # type) share one pass of all the types asked, each group reading its own types' counts from it.
            if counted is None:
                counted = _counts_by_type(backend, home, request, _base_query(request, coverage, asked))
            total = sum(counted.get(t, 0) for t in types)
        elif total is None:
            total = _count(backend, home, request, query)
        groups.append(TypeGroup(types, results, total, of_totals))
        # The k nearest overall are sorted by distance then id, like the summary's nearest of each type,
        # and pass the same filters (the radius only cuts further ones): so the first of a type among
        # them is that type's nearest anywhere; so is each type's nearest within the radius after them.
        # Each is of one of the group's types: once every one of those is known, the rest add nothing.
        for hit in overall or ():
            if nearest_known.setdefault(hit.service.service_type, hit) is hit and nearest_known.keys() >= types:
                break
    summary = summarise(backend, home, request, today, nearest_known=nearest_known, coverage=coverage,
                        icb_counts=icb_counts, made=made, maker=maker)
    return _frozen(MatchResponse, {"results": [r for g in groups for r in g.results], "summary": summary,
                                   "current_placement_km": placement_km, "groups": groups})


def _nearest_of_types(backend: IndexBackend, home: HomeLike, request: MatchRequest, query: ServiceQuery
                      ) -> tuple[dict[ServiceType, list[Hit]], dict[ServiceType, list[Hit]]]:
    """Per type of the query, the k nearest passing in the home ICB (none without an ICB) and overall (only the
    nearest where the request keeps to its own ICB: the summary's): `_ranked`'s two `nearest` calls of each
    type's own list without a radius, asked of every type at once (`IndexBackend.nearest_of_types`): two passes
    where there were fourteen."""
    icb, k = home.areas.icb_code, request.limit
    inside = backend.nearest_of_types(home.lat, home.lon, replace(query, area_codes=frozenset({icb})), k=k) \
        if icb else {}
    overall = backend.nearest_of_types(home.lat, home.lon, query, k=1 if request.own_icb_only else k)
    return inside, overall


def _count(backend: IndexBackend, home: HomeLike, request: MatchRequest, query: ServiceQuery) -> int:
    """How many services pass the request's filters: all a group's results would be without `limit`."""
    if request.max_distance_km is None:
        return sum(_counts_by_type(backend, home, request, query).values())
    narrowed = _in_own_icb(home, request, query)
    return 0 if narrowed is None else backend.count_near(home.lat, home.lon, narrowed,
                                                         radius_km=request.max_distance_km)


def _counts_by_type(backend: IndexBackend, home: HomeLike, request: MatchRequest,
                    query: ServiceQuery) -> dict[ServiceType, int]:
    """Per type of the query, how many services pass the request's filters anywhere (a request without a
    radius). Each of a service's filters but its type reads the service alone, so a type's count is the same
    whichever other types the query asks with it."""
    narrowed = _in_own_icb(home, request, query)
    return {} if narrowed is None else backend.count_by_type(narrowed)


def _in_own_icb(home: HomeLike, request: MatchRequest, query: ServiceQuery) -> ServiceQuery | None:
    """The query within the home's ICB where the request asks for its own ICB only (None where the home has
    none: nothing passes), else the query as it is."""
    if not request.own_icb_only:
        return query
    return replace(query, area_codes=frozenset({home.areas.icb_code})) if home.areas.icb_code else None


# A search's own options, each as the request field to change to see what it leaves out, and what a service it
# leaves out is, in words ('1 does not say it is taking new referrals'), singular and plural.
NARROWING: dict[str, tuple[bool, str, str]] = {
    "accepting_only": (False, "does not say it is taking new referrals", "do not say they are taking new referrals"),
    "needs_confirmed": (False, "has not confirmed every need given", "have not confirmed every need given"),
    "own_icb_only": (False, "is outside the person's ICB", "are outside the person's ICB"),
    "include_out_of_catchment": (True, "serves a catchment that does not include the person's home",
                                 "serve a catchment that does not include the person's home"),
}


# Where types named together share one list (not `each_type`), a type may pass every filter and still be left
# out, past the list's `limit`: the command line's `--type A --type B --limit 1` said "None found" of B.
LIMIT = "limit"


def _past(limit: int, n: int) -> str:
    first = "the first result" if limit == 1 else f"the first {limit} results"
    return f"{'passes' if n == 1 else 'pass'} every filter but {'comes' if n == 1 else 'come'} after {first}"


class LeftOut(NamedTuple):
    """Of a type an answer lists none of, the services within its distance it left out, and by what: how many
    pass every filter but come past a shared list's limit (LIMIT) where any do; else how many pass the search
    without its own options, and how many of those each option it has on leaves out (one may be left out by
    several). Near Mansfield, "taking new referrals" left out Dovetail House, 0.1 mile away, which has not said
    whether it is: that is neither "none found" nor "no data for this area"."""

    total: int
    by: dict[str, int]  # a `NARROWING` option, or LIMIT -> how many of `total` it leaves out

    def says(self, request: MatchRequest) -> str:
        """In words: '1 service within 10.0 miles (16.1 km) of home was left out by the search's options: 1 does
        not say it is taking new referrals.'"""
        where = f"within {miles_and_km(request.max_distance_km)} of home" if request.max_distance_km else "in England"
        reasons = "; ".join(f"{n} {_past(request.limit, n) if option == LIMIT else NARROWING[option][2 - (n == 1)]}"
                            for option, n in self.by.items())
        many = "service" if self.total == 1 else "services"
        return (f"{self.total} {many} {where} {'was' if self.total == 1 else 'were'} left out by the search's "
                f"{'limit' if LIMIT in self.by else 'options'}: {reasons}.")


def left_out(backend: IndexBackend, home: HomeLike, request: MatchRequest, response: MatchResponse,
             service_type: ServiceType) -> LeftOut | None:
    """What the request's limit or own options left out of a type `response` lists none of (None where they
    left out none): asked only of such a type, so an answer that lists some costs nothing more, and `match`
    answers as it did. A type with a group of its own passes none (its group's total, known); one sharing a
    group is counted first, by the group's pass where the index counted it there (`TypeGroup.totals_of_types`), else
    by a count of its own: those that pass are left out by the limit alone (12 of the bench's 200 bodies name
    two types within 50 km, and one fills the list: a second pass over the circle was ~220k instructions)."""
    types = frozenset({service_type})
    own = next((g for g in response.groups if g.types == types), None)
    counted = own.total if own is not None else next(
        (g.totals_of_types[service_type] for g in response.groups
         if g.totals_of_types and service_type in g.totals_of_types), None)
    passing = counted if counted is not None else _count(backend, home, request,
                                                         _base_query(request, _coverage(request, home), types))
    if passing:
        return LeftOut(passing, {LIMIT: passing})
    relaxed = replace(request, accepting_only=False, needs_confirmed=False, own_icb_only=False,
                      include_out_of_catchment=True)
    total = _count(backend, home, relaxed, _base_query(relaxed, None, types))
    if not total:
        return None
    by = {}
    for option, (show, _, _) in NARROWING.items():
        if getattr(request, option) != show:
            narrowed: dict[str, Any] = {option: not show}
            one = replace(relaxed, **narrowed)
            by[option] = total - _count(backend, home, one, _base_query(one, _coverage(one, home), types))
    found = {option: n for option, n in by.items() if n}
    return LeftOut(total, found) if found else None


def fewer_needs_list_some(backend: IndexBackend, home: HomeLike, request: MatchRequest) -> bool:
    """Whether a search with needs that lists none would list some with fewer: with none at all, its other filters
    and options as they are (fewer needs pass all that more do). Asked only of a search listing none, so that
    "fewer needs" is offered where it helps: at CH31 9FU, level 2 units for 'female only' taking new referrals
    list none, and without the need a men's unit that takes them; for Wirral's advocacy, whose every service's
    catchment leaves it out, no need dropped lists one."""
    if not request.needs:
        return False
    fewer = replace(request, needs=())
    types = frozenset(request.types or ServiceType)
    return bool(_count(backend, home, fewer, _base_query(fewer, _coverage(fewer, home), types)))


def summarise(backend: IndexBackend, home: HomeLike, request: MatchRequest, today: date, *,
              nearest_known: dict[ServiceType, Hit | None] | None = None,
              coverage: Coverage | None = None,
              icb_counts: dict[ServiceType, int] | None = None,
              made: dict[ServiceType, tuple[list[Hit], list[MatchResult]]] | None = None,
              maker: ResultMaker | None = None) -> list[TypeSummary]:
    """Per type asked for: how many pass the filters inside the home ICB, and the nearest anywhere.

    `nearest_known`: per type, its nearest service passing the request's filters (None: none passes), where
    the caller already knows it (so it is not asked again); `coverage`: the caller's `_coverage` of the home;
    `icb_counts`: the per-type counts in the home ICB, where the caller already has them; `made`: per type,
    the hits of the caller's group of that type and the results made of them (without a placement
    distance): a `nearest_known` hit already shown (the same object) is not made again; `maker`: the
    caller's `ResultMaker` for this match."""
    wanted = request.types or tuple(ServiceType)
    maker = maker or ResultMaker(home, request, today, capacity_max_age_days())
    icb = home.areas.icb_code
    coverage = coverage or _coverage(request, home)
    if not icb:
        counts: dict[ServiceType, int] = {}
    elif icb_counts is not None:
        counts = icb_counts
    else:
        counts = _counts_in_icb(backend, request, coverage, wanted, icb)
    summary = []
    for service_type in least_restrictive_first(wanted):
        if nearest_known is not None and service_type in nearest_known:
            known = nearest_known[service_type]
            nearest = [] if known is None else [known]
        else:
            nearest = backend.nearest(home.lat, home.lon, _base_query(request, coverage, frozenset({service_type})),
                                      k=1)
        result = (_made_of(nearest[0], (made or {}).get(service_type)) or maker.result(nearest[0], None)
                  if nearest else None)
        # Made as `ResultMaker.result` makes a result, without the named tuple's `__new__` (a Python call).
        summary.append(tuple.__new__(TypeSummary, (service_type, counts.get(service_type, 0), result)))
    return summary


def _made_of(hit: Hit, made: tuple[list[Hit], list[MatchResult]] | None) -> MatchResult | None:
    """The result made of this very hit among a group's, if any: ~10 identity tests, against a map of every
    result by its hit's `id` made for the two or so a summary looks up."""
    if made is not None:
        for made_hit, result in zip(*made):
            if made_hit is hit:
                return result
    return None


def _counts_in_icb(backend: IndexBackend, request: MatchRequest, coverage: Coverage | None,
                   wanted: tuple[ServiceType, ...], icb_code: str) -> dict[ServiceType, int]:
    """Per wanted type, how many services pass the filters inside the home ICB, in one pass."""
    icb = frozenset({icb_code})
    counts = backend.count_by_type(replace(_base_query(request, coverage, frozenset(wanted)), area_codes=icb))
    return {t: counts.get(t, 0) for t in wanted}
