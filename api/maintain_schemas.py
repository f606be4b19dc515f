"""Request and response shapes of the maintainers' API (/maintain).

Strict: a boolean is `true`, a number is a number, a date is an ISO string ('2026-11-23'); strings have a
length limit and contact details a shape, so junk is refused with a 422 naming the field before anything
is looked at. What a field may hold beyond its shape (a known need, a subtype of the type, a valid
catchment polygon) is then checked by the service record itself; an edit it refuses is a 422 too.
"""

from __future__ import annotations

import re
from functools import cache
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, PydanticCustomError

from api.schemas import Code, ServiceOut
from geodata.england import ENGLAND_EXTENT
from rehabmap.errors import blank
from rehabmap.maintain.audit import REASON_MAX
from rehabmap.record import (CONTACT_MAX_LENGTH, CONTACT_PATTERNS, ORGANISATION_NAME_LENGTH, TEXT_MAX_LENGTH,
                             catchment_polygon, given_text, typed_text)
from rehabmap.taxonomy import NEED_LABELS, ServiceType

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("give a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("give a real date as YYYY-MM-DD") from None


IsoDate = Annotated[date, Field(strict=False), BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date"})]
if TYPE_CHECKING:  # a Literal built at run time is not a type to mypy; what it holds is a str
    TypeCode = str
else:
    TypeCode = Literal[tuple(t.value for t in ServiceType)]
# The service record's own contact checks (rehabmap/record.py), stated here so the OpenAPI document shows them.
Phone = Annotated[str, Field(min_length=6, max_length=CONTACT_MAX_LENGTH["phone"], pattern=CONTACT_PATTERNS["phone"],
                             description="Digits, spaces, brackets, hyphens; may start with + and end with an "
                                         "extension ('(ext. 123)').", examples=["(0113) 496 0000"])]
Email = Annotated[str, Field(max_length=CONTACT_MAX_LENGTH["email"], pattern=CONTACT_PATTERNS["email"],
                             examples=["referrals@example.nhs.uk"])]
Website = Annotated[str, Field(max_length=CONTACT_MAX_LENGTH["website"], pattern=CONTACT_PATTERNS["website"],
                               examples=["https://www.example.nhs.uk/rehab"])]


class _NotNull:
    """Marks an `X | None` field as one that may be left out (it then reads None) but not sent as null:
    it validates, and is documented, as X alone (a `default=None` is not validated)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        return schema["schema"] if schema["type"] == "nullable" else schema


_T = TypeVar("_T")
# `Optional`, not `_T | None`: the alias is evaluated at run time, where a TypeVar does not support `|`.
Omittable = Annotated[Optional[_T], _NotNull()]  # noqa: UP007
_NEEDS = "Needs: " + ", ".join(NEED_LABELS) + ", or language:<ISO 639 code>."


def _named(what: str) -> BeforeValidator:
    """A blank code refused as the schema says (`Code`'s pattern, stated there, not enforced) and before anything is
    looked at: left to the record, a blank subtype sent with a stale If-Match was a 412, not a 422. Each code is
    checked where it is, so a blank need is named by its place in its list (`needs_met.1`), as a need too long is
    (before, the list alone, whichever of its needs was blank). Checked before `Code`'s own constraints, so an empty
    one is named as blank too, not by `minLength` ("String should have at least 1 character"), which the document
    still states; what is no string is left to them."""
    def checked(code: Any) -> Any:
        if isinstance(code, str) and not code.strip():
            raise PydanticCustomError("blank", blank(what, what))
        return code
    return BeforeValidator(checked)


SubtypeCode = Annotated[Code, _named("subtype")]
NeedCode = Annotated[Code, _named("need")]


class ServiceAreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    codes: list[Annotated[str, Field(pattern=r"^[EWSN]\d{8}$")]] = Field(
        default_factory=list, max_length=500, description="ONS area codes the service serves.")
    polygon: dict[str, Any] | None = Field(default=None, description="GeoJSON Polygon or MultiPolygon (WGS84).")
    description: str | None = Field(default=None, max_length=500)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """The record's own check, before anything walks the value (see `catchment_polygon`)."""
        return None if value is None else catchment_polygon(value)


class _EditableFields(BaseModel):
    """Every field a maintainer may set. Omitted fields are left as they are; null clears a field that
    may be empty."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Omittable[str] = Field(default=None, min_length=2, max_length=TEXT_MAX_LENGTH["name"])
    organisation: str | None = Field(default=None, min_length=1, max_length=TEXT_MAX_LENGTH["organisation"])
    provider_type: Literal["nhs", "independent", "local_authority", "vcfse"] | None = None
    service_type: Omittable[TypeCode] = None
    subtype: SubtypeCode | None = None
    original_label: str | None = Field(default=None, max_length=TEXT_MAX_LENGTH["original_label"])
    legacy_locked_label: Omittable[bool] = None
    pd_specialist: Omittable[bool] = None
    description: Omittable[str] = Field(default=None, max_length=TEXT_MAX_LENGTH["description"])
    needs_met: Omittable[list[NeedCode]] = Field(default=None, max_length=40, description=_NEEDS)
    needs_not_met: Omittable[list[NeedCode]] = Field(default=None, max_length=40, description=_NEEDS)
    min_age: int | None = Field(default=None, ge=0, le=120)
    max_age: int | None = Field(default=None, ge=0, le=120)
    gender: Literal["female_only", "male_only", "mixed_gender"] | None = None
    address: str | None = Field(default=None, max_length=TEXT_MAX_LENGTH["address"])
    postcode: str | None = Field(default=None, min_length=5, max_length=TEXT_MAX_LENGTH["postcode"], description=(
        "A full postcode. Given without lat and lon, the service is placed at it."))
    lat: Omittable[float] = Field(default=None, ge=ENGLAND_EXTENT.south, le=ENGLAND_EXTENT.north,
                                  description="Latitude (WGS84); give lon with it.")
    lon: Omittable[float] = Field(default=None, ge=ENGLAND_EXTENT.west, le=ENGLAND_EXTENT.east,
                                  description="Longitude (WGS84); give lat with it.")
    service_area: Omittable[ServiceAreaIn] = None
    beds: int | None = Field(default=None, ge=0, le=10_000)
    capacity: Literal["available", "limited", "none"] | None = Field(default=None, description=(
        "Beds or places now. Without capacity_as_of it is stamped with today's date."))
    capacity_as_of: IsoDate | None = Field(default=None, description="When capacity was reported; not in the future.")
    accepting_referrals: bool | None = None
    referral_route: str | None = Field(default=None, max_length=TEXT_MAX_LENGTH["referral_route"])
    phone: Phone | None = None
    email: Email | None = None
    website: Website | None = None
    cqc_location_id: str | None = Field(default=None, max_length=20, pattern=r"^1-[0-9]{1,15}$")
    cqc_rating: Literal["Outstanding", "Good", "Requires improvement", "Inadequate"] | None = None
    cqc_rating_date: IsoDate | None = None
    status: Omittable[Literal["active", "inactive"]] = None

    @field_validator(*TEXT_MAX_LENGTH, mode="before")
    @classmethod
    def _as_given(cls, value: Any, info: ValidationInfo) -> Any:
        """A service's text measured and kept as the keepers' forms keep it (`given_text`: a line break one LF, the
        ends trimmed, nothing left no text), before its length and shape are checked: the API kept a CR LF as sent
        and counted it as two, and kept a text of spaces as "" where the forms keep none. Not where the published
        schema gives the text a least length or a shape (`_shaped`): there a text of spaces is refused, as the
        schema says (null clears it); made none, it was accepted against the schema."""
        if not isinstance(value, str):
            return value
        name = str(info.field_name)
        return typed_text(value) if name in _shaped(cls) else given_text(name, value)

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, as JSON values."""
        return self.model_dump(mode="json", include=self.model_fields_set)


@cache
def _shaped(model: type[BaseModel]) -> frozenset[str]:
    """The fields whose published schema gives a text a least length or a pattern (a name, an organisation, a
    postcode, a phone, an email, a website), read from the schema itself."""
    def shaped(schema: dict[str, Any]) -> bool:
        return "minLength" in schema or "pattern" in schema or any(shaped(s) for s in schema.get("anyOf", ()))

    return frozenset(name for name, schema in model.model_json_schema()["properties"].items() if shaped(schema))


class ServicePatchIn(_EditableFields):
    """A change to some fields of one service. Providers may send only capacity, capacity_as_of,
    accepting_referrals, phone, email, website and referral_route (`rehabmap.maintain.auth.PROVIDER_FIELDS`)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"capacity": "limited", "accepting_referrals": True},
        {"phone": "0113 496 0000", "email": "referrals@example.nhs.uk"},
        {"needs_met": ["autism", "restricted_s37_41"], "description": "Level 2 unit; accepts restricted patients."},
    ]})

    @model_validator(mode="after")
    def _something(self) -> ServicePatchIn:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self


class ServiceIn(_EditableFields):
    """A new service made by a maintainer. It needs a name, a type and where it is: a full postcode, or
    lat and lon (and may have both). Its id starts `directory:`; leave it out to have one made."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"name": "Harehills Peer Support Group", "service_type": "vcfse", "postcode": "LS9 7TF",
         "description": "Weekly peer support for people recovering from mental illness.",
         "accepting_referrals": True, "email": "hello@example.org"}]})

    id: str | None = Field(default=None, pattern=r"^directory:[a-z0-9][a-z0-9-]{1,78}$",
                           description="directory:<lowercase letters, digits, hyphens>; made from the name "
                                       "if left out.")
    name: str = Field(min_length=2, max_length=TEXT_MAX_LENGTH["name"])
    service_type: TypeCode

    @model_validator(mode="after")
    def _placed(self) -> ServiceIn:
        if self.postcode is None and (self.lat is None or self.lon is None):
            raise ValueError("give the service's full postcode, or its lat and lon")
        return self


