"""The canonical service record (DESIGN.md §3): what every source is turned into and every backend stores.

Validation lives here, so an importer only has to map fields; a record that fails is rejected with the
reasons pydantic gives, and the importer adds the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from urllib.parse import quote
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.validation import explain_validity

from geodata.areas import AreaCodes
from geodata.england import BRITISH_ISLES_EXTENT, ENGLAND_EXTENT
from rehabmap.config import get_settings
from rehabmap.errors import shorten
from rehabmap.taxonomy import (
    GENDER_NEEDS,
    NEED_LABELS,
    ServiceType,
    parse_need,
    stated_needs,
    validate_subtype,
)

# Capacity: a report (`available`, `limited`, `none`) holds for `REHABMAP_CAPACITY_MAX_AGE_DAYS` (default 14)
# after its `capacity_as_of` date; after that it reads as unknown. `capacity_is_current` is the one rule:
# every answer and export (matching and its explanations, the API's JSON, CSV and GeoJSON, the Open Referral
# feed, the pages, the command line) asks it, through `Service.capacity_now` (or, for a match's many reports,
# `capacity_current_since` and `Service.capacity_since`, the same rule as a date), and says the window with
# `capacity_max_age_days`.

def capacity_max_age_days() -> int:
    """How many days a capacity report holds: the one settings object's, read from the environment
    (REHABMAP_CAPACITY_MAX_AGE_DAYS), so every output of every process applies the same window."""
    return get_settings().capacity_max_age_days


def capacity_is_current(as_of: date | None, today: date, max_age_days: int | None = None) -> bool:
    """Whether a capacity report made on `as_of` still holds on `today` (a report with no date never does)."""
    days = capacity_max_age_days() if max_age_days is None else max_age_days
    return as_of is not None and (today - as_of).days <= days  # whole days: no timedelta made per call


def capacity_current_since(today: date, max_age_days: int | None = None) -> date:
    """`capacity_is_current`'s rule as a date: the oldest report date that still holds on `today` (a report
    holds exactly when its date is this one or later). A match reads ~10 results' capacities: it works this
    date out once and compares each report's with it (`Service.capacity_since`), a third of the cost of a
    subtraction (and the timedelta it makes) per report. A single report is asked `capacity_is_current`,
    which makes no date to compare with."""
    # By the day's number: a `timedelta` to subtract costs ~4k instructions to make, the numbers ~1k.
    return date.fromordinal(today.toordinal() - (capacity_max_age_days() if max_age_days is None else max_age_days))


def capacity_reported_since(capacity: Capacity | None, as_of: date | None, since: date) -> Capacity | None:
    """The capacity, if it was reported on `since` or later (`capacity_current_since`), else None: the one rule for
    a record (`Service.capacity_since`) and for what a match keeps of one (`rehabmap.explanation.RecordWords`). A
    date never comes without a capacity (`Service._consistent` refuses it)."""
    return capacity if as_of is not None and as_of >= since else None


# Validation context for records read back from an index: an index built before a rule existed may hold a
# value that rule now refuses (a 'javascript:' website). Reading it must not fail every answer that touches
# the record until a rebuild; the refused contact is left out instead. See `Service.stored`.
STORED = {"stored": True}
# Validation context for a row an import reads (indexer/pipeline.py): a gender its gender needs state is derived,
# and one they contradict refused, with the row named (`_imported_gender`); a maintainer's new gender, though,
# replaces the needs the old one derived. A rule asks `is_imported`: an edit's context is a copy of it.
IMPORTED = {"imported": True}
# Validation context of an edit (`edit_context`): the catchment polygon the record being edited has, which an edit
# that leaves it as it is keeps unchecked against the degrees and the extent.
KEPT_POLYGON = "kept_polygon"
# Validation context of an edit: the name and organisation the record being edited has, which an edit that leaves them
# as they are keeps unchecked against `one_line_problem` (a record stored before that check may hold a tab in one)
KEPT_NAMES = "kept_names"
# Validation context key of what a person gives, through the maintainers' API or the keepers' forms
# (`rehabmap.maintain.edits.validated`): a name they type is refused for a character no line holds (`one_line_problem`)
TYPED = "typed"
# Validation context of a synced record a rebuild reads from the sync's store (`indexer.sync.rebuild.synced_rows`): an
# import's, but its name is read as stored, never refused for a character the store took before `one_line_problem`
SYNCED = {**IMPORTED, "synced": True}
_NEED_CODES = frozenset(NEED_LABELS)
_GENDER_NEEDS = frozenset(GENDER_NEEDS)
_OTHER_GENDER_NEEDS = {gender: _GENDER_NEEDS - {gender} for gender in _GENDER_NEEDS}


# The longest id a record may have, in UTF-8 bytes: under the 512 Elasticsearch and OpenSearch take as a document's
# id (`Service._id_short_enough`), and over the longest a curated table makes, its source, area, kind and the slug of a
# name of up to 300 characters (`indexer.sources.curated`: at most ~340).
ID_MAX_BYTES = 400
POINT_PLACES = 6  # decimals of a published point (`Service.published_point`)


def source_of(service_id: str) -> str:
    """The source a service id belongs to: ids are `<source>:<key in that source>`."""
    return service_id.split(":", 1)[0]


ProviderType = Literal["nhs", "independent", "local_authority", "vcfse"]
Capacity = Literal["available", "limited", "none"]
Gender = Literal["female_only", "male_only", "mixed_gender"]

# Contact details are republished (ORUK feed, GeoJSON, CSV, pages), so each must be what its name says: a
# link that could run a script ('javascript:…') or a header smuggled into an address never gets in. One
# check for every way in: imports, maintainers' edits (api/maintain_schemas.py uses these patterns too)
# and records read back from an index. Phones are written as the NHS's own lists write them:
# '(0113) 496 0000', '01642 850850 (ext. 54243)', '+44 113 496 0000'.
CONTACT_PATTERNS: dict[str, str] = {
    "phone": r"^\+?\(?[0-9][0-9 ()-]{4,28}[0-9]( ?\(ext\.? ?[0-9]{1,6}\)| ext\.? ?[0-9]{1,6})?$",
    "email": r"^[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
    "website": r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s]*)?$",
}
CONTACT_MAX_LENGTH: dict[str, int] = {"phone": 50, "email": 254, "website": 500}
# The longest text a person may give each of a service's text fields: the one home of these limits, which the
# maintainers' API and the keepers' forms both read, so neither keeps what the other would refuse. A source's record
# may hold longer (a feed's description); an edit that leaves such a value as it is never refuses it.
TEXT_MAX_LENGTH: dict[str, int] = {"name": 300, "organisation": 200, "original_label": 200, "description": 5000,
                                   "address": 300, "postcode": 10, "referral_route": 1000, **CONTACT_MAX_LENGTH}


def typed_text(value: str) -> str:
    """A service's text as a person gives it, and as it is kept and measured against `TEXT_MAX_LENGTH`: its line
    breaks one LF each, its ends trimmed. The one rule of the keepers' forms and the maintainers' API: a browser sends
    each line break in a text box (textarea) as CR LF, so a problem report or a description was counted with each as
    two characters, refused below the limit its box showed, and kept with CR LF; the API kept a CR LF as sent, and
    counted it two where the forms count one. A text held with CR LF (from a source) or a lone CR reads as the same
    text when a form sends it back, which a browser does with LF."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


