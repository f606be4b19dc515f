"""Care Quality Commission registrations → candidate rows, from the public care directory CSV ("CQC care
directory with filters") and from the CQC API's location JSON.

CQC registers every regulated service, most of which are not part of the rehab pathway. Its words (service
types, specialisms) and the location's name decide: a mental health hospital is indexed only when its name
states a rehab level (a legacy label, "level 1/2"), as `rehabmap sync` confirms only then; care homes and
supported living with a mental health specialism are supported accommodation; a community mental health service
whose name says rehabilitation is a community rehab team. Everything else is rejected with the reason, never
dropped.

`read_pathway` is the one reading of CQC's words, shared with the CQC sync connector
(`indexer/sync/connectors/cqc.py`): it also says how sure the reading is and on what evidence, so the sync can
hold a guess for review where this importer, which has no review queue, can only index or reject.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from indexer.rows import Candidate, Origin, Rejection
from indexer.sources.common import CsvProblem, CsvTable, RowParser, compact, join_address, provider_type_from_name
from indexer.sync.items import Evidence
from rehabmap.cqc_words import (HSCA_ACTIVITY, REGISTERED_FOR_MENTAL_HEALTH, REGULATED_ACTIVITIES, SPECIALISMS, flagged,
                                listed)
from rehabmap.errors import shorten
from rehabmap.taxonomy import NotRehab, ServiceType, classify_label

# CQC's regulated activity and service type names run to ~60 characters each; a refusal quotes a location's whole
# list (up to four of them), so it can be checked against the register.
TYPES_QUOTED = 240

SOURCE = "cqc"
LICENCE = "OGL-UK-3.0"
TITLE_LINES_MAX = 10  # the directory has a title block of a few lines above its header

COL_NAME, COL_AKA, COL_ADDRESS, COL_POSTCODE = "Name", "Also known as", "Address", "Postcode"
COL_PHONE, COL_WEBSITE = "Phone number", "Service's website (if available)"
COL_TYPES, COL_SPECIALISMS, COL_PROVIDER = "Service types", "Specialisms/services", "Provider name"
COL_LOCATION_ID = "CQC Location ID (for office use only)"
COL_PROVIDER_ID = "CQC Provider ID (for office use only)"
_DIRECTORY_REQUIRED = (COL_NAME, COL_POSTCODE, COL_TYPES, COL_SPECIALISMS, COL_LOCATION_ID)
_DIRECTORY_USED = (*_DIRECTORY_REQUIRED, COL_AKA, COL_ADDRESS, COL_PHONE, COL_WEBSITE, COL_PROVIDER)

# Service types as the directory names them ("Hospitals - Mental health/capacity") and as the API
# describes them ("Hospital services for people with mental health needs, …").
_MH_HOSPITAL = re.compile(r"hospital services for people with mental health|hospitals? - mental health", re.I)
_CARE_HOME = re.compile(r"\b(residential|nursing) homes?\b|care home service", re.I)
_SUPPORTED_LIVING = re.compile(r"supported living|supported housing|extra care housing", re.I)
_COMMUNITY_MH = re.compile(r"community based services for people with mental health|community services - mental health",
                           re.I)
_MH_SPECIALISM = re.compile(r"mental health conditions|restricted under the mental health act|"
                            r"detained under the (1983 act|mental health act)", re.I)
_REHAB_WORD = re.compile(r"\brehab", re.I)
# CQC's core service for rehab wards, by name (ratings files, inspection areas) or API code (service ratings).
REHAB_WARD = re.compile(r"long stay or rehabilitation mental health wards|^mhlongstay$", re.I)
# A hospital named for a ward kind that is not rehab is no candidate, unless a rehab ward is inspected there.
_OTHER_WARD = re.compile(r"\b(acute|picu|psychiatric intensive care|assessment|crisis|place of safety|"
                         r"eating disorders?|mother and baby|perinatal|adolescent|cahms|camhs)\b", re.I)

# Specialisms (service user bands) and regulated activities that state a need; "Dementia" and the like state none.
# Only the regulated activity a location must hold to detain someone states `detained_mha`. The band "Caring for
# people whose rights are restricted under the Mental Health Act" (the HSCA file's "People detained under the
# Mental Health Act") also covers people on a community treatment order, under guardianship or on s17 leave, whom
# a care home may look after: it says nothing of whether the location accepts people detained there.
_DETENTION = re.compile(r"assessment or medical treatment for persons detained under the (1983 act|mental health act)",
                        re.I)
_RIGHTS_RESTRICTED = re.compile(r"restricted under the mental health act|^people detained under the mental health act$",
                                re.I)
RIGHTS_RESTRICTED_MEANS = ("the band covers people on a community treatment order, under guardianship, on leave or "
                           "detained; no regulated activity for detained persons is registered, so detained_mha "
                           "stays unknown")
RIGHTS_RESTRICTED_WITH_DETENTION = ("the band covers people on a community treatment order, under guardianship, on "
                                    "leave or detained; the regulated activity for detained persons states "
                                    "detained_mha")
_SPECIALISM_NEEDS: tuple[tuple[re.Pattern[str], str], ...] = (*tuple((re.compile(p, re.I), need) for p, need in (
    (r"learning disabilit", "learning_disability"),
    (r"autis", "autism"),
    (r"substance misuse|misuse substances", "substance_misuse"),
    (r"adults over 65|older people", "older_adult"),
)), (_DETENTION, "detained_mha"))
# The service user bands that are age bands, with the ages (inclusive, None: unbounded) CQC's words give them.
# "Services for everyone" bounds nothing; children are "0 - 18yrs" in CQC's own words.
_AGE_BANDS: tuple[tuple[re.Pattern[str], int | None, int | None], ...] = tuple(
    (re.compile(p, re.I), low, high) for p, low, high in (
        (r"adults under 65", 18, 64), (r"adults over 65", 65, None),
        (r"children|0\s*-\s*18|young people", None, 18), (r"services for everyone", None, None)))
# Every service user band word rehabmap reads, as CQC gives it: the API's and its care directory's (all 12 the 103
# recorded API locations hold, and the 12 of the care directory of 2 October 2024, which says "Sensory impairments" and
# "Caring for children (0 - 18yrs)" where the recorded API said "Sensory impairment" and "Caring for children"),
# each checked against those files; an HSCA file's bands are read in these words (`HSCA_BANDS`, whose HSCA names are
# not checked against a real file). CQC gives no version of its words: a band it renames is known only by
# being none of these, and a home whose registration is read off the pathway for want of a band ("Mental health
# conditions", say) while it holds a band not among them is not read so (`UnknownBands`). A band CQC renames or adds
# goes here, and in the patterns above where it states something.
KNOWN_BANDS = frozenset(band.casefold() for band in (
    "Caring for adults over 65 yrs", "Caring for adults under 65 yrs", "Caring for children",
    "Caring for children (0 - 18yrs)", "Caring for people whose rights are restricted under the Mental Health Act",
    "Dementia", "Eating disorders", "Learning disabilities", "Mental health conditions", "Physical disabilities",
    "Sensory impairment", "Sensory impairments", "Services for everyone", "Substance misuse problems"))

_API_PROVIDER_TYPES = {"nhs healthcare organisation": "nhs", "independent healthcare org": "independent"}


# A refusal's words off the pathway, and the classifier's words of each cause CQC's registration states (the one
# home of both): a refusal staged before session 51 kept these words alone, and its cause is read from them.
OFF_PATHWAY = "not a rehab pathway service: "
_CAUSE_WORDS = {"mental_health": "with no mental health specialism", "over_65": "for adults over 65 only"}


def cause_in(reason: str) -> str:
    """The cause a refusal's reason gives, "" where it is no refusal off the pathway: the cause of a refusal staged
    before session 51 (it has none of its own), so that it is retired in CQC's words, not the classifier's."""
    if not reason.startswith(OFF_PATHWAY):
        return ""
    return next((cause for cause, words in _CAUSE_WORDS.items() if reason.endswith(words)), "reading")


class NotRehabPathway(ValueError):
    """CQC registers the location, but for something outside the rehab pathway. `cause`, whose word that is, for
    the public's reason when a held record is retired for it: "mental_health" (CQC registers it for no mental
    health condition), "over_65" (for adults over 65 alone), else "reading" (rehabmap's reading of CQC's words: CQC
    never says a service is not rehabilitation)."""

    def __init__(self, message: str, cause: str = "reading") -> None:
        super().__init__(message)
        self.cause = cause


class Unconfirmed(NotRehabPathway):
    """The location may be on the pathway, but CQC's words do not confirm where."""