class MeOut(BaseModel):
    token_id: str
    name: str
    role: Literal["admin", "maintainer", "provider"]
    organisation: str | None
    services: list[str] | None = Field(description="For a provider: the services it may change.")
    expires_at: str | None = Field(description="When this token stops working (UTC, ISO 8601); ask an admin "
                                               "for a new one before then.")


_VERSION = ("The record's version, also sent as the ETag header: send it back in If-Match with a PATCH made from "
            "this record (a PATCH of needs_met, needs_not_met or gender must), and a change made since (by another "
            "maintainer or a sync) is a 412, not overwritten.")


class ServiceHeldOut(BaseModel):
    """The service as the live index holds it (or, of a new service the index has not taken yet, as the directory's
    edits keep it: `listed` false), and its version."""

    service: ServiceOut
    version: str = Field(description=_VERSION, examples=["5f0c6a0e2b8d41c7a9e3b612"])
    listed: bool = Field(True, description="False for a new service kept in the directory's edits whose write the "
                         "search index refused or failed: it is in no search, nor on the public pages, whatever its "
                         "status says, until a change of it (a PATCH, or POST .../verify) writes it.")


class EditOut(ServiceHeldOut):
    """The service as it now is, its version, and what this request changed (empty when nothing differed)."""

    changed: list[str]