# What no line of text holds: C0 and C1 controls (a line break, a tab, a bell), DEL, and Unicode's line and paragraph
# separators (U+2028, U+2029), which are no control characters but break a line as LF does.
_NOT_IN_A_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
NAME_FIELDS = ("name", "organisation")


def one_line(value: str) -> str:
    """A source's name (a service's, an organisation's) as one line: each run of whitespace, a line break of any kind
    (LF, CR, VT, FF, U+001C to U+001F, U+0085, U+2028, U+2029) or a tab among it, one space, its ends trimmed. The one
    cleaning of a name every importer and sync gives (`Service._names_on_one_line`), as a CSV cell's text always was
    (`indexer.sources.common.parse_text`): before, a feed's name with a line break was kept so, and the page, the CSV
    export's row and the feed gave it on two lines. A control character that is no whitespace is left for
    `one_line_problem` to name."""
    return " ".join(value.split())


def one_line_problem(value: str) -> str | None:
    """Why `value` cannot be a name, or None when it can: it holds a character no line of text holds, named with
    where it is. A person's edit is refused with it (a name's box is one line: a line break comes from a script or a
    page changed in the browser), as is a source's row whose name holds a control character that is no whitespace
    (a bell, a NUL): what it stood for (a letter lost in a copy out of an old system) is not guessed."""
    found = _NOT_IN_A_LINE.search(value)
    if found is None:
        return None
    char = found.group()
    what = "a line break" if char in _LINE_BREAKS else "a tab" if char == "\t" else "a control character"
    where = (f"after '{shorten(value[:found.start()], 60)}'" if value[:found.start()].strip()
             else "at its start")
    return f"holds {what} (U+{ord(char):04X}) {where}: a name is one line of text; remove it"


def given_text(field: str, value: str) -> str | None:
    """A service's text field as a person gives it (`typed_text`), and where nothing is left, what the record holds
    for no text: None, or "" for a field it always has (its description; its name, then refused as too short). The
    one rule of the keepers' forms, whose emptied box is no text, and the maintainers' API: before, the API kept a
    text of spaces as "" where the form's empty box kept None, and the form's None was refused for a description."""
    return typed_text(value) or (None if Service.model_fields[field].default is None else "")


def id_in_path(service_id: str) -> str:
    """A service's id as a part of an address's path, as every face writes it (the pages' links, the API's words
    naming a page): encoded, its ':' and '/' kept, as ids hold them (a CQC id's prefix, an ORUK feed's own ids) and
    the routes take them."""
    return quote(service_id, safe=":/")


