"""The Open Referral UK 3.0 API, mounted at /oruk (rehabmap's own /services has another shape).

Objects come from `rehabmap.oruk`; this module only reads requests, pages and filters. Lists use the HSDS
`Page` wrapper. /service_at_locations near a postcode is sorted by distance, which ORUK does not define:
such replies say so in an `x-rehabmap-extension` field and an `X-Rehabmap-Extension` header.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.dependencies.utils import get_flat_params
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from api import errors
from rehabmap.browse import browse, coverage, page_of, total_pages
from api.cors import OpenCorsMiddleware
from api.deps import AppState, State
from api.errors import TaxonomyNotFound
from api.logging import FRAMEWORK_TELEMETRY
from api.oruk_schemas import (OrukRoot, OrukService, OrukServiceAtLocation, OrukTaxonomy, OrukTaxonomyTerm, Page,
                              ServiceAtLocationPage)
from api.schemas import ERRORS, POSTCODE_MAX_LENGTH, NonBlank
from rehabmap import __version__, oruk
from indexer.sync.moved import moved
from indexer.sync.store import SyncStore
from rehabmap.errors import DomainError, InvalidValue, ServiceNotFound
from rehabmap.index.base import IndexBackend, ServiceQuery
from rehabmap.index.generation_cache import GenerationCache
from rehabmap.maintain.renames import moved_to, renamed_to
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType

VERSION = "3.0"
PROFILE = "https://github.com/OpenReferralUK/uk-profile/blob/main/docs/index.md"
EXTENSION_NOTE = ("Sorted by distance from the postcode's centroid, nearest first, and each item carries "
                  "distance_km: a rehabmap extension that Open Referral UK does not define.")
# HSDS 3.0 `service_list`: the one-to-one fields of a service, and its organization.
LIST_FIELDS = ("id", "organization_id", "program_id", "name", "alternate_name", "description", "url", "email",
               "status", "interpretation_services", "application_process", "fees_description", "wait_time",
               "fees", "accreditations", "eligibility_description", "minimum_age", "maximum_age",
               "assured_date", "assurer_email", "licenses", "alert", "last_modified", "organization", "program")

TAXONOMIES = oruk.taxonomies()
TERMS = oruk.taxonomy_terms()
_TAXONOMY_KEYS = {key: t for t in TAXONOMIES for key in (t["id"], t["name"])} | {
    term["taxonomy"]: next(t for t in TAXONOMIES if t["id"] == term["taxonomy_id"]) for term in TERMS}

# The query parameters that narrow a list in Open Referral (HSDS 3.0's API, and the UK profile's postcode,
# proximity, ages, times and day). An operation that does not apply one refuses it: answering as if unfiltered
# gave a consumer every service where it asked for some ('/services?postcode=NG18 2AT&proximity=1000' listed them
# all, 'modified_after' a date to come listed every service as changed since, and 'minimum_age=70' every service
# for adults of working age).
_NARROWING = ("search", "taxonomy_term_id", "taxonomy_id", "organization_id", "modified_after", "postcode",
              "proximity", "parent_id", "top_only", "minimum_age", "maximum_age", "start_time", "end_time", "day")


async def _refuse_filters_not_applied(request: Request) -> None:
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    applied = {param.alias for param in get_flat_params(route.dependant)}
    for name in request.query_params:
        if name in _NARROWING and name not in applied:
            here = ", ".join(sorted(applied & set(_NARROWING))) or "none"
            raise InvalidValue(f"This Open Referral feed does not filter {route.path} by '{name}', so it cannot "
                               f"answer as if it had. The filters it applies there: {here}.", field=name)


router = APIRouter(responses=ERRORS, dependencies=[Depends(_refuse_filters_not_applied)])
PageNumber = Annotated[int, Query(alias="page", ge=1, le=10_000,
                                  description="Page number of paginated result, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=500, description="Number of results requested in a single page.")]
Search = Annotated[str | None, Query(max_length=200, description="Full text search.",
                                     openapi_examples={"recovery": {"value": "recovery college"}})]
TermId = Annotated[NonBlank | None, Query(
    max_length=100, description="Only services with this taxonomy term, by its id: a rehabmap service type, "
    "subtype or need (met) from GET /taxonomy_terms, or a language need's (a `language:<code>` term, in the "
    "attributes of the services that state it; its code is no id).",
    openapi_examples={"level 2 inpatient": {"value": next(
        t["id"] for t in TERMS if t["code"] == ServiceType.inpatient_rehab_level2.value)}})]


class OrukIds:
    """ORUK service id, or service-at-location id, → rehabmap id, made again when the index generation changes
    (each map only once asked for)."""

    def __init__(self) -> None:
        # one map for each kind of id, a service's and its service-at-location's (`lookup`'s `of`), kept side by side
        # (one kept alone, a consumer following each in turn had every id read again at each request)
        self._maps: GenerationCache[dict[str, str]] = GenerationCache(size=2)
        self._stored: GenerationCache[dict[str, str]] = GenerationCache()

    def lookup(self, backend: IndexBackend, oruk_id: str, of: Callable[[str], str] = oruk.service_uuid) -> str | None:
        """The rehabmap id an ORUK id names, in any form of a UUID (`{…}`, `urn:uuid:…`, upper case, spaces
        around it: each was accepted as a UUID, and none but the lower-case form was ever found); None for text
        that is no UUID, which no map is made for."""
        key = _uuid_key(oruk_id)
        if key is None:
            return None
        ids = self._maps.get(backend, of.__name__, lambda: {of(i): i for i in backend.ids()})
        return ids.get(key)

    def stored(self, state: AppState, oruk_id: str) -> str | None:
        """The rehabmap id of the synced record an ORUK service id names where the live index holds none by it (one
        merged into another, which a rebuild leaves out), for `indexer.sync.moved` to say where it is listed now:
        made from the server's store's ids (`SyncStore.service_ids`) once an index generation, when first asked, and
        never where the server has no store or it does not answer, as `moved` looks for nothing then."""
        key = _uuid_key(oruk_id)
        if key is None or state.directory is None:
            return None
        store = SyncStore.served(state)
        try:
            ids = self._stored.get(state.backend, "stored", lambda: {oruk.service_uuid(i): i for i in (
                store.service_ids() if store is not None else ())})
        except DomainError:
            return None
        return ids.get(key)

    def service(self, backend: IndexBackend, oruk_id: str, of: Callable[[str], str]) -> Service | None:
        found = self.lookup(backend, oruk_id, of)
        return backend.get(found) if found else None


def _uuid_key(oruk_id: str) -> str | None:
    """An ORUK id as the maps hold it (a UUID's lower-case form), or None for text that is no UUID. A URN's
    "urn:uuid:" is read in any case (RFC 8141), which `uuid.UUID` reads in lower case only: `URN:UUID:…` was not
    found."""
    text = oruk_id.strip()
    if text[:9].lower() == "urn:uuid:":
        text = text[9:]
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def get_ids(request: Request) -> OrukIds:
    return request.app.state.oruk_ids


def page(contents: list[Any], total: int, number: int, per_page: int) -> dict[str, Any]:
    pages = total_pages(total, per_page)
    return {"total_items": total, "total_pages": pages, "page_number": number, "size": len(contents),
            "first_page": number == 1, "last_page": number >= pages, "empty": not contents,
            "contents": contents}


def listed_service(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: obj[k] for k in LIST_FIELDS if k in obj}


def _term_by_id(term_id: str) -> oruk.Term | None:
    """A term the feed gives (`oruk.term_by_id`: a language need's too), its id in any form of a UUID, as a service's
    is read (`_uuid_key`): until session 52 only the lower-case form was found."""
    return oruk.term_by_id(_uuid_key(term_id) or term_id)


# Where a reader finds a term's id: the list holds the fixed terms only (`oruk.taxonomy_terms`)
_TERMS_FOUND = ("See /oruk/taxonomy_terms for the service types, subtypes and needs; a language need's id is in the "
                "attributes of the services that state it.")


def _taxonomy(key: str) -> dict[str, Any] | None:
    """A taxonomy by its key or its name, or by its id in any form of a UUID (`_term_by_id`)."""
    return _TAXONOMY_KEYS.get(_uuid_key(key) or key)


def term_query(term_id: str | None) -> ServiceQuery:
    """A service type or subtype term filters by type; a need term asks for services that say they meet it."""
    if term_id is None:
        return ServiceQuery()
    term = _term_by_id(term_id.strip())
    if term is None:
        raise InvalidValue(f"Unknown taxonomy_term_id '{term_id[:60]}'. {_TERMS_FOUND}", field="taxonomy_term_id")
    if term.taxonomy is oruk.SERVICE_TYPES:
        if term.parent:
            return ServiceQuery(types=frozenset({ServiceType(term.parent)}), subtypes=frozenset({term.code}))
        return ServiceQuery(types=frozenset({ServiceType(term.code)}))
    if term.taxonomy is oruk.NEEDS:
        return ServiceQuery(needs=(term.code,), needs_confirmed=True)
    raise InvalidValue(f"Services cannot be filtered by '{term.name}', a term of the {term.taxonomy.key} "
                       "taxonomy; use a service type, subtype or need term.", field="taxonomy_term_id")


@router.get("/", response_model=OrukRoot, tags=["about"], summary="About this API and its relationship with HSDS")
def root(request: Request, state: State) -> OrukRoot:
    """The HSDS version, the Open Referral UK profile, and where this API's OpenAPI document is: an
    absolute URL on REHABMAP_PUBLIC_BASE_URL when that is set (HSDS asks for one), else a link relative to
    this reply. Never built from the request's Host header, which the caller chooses."""
    # root_path is the proxy prefix (app_root_path), then where this app is mounted: /oruk.
    prefix = request.scope.get("app_root_path", "")
    mount = request.scope.get("root_path", "").removeprefix(prefix)
    return OrukRoot(version=VERSION, profile=PROFILE,
                    openapi_url=state.settings.public_url(f"{mount}{request.app.openapi_url}", prefix=prefix))


@router.get("/services", response_model=Page[OrukService], tags=["services"],
            summary="Paginated list of services")
def list_services(
    state: State, search: Search = None, page_number: PageNumber = 1,
    per_page: PerPage = 50, taxonomy_term_id: TermId = None,
    full: Annotated[bool, Query(description="Return fully nested services (locations, service areas, "
                                "phones, attributes) instead of their one-to-one fields.")] = False,
) -> JSONResponse:
    """Active services by name (by relevance when searching)."""
    b = browse(state.geography, text=search, query=term_query(taxonomy_term_id))
    items, total = page_of(state.backend, b, page_number, per_page)
    today = state.today()
    objects = [oruk.service_to_oruk(i.service, today) for i in items]
    return JSONResponse(page(objects if full else [listed_service(o) for o in objects], total, page_number,
                             per_page))


@router.get("/services/{id}", response_model=OrukService, tags=["services"],
            summary="A fully nested service")
def get_service(
    state: State, ids: Annotated[OrukIds, Depends(get_ids)], request: Request,
    id: Annotated[str, Path(max_length=300, description="The service's ORUK id (a UUID), or its rehabmap id.",
                            openapi_examples={"sample": {"value": "7a25fc1c-74ad-5abf-823e-c934a94e0236"}})],
) -> Response:
    """Everything about one service, with its type, subtype, needs and details as attributes. The id of a service
    renamed since (`rehabmap.maintain.renames`) is redirected, permanently, to the ORUK id it has now; the id of a
    record merged into another (the same service from another source), for as long as it is, to the ORUK id of the
    record it is listed as (307), as GET /services/{id} sends it on (`indexer.sync.moved`): before, it answered the
    record as inactive, as if retired, or after a rebuild "No service", though the service is listed."""
    service = state.backend.get(id) or ids.service(state.backend, id, oruk.service_uuid)
    now = moved(state, service.id if service is not None else ids.stored(state, id) or id, service)
    if now is not None:
        return RedirectResponse(moved_to(request.scope["path"], request.url.query, id,
                                         oruk.service_uuid(now.service_id)), 308 if now.for_good else 307)
    if service is None:
        database = state.directory.database if state.directory else None
        renamed = renamed_to(database, id.strip().lower(), oruk.service_uuid)
        if renamed is not None:
            return RedirectResponse(moved_to(request.scope["path"], request.url.query, id, oruk.service_uuid(renamed)),
                                    308)
        raise ServiceNotFound(f"No service with id '{id[:80]}'.", field="id")
    return JSONResponse(oruk.service_to_oruk(service, state.today()))


@router.get("/service_at_locations/{id}", response_model=OrukServiceAtLocation, tags=["services"],
            summary="A fully nested service at its location")
def get_service_at_location(
    state: State, ids: Annotated[OrukIds, Depends(get_ids)],
    id: Annotated[str, Path(max_length=100, description="The service-at-location's ORUK id (a UUID), as "
                            "service_at_locations[].id gives it.",
                            openapi_examples={"sample": {"value": "5aa6d07b-b92d-56aa-93b0-95b88e4b97bf"}})],
) -> JSONResponse:
    """The service at its location, with the location and the fully nested service (HSDS 3.0 defines this
    route, and every service lists its service-at-location's id: a consumer following one must find it)."""
    service = ids.service(state.backend, id, oruk.service_at_location_uuid)
    if service is None:
        raise ServiceNotFound(f"No service at location with id '{id[:80]}'. Each service's "
                              "service_at_locations[].id is one.", field="id")
    obj = oruk.service_to_oruk(service, state.today())
    [at] = obj.pop("service_at_locations")
    return JSONResponse({**at, "service": obj})


@router.get("/service_at_locations", response_model=ServiceAtLocationPage, tags=["services"],
            summary="Paginated list of services at locations; near a postcode, nearest first",
            responses={200: {"headers": {"X-Rehabmap-Extension": {
                "description": "'sorted-by-distance' when the list is sorted by distance (a rehabmap extension).",
                "schema": {"type": "string"}}}}})
def list_service_at_locations(
    state: State, search: Search = None, page_number: PageNumber = 1,
    per_page: PerPage = 50, taxonomy_term_id: TermId = None,
    postcode: Annotated[NonBlank | None, Query(
        max_length=POSTCODE_MAX_LENGTH, description="Only services whose service area includes this postcode (or "
        "that state none), sorted by distance from its centroid, nearest first (a rehabmap extension).",
        openapi_examples={"Leeds": {"value": "LS9 7TF"}})] = None,
    proximity: Annotated[float | None, Query(
        gt=0, le=1_000_000, allow_inf_nan=False,
        description="With postcode: only services within this many metres of it.",
        openapi_examples={"10 km": {"value": 10000}})] = None,
) -> JSONResponse:
    """Each service at its location, with the service's one-to-one fields."""
    if proximity is not None and postcode is None:
        raise InvalidValue("proximity is measured from a postcode: give postcode as well.", field="proximity")
    b = browse(state.geography, text=search, postcode=postcode,
               radius_km=None if proximity is None else proximity / 1000, query=term_query(taxonomy_term_id))
    if b.near is not None:
        b = replace(b, query=replace(b.query, covers=coverage(b.near)))
    items, total = page_of(state.backend, b, page_number, per_page)
    contents = []
    today = state.today()
    for item in items:
        obj = oruk.service_to_oruk(item.service, today)
        at = {**obj["service_at_locations"][0], "service": listed_service(obj)}
        if item.distance_km is not None:
            at["distance_km"] = item.distance_km
        contents.append(at)
    body = page(contents, total, page_number, per_page)
    if b.near is None:
        return JSONResponse(body)
    return JSONResponse({**body, "x-rehabmap-extension": EXTENSION_NOTE},
                        headers={"X-Rehabmap-Extension": "sorted-by-distance"})


@router.get("/taxonomies", response_model=Page[OrukTaxonomy], tags=["taxonomies"],
            summary="Paginated list of taxonomies")
def list_taxonomies(
    page_number: PageNumber = 1,
    per_page: PerPage = 50,
) -> JSONResponse:
    """rehabmap's vocabulary: service types (subtypes as children), needs, legacy labels, record details."""
    start = (page_number - 1) * per_page
    return JSONResponse(page(TAXONOMIES[start:start + per_page], len(TAXONOMIES), page_number, per_page))


@router.get("/taxonomies/{id}", response_model=OrukTaxonomy, tags=["taxonomies"], summary="A taxonomy")
def get_taxonomy(id: Annotated[str, Path(max_length=100, description="Taxonomy id (or its key, e.g. "
                                         "rehabmap-service-types).",
                                         openapi_examples={"types": {"value": "rehabmap-service-types"}})],
                 ) -> JSONResponse:
    """The taxonomy with its terms."""
    taxonomy = _taxonomy(id)
    if taxonomy is None:
        raise TaxonomyNotFound(f"No taxonomy with id '{id[:80]}'. See /oruk/taxonomies.", field="id")
    terms = [t for t in TERMS if t["taxonomy_id"] == taxonomy["id"]]
    return JSONResponse({**taxonomy, "taxonomy_terms": terms})


@router.get("/taxonomy_terms", response_model=Page[OrukTaxonomyTerm], tags=["taxonomies"],
            summary="Paginated list of taxonomy terms")
def list_taxonomy_terms(
    page_number: PageNumber = 1,
    per_page: PerPage = 50,
    taxonomy_id: Annotated[NonBlank | None, Query(max_length=100, description="Only terms of this taxonomy (its "
                                                  "id or key).",
                                                  openapi_examples={"needs": {"value": "rehabmap-needs"}})] = None,
    parent_id: Annotated[NonBlank | None, Query(max_length=100,
                                                description="Only children of this term (its id).")] = None,
    top_only: Annotated[bool, Query(description="Only terms without a parent.")] = False,
) -> JSONResponse:
    """Every fixed term of rehabmap's taxonomies (language needs, `language:<code>`, are open-ended: each is in
    the attributes of the services that state it, and found by its id at /taxonomy_terms/{id})."""
    terms = TERMS
    if taxonomy_id is not None:
        taxonomy = _taxonomy(taxonomy_id)
        if taxonomy is None:
            raise InvalidValue(f"Unknown taxonomy_id '{taxonomy_id[:60]}'. See /oruk/taxonomies.",
                               field="taxonomy_id")
        terms = [t for t in terms if t["taxonomy_id"] == taxonomy["id"]]
    if parent_id is not None:
        parent = _term_by_id(parent_id)
        if parent is None:  # before, 200 and no terms, as if it were a term with no children
            raise InvalidValue(f"Unknown parent_id '{parent_id[:60]}'. See /oruk/taxonomy_terms.", field="parent_id")
        terms = [t for t in terms if t.get("parent_id") == parent.id]
    if top_only:
        terms = [t for t in terms if not t.get("parent_id")]
    start = (page_number - 1) * per_page
    return JSONResponse(page(terms[start:start + per_page], len(terms), page_number, per_page))


@router.get("/taxonomy_terms/{id}", response_model=OrukTaxonomyTerm, tags=["taxonomies"],
            summary="A taxonomy term")
def get_taxonomy_term(id: Annotated[str, Path(max_length=100, description="Term id.")]) -> JSONResponse:
    """One term: its code, name, description, taxonomy and, for a subtype, its parent type."""
    term = _term_by_id(id)
    if term is None:
        raise TaxonomyNotFound(f"No taxonomy term with id '{id[:80]}'. {_TERMS_FOUND}", field="id")
    return JSONResponse(term.to_hsds())


def create_oruk_app(state: AppState) -> FastAPI:
    """The ORUK API as its own application, so it has its own OpenAPI document and open CORS."""
    app = FastAPI(
        title="rehabmap — Open Referral UK API", version=__version__,
        description="Mental health rehabilitation services in England as an Open Referral UK 3.0 (HSDS 3.0) "
                    "feed. Open: no key, `Access-Control-Allow-Origin: *` on every response. Services carry "
                    "their rehabmap type, subtype and needs as attributes whose terms are published at "
                    "/taxonomies and /taxonomy_terms.",
        openapi_tags=[{"name": "about", "description": "What this API is."},
                      {"name": "services", "description": "Services and services at locations."},
                      {"name": "taxonomies", "description": "The rehab pathway vocabulary."}],
        telemetry=FRAMEWORK_TELEMETRY)
    app.state.rehabmap = state
    app.state.oruk_ids = OrukIds()
    errors.install(app)
    app.add_middleware(OpenCorsMiddleware)
    app.include_router(router)
    return app
