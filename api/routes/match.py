"""POST /match: the clinicians' question, answered by rehabmap.matching."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import State
from api.schemas import MatchIn, MatchOut
from rehabmap import matching
from rehabmap.errors import ServiceNotFound
from rehabmap.matching import MatchRequest
from rehabmap.taxonomy import parse_need, parse_type

router = APIRouter(tags=["match"])
RANKING = " ".join(matching.__doc__.split("Ranking rule", 1)[1].split())


@router.post("/match", response_model=MatchOut, summary="Rank local options that meet a person's needs")
def post_match(body: MatchIn, state: State) -> MatchOut:
    """Options nearest the person's home that meet every stated need, each with why it matched, what is
    unknown, distance, in/out of the home ICB and, given a current placement, the distance saved."""
    geography = state.geography
    home = geography.resolve(**body.home.model_dump())
    placement = None
    if body.current_placement is not None:
        if body.current_placement.service_id is not None:
            current = state.backend.get(body.current_placement.service_id)
            if current is None:
                raise ServiceNotFound(f"No service with id '{body.current_placement.service_id}'.",
                                      field="current_placement.service_id")
            placement = (current.lat, current.lon)
        else:
            point = geography.resolve(postcode=body.current_placement.postcode)
            placement = (point.lat, point.lon)
    types = None if body.types == "any" else tuple(parse_type(t) for t in body.types) or None
    request = MatchRequest(
        needs=tuple(parse_need(n) for n in body.needs), types=types,
        subtypes=tuple(body.subtypes) if body.subtypes else None, age=body.age, gender=body.gender,
        max_distance_km=body.max_distance_km, own_icb_only=body.own_icb_only,
        accepting_only=body.accepting_referrals_only, needs_confirmed=body.needs_confirmed,
        include_out_of_catchment=body.include_out_of_catchment, limit=body.limit,
        current_placement=placement)
    response = matching.match(state.backend, home, request, state.today())
    return MatchOut.of(home, response, RANKING)