class NeedIn(BaseModel):
    """A maintainer's word on one need, laid over the record as it is: the other needs stay as they are."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"takes": True}]})

    takes: bool | None = Field(description="true: it takes people with the need; false: it does not; null: not "
                                            "stated. A need read from its listing (needs_read_from_text, "
                                            "needs_read_not_met) stated either way is confirmed and leaves those.")


class GenderIn(BaseModel):
    """A maintainer's word on whom the service takes; its gender needs follow from it."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [{"gender": "female_only"}]})

    gender: Literal["female_only", "male_only", "mixed_gender"] | None = Field(
        description="null: not stated (the gender needs leave both stated lists). Stating one confirms or corrects "
                    "a gender read from its listing (gender_read_from_text), which it clears.")


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Its length is checked once, on the words kept (`rehabmap.maintain.audit.given_reason`): its spaces tidied. Absent,
    # it is refused there too (400 naming it), as a request with no body is: `{}` was a 422 "Field required".
    reason: str | None = Field(default=None, description=(
        f"Why it is retired, in words a family can read: its page says \"Taken off the list on <day>: <reason>\", and "
        f"the audit log keeps it (`retired_reason`). 3 to {REASON_MAX} characters once runs of spaces are made one "
        "(else 400, naming it)."),
                        examples=["closed in October 2026; its residents moved to Field House"])


class QuestionOut(BaseModel):
    """A field a maintainer's edit keeps, which a source has since changed: the edit is still shown."""

    field: str = Field(description="The service's field, as in ServiceOut.")
    edit: Any = Field(description="The maintainer's value, still shown.")
    source_value: Any = Field(description="What the source gives now.")
    since: str = Field(description="When the sync saw the source's change (UTC, ISO 8601).")
    by: str = Field(description="The sync that saw it (the audit log's actor).")
    audit_id: int = Field(description="The audit log's `questioned` row.")


