"""Open Referral UK / HSDS 3.0 and rehabmap's record: the one home of the convention, in both directions.

rehabmap publishes its vocabulary (DESIGN.md §2) as four HSDS taxonomies and attaches a service's type,
subtype, needs and the details HSDS has no field for as `attributes` pointing at those terms:

* `rehabmap-service-types` — the seven types, subtypes as children (`parent_id`); attribute, no value.
* `rehabmap-needs` — attribute value "yes" (met) or "no" (not met); no attribute means unknown. Only needs a
  source or maintainer stated: HSDS has no way to mark a value as inferred, and a consumer reads these as
  facts. Needs rehabmap read from the service's own words (`Service.needs_read_from_text`) are published
  as a note instead, the `rehabmap` term `needs_read_from_text` whose value says in words that they were
  read and are not confirmed; an import skips it (the pipeline reads the published description again). So is
  a gender read from its words (`Service.gender_read_from_text`): the `rehabmap` term `gender` is only ever
  the gender a source or maintainer states.
* `rehabmap-legacy-labels` — older inpatient labels ("locked rehabilitation", "high dependency" …); the
  attribute's value is the source's original label. A label with no legacy phrase uses the `rehabmap`
  term `original_label` instead.
* `rehabmap` — record details: id, provider type, gender, beds, capacity and its date, accepting
  referrals, CQC rating and date, flags, last verified (a person's check), provenance (JSON: source, source_id,
  fetched_at, licence, and a dated file's edition: its title, when its data stood, what it gives; the local file and
  line an installation read it from are not published). In the live feed, `capacity` is what holds on the day
  (`unknown` once the report is stale) and `capacity_reported` is the report.

Standard HSDS fields carry the rest: `minimum_age`/`maximum_age`, `application_process` (referral route),
`schedules` (weekly opening times: `freq` WEEKLY, `byday`, `opens_at`, `closes_at`, and `description`; ORUK v1's
`regular_schedules`, one weekday each, are read too),
`assured_date` (last verified, written for other readers; never read back: another feed's is its publisher's
check of its own listing, and the `rehabmap` term `last_verified` carries the person's check), `url`, `email`,
`phones`, `organization`, `service_at_locations[0].location`
(latitude, longitude, `addresses` with `postal_code`, the town as `city` and county as `state_province` where
a source named them, the English region as `region`, CQC location id as `external_identifier`), and
`service_areas` (ONS codes as `uri` http://statistics.data.gov.uk/id/statistical-geography/<CODE>, the code
also in `name`; a polygon as GeoJSON `extent` with `extent_type` "geojson").

Feeds that do not use rehabmap's taxonomy still import: their term names, the service's name and
descriptions become label text for the classifier (see `oruk_to_fields`). ORUK v1 feeds (the API most council
directories publish) name things differently, and are read too: `physical_addresses`, `service_taxonomys`,
and ages in `eligibilitys`.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from html.parser import HTMLParser
from itertools import product
from string import ascii_lowercase
from typing import Any

from rehabmap.errors import shorten
from rehabmap.explanation import gender_said_by, needs_said_by, read_needs_note
from rehabmap.languages import UnknownLanguage
from rehabmap.record import WEEKDAYS, FileEdition, Schedule, Service
from rehabmap.taxonomy import (
    LEGACY_LABEL_TEXTS,
    NEED_LABELS,
    SUBTYPE_LABELS,
    SUBTYPES,
    TYPE_LABELS,
    ServiceType,
    classify_label,
    language_need,
    need_label,
)

ONS_AREA_URI = "http://statistics.data.gov.uk/id/statistical-geography/"
CQC_IDENTIFIER_TYPE = "CQC location ID"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "rehabmap:oruk")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_ONS_CODE = re.compile(r"^[EWSNK]\d{8}$")
_LANGUAGE_NAME = re.compile(r"^Language: (.+)$")  # its English name ("Language: pl" before session 18)
_LANGUAGE_CODE = re.compile(r"^language:[a-z]{2,3}$")
_YES, _NO = "yes", "no"
# Where this installation read the record: not for publishing. A dated file's `edition` is published: without it a
# record read from the 2018 hospital list said only when this installation read the file (`fetched_at`), and a
# consumer, or a second rehabmap syncing the feed, took an eight-year-old listing for one fetched that day.
_LOCAL_PROVENANCE = {"file", "line"}


def _uuid(key: str) -> str:
    """HSDS ids are UUIDs; deriving them from rehabmap keys keeps every export of a record identical. RFC 4122's
    version 5 UUID, as `str(uuid.uuid5(_NAMESPACE, key))` gives it (tests/test_oruk_ids.py holds it to that), in
    a third of the time: the standard library's `UUID` object was ~2/3 of each id, and a page of the feed makes
    thousands (bench/RESULTS.md, session 34)."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@lru_cache(maxsize=4096)
def _term_uuid(key: str) -> str:
    """A taxonomy's or a term's id: the same few hundred terms (types, needs, languages) are on every service of a
    page, ~55% of `GET /oruk/services`'s time before they were kept."""
    return _uuid(key)