class UnknownBands(ValueError):
    """CQC's record would read as off the pathway by its bands (no mental health band, or adults over 65 alone), but
    it holds band words rehabmap does not know (`KNOWN_BANDS`): CQC may have renamed the band it lacks. Read so,
    every home of a release that renamed "Mental health conditions" was retired as "CQC no longer registers it for
    the 'Mental health conditions' service user band", though CQC had changed no registration. The record cannot
    be read until rehabmap knows the words: a held record keeps its last good version (`Refused.unreadable`)."""

    def __init__(self, words: tuple[str, ...]) -> None:
        quoted = ", ".join(f"'{shorten(w)}'" for w in words)
        super().__init__(f"CQC's record uses service user band words rehabmap does not know: {quoted}; it is not "
                         "read as off the pathway for the bands it lacks, as CQC may have renamed one: report them to "
                         "the rehabmap team or upgrade; a release that knows them reads every CQC location again at "
                         "its next sync")


class NoBands(UnknownBands):
    """CQC's record of a care home or supported living lists no service user band (none, or an empty list): it says
    nothing of what the home is registered for. Read as off the pathway, a held home was retired as "CQC no longer
    registers it for the 'Mental health conditions' service user band", a guess given as CQC's word."""

    def __init__(self) -> None:
        ValueError.__init__(self, "CQC's record lists no service user band, so it says nothing of whether the home "
                                  "is registered for mental health: it is not read as off the pathway")


