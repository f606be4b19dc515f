"""Browsing the index: the filters GET /services, its exports and the ORUK lists share, read once.

Near a place, results come from `backend.nearest` (exact, nearest first) and carry their distance and
whether the place lies in their catchment; otherwise from `backend.find` (by relevance when there is text,
else by name). Plain functions over an index backend and the geography, like matching.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

from geodata.errors import CrossesBorder, OutsideEngland, shorten
from geodata.geography import Geography, Home
from rehabmap import coverage as held
from rehabmap.errors import CALLER_ERRORS, InvalidValue
from rehabmap.index.base import Coverage, IndexBackend, ServiceQuery
from rehabmap.match import covers, parse_needs, round_km
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType, parse_type

Sort = Literal["distance", "relevance", "name"]

# Deep pages cost a scan each; like Elasticsearch's result window, paging stops here (the exports have none).
MAX_WINDOW = 10_000


@dataclass(frozen=True)
class Listed:
    service: Service
    distance_km: float | None = None
    in_home_icb: bool | None = None
    out_of_catchment: bool | None = None


@dataclass(frozen=True)
class Browse:
    query: ServiceQuery
    near: Home | None = None
    radius_km: float | None = None

    @property
    def sort(self) -> Sort:
        return "distance" if self.near else "relevance" if self.query.text else "name"


def locate(geography: Geography, prefix: str | None = None, *, postcode: str | None = None,
           place: str | None = None, lat: float | None = None, lon: float | None = None) -> Home:
    """Resolve a home; a caller's error names the input as the caller sent it (e.g. `home.postcode`)."""
    try:
        return geography.resolve(postcode=postcode, place=place, lat=lat, lon=lon)
    except CALLER_ERRORS as error:
        if prefix and error.field:
            error.field = f"{prefix}.{error.field}"
        raise


def locate_placement(geography: Geography, postcode: str, prefix: str | None = None) -> Home:
    """A current placement's postcode, as a point to measure from; refused, as a placement is
    (`placement_beyond_england`), where it is beyond England or may be."""
    try:
        return locate(geography, prefix, postcode=postcode)
    except OutsideEngland as error:
        raise placement_beyond_england(postcode, error) from error


_SAME_WITHOUT_IT = "the options and their order are the same without it."


def placement_beyond_england(given: str, error: OutsideEngland) -> OutsideEngland:
    """A current placement beyond England is no mistake (people are placed out of area in Wales and Scotland),
    so it is not told, as a home there is, where that nation lists its services: rehabmap knows no places
    beyond England to measure from, and the options are the same without it. One given as a postcode sector or
    district that crosses the border (`CrossesBorder`) may be in England: its full postcode tells."""
    if isinstance(error, CrossesBorder):
        return OutsideEngland(
            f"The current placement {error.area}. Give its full postcode, so that rehabmap can tell which side of the "
            f"border it is on, or leave the current placement out: {_SAME_WITHOUT_IT}", field=error.field)
    return OutsideEngland(
        f"The current placement '{shorten(given, 40)}' is outside England, and rehabmap knows places in England "
        "only, so it cannot say how much nearer home each option is than that placement. Leave the current "
        f"placement out: {_SAME_WITHOUT_IT}", field=error.field)


def browse(geography: Geography, *, text: str | None = None, types: list[str] | None = None,
           needs: list[str] | None = None, postcode: str | None = None, place: str | None = None,
           radius_km: float | None = None, query: ServiceQuery | None = None) -> Browse:
    """Read the filters; unknown types and needs, and a radius with nothing to measure from, are 400s."""
    query = query or ServiceQuery()
    if types:
        query = replace(query, types=frozenset(parse_type(t) for t in types))
    if needs:
        query = replace(query, needs=parse_needs(needs))
    text = (text or "").strip()
    if text:
        query = replace(query, text=text)
    near = None
    if postcode is not None or place is not None:
        near = locate(geography, postcode=postcode, place=place)
    elif radius_km is not None:
        raise InvalidValue("radius_km needs a place to measure from: give a postcode or a place as well.",
                           field="radius_km")
    return Browse(query, near, radius_km)


def check_window(page: int, per_page: int) -> None:
    if page * per_page > MAX_WINDOW:
        raise InvalidValue(f"Paging stops at result {MAX_WINDOW}: page × per_page must be at most {MAX_WINDOW}. "
                           "Narrow the search instead.", field="page")


def listed(b: Browse, service: Service, distance_km: float) -> Listed:
    home = b.near
    assert home is not None
    icb = home.areas.icb_code
    return Listed(service, round_km(distance_km), bool(icb) and service.areas.icb_code == icb,
                  not covers(service, home))


def page_of(backend: IndexBackend, b: Browse, page: int, per_page: int) -> tuple[list[Listed], int]:
    """One page of results and the total passing the filters (within the radius, when given). Near a
    place, the total is counted, not fetched: only the services up to the end of the page are read."""
    check_window(page, per_page)
    start = (page - 1) * per_page
    near = b.near
    if near is None:
        found = backend.find(b.query, limit=per_page, offset=start)
        return [Listed(s) for s in found.items], found.total
    if b.radius_km is None:
        total = backend.find(b.query, limit=0).total
    else:
        total = backend.count_near(near.lat, near.lon, b.query, radius_km=b.radius_km)
    k = min(page * per_page, total)
    hits = backend.nearest(near.lat, near.lon, b.query, k=k, radius_km=b.radius_km) if k > start else []
    return [listed(b, h.service, h.distance_km) for h in hits[start:start + per_page]], total


def every(backend: IndexBackend, b: Browse) -> Iterator[Listed]:
    """All results in browse order, for the exports, read from the index as they are written out (see
    `IndexBackend.scan`): nearest first near a place, else by relevance or name. The first read happens
    here, so a missing or unreachable index is an error reply, not a broken stream."""
    near = b.near
    if near is None:
        return (Listed(s) for s in backend.scan(b.query))
    hits = backend.scan_nearest(near.lat, near.lon, b.query, radius_km=b.radius_km)
    return (listed(b, h.service, h.distance_km) for h in hits)


def total_pages(total: int, per_page: int) -> int:
    return math.ceil(total / per_page) if total else 0


def coverage(home: Home) -> Coverage:
    return Coverage(frozenset(home.areas.codes()), home.lat, home.lon)


def held_near(coverage: held.CoverageMap, b: Browse, total: int) -> list[tuple[held.Coverage, bool]] | None:
    """Near a place, where the answer lists none, or lists one type: per type the filters ask for (every type, in
    the pathway's order, when none), whether the directory holds that type's data there and whether this browse
    found some of it, for what the answer means ("None found. The directory holds complete … data for this area",
    "Not yet covered: …", "Found, but … there may be more"), as a match says it. Before, an empty page near a place
    said nothing, and "none near you" and "no data here" read alike. None away from a place (coverage is of a
    home's areas) and where several types are listed: which of them this answer found would cost a count of each
    (an Elasticsearch request each, where a page near a place costs three): ask one type for its words."""
    near = b.near
    types = [t for t in ServiceType if b.query.types is None or t in b.query.types]
    if near is None or (total and len(types) > 1):
        return None
    at_home = coverage.at_home(near.areas.codes(), (near.lat, near.lon, b.radius_km))
    return [(at_home.for_request(t, b.query.subtypes or ()), total > 0) for t in types]
