"""CSV and GeoJSON exports of browse results, streamed a chunk of rows at a time so a whole index never sits in
memory.

The CSV column set is fixed (`COLUMNS`): a column never moves or disappears when a value is missing, so
spreadsheets and scripts built on one export keep working on the next; a new column goes at the end. The CSV is
for spreadsheets as much as scripts: RFC 4180 (CRLF, quoted where needed), a UTF-8 byte order mark first, formulas
defused, and a phone number in its groups (`phone_cell`), which a spreadsheet keeps as text with its leading zero.
The GeoJSON is RFC 7946's: WGS84 points as [longitude, latitude], no `crs`, six decimals (~0.1 m). Every streamed
download of the API (these, and a small area's GeoJSON of the gaps) is a `Download`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any, Self

from starlette.responses import StreamingResponse

from rehabmap.browse import Listed
from rehabmap.explanation import gender_said_by, needs_said_by
from rehabmap.maintain.freshness import Listings
from rehabmap.phones import phone_cell
from rehabmap.spreadsheet import BOM, defused

COLUMNS: tuple[str, ...] = (
    "id", "name", "organisation", "provider_type", "service_type", "subtype", "original_label",
    "legacy_locked_label", "pd_specialist", "needs_met", "needs_not_met", "min_age", "max_age", "gender",
    "address", "postcode", "lat", "lon", "icb_code", "icb_name", "sub_icb_code", "sub_icb_name", "lad_code",
    "lad_name", "region_code", "region_name", "service_area_codes", "service_area_polygon", "beds",
    "capacity", "capacity_reported", "capacity_as_of", "accepting_referrals", "referral_route", "phone",
    "email", "website", "cqc_location_id", "cqc_rating", "cqc_rating_date", "status", "last_verified",
    "source", "distance_km", "in_home_icb", "out_of_catchment", "description",
    "source_confirmed_by", "source_confirmed_on", "source_confirms", "town", "county", "needs_read_from_text",
    "needs_read_not_met", "gender_read_from_text", "needs_registered", "source_file_of",
    "needs_added_by_maintainers", "gender_stated_by_maintainers", "gender_basis", "gender_from_source",
)
# needs_met/needs_not_met and gender are what a source or maintainer states; needs_read_* and gender_read_from_text
# are what rehabmap read from the service's own words (not confirmed), each with those words: "autism (autistic)",
# "female_only (women-only)" in CSV, an object in GeoJSON; needs_registered, of needs_met those a CQC registration
# states; needs_added_by_maintainers, those a maintainer added to a source's record, the maintainers' word (both
# `rehabmap.explanation.needs_said_by`); gender_stated_by_maintainers, true where gender is a maintainer's word on a
# source's record, not the source's (`explanation.gender_said_by`); gender_basis, whose word gender is (source,
# added_by_maintainers, changed_by_maintainers, removed_by_maintainers: a maintainer cleared the source's; empty: no
# gender and none removed), and gender_from_source, the source's gender a maintainer's word changed or removed
# (`explanation.gender_said_by`).


def record(item: Listed, today: date, listings: Listings) -> dict[str, Any]:
    """One result as a flat record: the CSV row and the GeoJSON feature's properties. Its source's listing
    (`source_confirmed_*`, as `GET /services/{id}` gives `source_confirmed`: a merged record's first source that
    gave a fact shown, with the facts it gave) apart from `last_verified`, a person's check."""
    s = item.service
    a = s.areas
    listing = next(iter(listings.of(s)), None)
    registered, added = needs_said_by(s)
    by_team, basis, from_source = gender_said_by(s)
    lat, lon = s.published_point
    return {
        "id": s.id, "name": s.name, "organisation": s.organisation, "provider_type": s.provider_type,
        "service_type": s.service_type.value, "subtype": s.subtype, "original_label": s.original_label,
        "legacy_locked_label": s.legacy_locked_label, "pd_specialist": s.pd_specialist,
        "needs_met": s.needs_met, "needs_not_met": s.needs_not_met, "min_age": s.min_age, "max_age": s.max_age,
        "gender": s.gender, "address": s.address, "postcode": s.postcode, "lat": lat, "lon": lon,
        "icb_code": a.icb_code, "icb_name": a.icb_name, "sub_icb_code": a.sub_icb_code,
        "sub_icb_name": a.sub_icb_name, "lad_code": a.lad_code, "lad_name": a.lad_name,
        "region_code": a.region_code, "region_name": a.region_name,
        "service_area_codes": s.service_area.codes, "service_area_polygon": s.service_area.polygon is not None,
        "beds": s.beds, "capacity": s.capacity_now(today) or "unknown", "capacity_reported": s.capacity,
        "capacity_as_of": s.capacity_as_of.isoformat() if s.capacity_as_of else None,
        "accepting_referrals": s.accepting_referrals, "referral_route": s.referral_route, "phone": s.phone,
        "email": s.email, "website": s.website, "cqc_location_id": s.cqc_location_id,
        "cqc_rating": s.cqc_rating,
        "cqc_rating_date": s.cqc_rating_date.isoformat() if s.cqc_rating_date else None,
        "status": s.status, "last_verified": s.last_verified.isoformat() if s.last_verified else None,
        "source": s.source, "distance_km": item.distance_km, "in_home_icb": item.in_home_icb,
        "out_of_catchment": item.out_of_catchment, "description": s.description,
        "source_confirmed_by": listing.name if listing else None,
        "source_confirmed_on": listing.confirmed_on.isoformat() if listing and listing.confirmed_on else None,
        "source_confirms": list(listing.confirms) if listing else None, "town": s.town, "county": s.county,
        "needs_read_from_text": s.needs_read_from_text, "needs_read_not_met": s.needs_read_not_met,
        "gender_read_from_text": s.gender_read_from_text, "needs_registered": registered,
        "source_file_of": listing.file_of if listing else None,  # a dated file's date: never "confirmed on"
        "needs_added_by_maintainers": added,
        "gender_stated_by_maintainers": by_team, "gender_basis": basis, "gender_from_source": from_source,
    }