@dataclass(frozen=True)
class Registration:
    """What either CQC layout says about a location, in CQC's words."""

    name: str
    also_known_as: str
    service_types: tuple[str, ...]
    specialisms: tuple[str, ...]           # service user bands ("Mental health conditions")
    care_home: bool
    provider_type: str | None
    inspection_areas: tuple[str, ...] = ()  # active inspection areas and rated services (API only)
    # What the location is registered to do ("Assessment or medical treatment for persons detained under the
    # Mental Health Act 1983"): the API's `regulatedActivities`, the HSCA file's "Regulated activity - " columns.
    # Kept apart from the bands, so that evidence names which of the two CQC said.
    regulated_activities: tuple[str, ...] = ()
    # CQC's word that the location is registered but not carrying on its regulated activities ("dormancy": "Y"):
    # the date it became dormant, "" when CQC gives none; None when it is not dormant.
    dormant_since: str | None = None

    def dormant_reason(self) -> str | None:
        """Why a dormant location is not offered: it is registered, but gives no care now. The reason names the
        date, so a person can see when; the location comes back when CQC records it active again."""
        if self.dormant_since is None:
            return None
        since = f" since {self.dormant_since}" if self.dormant_since else ""
        return (f"CQC records '{shorten(self.name)}' as dormant{since}: registered, but not providing care now; "
                "it is offered again when CQC records it active")


def is_directory_header(cells: list[str]) -> bool:
    present = {c.strip().lower() for c in cells}
    return all(column.lower() in present for column in _DIRECTORY_REQUIRED)


def is_api_json(data: Any) -> bool:
    """One location, a `{"locations": [...]}` page, or a list most of whose items are locations. Most, not all: a
    file with a few broken records is still CQC JSON, whose bad records `read_api` rejects one by one (before, one
    record without "locationId" made the whole file unreadable, naming none)."""
    if isinstance(data, dict):
        return "locationId" in data or isinstance(data.get("locations"), list)
    return isinstance(data, list) and sum(_is_location(item) for item in data) * 2 > len(data)


def _is_location(item: Any) -> bool:
    return isinstance(item, dict) and "locationId" in item


def _api_items(data: Any) -> list[Any]:
    """The items of any of the API's layouts `is_api_json` takes."""
    if isinstance(data, dict):
        return data.get("locations", [data])
    return data if isinstance(data, list) else []


# What an item of the API's location list (`GET /locations`) holds; a location's details hold far more.
_LIST_ITEM_KEYS = frozenset({"locationId", "locationName", "postalCode"})


def list_items_refusal(data: Any) -> str | None:
    """Why CQC JSON holding only the location list's items cannot be indexed, or None when it holds details. Each
    list item would be rejected for want of a name and services (103 "no name" lines for one mistake), when the
    file's one fault is that it is the list, not the locations' details."""
    locations = [item for item in _api_items(data) if _is_location(item)]
    if not locations or any(item.keys() - _LIST_ITEM_KEYS for item in locations):
        return None
    return (f"CQC location list items (only locationId, locationName and postalCode, for {len(locations)} "
            "locations), not location details: fetch each location's details (GET /locations/{id}) into the file, "
            "or use `rehabmap sync cqc`, which does")


@dataclass(frozen=True)
class LocationRow:
    """One location in a CQC file layout: its words, its details as canonical fields, and where each came from."""

    line: int
    location_id: str | None
    provider_id: str | None
    registration: Registration
    parser: RowParser
    field_columns: dict[str, str]          # canonical field -> the column it was read from
    raw: dict[str, Any]


def read_directory(table: CsvTable, file: str, source: str | None = None) -> Iterator[Candidate | Rejection]:
    """Rows of the care directory CSV (already past its title block)."""
    for row in directory_rows(table):
        if isinstance(row, CsvProblem):
            yield Rejection(Origin(source or SOURCE, file, row.line, licence=LICENCE), row.reason)
            continue
        origin = Origin(source or SOURCE, file, row.line, source_id=row.location_id, licence=LICENCE)
        yield _candidate(origin, row.registration, row.parser, row.field_columns)


