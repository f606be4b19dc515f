"""Request and response shapes of the native API (the ORUK shapes live in rehabmap.oruk)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rehabmap.matching import MatchResponse, MatchResult


class HomeIn(BaseModel):
    """Where the person lives: exactly one of a postcode, a place name, or a point."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"postcode": "LS9 7TF"}]})

    postcode: str | None = Field(default=None, max_length=10)
    place: str | None = Field(default=None, max_length=80)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _exactly_one(self) -> HomeIn:
        given = [self.postcode is not None, self.place is not None, self.lat is not None or self.lon is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of postcode, place, or lat and lon")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon")
        return self


class PlacementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_id: str | None = Field(default=None, max_length=200)
    postcode: str | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _exactly_one(self) -> PlacementIn:
        if (self.service_id is None) == (self.postcode is None):
            raise ValueError("give exactly one of service_id or postcode for the current placement")
        return self


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "home": {"postcode": "LS9 7TF"}, "needs": ["autism", "restricted_s37_41"],
        "types": ["inpatient_rehab_level2"], "max_distance_km": 100,
        "current_placement": {"postcode": "TR1 3LJ"}}]})

    home: HomeIn
    needs: list[str] = Field(default_factory=list, max_length=20,
                             description="Needs every result must meet or not rule out (DESIGN.md vocabulary).")
    types: list[str] | Literal["any"] = Field(default="any", description="Service types, or 'any'.")
    subtypes: list[str] | None = Field(default=None, max_length=10)
    age: int | None = Field(default=None, ge=0, le=120)
    gender: Literal["female", "male"] | None = None
    max_distance_km: float | None = Field(default=None, gt=0, le=1000)
    own_icb_only: bool = False
    accepting_referrals_only: bool = False
    needs_confirmed: bool = Field(default=False, description="Leave out services that have not said.")
    include_out_of_catchment: bool = Field(default=False, description="List them, marked, instead of leaving out.")
    limit: int = Field(default=10, ge=1, le=100, description="Results per request (per type when types is 'any').")
    current_placement: PlacementIn | None = None


class CapacityOut(BaseModel):
    status: Literal["available", "limited", "none", "unknown"]
    as_of: date | None
    reported: Literal["available", "limited", "none"] | None


class CqcOut(BaseModel):
    location_id: str | None
    rating: str | None
    rating_date: date | None


class MatchResultOut(BaseModel):
    id: str
    name: str
    service_type: str
    subtype: str | None
    original_label: str | None
    legacy_locked_label: bool
    organisation: str | None
    distance_km: float
    in_home_icb: bool
    icb_code: str | None
    icb_name: str | None
    matched_needs: list[str]
    unknown_needs: list[str]
    out_of_catchment: bool
    explanation: str
    capacity: CapacityOut
    accepting_referrals: bool | None
    referral_route: str | None
    cqc: CqcOut
    phone: str | None
    email: str | None
    website: str | None
    postcode: str | None
    distance_saved_km: float | None

    @classmethod
    def of(cls, r: MatchResult) -> MatchResultOut:
        s = r.service
        return cls(
            id=s.id, name=s.name, service_type=s.service_type.value, subtype=s.subtype,
            original_label=s.original_label, legacy_locked_label=s.legacy_locked_label,
            organisation=s.organisation, distance_km=r.distance_km, in_home_icb=r.in_home_icb,
            icb_code=s.areas.icb_code, icb_name=s.areas.icb_name, matched_needs=r.matched_needs,
            unknown_needs=r.unknown_needs, out_of_catchment=r.out_of_catchment, explanation=r.explanation,
            capacity=CapacityOut(status=r.capacity or "unknown", as_of=s.capacity_as_of, reported=s.capacity),
            accepting_referrals=s.accepting_referrals, referral_route=s.referral_route,
            cqc=CqcOut(location_id=s.cqc_location_id, rating=s.cqc_rating, rating_date=s.cqc_rating_date),
            phone=s.phone, email=s.email, website=s.website, postcode=s.postcode,
            distance_saved_km=r.distance_saved_km)


class TypeSummaryOut(BaseModel):
    service_type: str
    in_home_icb: int
    nearest: MatchResultOut | None


class HomeOut(BaseModel):
    """Only what is safe to echo: the district and areas, never the full postcode or point."""

    district: str | None
    icb_code: str | None
    icb_name: str | None
    lad_code: str | None
    lad_name: str | None
    precision: str


class MatchOut(BaseModel):
    home: HomeOut
    ranking: str
    results: list[MatchResultOut]
    summary: list[TypeSummaryOut]
    current_placement_km: float | None

    @classmethod
    def of(cls, home, response: MatchResponse, ranking: str) -> MatchOut:
        return cls(
            home=HomeOut(district=home.district, icb_code=home.areas.icb_code, icb_name=home.areas.icb_name,
                         lad_code=home.areas.lad_code, lad_name=home.areas.lad_name, precision=home.precision),
            ranking=ranking, results=[MatchResultOut.of(r) for r in response.results],
            summary=[TypeSummaryOut(service_type=t.service_type.value, in_home_icb=t.in_home_icb,
                                    nearest=MatchResultOut.of(t.nearest) if t.nearest else None)
                     for t in response.summary],
            current_placement_km=None if response.current_placement_km is None
            else round(response.current_placement_km, 3))