# The names the keepers give, not a service's: an organisation's name and a token's label, each its fewest and most
# characters once its runs of spaces are made one, as the directory store keeps them. Their one home, read by the store,
# the maintainers' API and the admins' pages (each box's maxlength and its "too long" error).
ORGANISATION_NAME_LENGTH = (2, 200)
TOKEN_LABEL_LENGTH = (1, 100)
_CONTACT_RULES = {field: (re.compile(pattern), CONTACT_MAX_LENGTH[field], what) for field, pattern, what in (
    ("phone", CONTACT_PATTERNS["phone"], "a phone number (digits, spaces, brackets and hyphens, perhaps an "
                                         "extension)"),
    ("email", CONTACT_PATTERNS["email"], "an email address"),
    ("website", CONTACT_PATTERNS["website"], "a web address (http:// or https://, a host name, no spaces)"),
)}


# A website a directory gives without its scheme, or with it mangled ('www.bristolmind.org.uk', 'http:www.x.org',
# 'https:/x.org'): 59 of Bristol's 819 services and most CQC records. A host name with a dot and a top-level domain,
# then perhaps a port and a path, no spaces: unambiguously a web address, so it is completed, never dropped.
_SCHEMELESS = re.compile(r"(?:(https?):/?(?!/))?([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?::[0-9]{1,5})?"
                         r"(?:[/?#]\S*)?)", re.I)


def completed_website(value: str) -> str | None:
    """The link a website without its scheme stands for (https://, or the scheme it mangled), or None when it
    is not unambiguously a web address ('Warmley Community Centre', 'javascript:…'), which stays refused."""
    found = _SCHEMELESS.fullmatch(value.strip())
    if found is None:
        return None
    return f"{(found.group(1) or 'https').lower()}://{found.group(2)}"


def contact_problem(field: str, value: str, *, completing: bool = False) -> str | None:
    """Why `value` cannot be a service's phone, email or website, or None when it can. With `completing`, a
    website the record completes (`Service._website_completed`) is none: an import keeps it."""
    pattern, longest, what = _CONTACT_RULES[field]
    if len(value) <= longest and pattern.fullmatch(value):
        return None
    if completing and field == "website" and (completed := completed_website(value)) is not None:
        return contact_problem(field, completed)
    return f"'{shorten(value)}' is not {what}"


def _not_bool(value: Any) -> Any:
    """JSON's true is a number to pydantic (and to Python); to a record it is a yes/no answer."""
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a yes/no value, not a number")
    return value


Number = BeforeValidator(_not_bool)


class FileEdition(BaseModel):
    """A source that is a dated file read through a CSV mapping: a snapshot made on its own date, which an
    import only reads again (records imported in 2026 from a 2015 list are as true as the list was in 2015).
    Carried by each record it gave (`Provenance.edition`), as the import read it: a mapping renamed or removed
    later leaves the record's listing the file's (before session 20 the server looked it up by the mapping's
    name, and such a record read as "last confirmed <the day of the import>", a guess shown as fact)."""

    model_config = ConfigDict(frozen=True)

    title: str | None = None            # the file as a person reads it (its mapping's title); None: not given
    dated: str | None = None            # when the file's data stood, as a person reads it; None: not given
    gives: tuple[str, ...] = ()         # the record fields its mapping reads from it (columns and constants)


class Relay(BaseModel):
    """The feed that passed a source's listing on (another installation's ORUK feed, read by `rehabmap sync oruk`):
    named on the entry it relayed, so the listing is said to be the source's "as relayed by" the feed. The feed's
    own entry in the record's provenance (`source`) is then a relay, not a source of its own: it lists the record
    today whatever day the source it relays last did (docs/adr/0018). `source` is always the feed the sync read,
    whatever relay the feed published: a name a feed publishes is its publisher's, and read as one of this
    installation's sources ("cqc") it hid that source's own listing."""

    model_config = ConfigDict(frozen=True)

    source: str                         # the feed's name in this installation's provenance (`oruk-<feed>`)
    title: str | None = None            # as a person reads it: the first relay's, as published, or the feed's label
    relaying: bool = False              # the entry is itself a relay's own, where the feed's publisher read it from
                                        # another rehabmap's feed (a third site's copy): it dates nothing either

    @property
    def named(self) -> str:
        """The relay as a person reads it (`title`), or the feed's name where no title was given."""
        return self.title or self.source


class Provenance(BaseModel):
    """Where a record (or part of a merged record) came from, so every field can be traced."""

    model_config = ConfigDict(frozen=True)

    source: str
    source_id: str
    fetched_at: datetime
    licence: str | None = None
    file: str | None = None
    line: int | None = None
    edition: FileEdition | None = None  # the dated file it was read from, if it was (a CSV read by a mapping)
    relayed_by: Relay | None = None     # the feed that passed this entry on, where one did (`Relay`)


def relays(provenance: Iterable[Provenance]) -> frozenset[str]:
    """The sources in a record's provenance that relay another's entry (`Relay`): their own entries date nothing."""
    return frozenset(p.relayed_by.source for p in provenance if p.relayed_by is not None)