def directory_rows(table: CsvTable) -> Iterator[LocationRow | CsvProblem]:
    """The care directory's rows in CQC's words (shared with the monthly-files sync)."""
    columns = {c.lower(): c for c in table.header}  # 'Local authority' is 'Local Authority' in some editions
    for row in table.rows:
        if isinstance(row, CsvProblem):
            yield row
            continue
        cells = {column: row.values.get(columns.get(column.lower(), column), "")
                 for column in (*_DIRECTORY_USED, COL_PROVIDER_ID)}
        registration = Registration(
            name=cells[COL_NAME], also_known_as=cells[COL_AKA],
            service_types=_split(cells[COL_TYPES]), specialisms=_split(cells[COL_SPECIALISMS]),
            care_home=False, provider_type=provider_type_from_name(cells[COL_PROVIDER]))
        parser = RowParser()
        parser.set("address", join_address(cells[COL_ADDRESS]), COL_ADDRESS)
        used = {"address": COL_ADDRESS}
        for field_name, column in (("postcode", COL_POSTCODE), ("phone", COL_PHONE), ("website", COL_WEBSITE),
                                   ("organisation", COL_PROVIDER)):
            parser.set(field_name, cells[column], column)
            used[field_name] = column
        yield LocationRow(row.line, cells[COL_LOCATION_ID] or None, cells[COL_PROVIDER_ID] or None, registration,
                          parser, {f: c for f, c in used.items() if f in parser.fields}, dict(row.values))


# "HSCA Active Locations" (one row per active location, one Y/blank column per service type, service user
# band and regulated activity: `rehabmap.cqc_words`). Its bands say in other words what the API's specialisms
# say; `HSCA_BANDS` gives the API's words for each, and a row is read in those (`KNOWN_BANDS` holds the API's alone).
# No HSCA file is in ../shared: its band names here are as the project's HSCA test data spells them, not checked
# against a real file; one not among them stays as the file gives it, and reads as a word rehabmap does not know.
HSCA_SERVICE_TYPE = "Service type - "
HSCA_USER_BAND = "Service user band - "
HSCA_BANDS = {"Mental Health": "Mental health conditions", "Older People": "Caring for adults over 65 yrs",
              "Younger Adults": "Caring for adults under 65 yrs", "Children 0-18 years": "Caring for children",
              "People detained under the Mental Health Act":
                  "Caring for people whose rights are restricted under the Mental Health Act",
              "Learning disabilities or autistic spectrum disorder": "Learning disabilities", "Dementia": "Dementia",
              "Physical Disability": "Physical disabilities", "Sensory Impairment": "Sensory impairment",
              "Substance misuse problems": "Substance misuse problems", "Eating Disorders": "Eating disorders",
              "Whole Population": "Services for everyone"}
_HSCA_BANDS = {hsca.casefold(): api for hsca, api in HSCA_BANDS.items()}
_HSCA_FIELDS = (("address", ("Location Street Address", "Location Address Line 2", "Location City",
                             "Location County")),
                ("town", ("Location City",)), ("county", ("Location County",)),
                ("postcode", ("Location Postal Code",)), ("lat", ("Location Latitude",)),
                ("lon", ("Location Longitude",)), ("phone", ("Location Telephone Number",)),
                ("website", ("Location Web Address",)), ("beds", ("Care homes beds",)),
                ("cqc_rating", ("Location Latest Overall Rating",)), ("cqc_rating_date", ("Publication Date",)),
                ("organisation", ("Provider Name",)))


def hsca_rows(header: list[str], rows: Iterable[tuple[int, list[Any]]]) -> Iterator[LocationRow]:
    """Rows of the HSCA active locations sheet, (line, cells) each, in CQC's words."""
    columns = [str(h).strip() for h in header]
    for line, cells in rows:
        values = {c: ("" if v is None else str(v).strip()) for c, v in zip(columns, cells)}
        registration = Registration(
            name=values.get("Location Name", ""), also_known_as=values.get("Location Also Known As", ""),
            service_types=flagged(values, HSCA_SERVICE_TYPE),
            specialisms=tuple(_HSCA_BANDS.get(b.casefold(), b) for b in flagged(values, HSCA_USER_BAND)),
            regulated_activities=flagged(values, HSCA_ACTIVITY),
            care_home=values.get("Care home?", "").upper() == "Y",
            provider_type=_API_PROVIDER_TYPES.get(values.get("Location Type/Sector", "").lower()),
            dormant_since="" if values.get("Dormant (Y/N)", "").upper() == "Y" else None)
        parser = RowParser()
        used: dict[str, str] = {}
        for field_name, names in _HSCA_FIELDS:
            parts = [values.get(n, "") for n in names]
            parser.set(field_name, join_address(*parts) if field_name == "address" else parts[0], names[0])
            used[field_name] = names[0]
        yield LocationRow(line, values.get("Location ID") or None, values.get("Provider ID") or None, registration,
                          parser, {f: c for f, c in used.items() if f in parser.fields}, values)


