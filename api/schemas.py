"""Request and response shapes of the native API (the ORUK shapes live in rehabmap.oruk)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import to_json

from api._json import join as _join
from api._json import km as _km
from api._json import string as _string
from api.record_json import Pieces, cut
from geodata.geography import Home
from rehabmap.coverage import Coverage, Parts
from rehabmap.explanation import GenderBasis, gender_said_by, measured_from, needs_said_by
from rehabmap.maintain.freshness import (
    DEFAULT_VERIFY_AFTER_DAYS,
    SourceConfirmation,
    due_before,
    verification_due,
)
from rehabmap.maintain.retirement import Retirement
from rehabmap.match import LeftOut, MatchRequest, MatchResponse, MatchResult, round_km
from rehabmap.orders import Order
from rehabmap.per_record import RECORDS_KEPT, PerRecord
from rehabmap.record import Schedule, Service, Weekday
from rehabmap.taxonomy import ASKED_NEEDS_WORDS, SUBTYPE_LABELS, TYPE_LABELS, ServiceType

VERIFICATION_DUE = ("True when no person (the rehabmap team, or the service itself) has checked the record for longer "
                    "than the server's verify_after_days (default 180), or ever: check the details with the service "
                    "before relying on them. A source's listing (source_confirmed on GET /services/{id}: CQC "
                    "confirming a registration, say) does not clear it: it confirms only the facts that source "
                    "gives, never a referral route or phone number it does not. Always false for an inactive "
                    "(retired) service.")
LAST_VERIFIED = ("The day a person (the rehabmap team, or the service itself) last checked the record; null: never. "
                 "A synced source's listing is not a person's check: see source_confirmed.")
DATED_LISTING = ("Where no person has checked the record (last_verified) and no source has confirmed it lately, how "
                 "old its listing is, as the explanation says it: every source a dated file, \"Listed only in NHS "
                 "website hospital list (September 2018), a file of September 2018, not confirmed since.\"; every "
                 "live source's (CQC, NHS Service Search, an ORUK feed, CQC's monthly files) last confirmation more "
                 "than the server's REHABMAP_LISTING_MAX_AGE_DAYS (default 14) days old, its sync stopped or failing, "
                 "\"Listed only by Care Quality Commission (CQC), last confirmed 2 June 2026, not confirmed since.\" "
                 "Null where a source confirmed it within those days or a person checked it.")
# A value that names something (a type, a need, a postcode), in a query or a body: the document says a blank one is
# refused, as the route's own reading of it refuses it (a 400 naming what to give, where FastAPI's check would be a
# 422 naming nothing: the pattern is stated, not enforced by pydantic). `EmptyOrNonBlank`: an empty one is the default.
STATED_NON_BLANK = {"pattern": r"\S"}
NonBlank = Annotated[str, Field(json_schema_extra=STATED_NON_BLANK)]
# A need or type code is short; a longer string is junk and is refused before it is echoed in an error. An empty one,
# like one of spaces, is left to the route's reading (or the maintainers' `_named`), which names it as blank: its
# `minLength` is stated, not enforced (enforced, "" was "needs.1: String should have at least 1 character").
Code = Annotated[str, Field(max_length=40, json_schema_extra={**STATED_NON_BLANK, "minLength": 1})]
EmptyOrNonBlank = Annotated[str, Field(json_schema_extra={"pattern": r"^$|\S"})]


# The longest postcode a request may give: a postcode is 8 characters at most, and one pasted from a letter or a
# spreadsheet brings spaces around and within it ('NG18 2AT   '), which the reader ignores. Before, a limit of
# 10 refused such a postcode by its length ('at most 10 characters'), never saying what was wrong with it.
POSTCODE_MAX_LENGTH = 16
Postcode = Annotated[NonBlank, Field(max_length=POSTCODE_MAX_LENGTH)]  # as a body gives one (HomeIn, PlacementIn)


class HomeIn(BaseModel):
    """Where the person lives: exactly one of a postcode, a place name, or a point."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"postcode": "LS9 7TF"}, {"postcode": "LS9"}, {"place": "Bradford"}, {"lat": 53.79648, "lon": -1.54785}]})

    postcode: Postcode | None = Field(
        default=None, description="Full postcode ('LS9 7TF'), sector ('LS9 7') or district ('LS9').")
    place: Annotated[NonBlank, Field(max_length=80)] | None = Field(default=None, description=(
        "A town or place in England, with any county it lies in after a comma to say which of several places "
        "('Richmond, North Yorkshire'): its council, ceremonial, metropolitan or former county ('Plymouth, Devon', "
        "'Bristol, Avon'), a short form ('Herts'), or a town within 20 km, as an address gives its post town "
        "('Nailsea, Bristol')."))
    lat: float | None = Field(default=None, ge=-90, le=90, description="Latitude (WGS84), with lon.")
    lon: float | None = Field(default=None, ge=-180, le=180, description="Longitude (WGS84), with lat.")

    @model_validator(mode="after")
    def _exactly_one(self) -> HomeIn:
        given = [self.postcode is not None, self.place is not None, self.lat is not None or self.lon is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of postcode, place, or lat and lon")
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon")
        return self


class PlacementIn(BaseModel):
    """Where the person is placed now, to say how much nearer each option is: a service id or a postcode."""

    model_config = ConfigDict(extra="forbid", strict=True)

    service_id: Annotated[NonBlank, Field(max_length=200)] | None = Field(
        default=None, description="rehabmap id of the current service.")
    postcode: Postcode | None = Field(default=None, description="Postcode of the current placement.")

    @model_validator(mode="after")
    def _exactly_one(self) -> PlacementIn:
        if (self.service_id is None) == (self.postcode is None):
            raise ValueError("give exactly one of service_id or postcode for the current placement")
        return self


class MatchIn(BaseModel):
    """One person's question. Strict: `true` is a boolean and 30 an age; "true" and "30" are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"home": {"postcode": "LS9 7TF"}, "needs": ["autism", "restricted_s37_41"],
         "types": ["inpatient_rehab_level2"], "max_distance_km": 100,
         "current_placement": {"postcode": "TR1 3LJ"}},
        {"home": {"place": "Bradford"}, "types": "any", "needs": ["language:ur"], "limit": 3},
        {"home": {"lat": 53.4794, "lon": -2.2453}, "types": ["community_rehab_team"], "own_icb_only": True,
         "accepting_referrals_only": True, "current_placement": {"service_id": "sample:bodmin-rehabilitation-unit"}},
    ]})

    home: HomeIn
    needs: list[Code] = Field(
        default_factory=list, max_length=20,
        description=f"Needs every result must meet or not rule out: {ASKED_NEEDS_WORDS}.")
    types: Annotated[list[Code], Field(max_length=7)] | Literal["any"] = Field(
        default="any",
        description="Service types (" + ", ".join(t.value for t in ServiceType) + "), or 'any' for every "
        "type, least restrictive first, up to `limit` of each.")
    subtypes: list[Code] | None = Field(
        default=None, max_length=10,
        description="Subtypes: " + ", ".join(SUBTYPE_LABELS) + ". Each narrows only its own type (imha "
        "narrows advocacy to IMHA; other types asked for are unaffected); with types named, each subtype "
        "must belong to one of them.")
    age: int | None = Field(default=None, ge=0, le=120, description="Leave out services whose age range excludes it.")
    gender: Literal["female", "male"] | None = Field(
        default=None, description="Leave out services stated (by the service or a maintainer) to be for the other "
        "gender only. One only its words suggest is single-gender is listed, its explanation cautioning so.")
    max_distance_km: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False,
                                          description="Only options within this.")
    own_icb_only: bool = Field(default=False, description="Only options in the person's own ICB.")
    accepting_referrals_only: bool = Field(default=False, description="Only services that say they are "
                                           "accepting referrals now.")
    needs_confirmed: bool = Field(default=False, description=(
        "Leave out services that have not stated every need (a need rehabmap only read from a service's words, "
        "needs_read_from_text, does not count)."))
    include_out_of_catchment: bool = Field(default=False, description="List them, marked, instead of leaving out.")
    limit: int = Field(default=10, ge=1, le=100, description="Results per request (per type when types is 'any').")
    order: Order = Field(default="nearest", description=(
        "nearest: by distance, a service in the person's ICB first unless one outside it is more than 5 km nearer "
        "(the ranking's step 2). best_fit: most of the stated needs confirmed first, then taking referrals (yes, "
        "not said, no), then the capacity reported within the capacity window (vacancy, limited, not known, none), "
        "then as nearest (step 4; the clinicians' page's default)."))
    current_placement: PlacementIn | None = Field(
        default=None, description="Where the person is now; each option then says the distance saved.")


class CapacityOut(BaseModel):
    status: Literal["available", "limited", "none", "unknown"]
    as_of: date | None
    reported: Literal["available", "limited", "none"] | None


class CqcOut(BaseModel):
    location_id: str | None
    rating: str | None
    rating_date: date | None


SELF_REFERRAL = ("Whether a person can refer themselves: true, false (a referral from a professional is needed), "
                 "or null when the source does not say.")
SCHEDULES = ("When the service is open, as HSDS 3.0 schedules: weekly days and hours and/or the source's own "
             "words. Empty: opening times are not known.")
# A need read from a service's words is a guess: said to be one wherever it is shown (rehabmap/match.py
# RANKING_RULE: it never counts as confirmed and never leaves a service out).
_READ = ("rehabmap read from the service's own words (its name, description or label), each need with the "
         "words that suggested it; not stated by the service or a maintainer, so not confirmed (ask the service). "
         "A maintainer confirms one by stating it (needs_met or needs_not_met), which takes it out of here.")
NEEDS_REGISTERED = ("Of needs_met, those the service states because CQC registered the location to care for them (its "
                    "specialisms and regulated activities): the regulator's record of whom it may care for, not the "
                    "provider's word on whom it takes. A match's explanation says them \"as registered with CQC\". "
                    "Empty for a record with another source or none.")
NEEDS_ADDED = ("Of needs_met, those a maintainer added to a source's record: the maintainers' word (the rehabmap "
               "team's), not CQC's registration, the source's nor the provider's. A match's explanation says them "
               "\"added by the rehabmap team\". A gender a maintainer stated there is among them as its gender need. "
               "Empty for a record no maintainer added a need to, and for a service made in the directory (all of "
               "it the maintainers' word).")
NEEDS_READ = "Needs it may meet, as " + _READ
NEEDS_READ_NOT_MET = "Needs it may not meet, as " + _READ + " Never a reason to leave the service out of a match."
GENDER_STATED = ("Who the service takes (female_only, male_only or mixed_gender) as the service (its source) or a "
                 "maintainer states it: a single-gender service is left out of a match for the other gender. "
                 "null: not stated (gender_read_from_text may hold what its words suggest).")
GENDER_BY_MAINTAINERS = ("true: gender is a maintainer's word on a source's record, not the source's (nor the "
                         "provider's): the source states no gender or another, which the maintainer's replaced. A "
                         "match's explanation and the service page say it \"added by the rehabmap team\" (or "
                         "\"changed by the rehabmap team\"). false for a gender its source states, one on a record a "
                         "maintainer made in rehabmap (all of it theirs), and no gender (one they removed too: "
                         "gender_basis).")
GENDER_BASIS = ("Whose word gender is: source (the service's source states it; for a service a maintainer made in "
                "rehabmap, the maintainers are its source), added_by_maintainers (a maintainer stated it on a source's "
                "record that states none), changed_by_maintainers (a maintainer stated it in place of another its "
                "source states: gender_from_source), removed_by_maintainers (gender is null because a maintainer "
                "cleared the one its source states: gender_from_source; the service page says \"removed by the "
                "rehabmap team\"). null: no gender, and none removed.")
GENDER_FROM_SOURCE = ("The gender the service's source states (female_only, male_only or mixed_gender) where a "
                      "maintainer's word replaced it (gender_basis changed_by_maintainers or removed_by_maintainers); "
                      "else null. What the source said, not the directory's word: a match never filters on it.")
GENDER_READ = ("The gender rehabmap read from the service's own words (its name, description or label), with the "
               "words that suggested it: at most one key (female_only, male_only or mixed_gender); empty when none "
               "was read or a gender is stated (gender). A guess, not confirmed (ask the service): never a reason "
               "to leave the service out of a match, which ranks it as not said and cautions in the explanation. "
               "Its gender needs are also among needs_read_from_text and needs_read_not_met, as a stated gender's "
               "are among needs_met and needs_not_met.")
NEEDS_READ_IN_RESULT = ("Of unknown_needs, those the service's own words suggest it meets (quoted in the explanation): "
                        "read by rehabmap, not confirmed; they rank as not said.")
NEEDS_READ_NOT_MET_IN_RESULT = ("Of unknown_needs, those the service's own words suggest it does not meet (quoted in "
                                "the explanation): read by rehabmap, not confirmed, so the service is still listed.")


LOCAL_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$"


class ScheduleOut(BaseModel):
    """A weekly opening (days and hours) and/or the source's own words, in HSDS 3.0 `schedule` terms."""

    byday: list[Weekday] = Field(description="Days open, as HSDS/iCalendar codes (MO … SU).")
    # UK local time without an offset: JSON Schema's `format: time` (RFC 3339) demands one, which would say
    # something the source never did.
    opens_at: str | None = Field(pattern=LOCAL_TIME, description="Opening time, UK local time, HH:MM:SS.")
    closes_at: str | None = Field(pattern=LOCAL_TIME, description="Closing time, UK local time, HH:MM:SS.")
    description: str | None = Field(description="The source's own words: '24 hours, every day', 'by appointment'.")

    @classmethod
    def all_of(cls, service: Service) -> list[ScheduleOut]:
        return [cls.of(schedule) for schedule in service.schedules]

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        return cls(**cls.fields_of(schedule))

    @staticmethod
    def fields_of(schedule: Schedule) -> dict[str, Any]:
        opens, closes = schedule.hours() or (None, None)
        return {"byday": list(schedule.byday), "opens_at": opens, "closes_at": closes,
                "description": schedule.description}


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
    matched_needs: list[str] = Field(description="The needs asked for that the service or a maintainer states it "
                                                 "meets.")
    unknown_needs: list[str] = Field(description=(
        "The needs asked for that are not stated either way (ask the service), those read from its words included."))
    needs_read_from_text: list[str] = Field(description=NEEDS_READ_IN_RESULT)
    needs_read_not_met: list[str] = Field(description=NEEDS_READ_NOT_MET_IN_RESULT)
    gender: str | None = Field(description=GENDER_STATED)
    gender_read_from_text: dict[str, str] = Field(description=GENDER_READ)
    gender_stated_by_maintainers: bool = Field(description=GENDER_BY_MAINTAINERS)
    gender_basis: GenderBasis | None = Field(description=GENDER_BASIS)
    gender_from_source: str | None = Field(description=GENDER_FROM_SOURCE)
    out_of_catchment: bool
    explanation: str
    capacity: CapacityOut
    accepting_referrals: bool | None
    self_referral: bool | None = Field(description=SELF_REFERRAL)
    referral_route: str | None
    schedules: list[ScheduleOut] = Field(description=SCHEDULES)
    cqc: CqcOut
    phone: str | None
    email: str | None
    website: str | None
    postcode: str | None
    distance_saved_km: float | None
    dated_listing: str | None = Field(description=DATED_LISTING)
    last_verified: date | None = Field(description=LAST_VERIFIED)
    verification_due: bool = Field(description=VERIFICATION_DUE)

    @staticmethod
    def record_fields(s: Service) -> dict[str, Any]:
        """The result in this model's shape, plain values, those a request gives (`RESULT_HOLES`) null: what
        `MatchOut.json_of` serialises once per record (`api.record_json`)."""
        by_team, basis, from_source = gender_said_by(s)
        return {
            "id": s.id, "name": s.name, "service_type": s.service_type.value, "subtype": s.subtype,
            "original_label": s.original_label, "legacy_locked_label": s.legacy_locked_label,
            "organisation": s.organisation, "distance_km": None, "in_home_icb": None,
            "icb_code": s.areas.icb_code, "icb_name": s.areas.icb_name, "matched_needs": None,
            "unknown_needs": None, "needs_read_from_text": None, "needs_read_not_met": None, "gender": s.gender,
            "gender_read_from_text": s.gender_read_from_text, "gender_stated_by_maintainers": by_team,
            "gender_basis": basis, "gender_from_source": from_source,
            "out_of_catchment": None, "explanation": None,
            "capacity": {"status": None, "as_of": s.capacity_as_of, "reported": s.capacity},
            "accepting_referrals": s.accepting_referrals, "self_referral": s.self_referral,
            "referral_route": s.referral_route,
            "schedules": [ScheduleOut.fields_of(schedule) for schedule in s.schedules],
            "cqc": {"location_id": s.cqc_location_id, "rating": s.cqc_rating, "rating_date": s.cqc_rating_date},
            "phone": s.phone, "email": s.email, "website": s.website, "postcode": s.postcode,
            "distance_saved_km": None, "dated_listing": None, "last_verified": s.last_verified,
            "verification_due": None}


# A result's fields that its request gives, in the JSON's order; `MatchResultOut.record_fields` leaves them null.
RESULT_HOLES = ("distance_km", "in_home_icb", "matched_needs", "unknown_needs", "needs_read_from_text",
                "needs_read_not_met", "out_of_catchment", "explanation", "status", "distance_saved_km",
                "dated_listing", "verification_due")
_TRUE, _FALSE, _NULL, _EMPTY = to_json(True), to_json(False), to_json(None), to_json([])
_CAPACITY = {status: to_json(status) for status in ("available", "limited", "none", "unknown")}


def record_json(s: Service) -> tuple[Pieces, date | None]:
    """A result's JSON as far as its record alone says it: `MatchResultOut.record_fields` cut at the request's
    values (`RESULT_HOLES`); and the date `verification_due` compares with a reply's `due_before`: its last
    verification, or for a service no longer listed (never due) the last day there is (never before it)."""
    return cut(MatchResultOut.record_fields(s), RESULT_HOLES), s.last_verified if s.status == "active" else date.max


# ~1.6 KB of JSON a record (the bench's 200 requests show 1,972 records), for as many records as the index keeps;
# the Service objects it holds are most often the index's own cached ones (search/embedded.py, RECORD_CACHE_SIZE).
_RESULTS = PerRecord(record_json, size=RECORDS_KEPT)
_held_json = _RESULTS.held.get


def _result_pieces(r: MatchResult, due: date, lists: dict[tuple[str, ...], bytes]) -> tuple[bytes, ...]:
    """The result's JSON as pieces to join: its record's (`_RESULTS`) with the request's values in its holes,
    in `RESULT_HOLES`' order; `due`: `due_before` for the reply's day (the rule of `verification_due`: a
    service no longer listed is never due); `lists`: the reply's lists of needs, each serialised once (a match's
    results mostly share theirs), by its needs as a tuple; held by the reply only. The explanation and the
    distances are written by the compiled `api._json` (`_distance_json` in line: a call fewer a distance)."""
    held = _held_json(id(r[0]))
    (a, b, c, d, e, f, g, h, i, j, n, k, m), verified = held[1] if held is not None else _RESULTS.of(r[0])
    _, distance, in_icb, matched, unknown, read, read_not, outside, capacity, explanation, saved, dated = r
    return (
        a, _km(distance) or to_json(distance), b, _TRUE if in_icb else _FALSE,
        c, (lists.get(key := tuple(matched)) or _kept(lists, key)) if matched else _EMPTY,
        d, (lists.get(key := tuple(unknown)) or _kept(lists, key)) if unknown else _EMPTY,
        e, (lists.get(read) or _kept(lists, read)) if read else _EMPTY,
        f, (lists.get(read_not) or _kept(lists, read_not)) if read_not else _EMPTY,
        g, _TRUE if outside else _FALSE, h, _string(explanation), i, _CAPACITY[capacity or "unknown"],
        j, _NULL if saved is None else _km(saved) or to_json(saved), n, _NULL if dated is None else _string(dated),
        k, _TRUE if verified is None or verified < due else _FALSE, m)


def _distance_json(km: float) -> bytes:
    """A distance's JSON as `to_json` writes it: by `api._json.km` (~0.7k instructions against `to_json`'s ~1.8k)
    for a whole number of metres (`round_km`'s, every distance a reply gives), else by `to_json` itself."""
    return _km(km) or to_json(km)


def _kept(lists: dict[tuple[str, ...], bytes], needs: tuple[str, ...]) -> bytes:
    """`needs` serialised, and kept in the reply's `lists` for the results after."""
    made = lists[needs] = to_json(needs)
    return made


class CoverageOut(BaseModel):
    """Whether the directory holds this type's data for an area at all: 'none found' means something only
    where it is covered."""

    category: str = Field(description="The type, or type:subtype.")
    status: Literal["covered", "partly_covered", "not_covered"] = Field(description=(
        "covered: a source listed every such service here, or a maintainer verified the area's table; "
        "partly_covered: so for part of the area (share_of_adults), or for some of the type's kinds only "
        "(kinds_covered); not_covered: rehabmap holds no such data here yet."))
    share_of_adults: float = Field(description="Share of the area's adults (16+) living where it is covered.")
    as_of: str | None = Field(description="Date (YYYY-MM-DD) of the oldest claim it rests on.")
    based_on: list[str] = Field(description="'sync:<source>' or 'curated:<table>'.")
    pending_review: int = Field(description="Candidates of this type here awaiting a maintainer's review (for a "
                                            "match: in the home's ICB or within the search's radius, wherever "
                                            "they lie); they are not shown until accepted.")
    kinds_covered: list[str] = Field(default=[], description=(
        "At a home or in an area, for a type not covered there as a whole: its kinds (type:subtype) that are "
        "(status partly_covered; share_of_adults is the type's as a whole). CQC's listing is complete for "
        "supported_accommodation:residential_24h (the care homes it registers), not for the other kinds."))
    kinds_not_covered: list[str] = Field(default=[], description="With kinds_covered: the type's kinds that are not.")
    says: str = Field(description=(
        "In words, what the answer it goes with means here: where none is found, whether that means there are "
        "none ('None found. The directory holds complete …': covered; 'None found, but the directory holds … only "
        "for …': partly covered, saying which part, of the area's adults or of the type's kinds; 'Not yet "
        "covered: …': no data; 'None confirmed yet: …': candidates await review); where some are found, whether "
        "there may be more ('Found. …', 'Found, but …'). What the request's own options left out is the type "
        "summary's left_out, not these words."))

    @classmethod
    def of(cls, coverage: Coverage, found: bool) -> CoverageOut:
        """`found`: the answer lists some of this category."""
        return cls.model_validate(coverage.to_dict(found=found))


class CoveragePartOut(BaseModel):
    """One part of a type at the home, as the public pages judge it: a type's own `coverage.status` is its answer as
    a whole (not_covered while a candidate of any part awaits review), where the pages say of each part whether
    its data is held, not held, or being checked."""

    category: str = Field(description="The type (type) or one of its kinds (type:subtype).")
    status: Literal["held", "not_held", "awaiting_review"] = Field(description=(
        "held: the directory holds this part's data at the home (none found of it means none); not_held: it holds "
        "none (there may be some); awaiting_review: candidates of it await a maintainer's review (pending_review), "
        "so it is neither."))
    pending_review: int = Field(description=(
        "Candidates of this part awaiting review in the home's ICB or within max_distance_km of the home (anywhere "
        "in England without one)."))

    @staticmethod
    def fields_of(category: str, coverage: Coverage) -> dict[str, Any]:
        return {"category": category, "status": coverage.part_status, "pending_review": coverage.pending_review}


# The request's own options as `MatchIn` names them (`rehabmap.match.NARROWING` names MatchRequest's fields).
_OPTION_NAMES = {"accepting_only": "accepting_referrals_only"}


class LeftOutOut(BaseModel):
    """Of a type the answer lists none of, what the request's own options left out: "none found" and "no data"
    are not the answer where a service is there but an option hid it."""

    total: int = Field(description=(
        "How many services of this type pass the request without its own options (accepting_referrals_only, "
        "needs_confirmed, own_icb_only, and leaving out services whose catchment does not include the home), "
        "within max_distance_km (anywhere in England without one)."))
    by_option: dict[str, int] = Field(description=(
        "Per option, how many of those it leaves out (one may be left out by several): accepting_referrals_only "
        "(does not say it is taking new referrals), needs_confirmed (has not confirmed every need), own_icb_only "
        "(outside the home's ICB), include_out_of_catchment (its catchment does not include the home: send "
        "include_out_of_catchment true to see it). Send the others false to see them. And limit: how many pass "
        "every filter but come after the first `limit` results, where types named together share one list."))
    says: str = Field(description="In words: '1 service within 10.0 miles (16.1 km) of home was left out by the "
                                  "search's options: 1 does not say it is taking new referrals.'")

    @staticmethod
    def fields_of(left: LeftOut, request: MatchRequest) -> dict[str, Any]:
        return {"total": left.total, "by_option": {_OPTION_NAMES.get(o, o): n for o, n in left.by.items()},
                "says": left.says(request)}


class TypeSummaryOut(BaseModel):
    service_type: str
    in_home_icb: int = Field(description=(
        "How many services of this type pass the request's filters inside the home's ICB, at any distance (0 where "
        "the home has no ICB): what the directory lists there, not whether it holds all of them. coverage is the "
        "home's area; whether the directory holds all of this type in the ICB is the ICB's row of GET "
        "/gaps?level=icb, its found_may_be_more_parts (a part found where there may be more) and not_covered_parts."))
    nearest: MatchResultOut | None
    found: Literal["found", "none_found", "awaiting_review", "not_yet_covered"] = Field(description=(
        "found: this answer lists some of this type; none_found: none, and the directory covers the home's "
        "area for this type; awaiting_review: none confirmed, but candidates in the home's ICB or "
        "within the search's radius await a maintainer's review; not_yet_covered: none, but rehabmap holds no "
        "such data for the home's area yet (or only for part of it, or of the type's kinds: coverage says which). "
        "Only none_found means there are none that pass the request; where left_out is not null, the request's "
        "own options (or its limit) left some out, and it says how many and by which."))
    coverage: CoverageOut = Field(description="Coverage of the home's area for this type.")
    left_out: LeftOutOut | None = Field(default=None, description=(
        "Where this answer lists none of this type and the request's own options left some out: how many, and "
        "by which option; else null."))
    parts: list[CoveragePartOut] = Field(default=[], description=(
        "The type's parts at the home, each with its own answer, as the public pages give them: its kinds "
        "(type:subtype) where the type is not covered as a whole and some kind of it is held somewhere, else the "
        "type alone. Near Mansfield with a supported housing candidate awaiting review, coverage.status is the "
        "type's not_covered, and parts say residential_24h held (CQC lists every care home), supported_housing "
        "awaiting_review, floating_outreach not_held. All the type's parts, whichever subtypes the request asked."))


class HomeOut(BaseModel):
    """Only what is safe to echo: the district and areas, never the full postcode or point; for a place name, the
    place it was read as, so that a caller sees when a typo was taken for a place ('Sheffeld': Sheffield)."""

    district: str | None
    icb_code: str | None
    icb_name: str | None
    lad_code: str | None
    lad_name: str | None
    precision: str = Field(description=(
        "What the home was found as: postcode (a full postcode), sector ('LS9 7'), district ('TR21'), place or "
        "point. For a sector or district, every distance runs from its point, the mean of its postcodes; for a "
        "place, from the place's point (distances_from)."))
    place: str | None = Field(default=None, description=(
        "For a home given as a place name: the place it was read as, with its county where places share the name "
        "(a misspelt name is read as the one place spelt nearest, or asked about). Null for a postcode or a point."))
    distances_from: str | None = Field(default=None, description=(
        "Where the distances run from when that is not the home itself: 'the middle of TR21' for a district, 'the "
        "middle of the postcode sector searched' for a sector (a reply echoes no more than the district), 'the "
        "middle of Sheffield' for a place (the place it was read as), and a match's explanations say 'about' each "
        "distance from it. Null for a full postcode or a point."))

    @staticmethod
    def fields_of(home: Home) -> dict[str, str | None]:
        areas = home.areas
        return {"district": home.district, "icb_code": areas.icb_code, "icb_name": areas.icb_name,
                "lad_code": areas.lad_code, "lad_name": areas.lad_name, "precision": home.precision,
                "place": home.place,
                "distances_from": measured_from(home.precision, home.district, home.place)}


def _found(listed: bool, coverage: Coverage) -> Literal["found", "none_found", "awaiting_review", "not_yet_covered"]:
    if listed:
        return "found"
    if coverage.pending_review:
        return "awaiting_review"
    return "none_found" if coverage.covered else "not_yet_covered"


class MatchOut(BaseModel):
    home: HomeOut
    ranking: str
    results: list[MatchResultOut]
    summary: list[TypeSummaryOut]
    current_placement_km: float | None

    @staticmethod
    def json_of(home: Home, response: MatchResponse, ranking: str, coverage: dict[ServiceType, Coverage],
                today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS,
                left_out: dict[ServiceType, dict[str, Any]] | None = None,
                parts: dict[ServiceType, Parts] | None = None) -> bytes:
        """The reply's JSON, in this model's shape, from plain values: building the nested models (validating
        ~12 results) and then dumping them was about a third of a request's time outside `match()`
        (bench/RESULTS.md, "POST /match, third pass"). Each result is its record's JSON, serialised once
        (`_RESULTS`), with the request's values spliced in (bench/RESULTS.md, "POST /match, ninth pass, the
        reply"); the tests check the bytes against the models' own. A type's nearest is most often one of the
        results, the same object (`match`): its pieces are then made once. The whole reply is one join of
        every piece, not a join per result and then of the results (one copy of ~8 KB and ~12 objects less:
        bench/RESULTS.md, "POST /match outside `match()`", session 15), by the compiled `api._json.join`.
        `left_out`: per type listed none of, `LeftOutOut.fields_of` where the request's options left some out;
        `parts`: per type, its parts' answers (`HomeCoverage.with_parts`; none given, none said)."""
        listed = {r.service.service_type for r in response.results}
        due = _due_before(today, verify_after_days)
        out = [to_json({"home": HomeOut.fields_of(home)})[:-1], b',"ranking":', _text_json(ranking), b',"results":[']
        shown: dict[int, tuple[bytes, ...]] = {}
        lists: dict[tuple[str, ...], bytes] = {}  # this reply's only
        comma = b""
        for r in response.results:
            pieces = shown[id(r)] = _result_pieces(r, due, lists)
            out.append(comma)
            out += pieces
            comma = b","
        out.append(b'],"summary":[')
        comma = b""
        # Each object's JSON around what is spliced in: `{…` without its `}`, or `…}` without its `{`. Whether a
        # type is listed decides both `found` and the coverage's words (one piece, `_coverage_json`). The count in
        # the home ICB, an int, is written by `%d` as JSON writes an int (a bytes format, not a pydantic-core call:
        # bench/RESULTS.md, "a match's results and their reply JSON", session 29).
        for t in response.summary:
            out += (comma, _SUMMARY_OPEN[t.service_type], b"%d" % t.in_home_icb, b',"nearest":')
            if t.nearest is None:
                out.append(_NULL)
            else:
                out += shown.get(id(t.nearest)) or _result_pieces(t.nearest, due, lists)
            left = left_out.get(t.service_type) if left_out else None
            out += (_coverage_json(coverage[t.service_type], t.service_type in listed), b',"left_out":',
                    _NULL if left is None else to_json(left), b',"parts":',
                    _parts_json(parts[t.service_type]) if parts else _EMPTY, b"}")
            comma = b","
        placement = response.current_placement_km
        out += (b'],"current_placement_km":', _NULL if placement is None else _distance_json(round_km(placement)), b"}")
        return _join(out)  # `b"".join(out)` without the buffer protocol per piece: ~27k instructions -> ~13k


# The ranking rule's words, the same in every reply: ~1 KB, whose serialising was ~1 µs of CPU a reply.
_text_json = lru_cache(maxsize=4)(to_json)
# The day a reply's records are due before: the same all day (a server's day and its setting), ~5.1k instructions
# a reply to work out (a `timedelta` made by keyword, a subtraction), ~1.2k to look up (bench/RESULTS.md, session 30).
_due_before = lru_cache(maxsize=4)(due_before)

# A summary entry's fixed parts: its type's opening up to the count in the home ICB, and what follows the
# nearest up to the coverage (a comma, then `found`: `_coverage_json`'s opening).
_SUMMARY_OPEN = {t: b'{"service_type":' + to_json(t.value) + b',"in_home_icb":' for t in ServiceType}
_FOUND = {found: b',"found":' + to_json(found) + b',"coverage":'
          for found in ("found", "none_found", "awaiting_review", "not_yet_covered")}


@lru_cache(maxsize=1024)
def _coverage_json(coverage: Coverage, found: bool) -> bytes:
    """A summary entry's `found` and its coverage answer's JSON (`CoverageOut`'s shape), from the comma before
    `"found"` to the coverage's `}`: both follow from the answer and whether the reply lists any of its type, so
    one lookup an entry gives both (session 30: a `_found` call and a tuple's item fewer). Made once an answer:
    the same few come back request after request (a type's not-covered answer is one object, shared by every
    home no claim covers), and their words, dict and serialising were ~5 µs of CPU a summary entry, warm, ~0.3
    kept (bench/RESULTS.md, "POST /match outside `match()`", session 14). Kept by the answer's value (category,
    status, share, date, bases, candidates awaiting review) and whether the reply lists any of its type (its
    words depend on it): the directory's facts, nothing of a home or a request."""
    return _FOUND[_found(found, coverage)] + to_json(coverage.to_dict(found=found))


@lru_cache(maxsize=1024)
def _parts_json(parts: Parts) -> bytes:
    """A summary entry's `parts` (`CoveragePartOut`'s shape), kept by the answers as `_coverage_json` keeps its:
    the same few come back request after request (a type of which nothing is claimed, the same tuple:
    `HomeCoverage.with_parts`)."""
    return to_json([CoveragePartOut.fields_of(category, answer) for category, answer in parts])


# --- errors -------------------------------------------------------------------------------------------

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable machine-readable code, e.g. unknown_postcode."},
            "message": {"type": "string", "description": "What was wrong and what to do, for a person."},
            "field": {"type": "string", "description": "The input that was wrong, when there is one."},
            "places": {"type": "array", "items": {"type": "string"}, "description": (
                "For `ambiguous_place` and `unknown_place`: the places the name may have meant, each as it can be "
                "sent back in `home.place` ('Richmond, North Yorkshire'), to offer a person as choices.")},
            "service_id": {"type": "string", "description": (
                "For a new service whose write the search index refused or failed (`POST /maintain/services`, 503): "
                "the id it is kept under in the directory's edits. Change that one (PATCH, or POST .../verify), which "
                "writes it once the index answers; the POST sent again would add a second service.")}}}},
}
_ERROR_EXAMPLES: dict[int, tuple[str, dict[str, str]]] = {
    400: ("Bad input: an invalid postcode, an unknown type or need, a value out of range.",
          {"code": "unknown_need", "field": "needs",
           "message": "Unknown need 'flying'. Use one of: Learning disability (learning_disability), …; or a "
                      "language: language:<English name or ISO 639 code> (e.g. language:Polish or language:pl)."}),
    404: ("Not found: an unknown postcode, place, service or area.",
          {"code": "unknown_postcode", "field": "postcode",
           "message": "Postcode 'ZZ1 1ZZ' was not found in the ONS Postcode Directory for England. …"}),
    422: ("The request does not have the documented shape (wrong type, missing or extra field).",
          {"code": "invalid_request", "field": "limit",
           "message": "query.limit: Input should be less than or equal to 100"}),
    503: ("The index or the geodata has not been built yet, the search cluster is out of reach, or a data file the "
          "server needs is missing (`data_file_missing`).",
          {"code": "index_not_built",
           "message": "No index has been built: index-schema6.sqlite is not there. "
                      "Run 'rehabmap index SOURCE...' first."}),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error replies. Always JSON, also on routes whose success is CSV or GeoJSON."""
    return {status: {"description": _ERROR_EXAMPLES[status][0], "content": {"application/json": {
        "schema": _ERROR_SCHEMA, "example": {"error": _ERROR_EXAMPLES[status][1]}}}}
        for status in statuses}


ERRORS = error_responses(400, 404, 422, 503)


# --- services -----------------------------------------------------------------------------------------

class AreasOut(BaseModel):
    """The ONS areas a service's point lies in."""

    icb_code: str | None
    icb_name: str | None
    sub_icb_code: str | None
    sub_icb_name: str | None
    lad_code: str | None
    lad_name: str | None
    region_code: str | None
    region_name: str | None


class ServiceAreaOut(BaseModel):
    """Who the service serves: ONS area codes and/or a polygon; none stated means no restriction."""

    codes: list[str]
    description: str | None
    has_polygon: bool
    polygon: dict[str, Any] | None = Field(
        default=None, description="GeoJSON (WGS84) catchment; given on GET /services/{id} only.")


class ProvenanceOut(BaseModel):
    source: str
    source_id: str
    fetched_at: datetime = Field(description=(
        "When the record, as it stands, was read from this source: by a sync's fetch or the import that read its "
        "file (a file's own date is source_confirmed.file_of), or, for the source a synced ORUK feed names, as that "
        "feed says. A record read again unchanged, or prepared again after an upgrade, keeps the time it was first "
        "read so; a file's row imported straight into the index (not held for review) is read by each import, and "
        "gives that import's time."))
    licence: str | None


def capacity_of(service: Service, today: date) -> CapacityOut:
    now = service.capacity_now(today)
    return CapacityOut(status=now or "unknown", as_of=service.capacity_as_of, reported=service.capacity)


class SourceConfirmedOut(BaseModel):
    source: str = Field(description="The source, as field_sources and provenance name it (e.g. 'cqc').")
    name: str = Field(description="The source as a person reads it (e.g. 'CQC').")
    confirmed_on: date | None = Field(description=(
        "The day of the source's last successful sync that still listed the service as shown (a complete listing "
        "lists it; a change feed, such as CQC's, told no change to it). Null for a dated file (is_file): "
        "importing it again confirms nothing."))
    confirms: list[str] = Field(description=(
        "The facts the source gives, and so confirms (e.g. registration, name, address): those whose "
        "field_sources name it; a dated file's, those of them its mapping reads from it. A merged record's source "
        "confirms only the facts it gave (a field the other source gave too is named by one of them)."))
    does_not_confirm: list[str] = Field(description=(
        "The facts no source of the record gives (e.g. referral route, opening times): only a person's check "
        "confirms them. The same on each of a merged record's listings."))
    is_file: bool = Field(False, description=(
        "The source is a dated file (a hospital list of 2014-15, say), imported by `rehabmap index`: its listing "
        "is as old as the file, whatever day it was imported."))
    file_of: str | None = Field(None, description=(
        "A dated file's date, as a person reads it (e.g. '2014-15', 'September 2018'); null when its mapping "
        "does not say it, or for a source that is not a file."))
    relayed_by: str | None = Field(None, description=(
        "The feed that relayed a dated file's listing (another rehabmap's ORUK feed, read by `rehabmap sync oruk`), "
        "as a person reads it (e.g. 'first rehabmap'): the listing is the file's, as old as it says, not the "
        "feed's; null otherwise."))


class ServiceOut(BaseModel):
    """One service as rehabmap holds it. Capacity older than the server's freshness window
    (REHABMAP_CAPACITY_MAX_AGE_DAYS, 14 days unless set otherwise) reads `unknown`; `reported` keeps what
    the service last said."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "sample:aire-valley-rehabilitation-unit", "name": "Aire Valley Rehabilitation Unit (sample)",
        "service_type": "inpatient_rehab_level1", "service_type_label": "Level 1 inpatient rehabilitation unit",
        "postcode": "LS9 7TF", "lat": 53.806869, "lon": -1.520359,
        "capacity": {"status": "available", "as_of": "2026-11-20", "reported": "available"}}]})

    id: str
    name: str
    organisation: str | None
    provider_type: str | None
    service_type: str
    service_type_label: str
    subtype: str | None
    subtype_label: str | None
    original_label: str | None
    legacy_locked_label: bool
    pd_specialist: bool
    description: str
    needs_met: list[str] = Field(description="Needs the service (its source) or a maintainer states it meets.")
    needs_not_met: list[str] = Field(description="Needs the service or a maintainer states it does not meet.")
    needs_registered: list[str] = Field(description=NEEDS_REGISTERED)
    needs_added_by_maintainers: list[str] = Field(description=NEEDS_ADDED)
    needs_read_from_text: dict[str, str] = Field(description=NEEDS_READ)
    needs_read_not_met: dict[str, str] = Field(description=NEEDS_READ_NOT_MET)
    min_age: int | None
    max_age: int | None
    gender: str | None = Field(description=GENDER_STATED)
    gender_read_from_text: dict[str, str] = Field(description=GENDER_READ)
    gender_stated_by_maintainers: bool = Field(description=GENDER_BY_MAINTAINERS)
    gender_basis: GenderBasis | None = Field(description=GENDER_BASIS)
    gender_from_source: str | None = Field(description=GENDER_FROM_SOURCE)
    address: str | None
    postcode: str | None
    lat: float
    lon: float
    areas: AreasOut
    service_area: ServiceAreaOut
    beds: int | None
    capacity: CapacityOut
    accepting_referrals: bool | None
    self_referral: bool | None = Field(description=SELF_REFERRAL)
    referral_route: str | None
    schedules: list[ScheduleOut] = Field(description=SCHEDULES)
    phone: str | None
    email: str | None
    website: str | None
    cqc: CqcOut
    status: str
    last_verified: date | None = Field(description=LAST_VERIFIED)
    verification_due: bool = Field(description=VERIFICATION_DUE)
    provenance: list[ProvenanceOut]
    source_confirmed: SourceConfirmedOut | None = Field(default=None, description=(
        "A synced service: its source's listing of it as it stands (null for a service no source syncs, a "
        "retired one, or in a list: read for one record, GET /services/{id}). A fact of its own, not a "
        "person's check (last_verified). A merged record (two sources or more in provenance): the first listing, in "
        "provenance's order, of a source that gave a fact shown; the others are in also_confirmed."))
    also_confirmed: list[SourceConfirmedOut] | None = Field(default=None, description=(
        "A merged record: the listings of its other sources that gave a fact shown, each with the facts it gave "
        "(e.g. the 2018 NHS hospital list's phone and website beside the 2014-15 list's email). Empty for a record "
        "of one source; null where source_confirmed is."))
    retired_on: date | None = Field(default=None, description=(
        "An inactive (retired) service, one rehabmap no longer lists (it may have closed, changed provider or "
        "stopped offering this support): the day it was retired, by a sync (its source deregistered it or no "
        "longer lists it) or by a maintainer. Null for an active service."))
    retired_reason: str | None = Field(default=None, description=(
        "An inactive service: why, as its source said it (e.g. 'deregistered by CQC on 2021-03-01 …'); null "
        "when a maintainer retired it without a reason, or for an active service."))

    @classmethod
    def fields_of(cls, s: Service, today: date, *, polygon: bool,
                  verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> dict[str, Any]:
        area = s.service_area
        registered, added = needs_said_by(s)
        by_team, basis, from_source = gender_said_by(s)
        return dict(
            id=s.id, name=s.name, organisation=s.organisation, provider_type=s.provider_type,
            service_type=s.service_type.value, service_type_label=TYPE_LABELS[s.service_type],
            subtype=s.subtype, subtype_label=SUBTYPE_LABELS.get(s.subtype) if s.subtype else None,
            original_label=s.original_label, legacy_locked_label=s.legacy_locked_label,
            pd_specialist=s.pd_specialist, description=s.description, needs_met=s.needs_met,
            needs_not_met=s.needs_not_met, needs_registered=registered, needs_added_by_maintainers=added,
            needs_read_from_text=s.needs_read_from_text, needs_read_not_met=s.needs_read_not_met,
            min_age=s.min_age, max_age=s.max_age, gender=s.gender, gender_read_from_text=s.gender_read_from_text,
            gender_stated_by_maintainers=by_team, gender_basis=basis, gender_from_source=from_source,
            address=s.address, postcode=s.postcode, lat=s.published_point[0], lon=s.published_point[1],
            areas=AreasOut(**vars(s.areas)),
            service_area=ServiceAreaOut(codes=area.codes, description=area.description,
                                        has_polygon=area.polygon is not None,
                                        polygon=area.polygon if polygon else None),
            beds=s.beds, capacity=capacity_of(s, today), accepting_referrals=s.accepting_referrals,
            self_referral=s.self_referral, referral_route=s.referral_route, schedules=ScheduleOut.all_of(s),
            phone=s.phone, email=s.email, website=s.website,
            cqc=CqcOut(location_id=s.cqc_location_id, rating=s.cqc_rating, rating_date=s.cqc_rating_date),
            status=s.status, last_verified=s.last_verified,
            verification_due=verification_due(s, today, verify_after_days),
            provenance=[ProvenanceOut(source=p.source, source_id=p.source_id, fetched_at=p.fetched_at,
                                      licence=p.licence) for p in s.provenance])

    @classmethod
    def of(cls, s: Service, today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> ServiceOut:
        return cls(**cls.fields_of(s, today, polygon=True, verify_after_days=verify_after_days))

    def confirmed(self, listings: Sequence[SourceConfirmation]) -> ServiceOut:
        """The record with its sources' listings (GET /services/{id}), never for a list."""
        if not listings:
            return self
        first, *others = (SourceConfirmedOut(**vars(listing)) for listing in listings)
        return self.model_copy(update={"source_confirmed": first, "also_confirmed": others})

    def retired(self, retired: Retirement | None) -> ServiceOut:
        """The record with when and why it was retired: read from the audit log for one record (GET /services/{id}),
        never for a list."""
        if retired is None:
            return self
        return self.model_copy(update={"retired_on": retired.on, "retired_reason": retired.reason})


class ListedServiceOut(ServiceOut):
    """A service in a list. Near a place, it also says how far and whether the place is in its catchment."""

    distance_km: float | None = Field(description="Great-circle km from the place searched near.")
    in_home_icb: bool | None = Field(description="In the same ICB as the place searched near.")
    out_of_catchment: bool | None = Field(
        description="The place searched near is outside the area the service says it serves.")

    @classmethod
    def of(cls, s: Service, today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS, *,
           distance_km: float | None = None, in_home_icb: bool | None = None,
           out_of_catchment: bool | None = None) -> ListedServiceOut:
        return cls(**cls.fields_of(s, today, polygon=False, verify_after_days=verify_after_days),
                   distance_km=distance_km, in_home_icb=in_home_icb,
                   out_of_catchment=out_of_catchment)


class ServiceListOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "total": 1, "page": 1, "per_page": 20, "total_pages": 1, "sort": "distance",
        "near": {"district": "LS9", "icb_code": "E54000054", "icb_name": "NHS West Yorkshire ICB",
                 "lad_code": "E08000035", "lad_name": "Leeds", "precision": "postcode", "place": None,
                 "distances_from": None},
        "radius_km": 10, "results": []}]})

    total: int = Field(description="Services passing the filters (within the radius, when one is given).")
    page: int
    per_page: int
    total_pages: int
    sort: Literal["distance", "relevance", "name"]
    near: HomeOut | None = Field(description="Where the search was centred: district and areas only.")
    radius_km: float | None
    results: list[ListedServiceOut]
    coverage: list[CoverageOut] | None = Field(default=None, description=(
        "Near a place, where the answer lists none or one type is asked for: for each type the filters ask for "
        "(every type when none), whether rehabmap holds that type's data there and, in `says`, what this answer "
        "means: where none is found, whether that means there are none ('None found. The directory holds complete "
        "…') or no data ('Not yet covered: …'); where some are, whether there may be more. Null away from a place, "
        "and where services of several types are listed (ask one type for its words)."))


# --- areas --------------------------------------------------------------------------------------------

class AreaOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "E08000035", "name": "Leeds", "level": "lad", "level_label": "Local authority district",
        "bbox": [-1.8, 53.69, -1.29, 53.95], "total": 1,
        "counts": {"vcfse": 0, "advocacy": 1, "ips_employment": 0, "supported_accommodation": 0,
                   "community_rehab_team": 0, "inpatient_rehab_level1": 0, "inpatient_rehab_level2": 0},
        "page": 1, "per_page": 50, "total_pages": 1, "services": []}]})

    code: str
    name: str
    level: Literal["icb", "sub_icb", "lad", "county", "region"]
    level_label: str
    bbox: list[float] = Field(description="[west, south, east, north] in WGS84 degrees.")
    total: int = Field(description="Active services located in the area.")
    counts: dict[str, int] = Field(description="Active services located in the area, per service type "
                                               "(every type listed, least restrictive first).")
    page: int
    per_page: int
    total_pages: int
    services: list[ListedServiceOut]
    coverage: dict[str, CoverageOut] = Field(description=(
        "Per service type: whether the directory holds that type's data for this area at all, so that a count "
        "of 0 can be read as 'none' only where it is covered."))
