"""GET /services (browse), /services/{id}, and the same list as CSV and GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse

from rehabmap.browse import Browse, browse, every, held_near, page_of, total_pages
from api.deps import State
from api.paging import PageNumber
from api.exports import COLUMNS, CSVDownload, GeoJSONDownload, csv_lines, geojson_chunks
from api.schemas import (ERRORS, POSTCODE_MAX_LENGTH, CoverageOut, HomeOut, ListedServiceOut, NonBlank,
                         ServiceListOut, ServiceOut)
from indexer.sync.moved import moved
from indexer.sync.review import ReviewItem
from rehabmap.errors import DomainError, ServiceNotFound
from rehabmap.maintain.freshness import Listings, source_listings
from rehabmap.maintain.renames import moved_to
from rehabmap.maintain.retirement import retirement
from rehabmap.state import AppState
from rehabmap.taxonomy import ASKED_NEEDS_WORDS, ServiceType

router = APIRouter(tags=["services"], responses=ERRORS)

_TYPES = ", ".join(t.value for t in ServiceType)


def filters(
    state: State,
    q: Annotated[str | None, Query(max_length=200, description="Words to find in name, organisation or "
                                   "description (all must appear; the last may be a prefix).",
                                   openapi_examples={"recovery college": {"value": "recovery college"}})] = None,
    types: Annotated[list[NonBlank] | None, Query(
        alias="type", max_length=7, description=f"Service type; repeat for several. One of: {_TYPES}.",
        openapi_examples={"inpatient": {"value": ["inpatient_rehab_level1", "inpatient_rehab_level2"]}})] = None,
    needs: Annotated[list[NonBlank] | None, Query(
        alias="need", max_length=20, description=f"A need every result must meet or not rule out; repeat for "
        f"several. One of: {ASKED_NEEDS_WORDS}.",
        openapi_examples={"autism": {"value": ["autism"]}})] = None,
    postcode: Annotated[NonBlank | None, Query(max_length=POSTCODE_MAX_LENGTH, description="Search near a postcode "
                                               "(full, sector or district): results come nearest first, with their "
                                               "distance.", openapi_examples={"Leeds": {"value": "LS9 7TF"}})] = None,
    place: Annotated[NonBlank | None, Query(max_length=80, description="Search near a town or place instead.",
                                            openapi_examples={"Bradford": {"value": "Bradford"}})] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=1000, allow_inf_nan=False, description="Only results within "
                                             "this many km of the postcode or place.")] = None,
) -> Browse:
    try:
        return browse(state.geography, text=q, types=types, needs=needs, postcode=postcode, place=place,
                      radius_km=radius_km)
    except DomainError as error:  # named as this request names them: ?type=, ?need= (the match body's types, needs)
        error.field = _PARAMETERS.get(error.field or "", error.field)
        raise


_PARAMETERS = {"types": "type", "needs": "need"}


Filters = Annotated[Browse, Depends(filters)]


@router.get("/services", response_model=ServiceListOut, summary="Browse and search services")
def list_services(
    b: Filters, state: State,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=100, description="Results per page.")] = 20,
) -> ServiceListOut:
    """Active services passing the filters. Near a postcode or place they come nearest first with
    `distance_km`, `in_home_icb` and `out_of_catchment`; otherwise by text relevance when `q` is given,
    else by name. Catchment is marked, not filtered: a family browsing sees what is near and whether it
    serves them."""
    items, total = page_of(state.backend, b, page, per_page)
    today = state.today()
    near = b.near
    held = held_near(state.coverage(), b, total)
    return ServiceListOut(
        total=total, page=page, per_page=per_page, total_pages=total_pages(total, per_page), sort=b.sort,
        near=HomeOut.model_validate(HomeOut.fields_of(near)) if near else None,
        radius_km=b.radius_km,
        results=[ListedServiceOut.of(i.service, today, state.settings.verify_after_days, distance_km=i.distance_km,
                                     in_home_icb=i.in_home_icb, out_of_catchment=i.out_of_catchment)
                 for i in items],
        coverage=None if held is None else [CoverageOut.of(answer, found) for answer, found in held])


def _listings(state: AppState) -> Listings:
    """Every synced record's listing, read before the stream starts (one query, not one a row)."""
    return Listings(state.directory, state.source_title)


_EXPORT = ("Every result, not a page: the same filters and order as GET /services. Streamed. Text cells that "
           "a spreadsheet would run as a formula start with an apostrophe.")