def read_api(data: Any, file: str, source: str | None = None) -> Iterator[Candidate | Rejection]:
    """One API location, a list of them, or a `{"locations": [...]}` page."""
    for number, item in enumerate(_api_items(data), start=1):
        origin = Origin(source or SOURCE, file, number, licence=LICENCE)
        if not isinstance(item, dict):
            what = "null" if item is None else type(item).__name__
            yield Rejection(origin, f"item is {what}, not a CQC location object")
            continue
        if not item.get("locationId"):
            named = f"'{shorten(item['name'])}' has " if isinstance(item.get("name"), str) and item["name"] else ""
            yield Rejection(origin, f"{named}no locationId")
            continue
        yield _api_location(item, Origin(origin.source, file, number, source_id=item.get("locationId"),
                                         licence=LICENCE))


def _api_location(item: dict[str, Any], origin: Origin) -> Candidate | Rejection:
    status = str(item.get("registrationStatus") or "Registered")
    if status.lower() != "registered":
        since = f", deregistered {shorten(item['deregistrationDate'])}" if item.get("deregistrationDate") else ""
        return Rejection(origin, f"deregistered CQC location (registrationStatus '{shorten(status)}'{since})")
    parser, keys = api_fields(item)
    return _candidate(origin, api_registration(item), parser, keys)


def api_registration(item: dict[str, Any]) -> Registration:
    """What an API location says in CQC's words."""
    gac = [t for t in item.get("gacServiceTypes") or [] if isinstance(t, dict)]
    areas = [a for a in item.get("inspectionAreas") or [] if isinstance(a, dict)
             and not str(a.get("status", "")).lower().startswith("inactive")]
    rated = (item.get("currentRatings") or {}).get("serviceRatings") or []
    return Registration(
        name=str(item.get("name") or "").strip(), also_known_as=str(item.get("alsoKnownAs") or ""),
        service_types=tuple(dict.fromkeys(str(t[k]) for t in gac for k in ("name", "description") if t.get(k))),
        specialisms=listed(item, SPECIALISMS), regulated_activities=listed(item, REGULATED_ACTIVITIES),
        care_home=str(item.get("careHome", "")).upper() == "Y",
        provider_type=_API_PROVIDER_TYPES.get(str(item.get("type", "")).lower()),
        dormant_since=(str(item.get("dormancyStartDate") or "")[:10]
                       if str(item.get("dormancy") or "").upper() == "Y" else None),
        inspection_areas=tuple(dict.fromkeys(
            [f"{a.get('inspectionAreaName') or a.get('inspectionAreaId')} ({a.get('status')})" for a in areas]
            + [str(r["name"]) for r in rated if isinstance(r, dict) and r.get("name")])))


# Canonical field <- the API key it is read from (also the field's provenance in a sync).
API_FIELD_KEYS = (("postcode", "postalCode"), ("lat", "onspdLatitude"), ("lon", "onspdLongitude"),
                  ("phone", "mainPhoneNumber"), ("website", "website"), ("beds", "numberOfBeds"),
                  ("cqc_rating", "currentRatings.overall.rating"),
                  ("cqc_rating_date", "currentRatings.overall.reportDate"))


def api_fields(item: dict[str, Any]) -> tuple[RowParser, dict[str, str]]:
    """An API location's details as canonical fields, and the key each field came from."""
    overall = ((item.get("currentRatings") or {}).get("overall") or {})
    parser = RowParser()
    parser.set("address", join_address(*(item.get(k) for k in ("postalAddressLine1", "postalAddressLine2",
                                                             "postalAddressTownCity", "postalAddressCounty"))),
               "postalAddressLine1")
    parser.set("town", item.get("postalAddressTownCity"), "postalAddressTownCity")
    parser.set("county", item.get("postalAddressCounty"), "postalAddressCounty")
    for name, key in API_FIELD_KEYS:
        parser.set(name, overall.get(key.rsplit(".", 1)[1]) if key.startswith("currentRatings.") else item.get(key),
                   key)
    keys = {"address": "postalAddressLine1..County", "town": "postalAddressTownCity", "county": "postalAddressCounty",
            **dict(API_FIELD_KEYS)}
    return parser, {name: keys[name] for name in parser.fields}


