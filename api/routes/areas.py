"""GET /areas/{code}: an ONS area (ICB, sub-ICB, local authority, county council, region) and the services located
in it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from rehabmap.browse import check_window, total_pages
from api.deps import State
from api.paging import PageNumber
from api.schemas import ERRORS, AreaOut, CoverageOut, ListedServiceOut
from rehabmap.index.base import ServiceQuery
from rehabmap.taxonomy import ServiceType

router = APIRouter(tags=["areas"], responses=ERRORS)

LEVEL_LABELS = {"icb": "Integrated care board", "sub_icb": "Sub-ICB location",
                "lad": "Local authority district", "county": "County council", "region": "Region"}


@router.get("/areas/{code}", response_model=AreaOut, summary="An ONS area and its services")
def get_area(
    state: State,
    code: Annotated[str, Path(max_length=20, description="ONS code, any case: an ICB (E54…), sub-ICB (E38…), "
                              "local authority (E06…–E09…), county council (E10…) or region (E12…).",
                              openapi_examples={"Leeds": {"value": "E08000035"},
                                                "West Yorkshire ICB": {"value": "E54000054"},
                                                "Cambridgeshire County Council": {"value": "E10000003"}})],
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=100, description="Services per page.")] = 50,
) -> AreaOut:
    """The area's name and level, how many active services are located in it per type, and a page of
    them by name. 'Located in' is by the service's point, not by whom it serves (in a county council, in one of
    its districts). Per type, `coverage` says whether the directory holds that type's data here at all (a count of
    0 means none only where it does)."""
    area = state.area(code)
    check_window(page, per_page)
    located = ServiceQuery(area_codes=area.located_codes)
    found = state.backend.find(located, limit=per_page, offset=(page - 1) * per_page)
    counts = {t.value: n for t, n in state.backend.count_by_type(located).items()}
    west, south, east, north = area.geometry.bounds
    coverage = state.coverage()
    return AreaOut(code=area.code, name=area.name, level=area.level, level_label=LEVEL_LABELS[area.level],
                   bbox=[round(v, 5) for v in (west, south, east, north)], total=found.total, counts=counts,
                   page=page, per_page=per_page, total_pages=total_pages(found.total, per_page),
                   services=[ListedServiceOut.of(s, state.today(), verify_after_days=state.settings.verify_after_days)
                             for s in found.items],
                   coverage={t.value: CoverageOut.of(coverage.for_area(area.code, t.value), counts.get(t.value, 0) > 0)
                             for t in ServiceType})
