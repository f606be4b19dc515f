"""Verification due, for maintainers: active services nobody has verified, or not for `verify_after_days`
(REHABMAP_VERIFY_AFTER_DAYS), the longest overdue first (`rehabmap.maintain.freshness`, as
`GET /maintain/verification-due` lists them), each with a button that marks it verified today through
`Editor.verify`, the call the API's `POST /maintain/services/{id}/verify` makes; and the areas a curated table says
are covered on a check as old (`rehabmap.maintain.freshness.areas_due`), which only the table uploaded again with
the new check renews."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rehabmap.errors import DomainError
from rehabmap.coverage import CURATED, category_label
from rehabmap.maintain.freshness import areas_due, due_for_verification, source_confirmations
from web.deps import get_state
from web.keepers.maintainer_review import MAINTAINERS
from web.keepers.maintainer_services import editor_of
from web.keepers.paths import service_path
from web.keepers.maintainer_upload import UPLOAD
from web.keepers.navigation import SECTIONS, Section
from web.keepers.session import PATH, Keeper, KeepersRoute, page_number, refusal_page, render, requires

router = APIRouter(route_class=KeepersRoute)
DUE = f"{PATH}/verification-due"
PER_PAGE = 100
SECTIONS.append(Section(DUE, "Verification due", "Services nobody has checked for a while, the longest overdue "
                        "first: check each with its provider and mark it verified; and the areas a curated table "
                        "covers on an old check.", frozenset(MAINTAINERS)))


@router.get(DUE)
def due(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> HTMLResponse:
    state = get_state(request)
    number = page_number(request)
    today = state.today()
    everything = due_for_verification(state.backend.all(), today, state.settings.verify_after_days)
    shown = everything[(number - 1) * PER_PAGE:number * PER_PAGE]
    listings = source_confirmations(state.directory, (d.service for d in shown), state.source_title)
    claims = state.coverage().claims
    return render(request, keeper, "keepers/maintainer/verification_due.html",
                  {"due": shown, "listings": listings, "area_name": state.area_name, "category_label": category_label,
                   "areas_due": areas_due(claims, today, state.settings.verify_after_days),
                   "curated_claims": any(c.basis.startswith(CURATED) for c in claims), "upload": UPLOAD,
                   "total": len(everything), "page_number": number, "per_page": PER_PAGE,
                   "days": state.settings.verify_after_days, "service_path": service_path,
                   "done": request.query_params.get("done", "")[:200]})


@router.post(f"{DUE}/verify")
def verify(request: Request, keeper: Keeper = requires(*MAINTAINERS)) -> Response:
    state, editor = editor_of(request)
    service_id = keeper.form.get("id")
    try:
        service, _ = editor.verify(keeper.principal, service_id, state.days()[0])
    except DomainError as error:
        return refusal_page(request, keeper, "This could not be verified", error)
    return RedirectResponse(f"{DUE}?" + urlencode({"done": f"{service.name} is verified as of today."}),
                            status_code=303)
