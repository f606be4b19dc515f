"""POST /match: the clinicians' question, answered by rehabmap.match."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from rehabmap.browse import locate, locate_placement
from rehabmap.coverage import Coverage, Parts
from api.body_route import JsonBodyRoute
from api.deps import state_of
from api.turns import answer_turn
from api.schemas import ERRORS, LeftOutOut, MatchIn, MatchOut
from indexer.sync.moved import listed_now
from rehabmap.errors import ServiceNotFound
from rehabmap.match import RANKING_RULE, MatchRequest, left_out, match
from rehabmap.state import AppState
from rehabmap.taxonomy import ServiceType

router = APIRouter(tags=["match"], responses=ERRORS, route_class=JsonBodyRoute)


@router.post("/match", response_model=MatchOut, summary="Rank local options that meet a person's needs")
async def post_match(body: MatchIn, request: Request) -> Response:
    """Options nearest the person's home that meet every stated need, each with why it matched, what is
    unknown, distance, in/out of the home ICB and, given a current placement, the distance saved. The summary
    says per type whether none found means none: only where the directory covers the home's area."""
    # Runs on the event loop, not the threadpool: on the embedded index the whole answer takes about a
    # millisecond, and sixteen threads contending for the GIL cost more than that (bench/RESULTS.md). One
    # answer per turn of the loop (api.turns), so that each reply goes out before the next answer starts.
    async with answer_turn():
        return _answer(body, state_of(request))


def _answer(body: MatchIn, state: AppState) -> Response:
    given = body.home  # its fields, not `model_dump()`'s new dict: ~5 µs of CPU a request
    home = locate(state.geography, "home", postcode=given.postcode, place=given.place, lat=given.lat, lon=given.lon)
    placement = None
    if body.current_placement is not None:
        if body.current_placement.service_id is not None:
            current = listed_now(state, body.current_placement.service_id)  # a stored id renamed or merged since
            if current is None:
                raise ServiceNotFound(f"No service with id '{body.current_placement.service_id}'.",
                                      field="current_placement.service_id")
            placement = (current.lat, current.lon)
        else:
            point = locate_placement(state.geography, body.current_placement.postcode or "", "current_placement")
            placement = (point.lat, point.lon)
    request = MatchRequest.from_input(
        needs=body.needs, types=body.types, subtypes=body.subtypes, age=body.age, gender=body.gender,
        max_distance_km=body.max_distance_km, own_icb_only=body.own_icb_only,
        accepting_only=body.accepting_referrals_only, needs_confirmed=body.needs_confirmed,
        include_out_of_catchment=body.include_out_of_catchment, limit=body.limit,
        current_placement=placement, order=body.order)
    (coverage, listings), today = state.coverage_read(), state.today()
    response = match(state.backend, home, request, today, state.unconfirmed_listings(today, listings))
    at_home = coverage.at_home(home.areas.codes(), request.reach(home))
    covered: dict[ServiceType, Coverage] = {}
    parts: dict[ServiceType, Parts] = {}
    for t in response.summary:  # one loop, not a dict of pairs taken apart by two comprehensions
        covered[t.service_type], parts[t.service_type] = at_home.with_parts(t.service_type, request.subtypes)
    listed = {r.service.service_type for r in response.results}
    left = {t: LeftOutOut.fields_of(found, request) for t in {s.service_type for s in response.summary} - listed
            if (found := left_out(state.backend, home, request, response, t))}
    # The JSON is built once (MatchOut.json_of); `response_model` still documents its shape.
    return Response(MatchOut.json_of(home, response, RANKING_RULE, covered, today,
                                     state.settings.verify_after_days, left, parts), media_type="application/json")

