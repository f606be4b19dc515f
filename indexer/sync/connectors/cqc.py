"""The CQC API: every registered location of the pathway's service types, kept current from CQC's change log.

A first run (or `full`) crawls `/locations` once per relevant service type (`gacServiceTypeDescription`),
paged, and fetches each location's detail; later runs ask `/changes/location` for the window since the last
one (start inclusive, end exclusive, so chained windows neither skip nor repeat) and re-fetch each changed id.
The state after each page says where to go on, so a killed run resumes there.

What each location becomes is `indexer.sources.cqc.read_pathway` (shared with `rehabmap index`): supported
accommodation (confirmed) from care homes and supported living with the mental health specialism; an
inpatient candidate from a mental health hospital (confirmed only when a rehab ward and the level are both
stated); a deregistered location is `Gone` with its date; everything else is `Refused` with the reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from geodata.england import ENGLAND
from indexer.sources.cqc import (
    OFF_PATHWAY,
    LocationRow,
    NotRehabPathway,
    UnknownBands,
    api_fields,
    api_registration,
    location_candidate,
    location_field_sources,
    needs_evidence,
    read_pathway,
    reading_words,
)
from indexer.sync.connectors.titles import CQC, TITLES
from indexer.sync.connectors.base import BaseConnector, counted, from_iso, iso, origin, utc_now
from indexer.sync.http import Page, SourceClient, SourceNotFound
from indexer.sync.items import Gone, Outcome, Refused, SourceItem, SyncState
from rehabmap.explanation import long_date
from rehabmap.taxonomy import ServiceType

NAME = CQC
LICENCE = "OGL-UK-3.0"
ATTRIBUTION = "Contains CQC information (Care Quality Commission, Open Government Licence v3.0)"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
KEY_SETTING = "REHABMAP_CQC_API_KEY"
KEY_HOW = ("a free 'Syndication' subscription key from CQC's API portal; without one, 'rehabmap sync cqc-ratings' "
           "reads the same locations from CQC's monthly care directory file: REHABMAP_CQC_DIRECTORY_URL")

# CQC's service type descriptions (`gacServiceTypes[].description`) that can be on the pathway.
SERVICE_TYPES = (
    "Hospital services for people with mental health needs, learning disabilities and problems with substance misuse",
    "Care home service without nursing",
    "Care home service with nursing",
    "Supported living service",
    "Extra Care housing services",
    "Community based services for people with mental health needs",
)
# Why a run crawls every location where the saved state has a cursor (`reading_words`): a changes window fetches
# only what CQC changed, so a location refused under the words of the release before was never read again.
READING_CHANGED = ("rehabmap reads CQC's words differently since its last complete crawl (a service user band word "
                   "learnt, say), so every location CQC lists is read again, those it refused before with them")


class CqcConnector(BaseConnector):
    name = NAME
    licence = LICENCE
    attribution = ATTRIBUTION

    def __init__(self, http: SourceClient, *, page_size: int = 1000, service_types: tuple[str, ...] = SERVICE_TYPES,
                 now: Callable[[], datetime] = utc_now, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(http)
        self.page_size = page_size
        self.service_types = service_types
        self._now = now
        self._sleep = sleep

    def covers(self) -> Mapping[str, frozenset[str]]:
        return location_coverage()

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        self._complete = False
        saved = dict(state.load(self.name))
        self.read_all, self.warnings = None, ()
        if saved.get("cursor") and saved.get("reading") != self._reading():
            self.read_all = READING_CHANGED
        if full or "crawl" in saved or not saved.get("cursor") or self.read_all:
            yield from self._crawl(state, saved)
        else:
            self.warnings = _lost_said(saved.get("lost", []))
            yield from self._changes(state, saved)

    def _reading(self) -> str:
        return reading_of(self.service_types)

    # --- a full crawl ---------------------------------------------------------------------------------

    def _crawl(self, state: SyncState, saved: dict[str, Any]) -> Iterator[Outcome]:
        saved.pop("window", None)
        crawl = saved.get("crawl") or {"started": iso(self._floor_now()), "type": 0, "page": 1, "listed": 0}
        saved["crawl_started"] = crawl["started"]
        seen: set[str] = set()
        for number in range(crawl["type"], len(self.service_types)):
            page = crawl["page"] if number == crawl["type"] else 1
            service_type = self.service_types[number]
            while True:
                saved["crawl"] = crawl
                listing, last = self._page(state, saved, "crawl", "locations", "locations", {
                    "gacServiceTypeDescription": service_type}, page, service_type=service_type)
                if listing.items and service_type not in crawl.setdefault("typed", []):
                    crawl["typed"].append(service_type)
                for listed in listing.items:
                    location_id = str(listed.get("locationId") or "")
                    if location_id and location_id not in seen:
                        seen.add(location_id)
                        yield self._location(location_id)
                crawl = {**crawl, "type": number + 1 if last else number, "page": 1 if last else page + 1}
                if last and "listed" in crawl:
                    crawl["listed"] = 0
                saved["crawl"] = crawl
                state.save(self.name, saved, listing=service_type)
                if last:
                    break
                page += 1
        del saved["crawl"]
        saved["reading"] = self._reading()
        lost = self._types_lost(saved, crawl.get("typed", []))
        # Changes made while crawling come in the next window, which starts a second before the crawl did:
        # a change stamped in the second the crawl began is fetched again rather than missed.
        saved["cursor"] = iso(from_iso(crawl["started"]) - timedelta(seconds=1))
        state.save(self.name, saved)
        self._complete = not lost

    def _types_lost(self, saved: dict[str, Any], typed: list[str]) -> list[str]:
        """The service types whose filter listed nothing though a complete crawl before listed some, each said in
        a warning: CQC may have renamed the type, and read as complete, the crawl retired every location of it as
        "no longer listed by CQC" (Field House, its hospital type renamed, at a share under the threshold). Such a
        crawl is not complete: nothing is retired for not being listed. A type stays remembered while it lists
        nothing; one this release no longer asks for is forgotten. A state saved before a crawl remembered types
        has none to compare."""
        lost = [t for t in self.service_types if t in saved.get("typed", ()) and t not in typed]
        saved["typed"] = [t for t in self.service_types if t in typed or t in lost]
        saved["lost"] = lost
        self.warnings = _lost_said(lost)
        return lost

    # --- a changes window -----------------------------------------------------------------------------

    def _changes(self, state: SyncState, saved: dict[str, Any]) -> Iterator[Outcome]:
        window = saved.get("window") or self._new_window(from_iso(saved["cursor"]))
        page = window["page"]
        seen: set[str] = set()
        while True:
            saved["window"] = window
            listing, last = self._page(state, saved, "window", "changes/location", "changes", {
                "startTimestamp": _cqc_time(from_iso(window["start"])),
                "endTimestamp": _cqc_time(from_iso(window["end"]))}, page)
            for location_id in listing.items:
                if str(location_id) not in seen:
                    seen.add(str(location_id))
                    yield self._location(str(location_id))
            if last:
                break
            page += 1
            window = {**window, "page": page}
            saved["window"] = window
            state.save(self.name, saved)
        saved.pop("window", None)
        saved["cursor"] = window["end"]
        state.save(self.name, saved)

    def _page(self, state: SyncState, saved: dict[str, Any], place: str, path: str, items: str,
              params: dict[str, Any], page: int, *, service_type: str | None = None) -> tuple[Page, bool]:
        """Page `page` of a CQC listing, and whether it is the last, by its `totalPages` and `nextPageUri`.
        `saved[place]` is where the crawl or window stands: it counts what the listing's pages held, and a listing
        that held fewer than its `total` fails the run at its last page, its place back at its first (`counted`).
        A crawl's `service_type` then drops what it staged, the types listed before it kept: listed again,
        what it no longer lists is retired. A changes window keeps what it staged: it retires nothing, and a record
        it fetches again is read as last fetched."""
        listing = self.http.get_page(path, {**params, "page": page, "perPage": self.page_size}, items)
        says_last = not listing.body["nextPageUri"] if "nextPageUri" in listing.body else None
        said = "'nextPageUri': null" if says_last else "it gives a 'nextPageUri'"
        last = listing.ends(page, items, "totalPages", says_last, said)
        if short := counted(saved[place], listing, last, "total", items, f"page {page}", restart=("page", 1)):
            state.save(self.name, saved, listing=service_type, afresh=service_type is not None)
            raise short
        return listing, last

    def _new_window(self, start: datetime) -> dict[str, Any]:
        """[start, now) to the second. A run in the same second as the last window's end waits for the clock to
        pass it: an empty window would be asked for nothing, and a window ending in the future would miss
        what changes before that future arrives."""
        end = self._floor_now()
        if end <= start:
            self._sleep((start + timedelta(seconds=1) - self._now()).total_seconds())
            end = self._floor_now()
        return {"start": iso(start), "end": iso(end), "page": 1, "listed": 0}

    def _floor_now(self) -> datetime:
        return self._now().replace(microsecond=0)

    # --- one location -----------------------------------------------------------------------------------

    def _location(self, location_id: str) -> Outcome:
        url = self.http.url(f"locations/{location_id}")
        try:
            item = self.http.get_record(f"locations/{location_id}", "locationId")
        except SourceNotFound:
            # CQC keeps a closed location's record, deregistered and dated (44 of the 103 recorded), so a 404 for
            # one it lists, or logs as changed, says nothing of the service: its last version stays, and a complete
            # listing that no longer names it retires it (before, it was retired as gone).
            return Refused(NAME, location_id, url, "CQC lists this location, but its record is missing (404)",
                           unreadable=True)
        return map_location(item, url, self._now())


# Care homes: "accommodation for persons who require nursing or personal care" is a regulated activity, so every
# one is registered. Not supported accommodation as a whole: floating outreach is housing support, which CQC does
# not regulate, and supported housing is registered ("supported living") only where staff give personal care.
_COVERED = (f"{ServiceType.supported_accommodation.value}:residential_24h", ServiceType.inpatient_rehab_level1.value,
            ServiceType.inpatient_rehab_level2.value)


def location_coverage() -> Mapping[str, frozenset[str]]:
    """What a complete list of CQC locations covers, England-wide: every care home CQC registers for mental
    health, and every hospital an inpatient rehab unit can be in. An area without a CQC-registered supported
    living service or floating support is not known to have none: it is not covered for them."""
    england = frozenset({ENGLAND})
    return {category: england for category in _COVERED}


def map_location(item: Mapping[str, Any], url: str, fetched_at: datetime) -> Outcome:
    """One CQC API location record → what the sync should do with it, with the evidence and every reason."""
    location_id = str(item.get("locationId") or "")
    if not location_id:
        return Refused(NAME, None, url, "the record has no locationId")
    status = str(item.get("registrationStatus") or "Registered")
    if status.lower() != "registered":
        return deregistered(location_id, _date(item.get("deregistrationDate")), status)
    parser, keys = api_fields(dict(item))
    row = LocationRow(1, location_id, item.get("providerId"), api_registration(dict(item)), parser, keys, dict(item))
    return location_item(NAME, row, url, fetched_at, ods_code=item.get("odsCode"))


def deregistered(location_id: str, on: date | None, status: str) -> Gone:
    """A location CQC deregistered (`status`, its `registrationStatus`). The public reads the reason on the service's
    page ("Taken off the list on …: <reason>"); the field and value are the operator's detail. Before session 51,
    the page said "deregistered by CQC on 2026-11-30 (registrationStatus 'Deregistered')"."""
    said = f"deregistered by the {TITLES[NAME]}{f' on {long_date(on)}' if on else ''}"
    when = f" on {on.isoformat()}" if on else " (no date given)"
    return Gone(NAME, location_id, said, on, f"deregistered by CQC{when} (registrationStatus '{status}')")


# The status a deregistration's detail names (`deregistered`)
_STATUS_SAID = re.compile(r"\(registrationStatus '(.*)'\)$")


def staged_deregistration(gone: Gone) -> Gone:
    """A deregistration as a release before session 51 staged it: its reason the operator's words, and no detail.
    Applied so (a stopped run's --force after the upgrade), the public read those words. It is read again as
    `deregistered` gives it today where its words are those it gives from its date (`on`, staged beside them) and
    status; any other Gone is as staged: what its words would say today cannot be told from them."""
    said = _STATUS_SAID.search(gone.reason)
    if gone.source != NAME or said is None:
        return gone
    today = deregistered(gone.source_id, gone.on, said.group(1))
    return today if today.detail == gone.reason else gone


def location_item(connector: str, row: LocationRow, url: str, fetched_at: datetime, *,
                  ods_code: str | None = None) -> SourceItem | Refused:
    """A location in any CQC layout (API, care directory, HSCA active locations) → a typed item or a refusal.
    Every layout gives the same record (id cqc:<location id>), and refuses it by that id: before, a file's refusal
    said 'cqc-directory:<id>', missed the record the file had made, and the home was retired as "no longer listed"
    rather than why. `connector` names where its fields came from."""
    registration = row.registration
    where = url if row.line == 1 else f"{url} line {row.line}"
    if not row.location_id:
        return Refused(NAME, None, where, f"'{registration.name}' has no CQC location id")
    if not registration.name:
        return Refused(NAME, row.location_id, where, "the location has no name", unreadable=True)
    name = registration.name
    try:
        reading = read_pathway(registration, connector)
    except NotRehabPathway as exc:
        return Refused(NAME, row.location_id, where, f"{OFF_PATHWAY}{exc}", name=name,
                       off_pathway=exc.cause)
    except UnknownBands as exc:  # words CQC may have renamed say nothing of the home: its last version stays
        return Refused(NAME, row.location_id, where, str(exc), unreadable=True, name=name)
    if dormant := registration.dormant_reason():
        return Refused(NAME, row.location_id, where, dormant, name=name)
    if row.parser.errors:
        return Refused(NAME, row.location_id, where, "; ".join(row.parser.errors), unreadable=True, name=name)
    candidate = location_candidate(origin(NAME, url, row.line, row.location_id, LICENCE, fetched_at), registration,
                                   row.parser, reading.fields)
    field_sources = location_field_sources(connector, row.field_columns, candidate.fields, reading)
    ids = {"cqc_location_id": row.location_id, "cqc_provider_id": row.provider_id, "ods_code": ods_code}
    return SourceItem(candidate, reading.status, reading.evidence + needs_evidence(registration, connector),
                      raw=row.raw, field_sources=field_sources, keys={k: str(v) for k, v in ids.items() if v})


def _cqc_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _lost_said(lost: list[str]) -> tuple[str, ...]:
    """The warning of each service type the last crawl found empty, said by every run until a crawl lists it again
    (the changes windows after it too): said once, it left `sync-status`, which shows the last run, at the next."""
    return tuple(
        f"CQC's listing of service type '{t}' gave no location at the last crawl, though a complete crawl before "
        "listed some: CQC may have renamed the type, so nothing is retired for not being listed (report it to the "
        "rehabmap team; a crawl that lists the type again, `rehabmap sync cqc --full`, is complete and ends this "
        "warning)" for t in lost)


def reading_of(service_types: Sequence[str] = SERVICE_TYPES) -> str:
    """What a CQC sync reads CQC by, kept in its state: the words its records are read by (`reading_words`) and the
    service types a crawl asks CQC for. A release that adds or renames a type must crawl too, or its locations are
    fetched only as CQC logs a change to them."""
    return f"{reading_words()}:{','.join(service_types)}"
