"""The canonical service record (DESIGN.md §3): what every source is turned into and every backend stores.

Validation lives here, so an importer only has to map fields; a record that fails is rejected with the
reasons pydantic gives, and the importer adds the file and line.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from shapely.geometry import shape
from shapely.validation import explain_validity
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from geodata.areas import AreaCodes
from rehabmap.freshness import capacity_is_current
from rehabmap.taxonomy import GENDER_NEEDS, ServiceType, parse_need, validate_subtype

ProviderType = Literal["nhs", "independent", "local_authority", "vcfse"]
Capacity = Literal["available", "limited", "none"]
Gender = Literal["female_only", "male_only", "mixed_gender"]


class Provenance(BaseModel):
    """Where a record (or part of a merged record) came from, so every field can be traced."""

    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    fetched_at: datetime
    licence: str | None = None
    file: str | None = None
    line: int | None = None


class ServiceArea(BaseModel):
    """Who the service serves. Empty means no stated restriction (e.g. national inpatient referrals)."""

    codes: list[str] = Field(default_factory=list)
    polygon: dict[str, Any] | None = None  # GeoJSON Polygon/MultiPolygon, WGS84
    description: str | None = None

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A catchment both backends can index: a valid GeoJSON Polygon or MultiPolygon."""
        if value is None:
            return None
        if value.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError("service area polygon must be a GeoJSON Polygon or MultiPolygon")
        try:
            geometry = shape(value)
        except (ValueError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"service area polygon is not valid GeoJSON: {exc}") from None
        if geometry.is_empty or not geometry.is_valid:
            raise ValueError(f"service area polygon is invalid: {explain_validity(geometry)}")
        return value

    @property
    def restricted(self) -> bool:
        return bool(self.codes) or self.polygon is not None


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]+:[^\s]+$", description="Source-prefixed stable id, e.g. cqc:1-123")
    name: str = Field(min_length=2, max_length=300)
    organisation: str | None = None
    provider_type: ProviderType | None = None
    service_type: ServiceType
    subtype: str | None = None
    original_label: str | None = None
    legacy_locked_label: bool = False
    pd_specialist: bool = False
    description: str = ""
    needs_met: list[str] = Field(default_factory=list)
    needs_not_met: list[str] = Field(default_factory=list)
    min_age: int | None = Field(default=None, ge=0, le=120)
    max_age: int | None = Field(default=None, ge=0, le=120)
    gender: Gender | None = None
    address: str | None = None
    postcode: str | None = None
    lat: float = Field(ge=49.8, le=55.9)
    lon: float = Field(ge=-6.5, le=2.0)
    areas: AreaCodes = Field(default_factory=AreaCodes)
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    beds: int | None = Field(default=None, ge=0)
    capacity: Capacity | None = None
    capacity_as_of: date | None = None
    accepting_referrals: bool | None = None
    referral_route: str | None = None
    phone: str | None = None
    email: str | None = None
    website: str | None = None
    cqc_location_id: str | None = None
    cqc_rating: str | None = None
    cqc_rating_date: date | None = None
    status: Literal["active", "inactive"] = "active"
    provenance: list[Provenance] = Field(min_length=1)
    field_sources: dict[str, str] = Field(default_factory=dict)
    last_verified: date | None = None

    @field_validator("needs_met", "needs_not_met")
    @classmethod
    def _known_needs(cls, value: list[str]) -> list[str]:
        return sorted({parse_need(v) for v in value})

    @model_validator(mode="after")
    def _consistent(self) -> Service:
        validate_subtype(self.service_type, self.subtype)
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError(f"min_age {self.min_age} is greater than max_age {self.max_age}")
        clash = set(self.needs_met) & set(self.needs_not_met)
        if clash:
            raise ValueError(f"needs both met and not met: {', '.join(sorted(clash))}")
        if self.gender:
            # The gender field is the truth; the three gender needs are derived from it.
            self.needs_met = sorted((set(self.needs_met) - set(GENDER_NEEDS)) | {self.gender})
            self.needs_not_met = sorted((set(self.needs_not_met) | set(GENDER_NEEDS)) - {self.gender})
        if self.capacity_as_of and not self.capacity:
            raise ValueError("capacity_as_of given without capacity")
        return self

    def capacity_now(self, today: date, max_age_days: int | None = None) -> Capacity | None:
        """The capacity that holds on `today`: a report older than the freshness window
        (REHABMAP_CAPACITY_MAX_AGE_DAYS, or `max_age_days`) reads as unknown (DESIGN.md §3;
        `rehabmap.freshness.capacity_is_current` is the rule)."""
        if self.capacity is None or not capacity_is_current(self.capacity_as_of, today, max_age_days):
            return None
        return self.capacity

    @property
    def source(self) -> str:
        return self.id.split(":", 1)[0]
