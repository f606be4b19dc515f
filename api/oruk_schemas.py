"""OpenAPI descriptions of the Open Referral UK replies.

The objects themselves are built by `rehabmap.oruk`; these models only document them (routes return the
dicts as they are). They are deliberately open (`extra="allow"`): HSDS 3.0 objects carry many optional
fields, and the tests validate every reply against the official HSDS 3.0 and ORUK 3.0 JSON Schemas.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class OrukRoot(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "version": "3.0", "profile": "https://github.com/OpenReferralUK/uk-profile/blob/main/docs/index.md",
        "openapi_url": "https://rehabmap.example.org/oruk/openapi.json"}]})

    version: str = Field(description="HSDS / Open Referral UK version of this API.")
    profile: str = Field(description="URL of the HSDS profile this API follows (Open Referral UK).")
    openapi_url: str = Field(description=(
        "URL of this API's OpenAPI document: absolute when the server knows its public address "
        "(REHABMAP_PUBLIC_BASE_URL), else relative to this reply's URL."))


class OrukTaxonomyTerm(_Open):
    id: str
    name: str
    description: str
    code: str | None = None
    term: str | None = Field(default=None, description="The term itself (ORUK profile field; repeats name).")
    taxonomy: str | None = None
    taxonomy_id: str | None = None
    parent_id: str | None = None


class OrukTaxonomy(_Open):
    id: str
    name: str
    description: str
    taxonomy_terms: list[OrukTaxonomyTerm] | None = Field(
        default=None, description="The taxonomy's terms (ORUK profile), on GET /taxonomies/{id} only.")


class OrukOrganization(_Open):
    id: str
    name: str
    description: str


class OrukAttribute(_Open):
    id: str
    taxonomy_term_id: str
    taxonomy_term: OrukTaxonomyTerm | None = None
    value: str | None = None


class OrukLocation(_Open):
    id: str
    location_type: str
    name: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class OrukServiceAtLocationInService(_Open):
    id: str
    service_id: str | None = None
    location_id: str | None = None
    location: OrukLocation | None = None


class OrukSchedule(_Open):
    """An HSDS 3.0 schedule of a service: weekly days and hours (`freq` WEEKLY, `byday`, `opens_at`,
    `closes_at`) and/or the source's own words (`description`)."""

    id: str
    service_id: str | None = None
    freq: Literal["WEEKLY"] | None = None
    interval: int | None = None
    byday: str | None = Field(default=None, description="Comma-separated iCalendar days, e.g. MO,TU,WE.")
    opens_at: str | None = Field(default=None, description="HH:MM:SS")
    closes_at: str | None = Field(default=None, description="HH:MM:SS")
    description: str | None = None


class OrukService(_Open):
    """An HSDS 3.0 service. In lists, one-to-one fields and the organization only (unless `full=true`);
    on GET /services/{id}, fully nested: locations, service areas, phones and the attributes that carry
    its rehabmap type, subtype, needs and details."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "7a25fc1c-74ad-5abf-823e-c934a94e0236", "name": "Aire Valley Rehabilitation Unit (sample)",
        "status": "active", "description": "Sample data — not a real service. …",
        "minimum_age": 18, "maximum_age": 65,
        "organization": {"id": "2271b8ee-af61-5d63-bfd0-39b045c6118d",
                         "name": "Aire and Calder Mental Health NHS Trust (fictional)", "description": ""}}]})

    id: str
    name: str
    status: Literal["active", "inactive", "defunct", "temporarily closed"]
    description: str | None = None
    url: str | None = None
    email: str | None = None
    application_process: str | None = None
    minimum_age: int | None = None
    maximum_age: int | None = None
    assured_date: str | None = None
    organization_id: str | None = None
    organization: OrukOrganization | None = None
    service_at_locations: list[OrukServiceAtLocationInService] | None = None
    service_areas: list[dict[str, Any]] | None = None
    phones: list[dict[str, Any]] | None = None
    schedules: list[OrukSchedule] | None = Field(
        default=None, description="When the service is open; left out when not known. Self-referral is the "
        "`self_referral` attribute (rehabmap detail term).")
    attributes: list[OrukAttribute] | None = None


class OrukServiceAtLocation(_Open):
    id: str
    service_id: str
    location_id: str
    location: OrukLocation
    service: OrukService
    distance_km: float | None = Field(
        default=None, description="rehabmap extension: great-circle km from the postcode's centroid.")


class Page(BaseModel, Generic[T]):
    """The HSDS 3.0 page wrapper."""

    total_items: int = Field(description="Entities matching, over all pages.")
    total_pages: int
    page_number: int
    size: int = Field(description="Entities on this page.")
    first_page: bool
    last_page: bool
    empty: bool = Field(description="True when this page has no entities.")
    contents: list[T]


class ServiceAtLocationPage(Page[OrukServiceAtLocation]):
    model_config = ConfigDict(populate_by_name=True)

    x_rehabmap_extension: str | None = Field(
        default=None, alias="x-rehabmap-extension",
        description="Present when the list is sorted by distance, which ORUK does not define.")