@router.get("/services.csv", response_class=CSVDownload, summary="Export services as CSV", description=_EXPORT,
            responses={200: {"description": "CSV with a header row and the fixed column set: "
                             + ", ".join(COLUMNS) + ". Lists are joined with ';'.",
                             "content": {"text/csv": {"schema": {"type": "string"},
                                                      "example": ",".join(COLUMNS[:5]) + ",…\r\n"}}}})
def export_csv(b: Filters, state: State) -> CSVDownload:
    state.backend.info()  # an unbuilt index is a 503 now, not a broken stream later
    return CSVDownload.of(csv_lines(every(state.backend, b), state.today(), _listings(state)), "rehabmap-services.csv")


@router.get("/services.geojson", response_class=GeoJSONDownload, summary="Export services as GeoJSON",
            description=_EXPORT,
            responses={200: {"description": "A GeoJSON FeatureCollection of points (WGS84); each feature's "
                             "properties are the CSV columns, lists kept as arrays (needs_read_from_text, "
                             "needs_read_not_met and gender_read_from_text as objects: each need or gender "
                             "read, with the words read).",
                             "content": {"application/geo+json": {"schema": {
                                 "type": "object", "required": ["type", "features"],
                                 "properties": {"type": {"const": "FeatureCollection"},
                                                "features": {"type": "array", "items": {"type": "object"}}}},
                                 "example": {"type": "FeatureCollection", "features": [{
                                     "type": "Feature", "id": "sample:leeds-recovery-college",
                                     "geometry": {"type": "Point", "coordinates": [-1.57, 53.81]},
                                     "properties": {"name": "Leeds Recovery College (sample)",
                                                    "service_type": "vcfse"}}]}}}}})
def export_geojson(b: Filters, state: State) -> GeoJSONDownload:
    state.backend.info()
    return GeoJSONDownload.of(geojson_chunks(every(state.backend, b), state.today(), _listings(state)),
                              "rehabmap-services.geojson")


@router.get("/services/{service_id:path}", response_model=ServiceOut, summary="One service by id",
            responses={308: {"description": "The id was renamed: Location names the id the service has now, for "
                                            "good."},
                       307: {"description": "The record is merged into another (the same service from another "
                                            "source): Location names the record it is listed as, while it is."}})
def get_service(
    state: State,
    request: Request,
    service_id: Annotated[str, Path(max_length=300, description="rehabmap id, e.g. sample:leeds-recovery-college",
                                    openapi_examples={"sample": {"value": "sample:leeds-recovery-college"}})],
) -> ServiceOut | RedirectResponse:
    """The full record, including the catchment polygon when there is one; inactive services too, with when
    and why they were retired. An id a service no longer has (renamed: `rehabmap.maintain.renames`) is
    redirected, permanently, to the one it has; the id of a record merged into another (the same service from
    another source), for as long as it is, to the record it is listed as (307: its Location names that record's id,
    and the id merged stays good, as the two may part again)."""
    service = state.backend.get(service_id)
    now = moved(state, service_id, service)
    if now is not None:  # a stored id stays good: sent on, for good if renamed (308 and 307 keep the method)
        return RedirectResponse(moved_to(request.scope["path"], request.url.query, service_id, now.service_id),
                                308 if now.for_good else 307)
    if service is None:
        held = held_item(request, service_id)
        if held is not None and held.state == "pending":
            raise ServiceNotFound(f"'{service_id[:80]}' is not listed yet: its source gives it, and it awaits "
                                  "review by the directory's maintainers, who confirm what kind of service it is "
                                  "before it is shown. Search with GET /services for the services listed.",
                                  field="service_id")
        raise ServiceNotFound(f"No service with id '{service_id[:80]}'. Ids look like 'cqc:1-123456789' "
                              "or 'sample:leeds-recovery-college'; search with GET /services.",
                              field="service_id")
    return ServiceOut.of(service, state.today(), state.settings.verify_after_days).retired(
        retirement(state.directory, service)).confirmed(
        source_listings(state.directory, service, state.source_title))


def held_item(request: Request, service_id: str) -> ReviewItem | None:
    """A synced record the index does not hold because it awaits review or a maintainer rejected it (the review
    queue the composition root opens), so that its 404 says so rather than "no service"; None for any other id,
    or where the server has no sync store."""
    opener = getattr(request.app.state, "open_review", None)
    try:
        item: ReviewItem | None = opener().item(service_id) if opener is not None else None
    except DomainError:
        return None
    return item if item is not None and item.why_unshown() is not None else None