def _candidate(origin: Origin, registration: Registration, parser: RowParser,
               field_columns: Mapping[str, str]) -> Candidate | Rejection:
    if not registration.name:
        return Rejection(origin, "no name")
    if not origin.source_id:
        return Rejection(origin, f"'{shorten(registration.name)}' has no CQC location id")
    try:
        reading = confirmed_reading(registration)
    except Unconfirmed as exc:
        return Rejection(origin, f"unconfirmed: {exc}")
    except UnknownBands as exc:
        return Rejection(origin, str(exc))
    except NotRehabPathway as exc:
        return Rejection(origin, f"{OFF_PATHWAY}{exc}")
    if dormant := registration.dormant_reason():
        return Rejection(origin, dormant)
    if parser.errors:
        return Rejection(origin, "; ".join(parser.errors))
    candidate = location_candidate(origin, registration, parser, reading.fields)
    candidate.fields["field_sources"] = location_field_sources(origin.source, field_columns, candidate.fields,
                                                               reading)
    return candidate


def location_candidate(origin: Origin, registration: Registration, parser: RowParser,
                       pathway: dict[str, Any]) -> Candidate:
    """The candidate row of a location already placed on the pathway (`pathway`: its type fields)."""
    needs = needs_fields(registration.specialisms + registration.regulated_activities)
    fields = compact({**parser.fields, **pathway, **needs,
                      "name": registration.name, "cqc_location_id": origin.source_id,
                      "provider_type": registration.provider_type})
    # Only the names: CQC's type descriptions mention learning disabilities and substance misuse for
    # every mental health hospital, which the pipeline's needs extraction would read as needs met.
    label_text = " | ".join(filter(None, (registration.name, registration.also_known_as)))
    return Candidate(fields, origin, label_text)


def location_field_sources(source: str, field_columns: Mapping[str, str], fields: Mapping[str, Any],
                           reading: PathwayReading) -> dict[str, str]:
    """Where each field of a location's record came from, as `<source>:<CQC's name for it>`, in every CQC layout
    and on both paths (`rehabmap index`, `rehabmap sync`): by them a record's needs are said as what CQC
    registered it for (`rehabmap.explanation.cqc_registration`). `field_columns`: each detail's column or key."""
    field_sources = {f: f"{source}:{k}" for f, k in field_columns.items()}
    field_sources |= {"name": f"{source}:name", "cqc_location_id": f"{source}:locationId",
                      "service_type": f"{source}:" + "+".join(dict.fromkeys(e.field for e in reading.evidence))}
    if "subtype" in fields:
        field_sources["subtype"] = f"{source}:gacServiceTypes"
    field_sources |= {f: f"{source}:specialisms" for f in ("needs_met", "min_age", "max_age") if fields.get(f)}
    if "detained_mha" in (fields.get("needs_met") or ()):   # stated only by a regulated activity
        field_sources["needs_met"] = f"{source}:{SPECIALISMS}+{REGULATED_ACTIVITIES}"
    if fields.get("provider_type"):
        field_sources["provider_type"] = f"{source}:type"
    return field_sources


@dataclass(frozen=True)
class PathwayReading:
    """Where a location sits on the pathway, how sure that is, and why.

    `status` is "confirmed" when CQC's words state the type and (for an inpatient unit) the level, "inferred"
    when either is a guess. `named` says the location's own name says rehabilitation: without it, a hospital or a
    community mental health service is no more than a candidate (the reason `rehabmap index` gives)."""

    fields: dict[str, Any]
    status: Literal["confirmed", "inferred"]
    evidence: tuple[Evidence, ...] = field(default=())
    named: bool = True


def pathway_fields(registration: Registration) -> dict[str, Any]:
    """Type, subtype and flags for a location on the rehab pathway (`confirmed_reading`)."""
    return confirmed_reading(registration).fields


def confirmed_reading(registration: Registration) -> PathwayReading:
    """A location's place on the rehab pathway, with its evidence; NotRehabPathway says why it has none. The one
    rule of both paths: `rehabmap index`, which has no review queue, indexes only a reading CQC's words confirm,
    the reading `rehabmap sync` shows; what the sync would hold for review, this rejects (`Unconfirmed`)."""
    reading = read_pathway(registration)
    if reading.status != "confirmed" and reading.named:
        raise Unconfirmed(f"'{shorten(registration.name)}' is a mental health hospital whose name says "
                          "rehabilitation but not the level, which only a maintainer can say: `rehabmap sync` "
                          "holds it for review")
    if not reading.named:
        name, types = registration.name, " | ".join(registration.service_types)
        if _MH_HOSPITAL.search(types):
            raise NotRehabPathway(f"mental health hospital '{shorten(name)}' whose name does not say rehabilitation "
                                  "(acute, PICU and assessment wards are not rehab)")
        raise NotRehabPathway(f"community mental health service '{shorten(name)}' whose name does not say "
                              "rehabilitation")
    return reading