def dating(provenance: Sequence[Provenance]) -> list[Provenance]:
    """The entries of a record's provenance that may date it: none a relay's own, this installation's
    (`relays`) or one a relay passed on (`Relay.relaying`), which lists the record on the day it is read. Before,
    a third site read the first site's relay, passed on by the second, as a live listing of today."""
    relaying = relays(provenance)
    return [p for p in provenance if p.source not in relaying and not (p.relayed_by and p.relayed_by.relaying)]


def is_imported(context: dict[str, Any] | None) -> bool:
    """Whether a validation context is an import's: IMPORTED itself, or an edit's made from it, which `edit_context`
    copies to add the catchment kept. Asked `is IMPORTED`, an edit of a service with a catchment was no import's, and
    a needs edit skipped the import's gender rule; every rule asks this instead."""
    return context is not None and context.get("imported") is True


def edit_context(current: Service | None, context: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The validation context of an edit of `current` (None: a new record): `context` (None or IMPORTED), and the
    catchment polygon `current` has, which the edit may keep unchecked. An index built before the degrees and
    extent checks may hold one they refuse (written latitude first, say): checked with the rest of the record, it
    refused every edit of the service, a phone number's or a retirement, until the same edit replaced it. A polygon
    the edit gives is checked as a new one is; the edit is not read as STORED, which drops a bad contact detail."""
    if current is None:
        return context
    kept = current.service_area.polygon
    names = {KEPT_NAMES: {"name": current.name, "organisation": current.organisation}}
    return {**(context or {}), **names, **({} if kept is None else {KEPT_POLYGON: kept})}


def _kept_name(value: str, info: ValidationInfo) -> bool:
    """Whether `value` is the name (or organisation) the record an edit is of has (`edit_context`)."""
    return info.context is not None and (info.context.get(KEPT_NAMES) or {}).get(info.field_name, None) == value


_POLYGON_DEPTH = 4  # a MultiPolygon's coordinates: polygons, rings, positions, numbers


def catchment_polygon(value: dict[str, Any], *, stored: bool = False) -> dict[str, Any]:
    """The GeoJSON Polygon or MultiPolygon both backends can index, or ValueError saying what is wrong
    with it. Only its type and coordinates are kept: foreign members (bbox, crs, properties) say nothing
    about who is served. Shared by the record and the maintainers' API (which checks it before anything
    else touches the value: nesting hundreds deep would exhaust the recursion of whatever walked it). A polygon
    `stored` in an index is not held to degrees: one written before that check still reads, as it matched."""
    kind = value.get("type")
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError("service area polygon must be a GeoJSON Polygon or MultiPolygon")
    coordinates = value.get("coordinates")
    if not isinstance(coordinates, list):
        raise ValueError(f"service area polygon has no 'coordinates' list (a GeoJSON {kind} needs one)")
    if _lists_nested_deeper_than(coordinates, _POLYGON_DEPTH):
        raise ValueError(f"service area polygon's coordinates are nested deeper than a GeoJSON {kind}'s")
    geometry_json = {"type": kind, "coordinates": coordinates}
    try:
        geometry = shape(geometry_json)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError, ShapelyError) as exc:
        # (malformed coordinates surface from shapely and NumPy as any of these; a whole number too large for a float,
        # which JSON holds, as OverflowError, which pydantic would not make a validation error)
        raise ValueError(f"service area polygon is not valid GeoJSON: {shorten(exc)}") from None
    if not (stored or geometry.is_empty) and (outside := _position_outside(geometry.bounds)) is not None:
        raise ValueError(outside)
    if geometry.is_empty or not geometry.is_valid:
        raise ValueError(f"service area polygon is invalid: {explain_validity(geometry)}")
    return geometry_json


_BNG_RANGE = (0.0, 0.0, 700_000.0, 1_300_000.0)  # British National Grid: eastings, northings in metres


def _position_outside(bounds: tuple[float, float, float, float]) -> str | None:
    """Why a polygon whose `bounds` (min x, min y, max x, max y) are these cannot be an English service's catchment,
    or None when they can be."""
    return _position_outside_degrees(bounds) or _position_outside_british_isles(bounds)


def _position_outside_british_isles(bounds: tuple[float, float, float, float]) -> str | None:
    """Why a polygon in degrees whose `bounds` reach past `BRITISH_ISLES_EXTENT` is no English service's catchment,
    or None when they do not. A polygon written latitude first is in range for degrees (an English one reaches ~50..56
    across and ~-6..2 up) and passed, and matched no one: it is named as such when the swapped positions lie inside.
    The extent is the British Isles, not England widened a little: a national service's catchment, all of the United
    Kingdom, is a catchment, and refusing it would reject the service's whole row."""
    if BRITISH_ISLES_EXTENT.holds(bounds):
        return None
    west, south, east, north = bounds
    said = (f"service area polygon reaches {west:g}..{east:g} across and {south:g}..{north:g} up, beyond the British "
            f"Isles (longitude {BRITISH_ISLES_EXTENT.west:g}..{BRITISH_ISLES_EXTENT.east:g}, latitude "
            f"{BRITISH_ISLES_EXTENT.south:g}..{BRITISH_ISLES_EXTENT.north:g})")
    if BRITISH_ISLES_EXTENT.holds((south, west, north, east)):
        return (f"{said}; they look like latitude and longitude, in that order: give longitude first, then latitude "
                "(WGS 84), as GeoJSON does")
    return f"{said}: give the catchment of a service in England, in longitude and latitude (WGS 84)"