def service_uuid(service_id: str) -> str:
    """The stable ORUK id of a rehabmap service (a UUID derived from its rehabmap id)."""
    return _uuid(f"service/{service_id}")


def service_at_location_uuid(service_id: str) -> str:
    """The stable ORUK id of a rehabmap service at its one location."""
    return _uuid(f"service/{service_id}/service_at_location")


@dataclass(frozen=True)
class Taxonomy:
    key: str
    name: str
    description: str

    @property
    def id(self) -> str:
        return _term_uuid(f"taxonomy/{self.key}")

    def to_hsds(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass(frozen=True)
class Term:
    taxonomy: Taxonomy
    code: str
    name: str
    description: str
    parent: str | None = None  # code of the parent term in the same taxonomy

    @property
    def id(self) -> str:
        return _term_uuid(f"{self.taxonomy.key}/{self.code}")

    def to_hsds(self) -> dict[str, Any]:
        """`term` repeats `name` for the ORUK profile, which names the field so."""
        term = {"id": self.id, "code": self.code, "name": self.name, "term": self.name,
                "description": self.description, "taxonomy": self.taxonomy.key, "taxonomy_id": self.taxonomy.id}
        if self.parent:
            term["parent_id"] = _term_uuid(f"{self.taxonomy.key}/{self.parent}")
        return term


SERVICE_TYPES = Taxonomy(
    "rehabmap-service-types", "rehabmap service types",
    "The adult mental health rehabilitation pathway, least restrictive first; subtypes are children of their type.")
NEEDS = Taxonomy(
    "rehabmap-needs", "rehabmap needs",
    "Needs a service can meet. Attribute value 'yes': met; 'no': not met; no attribute: unknown.")
LEGACY_LABELS = Taxonomy(
    "rehabmap-legacy-labels", "rehabmap legacy labels",
    "Older names for inpatient rehabilitation units and how rehabmap reads them. The attribute value is the "
    "label as the source wrote it.")
DETAILS = Taxonomy(
    "rehabmap", "rehabmap record details",
    "Record fields HSDS has no standard field for; the attribute value is the field's value.")
TAXONOMIES = (SERVICE_TYPES, NEEDS, LEGACY_LABELS, DETAILS)


_READ_NOTE = "needs_read_from_text"
_REGISTERED = "needs_registered"
_ADDED = "needs_added_by_maintainers"
_GENDER_BY_TEAM = "gender_stated_by_maintainers"
_GENDER_BASIS = "gender_basis"
_GENDER_FROM_SOURCE = "gender_from_source"
# Details an export works out from the record (its words, its sources): an import never reads them as statements.
_WORKED_OUT = (_READ_NOTE, _REGISTERED, _ADDED, _GENDER_BY_TEAM, _GENDER_BASIS, _GENDER_FROM_SOURCE)
_DETAIL_TEXTS: dict[str, tuple[str, str]] = {
    "id": ("rehabmap id", "The record's stable, source-prefixed rehabmap id (e.g. cqc:1-123456789)."),
    "provider_type": ("Provider type", "nhs, independent, local_authority or vcfse."),
    "gender": ("Gender", "Who the service admits: female_only, male_only or mixed_gender."),
    "original_label": ("Original label", "The source's own label for the service, kept for display."),
    "legacy_locked_label": ("Legacy 'locked rehabilitation' label",
                            "yes: labelled locked rehabilitation, commissioning the guidance says should cease."),
    "pd_specialist": ("Personality disorder specialist unit",
                      "yes: a rehab unit commissioned for people with a diagnosis of personality disorder."),
    "beds": ("Beds", "Total beds."),
    "capacity": ("Capacity", "available, limited or none. In the live feed, the capacity that holds on the day "
                 "it is read: unknown when the last report is older than the feed's freshness window (the report "
                 "itself is then in capacity_reported)."),
    "capacity_reported": ("Capacity reported", "available, limited or none: what the service last reported, on "
                          "capacity_as_of, however old."),
    "capacity_as_of": ("Capacity as of", "Date (YYYY-MM-DD) the capacity was reported."),
    "accepting_referrals": ("Accepting referrals", "yes or no."),
    "self_referral": ("Self-referral", "yes: a person can refer themselves; no: a referral from a professional "
                      "is needed. No attribute: not known."),
    "cqc_rating": ("CQC rating", "Overall CQC rating (Outstanding, Good, Requires improvement, Inadequate)."),
    "cqc_rating_date": ("CQC rating date", "Date (YYYY-MM-DD) of the report that gave the CQC rating."),
    "provenance": ("Provenance", "Where the record came from: JSON with source, source_id, fetched_at, licence; "
                   "for a dated file its edition (title; dated: when its data stood; gives: the fields its mapping "
                   "reads from every row, which this record's row may not all have had); and relayed_by (source, "
                   "title) where another rehabmap's feed passed the entry on."),
    "last_verified": ("Last verified", "Date (YYYY-MM-DD) the rehabmap team or the service last checked the "
                      "record: a person's check, unlike `assured_date`, which any feed may set to its own check of "
                      "its listing."),
    _REGISTERED: ("Needs as registered with CQC",
                  "Of the needs it meets (rehabmap-needs, yes), those it states because CQC registered the location "
                  "to care for them (its specialisms and regulated activities), comma-separated codes: the "
                  "regulator's record of whom it may care for, not the provider's word on whom it takes."),
    _ADDED: ("Needs added by the rehabmap team",
             "Of the needs it meets (rehabmap-needs, yes), those a maintainer added to a source's record, "
             "comma-separated codes: the maintainers' word, not CQC's registration, the source's nor the provider's."),
    _GENDER_BY_TEAM: ("Gender stated by the rehabmap team",
                      "yes: its gender (rehabmap, gender) is a maintainer's word on a source's record, not the "
                      "source's nor the provider's: the source states no gender or another, which it replaced. No "
                      "attribute: the source's word, a record the maintainers made, or no gender (one they removed "
                      "too: gender_basis)."),
    _GENDER_BASIS: ("Whose word the gender is",
                    "Where it is the rehabmap team's on a source's record: added_by_maintainers (the source states no "
                    "gender), changed_by_maintainers (the source states another: gender_from_source) or "
                    "removed_by_maintainers (no gender, as a maintainer cleared the source's: gender_from_source). No "
                    "attribute: the source's word, a record the maintainers made, or no gender and none removed."),
    _GENDER_FROM_SOURCE: ("Gender as its source states it",
                          "female_only, male_only or mixed_gender: the source's gender, which a maintainer's word "
                          "changed or removed (gender_basis). Not the directory's word: never filtered on."),
    _READ_NOTE: ("Needs read from its words (not confirmed)",
                 "A note, not a statement: needs (and who it takes) rehabmap read from the service's own name, "
                 "description or label, with the words quoted. Not confirmed by the service; never in "
                 "rehabmap-needs or gender."),
}
_FLAGS = ("legacy_locked_label", "pd_specialist")  # exported only when set
_BOOLEAN_DETAILS = (*_FLAGS, "accepting_referrals", "self_referral")
# Exported in this order after the type, needs and original label.
_VALUE_DETAILS = ("id", "provider_type", "gender", "legacy_locked_label", "pd_specialist", "beds", "capacity",
                  "capacity_reported", "capacity_as_of", "accepting_referrals", "self_referral", "cqc_rating",
                  "cqc_rating_date", "last_verified")
_UNKNOWN = "unknown"


def _legacy_description(label: str) -> str:
    classification = classify_label(label)
    assert classification is not None, f"legacy label '{label}' must classify"
    text = f"Legacy label read as {classification.service_type.value} ({TYPE_LABELS[classification.service_type]})."
    if classification.legacy_locked:
        text += " Flagged for commissioners: the guidance says locked rehabilitation commissioning should cease."
    return text


def _need_term(code: str) -> Term:
    label = need_label(code)
    return Term(NEEDS, code, label, f"{label}. Value 'yes': the service meets this need; 'no': it does not.")


def _build_terms() -> dict[tuple[str, str], Term]:
    terms: list[Term] = []
    for service_type in ServiceType:
        terms.append(Term(SERVICE_TYPES, service_type.value, TYPE_LABELS[service_type],
                          f"{TYPE_LABELS[service_type]}: step {service_type.restrictiveness + 1} of "
                          f"{len(ServiceType)} of the rehab pathway, least restrictive first."))
        terms += [Term(SERVICE_TYPES, sub, SUBTYPE_LABELS[sub], f"{SUBTYPE_LABELS[sub]}: a kind of "
                       f"{TYPE_LABELS[service_type].lower()}.", parent=service_type.value)
                  for sub in SUBTYPES.get(service_type, ())]
    terms += [_need_term(code) for code in NEED_LABELS]
    terms += [Term(LEGACY_LABELS, label.replace(" ", "_"), label, _legacy_description(label))
              for label in LEGACY_LABEL_TEXTS]
    terms += [Term(DETAILS, code, name, text) for code, (name, text) in _DETAIL_TEXTS.items()]
    return {(t.taxonomy.key, t.code): t for t in terms}


_TERMS = _build_terms()
_TERMS_BY_ID = {t.id: t for t in _TERMS.values()}
_TAXONOMY_KEYS = {key: t for t in TAXONOMIES for key in (t.key, t.name, t.id)}


def taxonomies() -> list[dict[str, Any]]:
    """rehabmap's taxonomies as HSDS `taxonomy` objects."""
    return [t.to_hsds() for t in TAXONOMIES]


def taxonomy_terms() -> list[dict[str, Any]]:
    """Every fixed term as an HSDS `taxonomy_term` (language needs, `language:<code>`, are open-ended and
    appear only on services that state them; `term_by_id` finds them)."""
    return [t.to_hsds() for t in _TERMS.values()]


def term_by_id(term_id: str) -> Term | None:
    """The term the feed gives this id: a fixed one, or a language need (`language:<code>`), open-ended, which the
    feed nests in the attributes of the services that state it. Before, such an id was "No taxonomy term" at
    /taxonomy_terms/{id} and an unknown `taxonomy_term_id`: the feed's own reference did not resolve."""
    found = _TERMS_BY_ID.get(term_id)
    if found is None and (code := language_ids().get(term_id)) is not None:
        return _need_term(code)
    return found


@cache
def language_ids() -> dict[str, str]:
    """The id of every language need a record can carry, and the need: `parse_need` keeps any two or three letters,
    ISO 639's codes and those it does not list that a source gives (`language:iw`, Hebrew's withdrawn code), and the
    feed publishes each, so each one's id resolves (18,252; only ISO 639's before, and `iw`'s was "No taxonomy term",
    though the feed gave it). Made once in a process, by the warm-up (`app.warmup`) or when such an id is first asked
    for (~0.1 s, less than reading ISO 639's table was), not through `_term_uuid`'s cache of the few hundred terms
    every page holds."""
    return {_uuid(f"{NEEDS.key}/language:{code}"): f"language:{code}"
            for code in ("".join(letters) for n in (2, 3) for letters in product(ascii_lowercase, repeat=n))}


def _term(taxonomy: Taxonomy, code: str) -> Term:
    found = _TERMS.get((taxonomy.key, code))
    return found if found else _need_term(code)  # only needs are open-ended (language:<code>)


def _legacy_term(label: str) -> Term:
    """The longest legacy phrase inside the label ('longer term high dependency' before 'high dependency')."""
    text = label.casefold()
    found = [phrase for phrase in LEGACY_LABEL_TEXTS if phrase in text]
    if not found:
        return _TERMS[(DETAILS.key, "original_label")]
    return _TERMS[(LEGACY_LABELS.key, max(found, key=len).replace(" ", "_"))]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return _YES if value else _NO
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- export -------------------------------------------------------------------------------------------

def service_to_oruk(service: Service, today: date | None = None) -> dict[str, Any]:
    """A full ORUK 3.0 / HSDS 3.0 service object for one rehabmap record.

    With `today` (the live feed), `capacity` is what holds that day by the one freshness rule
    (`Service.capacity_now`): a stale report reads "unknown", as in every other output, and the report
    itself is published as `capacity_reported`. Without it, the record as stored: a dated snapshot, as in
    the sample directory's file."""
    sid = service_uuid(service.id)
    details = _details(service, today)
    pairs: list[tuple[Term, str | None]] = [(_term(SERVICE_TYPES, service.service_type.value), None)]
    if service.subtype:
        pairs.append((_term(SERVICE_TYPES, service.subtype), None))
    pairs += [(_term(NEEDS, code), _YES) for code in service.needs_met]
    pairs += [(_term(NEEDS, code), _NO) for code in service.needs_not_met]
    registered, added = needs_said_by(service)
    if registered:
        pairs.append((_term(DETAILS, _REGISTERED), ", ".join(registered)))
    if added:
        pairs.append((_term(DETAILS, _ADDED), ", ".join(added)))
    by_team, basis, from_source = gender_said_by(service)
    if by_team:
        pairs.append((_term(DETAILS, _GENDER_BY_TEAM), _YES))
    if basis not in (None, "source"):  # the team's word: said, as its source's word goes without saying
        pairs.append((_term(DETAILS, _GENDER_BASIS), basis))
    if from_source:
        pairs.append((_term(DETAILS, _GENDER_FROM_SOURCE), from_source))
    if note := read_needs_note(service):
        pairs.append((_term(DETAILS, _READ_NOTE), note))
    if service.original_label:
        pairs.append((_legacy_term(service.original_label), service.original_label))
    for code in _VALUE_DETAILS:
        value = details.get(code)
        if value is not None and not (code in _FLAGS and value is False):
            pairs.append((_term(DETAILS, code), _value_text(value)))
    keys = [term.id for term, _ in pairs]
    provenance = _term(DETAILS, "provenance")
    for p in service.provenance:
        pairs.append((provenance, json.dumps(p.model_dump(mode="json", exclude_none=True, exclude=_LOCAL_PROVENANCE))))
        keys.append(f"{provenance.id}/{json.dumps([p.source, p.source_id])}")  # one per source's record
    attributes = [_drop_none({"id": id_, "link_id": sid, "link_type": term.taxonomy.key, "link_entity": "service",
                              "taxonomy_term_id": term.id, "taxonomy_term": term.to_hsds(), "value": value})
                  for id_, (term, value) in zip(_ids(service, "attribute", keys), pairs, strict=True)]
    return _drop_none({
        "id": sid,
        "name": service.name,
        "description": service.description,
        "url": service.website,
        "email": service.email,
        "status": service.status,
        "application_process": service.referral_route,
        "minimum_age": service.min_age,
        "maximum_age": service.max_age,
        "assured_date": service.last_verified.isoformat() if service.last_verified else None,
        "organization_id": _uuid(f"organization/{service.organisation}") if service.organisation else None,
        "organization": _organization(service.organisation),
        "phones": [{"id": _uuid(f"service/{service.id}/phone"), "service_id": sid, "number": service.phone}]
        if service.phone else None,
        "service_areas": _service_areas(service, sid) or None,
        "schedules": _schedules(service, sid) or None,
        "service_at_locations": [_service_at_location(service, sid)],
        "attributes": attributes,
    })


def _details(service: Service, today: date | None) -> dict[str, Any]:
    """The record's values for the `rehabmap` detail terms, capacity as of `today` when given."""
    values = {code: getattr(service, code) for code in _VALUE_DETAILS if code != "capacity_reported"}
    if today is not None and service.capacity is not None:
        values["capacity"] = service.capacity_now(today) or _UNKNOWN
        values["capacity_reported"] = service.capacity
    return values


def _ids(service: Service, kind: str, keys: list[str]) -> list[str]:
    """The ids of a service's attributes, schedules or service areas, each from what it is (its key: an attribute's
    term, a schedule's days, hours and words, an area's ONS code), never from its place in the list. HSDS ids are
    identifiers a consumer syncing the feed matches on: by place, a need added to a service gave every attribute
    after it a new id, and the consumer saw unchanged ones deleted and inserted again. A key given twice (a source
    listing the same schedule twice) is told apart by which time it is, after the last `/`, so ids stay unique."""
    seen: dict[str, int] = {}
    ids = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        ids.append(_uuid(f"service/{service.id}/{kind}/{key}/{seen[key]}"))
    return ids


def _schedules(service: Service, sid: str) -> list[dict[str, Any]]:
    keys = [json.dumps([s.byday, s.hours(), s.description]) for s in service.schedules]
    return [_schedule(id_, sid, s) for id_, s in zip(_ids(service, "schedule", keys), service.schedules, strict=True)]


def _schedule(id_: str, sid: str, schedule: Schedule) -> dict[str, Any]:
    hours = schedule.hours()
    weekly = {"freq": "WEEKLY", "interval": 1, "byday": ",".join(schedule.byday),
              "opens_at": hours[0], "closes_at": hours[1]} if schedule.byday and hours else {}
    return _drop_none({"id": id_, "service_id": sid, **weekly, "description": schedule.description})


def _organization(name: str | None) -> dict[str, Any] | None:
    return {"id": _uuid(f"organization/{name}"), "name": name, "description": ""} if name else None


def _service_areas(service: Service, sid: str) -> list[dict[str, Any]]:
    area = service.service_area
    keyed = [(code, {"name": code, "uri": ONS_AREA_URI + code}) for code in area.codes]
    if area.polygon is not None:
        keyed.append(("polygon", {"name": "Service area (GeoJSON polygon)", "extent": json.dumps(area.polygon),
                                  "extent_type": "geojson"}))
    if not keyed and area.description:
        keyed.append(("description", {"name": area.description}))
    ids = _ids(service, "area", [key for key, _ in keyed])
    return [_drop_none({"id": id_, "service_id": sid, "description": area.description, **item})
            for id_, (_, item) in zip(ids, keyed, strict=True)]


def _service_at_location(service: Service, sid: str) -> dict[str, Any]:
    lid = _uuid(f"service/{service.id}/location")
    lat, lon = service.published_point
    location = _drop_none({
        "id": lid, "location_type": "physical", "name": service.name, "latitude": lat, "longitude": lon,
        "external_identifier": service.cqc_location_id,
        "external_identifier_type": CQC_IDENTIFIER_TYPE if service.cqc_location_id else None,
        "addresses": [_address(service, lid)] if service.address or service.postcode else None,
    })
    return {"id": service_at_location_uuid(service.id), "service_id": sid, "location_id": lid,
            "location": location}


def _address(service: Service, lid: str) -> dict[str, Any]:
    """HSDS asks for lines, a `city` and a `state_province`. They are the town and county a source named apart
    (`Service.town`, `Service.county`) while the address still holds them (a maintainer's new address is not
    given the old town); no part of a joined address is taken for a town, as its last part is as often a
    county. A town not known leaves `city` empty (HSDS requires the field, not a value), and the whole address
    in `address_1`: the ORUK profile has no `address_2`. The English region goes in HSDS's `region`."""
    parts = [p.strip() for p in (service.address or "").split(",") if p.strip()]
    held = {_folded(p) for p in parts}
    town, county = (name if name and _folded(name) in held else "" for name in (service.town, service.county))
    named = {_folded(town), _folded(county)}
    return _drop_none({"id": _uuid(f"service/{service.id}/address"), "location_id": lid,
                       "address_1": ", ".join(p for p in parts if _folded(p) not in named), "city": town,
                       "region": service.areas.region_name, "state_province": county,
                       "postal_code": service.postcode or "", "country": "GB", "address_type": "physical"})


def _folded(text: str) -> str:
    return " ".join(text.split()).casefold()


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


# --- import -------------------------------------------------------------------------------------------

def oruk_to_fields(obj: dict[str, Any], left_out: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """One ORUK/HSDS service → (canonical fields, label text).

    Fields are those of `rehabmap.record.Service` that the object states (absent means unknown), plus
    `provenance` as a list of dicts when the object came from rehabmap. The label text — the service's
    name, descriptions and any foreign taxonomy terms — is what the pipeline classifies when no rehabmap
    type is given. Raises ValueError, naming the field, for values that cannot be read; a provenance attribute
    that cannot be read is left out instead, said in `left_out` (`_provenance`).
    """
    fields: dict[str, Any] = {
        "name": obj.get("name"),
        "description": _plain(obj.get("description")),
        "status": _status(obj.get("status")),
        # A council's feed gives 'southglosover50s@gmail.com' with a no-break space around it: the address,
        # not the space, was refused, and the service lost its email.
        "website": _trimmed(obj.get("url")),
        "email": _trimmed(obj.get("email") or _first(c.get("email") for c in _all_contacts(obj))),
        "referral_route": obj.get("application_process"),
        "min_age": obj.get("minimum_age", _v1_age(obj, "minimum_age", min)),
        "max_age": obj.get("maximum_age", _v1_age(obj, "maximum_age", max)),
        "organisation": (obj.get("organization") or {}).get("name"),
        "phone": _first(p.get("number") for p in _phones(obj)),
    }
    fields |= _location_fields(obj)
    fields["schedules"] = _schedules_of(obj)
    fields |= _service_area_fields(obj.get("service_areas") or [])
    foreign_terms: list[str] = []
    met: list[str] = []
    not_met: list[str] = []
    for n, attribute in enumerate(obj.get("attributes") or []):
        term_obj = attribute.get("taxonomy_term") or {}
        term = _known_term(term_obj, attribute.get("taxonomy_term_id"), f"attributes[{n}]")
        value = attribute.get("value")
        if term is None:
            foreign_terms.append(term_obj.get("name") or term_obj.get("term") or "")
        elif term.taxonomy is SERVICE_TYPES:
            if term.parent:
                fields["subtype"] = term.code
                fields.setdefault("service_type", term.parent)
            else:
                fields["service_type"] = term.code
        elif term.taxonomy is NEEDS:
            answer = _yes_no(value, f"attributes[{n}] need {term.code}")
            if answer is not None:
                (met if answer else not_met).append(term.code)
        elif term.taxonomy is LEGACY_LABELS or term.code == "original_label":
            fields["original_label"] = value
        elif term.code == "capacity":
            if value != _UNKNOWN:  # unknown says only that the report is stale: capacity_reported holds it
                fields.setdefault("capacity", value)
        elif term.code == "capacity_reported":
            fields["capacity"] = value
        elif term.code == "provenance":
            if (entry := _provenance(value, n, left_out)) is not None:
                fields.setdefault("provenance", []).append(entry)
        elif term.code in _WORKED_OUT:
            continue  # what was read from the words (the import reads them again) or from its sources
        elif term.code in _BOOLEAN_DETAILS:
            fields[term.code] = _yes_no(value, f"attributes[{n}] {term.code}")
        else:
            fields[term.code] = value
    fields["needs_met"], fields["needs_not_met"] = met, not_met
    label_parts = [obj.get("name"), obj.get("alternate_name"), fields["description"],
                   obj.get("eligibility_description"), *foreign_terms, *v1_terms(obj)]
    return ({k: v for k, v in fields.items() if v not in (None, "", [])},
            " | ".join(p.strip() for p in label_parts if p and p.strip()))


def _trimmed(value: Any) -> Any:
    return value.strip() or None if isinstance(value, str) else value


_MARKUP = re.compile(r"<[A-Za-z/!]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+\d*);")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("p", "br", "li", "div"):
            self.parts.append(" ")


def _plain(value: Any) -> Any:
    """Council feeds put HTML in descriptions ("<p>…&nbsp;…</p>"); a record holds plain text. Only the ORUK
    connector made it plain: a feed saved and given to `rehabmap index` kept its markup, shown as such on the
    service page. Text without markup (rehabmap's own) is kept exactly, line breaks and all."""
    if not isinstance(value, str) or not _MARKUP.search(value):
        return value
    parser = _Text()
    parser.feed(value)
    parser.close()
    return " ".join(html.unescape("".join(parser.parts)).split()) or None


def v1_terms(obj: dict[str, Any]) -> list[str]:
    """The names of an ORUK v1 service's taxonomy terms (`service_taxonomys[].taxonomy.name`)."""
    return [str(t["taxonomy"]["name"]) for t in obj.get("service_taxonomys") or []
            if isinstance(t, dict) and isinstance(t.get("taxonomy"), dict) and t["taxonomy"].get("name")]


def _v1_age(obj: dict[str, Any], key: str, pick: Any) -> Any:
    """ORUK v1 states ages per eligibility; the widest range of them is the service's."""
    ages = [e[key] for e in obj.get("eligibilitys") or [] if isinstance(e, dict) and e.get(key) is not None]
    return pick(ages) if ages else None


_V1_WEEKDAYS = {name: code for code, name in zip(WEEKDAYS, ("monday", "tuesday", "wednesday", "thursday",
                                                           "friday", "saturday", "sunday"))}


def _schedules_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The service's opening times: HSDS 3 `schedules` on the service, on the service at the location that
    places it (`_placing`) and on that location, else ORUK v1 `regular_schedules` (one weekday each, grouped by
    hours). The same schedule given at more than one of these (HSDS's own example repeats it at all three) is
    read once; another location's hours are not this place's. Only weekly schedules are read as days and hours;
    another kind keeps just its description, and one with neither is left out (not known)."""
    at = _placing(obj)
    found = [*(obj.get("schedules") or []), *(at.get("schedules") or []),
             *((at.get("location") or {}).get("schedules") or [])]
    read = (_hsds_schedule(item, f"schedules[{n}]") for n, item in enumerate(found))
    schedules = list({json.dumps(s, sort_keys=True): s for s in read if s}.values())
    if schedules:
        return schedules
    by_hours: dict[tuple[Any, Any], list[str]] = {}
    for n, item in enumerate(obj.get("regular_schedules") or []):
        day = _V1_WEEKDAYS.get(str(item.get("weekday") or "").strip().lower())
        if day is None:
            raise ValueError(f"regular_schedules[{n}]: weekday '{shorten(item.get('weekday'))}' is not a day name")
        by_hours.setdefault((item.get("opens_at"), item.get("closes_at")), []).append(day)
    return [{"byday": sorted(days, key=WEEKDAYS.index), "opens_at": opens, "closes_at": closes}
            for (opens, closes), days in by_hours.items()]


def _hsds_schedule(item: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: a schedule must be an object")
    description = str(item.get("description") or "").strip() or None
    weekly = str(item.get("freq") or "WEEKLY").upper() == "WEEKLY" and item.get("byday") \
        and item.get("opens_at") and item.get("closes_at")
    if not weekly:
        return {"description": description} if description else None
    days = [d.strip().upper()[-2:] for d in str(item["byday"]).split(",") if d.strip()]  # "1MO" → MO
    unknown = [d for d in days if d not in WEEKDAYS]
    if unknown:
        raise ValueError(f"{where}: byday '{shorten(item['byday'])}' holds {', '.join(unknown)}, not MO-SU")
    return {"byday": days, "opens_at": item["opens_at"], "closes_at": item["closes_at"], "description": description}


def _status(value: Any) -> str | None:
    """HSDS has four statuses; rehabmap has two. Missing means active."""
    if value is None:
        return None
    return "active" if str(value).strip().lower() == "active" else "inactive"


def _first(values: Any) -> Any:
    return next((v for v in values if v), None)


def _all_contacts(obj: dict[str, Any]) -> list[dict[str, Any]]:
    contacts = list(obj.get("contacts") or [])
    for sal in obj.get("service_at_locations") or []:
        contacts += sal.get("contacts") or []
        contacts += (sal.get("location") or {}).get("contacts") or []
    return contacts


def _phones(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The numbers to call this service where it is placed (`_placing`), most specific first, as HSDS tells
    them apart: the service at that location's own, that location's, then the service's (the number for all
    its places; the ORUK profile drops service.phones), then its contacts'. Before, the service's came first and
    every location's phones were read, so a number of another venue (or of one that cannot be found) could be
    shown beside this one's address, as its schedules were before (`_schedules_of`)."""
    at = _placing(obj)
    location = at.get("location") or {}
    contacts = [*(at.get("contacts") or []), *(location.get("contacts") or []), *(obj.get("contacts") or [])]
    return [*(at.get("phones") or []), *(location.get("phones") or []), *(obj.get("phones") or []),
            *(phone for contact in contacts for phone in contact.get("phones") or [])]


def places(location: dict[str, Any]) -> bool:
    """Whether an ORUK location can place a service on the map: a point, or an address with a postcode."""
    return location.get("latitude") is not None or any((a or {}).get("postal_code") for a in _addresses(location))


def _addresses(location: dict[str, Any]) -> list[dict[str, Any]]:
    return location.get("addresses") or location.get("physical_addresses") or []  # HSDS 3 or ORUK v1


def _placing(obj: dict[str, Any]) -> dict[str, Any]:
    """The service at the first location that places it (`places`), else at its first location: a feed lists
    a service's venues in its own order, and one with neither a point nor a postcode (a phone line, an outreach
    'location') cannot be where the service is found, so it never hides a later one that can."""
    at = [sal or {} for sal in obj.get("service_at_locations") or []]
    return next((sal for sal in at if places(sal.get("location") or {})), at[0] if at else {})


def _location_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The place, address and CQC id of the location that places the service (`_placing`). Its fields all come
    from that one location, so the address is the point's."""
    location = _placing(obj).get("location") or {}
    addresses = _addresses(location)
    address = next((a for a in addresses if a.get("address_type") == "physical"), addresses[0] if addresses else {})
    identifier_type = str(location.get("external_identifier_type") or "")
    return {
        "lat": location.get("latitude"),
        "lon": location.get("longitude"),
        "address": ", ".join(p.strip() for p in (address.get("address_1"), address.get("address_2"),
                                                 address.get("city"), address.get("state_province"))
                             if p and p.strip()),
        "town": address.get("city"),
        "county": address.get("state_province"),
        "postcode": address.get("postal_code"),
        "cqc_location_id": location.get("external_identifier") if "cqc" in identifier_type.lower() else None,
    }


def _service_area_fields(items: list[dict[str, Any]]) -> dict[str, Any]:
    codes: list[str] = []
    polygon = None
    descriptions: list[str] = []
    for n, item in enumerate(items):
        uri = str(item.get("uri") or "")
        name = str(item.get("name") or "").strip()
        if uri.startswith(ONS_AREA_URI):
            codes.append(uri.removeprefix(ONS_AREA_URI).strip("/"))
        elif _ONS_CODE.match(name):
            codes.append(name)
        if item.get("extent") and str(item.get("extent_type", "")).lower() == "geojson":
            polygon = _geojson_polygon(item["extent"], f"service_areas[{n}].extent")
        descriptions.append(item.get("description") or "")
        if not uri.startswith(ONS_AREA_URI) and not _ONS_CODE.match(name) and not item.get("extent"):
            descriptions.append(name)  # a free-text area ('All residents of MyCity') describes, not restricts
    area = {"codes": list(dict.fromkeys(codes)), "polygon": polygon,
            "description": _first(d.strip() for d in descriptions)}
    return {"service_area": {k: v for k, v in area.items() if v}} if any(area.values()) else {}


def _geojson_polygon(extent: Any, where: str) -> dict[str, Any]:
    geometry = _json(extent, where) if isinstance(extent, str) else extent
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"{where}: GeoJSON extent must be a Polygon or MultiPolygon")
    return geometry


def _json(value: Any, where: str) -> Any:
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: '{shorten(value)}' is not valid JSON") from None


def _provenance(value: Any, n: int, left_out: list[str] | None) -> dict[str, Any] | None:
    """The provenance attribute `attributes[n]` as an object, or None, said in `left_out`, where it is none. It is
    rehabmap's note of where a record came from, not the service: before, one whose value was not JSON refused the
    whole service ("… is not valid JSON"), and one that was JSON but no object refused it in `rehabmap index`."""
    try:
        entry = json.loads(value)
    except (TypeError, ValueError):
        said = "is not valid JSON"
    else:
        if (unread := _unread_provenance(entry)) is None:
            return entry
        said = unread
    if left_out is not None:
        left_out.append(f"provenance attribute (attributes[{n}]) '{shorten(value)}' {said}: left out, the service is "
                        "kept")
    return None


def _unread_provenance(entry: Any) -> str | None:
    """Why a provenance attribute's JSON is no entry a reader can keep (None: it is one). Its time and a dated file's
    edition are read by `rehabmap index` into the record's own provenance: one that was no date refused the whole
    service there ("cannot read the service: Invalid isoformat string"), and `sync oruk` dropped it unsaid."""
    if not isinstance(entry, dict):
        return "is not a JSON object (source, source_id, fetched_at, licence)"
    if fetched := entry.get("fetched_at"):  # a blank is no time, as `rehabmap index` reads it
        try:
            datetime.fromisoformat(fetched)
        except (TypeError, ValueError):
            return f"has fetched_at {shorten(json.dumps(fetched))}, which is no date and time (ISO 8601)"
    if (edition := entry.get("edition")) is not None:
        # An edition naming neither its file nor its date ({"foo": 1}: every field is optional) read as "Listed only
        # in a dated file, a file of no stated date": a dated file the feed never named.
        try:
            named = FileEdition.model_validate(edition)
        except ValueError:
            named = None
        if named is None or not (named.title or named.dated):
            return (f"has edition {shorten(json.dumps(edition))}, which is no dated file's edition (title, dated, "
                    "gives)")
    return None


def _yes_no(value: Any, where: str) -> bool | None:
    """'yes'/'no' (true/false accepted); 'unknown' or no value means unknown."""
    key = str(value).strip().lower() if value is not None else ""
    if key in ("yes", "true", "y"):
        return True
    if key in ("no", "false", "n"):
        return False
    if key in ("", "unknown"):
        return None
    raise ValueError(f"{where}: value '{shorten(value)}' should be yes, no or unknown")


def _known_term(term: dict[str, Any], term_id: Any, where: str) -> Term | None:
    """One of rehabmap's terms, recognised by id, or by taxonomy and code (or name, for feeds following
    the ORUK profile, which drops `code`). None for another taxonomy's term; an unknown term claiming a
    rehabmap taxonomy is an error, not something to guess at."""
    known = _TERMS_BY_ID.get(term.get("id") or term_id)
    if known:
        return known
    taxonomy = _TAXONOMY_KEYS.get(term.get("taxonomy") or term.get("taxonomy_id") or "")
    if taxonomy is None:
        return None
    code = term.get("code")
    if not code:
        name = term.get("name") or term.get("term") or ""
        code = next((t.code for t in _TERMS.values() if t.taxonomy is taxonomy and t.name == name), None)
        if code is None and taxonomy is NEEDS and (language := _LANGUAGE_NAME.match(name)):
            with suppress(UnknownLanguage):  # then not a term of the needs taxonomy, as below
                code = language_need(language.group(1))
    found = _TERMS.get((taxonomy.key, code or ""))
    if found:
        return found
    if taxonomy is NEEDS and code and _LANGUAGE_CODE.match(code):
        return _need_term(code)
    raise ValueError(f"{where}: '{shorten(code or term.get('name'))}' is not a term of the {taxonomy.name} taxonomy")