def _yes_no(value: bool) -> str:
    return "true" if value else "false"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _yes_no(value)
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, dict):
        return defused(";".join(f"{key} ({words})" for key, words in value.items()))
    if isinstance(value, str):
        return defused(value)
    return str(value)


# `_cell` by a value's exact type, for the types a record's cells have (an export's ~60 cells a row are most of the
# CSV's work): the same text, each without the tests before its own (~half the cells are None, a third text). Any
# other type, a subclass of one of these among them, is `_cell`'s.
_CELLS: dict[type, Callable[[Any], str]] = {
    str: defused, list: ";".join, bool: _yes_no, int: str, float: str, dict: _cell}


class _Text:
    """Where the CSV writer writes a row: given back, not kept (`csv_lines`), as `writerow` returns what `write`
    does (`str` of the row's text is the text itself)."""

    write = str


def csv_lines(items: Iterable[Listed], today: date, listings: Listings) -> Iterator[str]:
    """The byte order mark and header, then one line per result (lists joined with ';', booleans as
    true/false). A row's values are in `COLUMNS`' order (`record` makes them so)."""
    line = csv.writer(_Text(), lineterminator="\r\n").writerow
    cell = _CELLS.get
    yield BOM + line(COLUMNS)
    for item in items:
        row = record(item, today, listings)
        if row["phone"]:
            row["phone"] = phone_cell(row["phone"])
        yield line(["" if value is None else cell(type(value), _cell)(value) for value in row.values()])


# How much text a streamed export hands the server at a time. A response streamed from a plain iterator is read
# a piece at a time in a worker thread (Starlette's `iterate_in_threadpool`): one hop there and back a row cost
# ~0.4 ms, ~90% of the export (10k services: 4.3 s; bench/RESULTS.md, session 34). 64 KiB is ~100 rows of CSV.
CHUNK_CHARS = 64 * 1024


def in_chunks(pieces: Iterable[str], size: int = CHUNK_CHARS) -> Iterator[str]:
    """The pieces joined into chunks of at least `size` characters (the last may be shorter), in order; none
    empty. Streamed still: a chunk is made only as the server asks for it."""
    held: list[str] = []
    length = 0
    for piece in pieces:
        held.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(held)
            held, length = [], 0
    if length:
        yield "".join(held)


def attachment(file_name: str) -> dict[str, str]:
    """The headers that make a reply a download saved under this name."""
    return {"Content-Disposition": f'attachment; filename="{file_name}"'}


class Download(StreamingResponse):
    """A download streamed as it is written, its text handed to the server ~64 KiB at a time (`in_chunks`): every
    streamed export is made by `of`, so none can hand it a row at a time (what that cost: `CHUNK_CHARS`). The
    constructor stays Starlette's: FastAPI reads its signature for the OpenAPI document."""

    @classmethod
    def of(cls, pieces: Iterable[str], file_name: str) -> Self:
        return cls(in_chunks(pieces), headers=attachment(file_name))


class CSVDownload(Download):
    media_type = "text/csv"


class GeoJSONDownload(Download):
    media_type = "application/geo+json"


def feature(item: Listed, today: date, listings: Listings) -> dict[str, Any]:
    properties = record(item, today, listings)
    return {"type": "Feature", "id": item.service.id,
            "geometry": {"type": "Point", "coordinates": [properties["lon"], properties["lat"]]},
            "properties": properties}


# A feature as `json.dumps(..., ensure_ascii=False)` writes it, by one encoder: `json.dumps` given an option makes
# an encoder a call.
_FEATURE = json.JSONEncoder(ensure_ascii=False).encode


def geojson_chunks(items: Iterable[Listed], today: date, listings: Listings) -> Iterator[str]:
    """A FeatureCollection of points, written feature by feature."""
    yield '{"type": "FeatureCollection", "features": ['
    for n, item in enumerate(items):
        yield ("," if n else "") + "\n" + _FEATURE(feature(item, today, listings))
    yield "\n]}\n"