def _position_outside_degrees(bounds: tuple[float, float, float, float]) -> str | None:
    """Why a polygon whose `bounds` (min x, min y, max x, max y) reach past longitude -180..180 or latitude
    -90..90 is not in GeoJSON's degrees, or None when they do not. The engines refuse such a shape (an edit then
    failed at the index, after the directory had it) and the embedded index matched nothing sensible with it.
    English geodata is often in British National Grid metres, so a polygon wholly in its range is named as such."""
    west, south, east, north = bounds
    if -180 <= west <= east <= 180 and -90 <= south <= north <= 90:
        return None
    said = ("service area polygon's coordinates are not longitude and latitude: they reach "
            f"{west:g}..{east:g} across and {south:g}..{north:g} up, past longitude -180..180 or latitude -90..90")
    low_e, low_n, high_e, high_n = _BNG_RANGE
    if low_e <= west and east <= high_e and low_n <= south and north <= high_n:
        said += "; they look like British National Grid eastings and northings"
    return f"{said}: give longitude and latitude (WGS 84), as GeoJSON does"


def _lists_nested_deeper_than(value: list[Any], depth: int) -> bool:
    level: list[Any] = [value]
    for _ in range(depth):
        level = [item for outer in level if isinstance(outer, list) for item in outer]
    return any(isinstance(item, list) for item in level)