def read_pathway(registration: Registration, source: str = SOURCE) -> PathwayReading:
    """CQC's words → a place on the pathway with its evidence; NotRehabPathway says why it has none."""
    name = registration.name
    types = " | ".join(registration.service_types)
    mental_health = [(label, s) for label, s in _registered_for(registration) if _MH_SPECIALISM.search(s)]
    label = " | ".join(filter(None, (name, registration.also_known_as)))
    try:
        named = classify_label(label)
    except NotRehab as exc:
        raise NotRehabPathway(str(exc)) from None
    if _MH_HOSPITAL.search(types):
        return _hospital(registration, named, source)
    if _CARE_HOME.search(types) or _SUPPORTED_LIVING.search(types) or registration.care_home:
        if not mental_health:
            raise _off_by_bands(registration, types, "mental_health")
        if _older_adults_only(registration.specialisms):
            raise _off_by_bands(registration, types, "over_65")
        is_home = bool(_CARE_HOME.search(types)) or registration.care_home
        kind = next((t for t in registration.service_types if (_CARE_HOME if is_home else _SUPPORTED_LIVING).search(t)),
                    "careHome: Y")
        return PathwayReading(
            {"service_type": ServiceType.supported_accommodation,
             "subtype": "residential_24h" if is_home else "supported_housing"}, "confirmed",
            (Evidence(source, "gacServiceTypes", kind,
                      "a care home: 24-hour staffed residential care" if is_home
                      else "supported living: supported housing"),
             Evidence(source, *mental_health[0], REGISTERED_FOR_MENTAL_HEALTH)))
    if _COMMUNITY_MH.search(types):
        said = (named and named.service_type is ServiceType.community_rehab_team) or bool(_REHAB_WORD.search(name))
        kind = next(t for t in registration.service_types if _COMMUNITY_MH.search(t))
        evidence = [Evidence(source, "gacServiceTypes", kind, "a community mental health service: a candidate "
                                                              "community rehabilitation team")]
        if said:
            evidence.append(Evidence(source, "name", name, "the name says it is a rehabilitation team"))
        return PathwayReading({"service_type": ServiceType.community_rehab_team},
                              "confirmed" if said else "inferred", tuple(evidence), named=said)
    raise NotRehabPathway(f"CQC service types '{shorten(types or 'none given', TYPES_QUOTED)}'")


def reading_words() -> str:
    """A digest of the words CQC's records are read by: the band words rehabmap knows and the patterns and tables
    that read service types, bands and activities. The CQC sync keeps it in its state: its later runs fetch only the
    locations CQC logs as changed, so a home refused under words a release then learns (a band renamed:
    `UnknownBands`) was never fetched again, a new home never stored; a digest not the saved one makes the next run
    a full crawl. Read at each call, so that a release's words, not an import's, are digested."""
    patterns = (_MH_HOSPITAL, _CARE_HOME, _SUPPORTED_LIVING, _COMMUNITY_MH, _MH_SPECIALISM, _REHAB_WORD, REHAB_WARD,
                _OTHER_WARD, _DETENTION, _RIGHTS_RESTRICTED, *(p for p, _, _ in _AGE_BANDS),
                *(p for p, _ in _SPECIALISM_NEEDS))
    words = [*sorted(KNOWN_BANDS), *(p.pattern for p in patterns), *(f"{k}={v}" for k, v in _HSCA_BANDS.items())]
    return hashlib.sha256("\n".join(words).encode()).hexdigest()[:16]


def _off_by_bands(registration: Registration, types: str, cause: str) -> ValueError:
    """Why a care home or supported living is off the pathway by its bands (`cause`), unless it holds band words
    rehabmap does not know, which may be the band it lacks renamed (`UnknownBands`), or none (`NoBands`)."""
    if not registration.specialisms:
        return NoBands()
    unknown = tuple(dict.fromkeys(b for b in registration.specialisms if b.strip().casefold() not in KNOWN_BANDS))
    if unknown:
        return UnknownBands(unknown)
    return NotRehabPathway(f"'{shorten(types or 'care home', TYPES_QUOTED)}' {_CAUSE_WORDS[cause]}", cause)