class QuestionedOut(BaseModel):
    id: str
    name: str | None = Field(description="Empty when the index no longer holds the service.")
    status: Literal["active", "inactive"] | None
    questions: list[QuestionOut] = Field(description="Each open question, oldest first. Keep an edit with POST "
                                                     "/maintain/services/{id}/edits/{field}/keep, or PATCH the "
                                                     "field (to the source's value, or another).")


class QuestionedListOut(BaseModel):
    results: list[QuestionedOut] = Field(description="The latest questioned first.")


class KeptOut(BaseModel):
    id: str
    kept: list[str] = Field(description="The fields whose edits were kept (audited as `keep`); nothing shown "
                                        "changed.")


class DueOut(BaseModel):
    id: str
    name: str
    service_type: str
    organisation: str | None
    last_verified: date | None
    days_since_verified: int | None = Field(description="Empty when never verified.")


class AreaDueOut(BaseModel):
    area_code: str = Field(description="The ONS code of the area the table covers.")
    area_name: str
    category: str = Field(description="What the table covers there: a type, or type:subtype (advocacy:imha).")
    table: str = Field(description="The curated table's file name, e.g. statutory_advocacy.csv.")
    verified_on: date = Field(description="The oldest verified_on among the table's rows for the area.")
    verified_by: str | None
    days_since_verified: int


class DueListOut(BaseModel):
    verify_after_days: int
    total: int
    results: list[DueOut]
    areas_due: list[AreaDueOut] = Field(description=(
        "Areas a curated table makes covered (searches there say none found, the scorecard missing) on a check "
        "older than verify_after_days, the oldest first; renewed by uploading the table again with the new check. "
        "Empty for a provider."))


class AuditEntryOut(BaseModel):
    id: int
    uuid: str
    at: str = Field(description="UTC, ISO 8601.")
    actor: str = Field(description="The token's label and id, or 'command line (user)'.")
    action: str = Field(description="create, update, retire, verify, link, unlink, revoke, resolve (a problem "
                                    "report), upload and upload_refused (a curated table); questioned (a source "
                                    "changed a field an edit keeps: old, the edit; new, the source's value) and "
                                    "keep (a maintainer kept the edit), which change nothing shown; tidy (an upgrade "
                                    "took out of the edits what rehabmap read, never a maintainer's word: old, the "
                                    "value laid; new, none).")
    resource_type: Literal["service", "organization", "token", "problem_report", "curated_table"]
    resource_id: str
    field: str
    old: Any
    new: Any
    change_id: str | None = Field(description="Shared by the rows of one change (an edit of several fields, a "
                                              "confirmed upload), so they can be read back as one; empty for rows "
                                              "written before the store had it.")


class AuditOut(BaseModel):
    total: int
    next_after_id: int | None = Field(description="Pass as after_id for the next page; empty at the end.")
    entries: list[AuditEntryOut]


class HsdsMetadataOut(BaseModel):
    """An HSDS 3.0 `metadata` row."""

    id: str
    resource_id: str
    resource_type: str
    last_action_date: date
    last_action_type: str
    field_name: str
    previous_value: str
    replacement_value: str
    updated_by: str


class HsdsAuditOut(BaseModel):
    total: int
    next_after_id: int | None
    contents: list[HsdsMetadataOut]


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Its length is checked once, on the name kept (`Organisations.add`): its runs of spaces made one, as the
    # keepers' page and `rehabmap orgs add` count it; counted here as typed, a name the page took was a 422.
    name: str = Field(description=(
        f"The organisation's name, {ORGANISATION_NAME_LENGTH[0]} to {ORGANISATION_NAME_LENGTH[1]} characters once "
        "runs of spaces are made one (else 400, naming it)."), examples=["Aire Trust"])
    service_ids: list[Annotated[str, Field(min_length=3, max_length=200)]] = Field(default_factory=list,
                                                                                  max_length=500)


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    service_ids: list[Annotated[str, Field(min_length=3, max_length=200)]] = Field(min_length=1, max_length=500)


class OrganisationOut(BaseModel):
    id: int
    name: str
    created_at: str
    service_ids: list[str]