class ServiceArea(BaseModel):
    """Who the service serves. Empty means no stated restriction (e.g. national inpatient referrals)."""

    codes: list[str] = Field(default_factory=list)
    polygon: dict[str, Any] | None = None  # GeoJSON Polygon/MultiPolygon, WGS84
    description: str | None = None

    @field_validator("polygon")
    @classmethod
    def _valid_polygon(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if value is None:
            return None
        context = info.context
        kept = context == STORED or (context is not None and value == context.get(KEPT_POLYGON))
        return catchment_polygon(value, stored=kept)

    @property
    def restricted(self) -> bool:
        return bool(self.codes) or self.polygon is not None


def _no_stated_area() -> ServiceArea:
    """A record's area when its source states none, as `ServiceArea()` makes it, by pydantic-core directly:
    without `BaseModel.__init__`'s Python frame around it (about half the rows of an import take this)."""
    return ServiceArea.__pydantic_validator__.validate_python({})


Weekday = Literal["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
WEEKDAYS: tuple[Weekday, ...] = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


class Schedule(BaseModel):
    """When a service is open, in HSDS 3.0's `schedule` terms: a weekly opening (`byday`, `opens_at`,
    `closes_at`) and/or the source's own words (`description`: "24 hours, every day", "by appointment").
    A source that states no schedule gives none: the pages then say opening times are not known."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    byday: list[Weekday] = Field(default_factory=list)
    opens_at: time | None = None
    closes_at: time | None = None
    description: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _says_something(self) -> Schedule:
        if not self.description and not (self.byday and self.opens_at and self.closes_at):
            raise ValueError("a schedule needs days with opening and closing times, or a description")
        if bool(self.opens_at) != bool(self.closes_at):
            raise ValueError("a schedule with an opening time needs a closing time too, and the other way round")
        return self

    def hours(self) -> tuple[str, str] | None:
        """Opening and closing as `HH:MM:SS`, UK local time without an offset (the source gives none): the one
        spelling the API and the ORUK feed both send."""
        if self.opens_at is None or self.closes_at is None:
            return None
        return self.opens_at.strftime("%H:%M:%S"), self.closes_at.strftime("%H:%M:%S")


def _imported_gender(gender: Gender | None, met: list[str], not_met: list[str]) -> Gender | None:
    """The gender of an imported row that states gender needs: `gender` if they agree with it (ValueError if
    not: which of the two the source means is not for rehabmap to guess); else the one they say (the one met, or
    the one left when the other two are not met), so that a man's search leaves out a feed's needs_met
    ["female_only"] as it does its gender female_only (the person's gender is filtered on `gender`). None when
    they leave it open (only men-only not met: women only, or women and men). At import only: a maintainer's
    new gender replaces the gender needs the old one derived (`Service._consistent`)."""
    said = sorted(_GENDER_NEEDS.intersection(met))
    if gender is not None:
        other = [n for n in said if n != gender]
        if other or gender in not_met:
            stated = f"needs_met states {', '.join(other)}" if other else f"needs_not_met states {gender}"
            raise ValueError(f"gender {gender} but {stated}: two different answers to who the service takes: give one")
        return gender
    if len(said) > 1:
        raise ValueError(f"needs_met states {' and '.join(said)}: a service takes women only, men only, or women "
                         "and men (mixed_gender): state one of them")
    left = sorted(_GENDER_NEEDS.difference(not_met))
    if not left:
        raise ValueError("needs_not_met states every gender need: the service would take no one")
    if said or len(left) == 1:
        return (said or left)[0]  # type: ignore[return-value]
    return None


def _with_read_gender(read: dict[str, str], read_not: dict[str, str],
                      gender: dict[Gender, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The read needs with the read gender's needs (its own read as met, the other two as not, each with its
    words) as their only gender needs, as a stated gender derives the stated ones; in code order, as the stated
    lists are."""
    read = {n: words for n, words in read.items() if n not in _GENDER_NEEDS}
    read_not = {n: words for n, words in read_not.items() if n not in _GENDER_NEEDS}
    for code, words in gender.items():
        read[code] = words
        read_not.update(dict.fromkeys(_OTHER_GENDER_NEEDS[code], words))
    return dict(sorted(read.items())), dict(sorted(read_not.items()))


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]+:[^\s]+$", description="Source-prefixed stable id, e.g. cqc:1-123")
    name: str = Field(min_length=2, max_length=TEXT_MAX_LENGTH["name"])
    organisation: str | None = None
    provider_type: ProviderType | None = None
    service_type: ServiceType
    subtype: str | None = None
    original_label: str | None = None
    legacy_locked_label: bool = False
    pd_specialist: bool = False
    description: str = ""
    # Needs as a source or a maintainer states them: what matching filters on and counts as confirmed.
    needs_met: list[str] = Field(default_factory=list)
    needs_not_met: list[str] = Field(default_factory=list)
    # Needs rehabmap read from the record's own words (name, description, label: indexer/needs.py), each with
    # the words that suggested it. A guess, shown as one: never confirmed, never a reason to leave a service
    # out (rehabmap/match.py `RANKING_RULE`). A need stated either way is not also read (`_consistent`), so a
    # maintainer confirms a read need by stating it.
    needs_read_from_text: dict[str, str] = Field(default_factory=dict)
    needs_read_not_met: dict[str, str] = Field(default_factory=dict)
    min_age: Annotated[int | None, Number] = Field(default=None, ge=0, le=120)
    max_age: Annotated[int | None, Number] = Field(default=None, ge=0, le=120)
    # The gender a source or a maintainer states: what a person's gender is filtered on; it derives the three
    # gender needs, stated.
    gender: Gender | None = None
    # The gender rehabmap read from the record's own words ("A women-only ward"), with those words: at most one
    # entry, and none when a gender is stated (the field, or a gender need either way). A guess, as read needs
    # are: it never leaves a person out, ranks as not said, and derives the gender needs as read ones
    # (`needs_read_from_text`, `needs_read_not_met`), each with the same words (`_consistent`).
    gender_read_from_text: dict[Gender, str] = Field(default_factory=dict, max_length=1)
    address: str | None = None
    # The town and county as a source names them apart (the address joins them with its lines): a county is
    # never taken for a town by reading a joined address. None: the source gave the address in one piece.
    town: str | None = None
    county: str | None = None
    postcode: str | None = None
    lat: Annotated[float, Number] = Field(ge=ENGLAND_EXTENT.south, le=ENGLAND_EXTENT.north)
    lon: Annotated[float, Number] = Field(ge=ENGLAND_EXTENT.west, le=ENGLAND_EXTENT.east)
    areas: AreaCodes = Field(default_factory=AreaCodes)
    service_area: ServiceArea = Field(default_factory=_no_stated_area)
    beds: Annotated[int | None, Number] = Field(default=None, ge=0)
    capacity: Capacity | None = None
    capacity_as_of: date | None = None
    accepting_referrals: bool | None = None
    self_referral: bool | None = None  # can a person refer themselves? None: the source does not say
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
    # The needs CQC's registration states, kept apart when a maintainer's edit lays its own needs lists over a CQC
    # record (`rehabmap.index.base.overlay_record`): `field_sources` then calls the lists the directory's, and
    # without it the needs CQC registered were no longer said as such (`rehabmap.explanation.needs_said_by`).
    # Empty on a record no edit touched, whose field sources say it.
    cqc_registered_needs: list[str] = Field(default_factory=list)
    # The needs the record's source stated (its sources', merged), kept when a maintainer's edit first lays its own
    # needs lists over a record of any source (`overlay_record`): without them the edited lists held the source's
    # needs and the maintainer's alike, and the maintainer's read as the source's (`explanation.needs_by_basis`).
    # None on a record no edit of the lists touched, and on one an edit reached before they were kept, until the first
    # start after migration 21 (or a rebuild or sync) lays it; [] where the source stated none.
    source_needs_met: list[str] | None = None
    # The gender the source states, kept apart when a maintainer's word on the gender is laid over a source's record
    # (`overlay_record`), so a page says a gender that replaced the source's as "changed by the rehabmap team", not
    # "added" (`rehabmap.explanation.gender_basis`). None: the source states none, or no such word was laid.
    source_gender: Gender | None = None
    last_verified: date | None = None
    schedules: list[Schedule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _website_completed(cls, data: Any) -> Any:
        """A website given without its scheme gets one (`completed_website`), and its field source says so: the
        link shown is rehabmap's reading of what the source gave. Before, it was dropped with a warning."""
        website = data.get("website") if isinstance(data, dict) else None
        if not isinstance(website, str) or website.startswith(("https://", "http://")):
            return data
        completed = completed_website(website)
        if completed is None or contact_problem("website", completed):
            return data
        said = dict(data.get("field_sources") or {})
        first = (data.get("provenance") or [{}])[0]
        source = first.source if isinstance(first, Provenance) else first.get("source")
        said["website"] = (f"{said.get('website') or f'{source}:website'} (given as '{shorten(website.strip(), 60)}'"
                           f": {completed.split(':')[0]}:// added)")
        return {**data, "website": completed, "field_sources": said}

    @field_validator("phone", "email", "website")
    @classmethod
    def _contact(cls, value: str | None, info: ValidationInfo) -> str | None:
        problem = None if value is None else contact_problem(str(info.field_name), value)
        if problem and info.context == STORED:
            return None  # written by a version before this check: never shown, and the record still reads
        if problem:
            raise ValueError(problem)
        return value

    @field_validator(*NAME_FIELDS, mode="before")
    @classmethod
    def _names_on_one_line(cls, value: Any, info: ValidationInfo) -> Any:
        """An import's (or a sync's) name and organisation read as one line (`one_line`), unless an edit keeps the
        record's own: one place every source's record passes, so no importer has a cleaning of its own to forget. A
        person's is not cleaned but refused (`_one_line`), so they see what they sent was not kept as sent."""
        context = info.context
        if (isinstance(value, str) and is_imported(context) and not (context or {}).get(TYPED)
                and not _kept_name(value, info)):
            return one_line(value)
        return value

    @field_validator(*NAME_FIELDS)
    @classmethod
    def _one_line(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A name a person gives (TYPED) with a character no line holds is refused (`one_line_problem`), and so is a
        source's row with a control character one line's cleaning leaves. Nothing else is checked: a name the record
        already has (an edit of its phone, a retirement, a provider's vacancies: `edit_context`), a record read back
        (STORED), a synced record a rebuild reads from the store (SYNCED), and a record made of others (a merge, the
        maintainers' edits laid over a synced record), so a name stored before this check still reads everywhere."""
        context = info.context or {}
        checked = context.get(TYPED) is True or (is_imported(context) and context.get("synced") is not True)
        if value is None or not checked or _kept_name(value, info):
            return value
        if problem := one_line_problem(value):
            raise ValueError(problem)
        return value

    @field_validator("id")
    @classmethod
    def _id_short_enough(cls, value: str, info: ValidationInfo) -> str:
        """Elasticsearch and OpenSearch refuse a document id over 512 bytes, and with it the whole bulk request
        it came in, naming no record: a build or an edit failed, and nothing said which id. Real ids are short
        (`cqc:1-112816741`, `nhs-hospitals-2018:NMJ02`, `oruk-bristol:` and the feed's UUID: under 50 bytes), so
        `ID_MAX_BYTES` leaves room for every source's while refusing the row or the synced item that holds a longer
        one, by its id. A record read back from an index (written before this check) still reads."""
        if len(value) * 4 <= ID_MAX_BYTES or info.context == STORED:  # UTF-8 spends at most 4 bytes a character
            return value
        if (size := len(value.encode())) > ID_MAX_BYTES:
            raise ValueError(f"'{shorten(value, 60)}' is {size} bytes long in UTF-8 ({len(value)} characters): "
                             f"an id may be at most {ID_MAX_BYTES} bytes")
        return value

    @classmethod
    def stored(cls, record: str | bytes | dict[str, Any]) -> Service:
        """A record as an index holds it (JSON text, or the parsed document)."""
        if isinstance(record, dict):
            return cls.model_validate(record, context=STORED)
        return cls.model_validate_json(record, context=STORED)

    @field_validator("needs_met")
    @classmethod
    def _known_needs_met(cls, value: list[str]) -> list[str]:
        # One set, tested against the codes as a set: `issuperset` of a list would build a set of its own.
        unique = set(value)
        if unique <= _NEED_CODES:  # already codes (every record an import or a read makes): skip the parse
            return sorted(unique)
        return sorted(stated_needs({parse_need(v) for v in unique}))  # a language with its macrolanguage

    @field_validator("needs_not_met")
    @classmethod
    def _known_needs(cls, value: list[str]) -> list[str]:
        unique = set(value)  # as `_known_needs_met`
        if unique <= _NEED_CODES:
            return sorted(unique)
        return sorted({parse_need(v) for v in unique})

    @field_validator("needs_read_from_text", "needs_read_not_met")
    @classmethod
    def _known_read_needs(cls, value: dict[str, str]) -> dict[str, str]:
        if not value or value.keys() <= _NEED_CODES:
            return value
        return {parse_need(need): words for need, words in value.items()}

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Service:
        # The fields are read from `__dict__`, where pydantic keeps them: `BaseModel` defines `__getattr__`, so
        # each `self.x` goes through CPython's slow attribute hook (~0.1 µs), and this runs for every record.
        fields = self.__dict__
        validate_subtype(fields["service_type"], fields["subtype"])
        min_age, max_age = fields["min_age"], fields["max_age"]
        if min_age is not None and max_age is not None and min_age > max_age:
            raise ValueError(f"min_age {min_age} is greater than max_age {max_age}")
        met, not_met = fields["needs_met"], fields["needs_not_met"]
        if not_met and not set(met).isdisjoint(not_met):
            clash = set(met) & set(not_met)
            raise ValueError(f"needs both met and not met: {', '.join(sorted(clash))}")
        gender = fields["gender"]
        imported = is_imported(info.context)
        if gender is None and imported and not (_GENDER_NEEDS.isdisjoint(met) and _GENDER_NEEDS.isdisjoint(not_met)):
            gender = self.gender = _imported_gender(None, met, not_met)
        if gender:
            # The gender field is the truth; the three gender needs are derived from it. A list that already
            # says so (every record read back from an index does) is left as it is: an assignment is a
            # Python call of pydantic's `__setattr__`, ~1 µs. The lists are sorted and unique here
            # (`_known_needs`), so a list says so exactly when its gender needs are the derived ones. An imported
            # row's lists that do not are checked first: only they can contradict the gender.
            if _GENDER_NEEDS.intersection(met) != {gender}:
                if imported:
                    _imported_gender(gender, met, not_met)
                self.needs_met = sorted((set(met) - _GENDER_NEEDS) | {gender})
            if _GENDER_NEEDS.intersection(not_met) != _OTHER_GENDER_NEEDS[gender]:
                if imported:
                    _imported_gender(gender, met, not_met)
                self.needs_not_met = sorted((set(not_met) | _GENDER_NEEDS) - {gender})
        if fields["gender_read_from_text"] or fields["needs_read_from_text"] or fields["needs_read_not_met"]:
            self._read_apart_from_stated()
        if fields["capacity_as_of"] and not fields["capacity"]:
            raise ValueError("capacity_as_of given without capacity")
        return self

    def _read_apart_from_stated(self) -> None:
        """A need stated (met or not) is no longer a guess: it leaves the read lists. Words read both ways
        (records merged from two sources) say nothing: the need is left unknown. The read gender goes when a
        gender is stated; else it alone gives the read lists' gender needs (a merge may bring another's).
        The lists are assigned only when they change (every record read back from an index is as it was)."""
        fields = self.__dict__  # as `_consistent` reads them
        stated = {*fields["needs_met"], *fields["needs_not_met"]}
        read, read_not = fields["needs_read_from_text"], fields["needs_read_not_met"]
        gender = fields["gender_read_from_text"]
        if gender and (fields["gender"] or not stated.isdisjoint(_GENDER_NEEDS)):
            self.gender_read_from_text = gender = {}
        if gender:
            read, read_not = _with_read_gender(read, read_not, gender)
        elif stated.isdisjoint(read) and stated.isdisjoint(read_not) and read.keys().isdisjoint(read_not):
            return  # most records that read a need: nothing stated or read both ways to take out
        leave = (stated & {*read, *read_not}) | (read.keys() & read_not.keys())
        if leave:
            read = {n: words for n, words in read.items() if n not in leave}
            read_not = {n: words for n, words in read_not.items() if n not in leave}
        if read != fields["needs_read_from_text"]:
            self.needs_read_from_text = read
        if read_not != fields["needs_read_not_met"]:
            self.needs_read_not_met = read_not

    def capacity_now(self, today: date, max_age_days: int | None = None) -> Capacity | None:
        """The capacity that holds on `today`: a report older than the freshness window
        (REHABMAP_CAPACITY_MAX_AGE_DAYS, or `max_age_days`) reads as unknown (DESIGN.md §3;
        `rehabmap.record.capacity_is_current` is the rule)."""
        if self.capacity is None or not capacity_is_current(self.capacity_as_of, today, max_age_days):
            return None
        return self.capacity

    def capacity_since(self, since: date) -> Capacity | None:
        """The capacity, if it was reported on `since` or later (`capacity_current_since`), else None. The two fields
        are read from `__dict__` (once, ~530 instructions), as `_consistent` reads them, not through pydantic's
        attribute hook (~580 each): a match asks this of each of its ~10 results."""
        fields = self.__dict__
        return capacity_reported_since(fields["capacity"], fields["capacity_as_of"], since)

    @property
    def published_point(self) -> tuple[float, float]:
        """(latitude, longitude) as every export and feed gives them: to `POINT_PLACES` decimals, ~0.1 m, RFC 7946's
        advice. A source's float32 point (the 2018 hospital list's 53.1361083984375) is noise past that, not
        precision; the ORUK feed gave it whole while the CSV and GeoJSON rounded it, so one service had two points."""
        return round(self.lat, POINT_PLACES), round(self.lon, POINT_PLACES)

    @property
    def source(self) -> str:
        return source_of(self.id)