def _hospital(registration: Registration, named: Any, source: str) -> PathwayReading:
    """A mental health hospital is a candidate inpatient unit. It is a rehab unit when CQC inspects a rehab ward
    there or its name says so; its level is known only from a name that states one (a legacy label or
    "level 1/2": `Classification.level_stated`). Otherwise level 1 is proposed and the reading stays inferred."""
    name = registration.name
    label = " | ".join(filter(None, (name, registration.also_known_as)))
    hospital = next(t for t in registration.service_types if _MH_HOSPITAL.search(t))
    evidence = [Evidence(source, "gacServiceTypes", hospital,
                         "a mental health hospital: a candidate inpatient rehabilitation unit")]
    wards = [a for a in registration.inspection_areas if REHAB_WARD.search(a.split(" (")[0])]
    evidence += [Evidence(source, "inspectionAreas", ward, "CQC inspects a rehabilitation ward here")
                 for ward in wards[:1]]
    named_unit = bool(named and named.service_type.is_inpatient)
    says_rehab = named_unit or bool(_REHAB_WORD.search(name))
    if not says_rehab and not wards and _OTHER_WARD.search(label):
        raise NotRehabPathway(f"mental health hospital '{shorten(name)}' whose name does not say rehabilitation "
                              "(acute, PICU and assessment wards are not rehab)")
    level_stated = named_unit and named.level_stated
    fields: dict[str, Any] = {"service_type": ServiceType.inpatient_rehab_level1}
    if named_unit:
        fields = {"service_type": named.service_type, "legacy_locked_label": named.legacy_locked,
                  "pd_specialist": named.pd_specialist}
    if level_stated:
        evidence.append(Evidence(source, "name", shorten(label),
                                 f"the name states the level: {fields['service_type'].value}"))
    elif says_rehab:
        evidence.append(Evidence(source, "name", shorten(label), "the name says rehabilitation but not the level: "
                                                              "level 1 proposed"))
    else:
        evidence.append(Evidence(source, "name", shorten(label), "nothing says which level: level 1 proposed"))
    confirmed = (says_rehab or bool(wards)) and level_stated
    return PathwayReading(fields, "confirmed" if confirmed else "inferred", tuple(evidence), named=says_rehab)


def needs_fields(specialisms: tuple[str, ...]) -> dict[str, Any]:
    """Needs and the age range the registration states. The age bands it is registered for are the regulator's
    word on whom the location may serve, so together they bound the range: an end is bounded only when every
    band listed bounds it ("adults under 65" alone: 18 to 64; with "adults over 65" too: 18 and over)."""
    met = sorted({need for s in specialisms for pattern, need in _SPECIALISM_NEEDS if pattern.search(s)})
    bands = [(low, high) for s in specialisms for pattern, low, high in _AGE_BANDS if pattern.search(s)]
    return {"needs_met": met, "min_age": _bound(min, [low for low, _ in bands]),
            "max_age": _bound(max, [high for _, high in bands])}


def _bound(pick: Callable[[list[int]], int], ends: list[int | None]) -> int | None:
    """The widest of the bands' ends, or None when there is no band or one of them leaves this end open."""
    bounded = [end for end in ends if end is not None]
    return pick(bounded) if bounded and len(bounded) == len(ends) else None


def needs_evidence(registration: Registration, source: str = SOURCE) -> tuple[Evidence, ...]:
    """Each specialism or regulated activity that states a need, as evidence for review, named as CQC names it
    (`specialisms`, `regulatedActivities`: before, an activity was said to be a specialism); and the band for people
    whose rights are restricted under the Mental Health Act, which states none, so a maintainer sees what CQC
    says of it (and, where no regulated activity says the location may detain, why `detained_mha` is unknown)."""
    registered = _registered_for(registration)
    stated = tuple(Evidence(source, label, shorten(s), f"states the need {need}")
                   for label, s in registered for pattern, need in _SPECIALISM_NEEDS if pattern.search(s))
    means = (RIGHTS_RESTRICTED_WITH_DETENTION if any(_DETENTION.search(s) for _, s in registered)
             else RIGHTS_RESTRICTED_MEANS)
    return stated + tuple(Evidence(source, label, shorten(s), means)
                          for label, s in registered if _RIGHTS_RESTRICTED.search(s))


def _registered_for(registration: Registration) -> list[tuple[str, str]]:
    """The bands and the activities a location is registered for, each with the field CQC says it in."""
    return ([(SPECIALISMS, s) for s in registration.specialisms]
            + [(REGULATED_ACTIVITIES, a) for a in registration.regulated_activities])



def _older_adults_only(specialisms: tuple[str, ...]) -> bool:
    """Every age band it is registered for starts at 65 (`needs_fields`' bounds): before, "Services for everyone"
    beside "Caring for adults over 65 yrs" was read as over 65 only, and the public read that CQC said so."""
    youngest = needs_fields(specialisms)["min_age"]
    return youngest is not None and youngest >= 65


def _split(cell: str) -> tuple[str, ...]:
    """Multi-valued cells are separated by '|' ("Homecare agencies|Supported living")."""
    return tuple(part.strip() for part in cell.split("|") if part.strip())
