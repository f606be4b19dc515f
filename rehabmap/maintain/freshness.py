"""How fresh a record is: when a person last checked it, when its source last confirmed it, and which records
need a person's check. (Whether its capacity report still holds is the record's own rule:
`rehabmap.record.capacity_is_current`.)

Two different facts, never shown as one:

* A *person's check* (`last_verified`): the rehabmap team or the service itself confirmed the record as a whole,
  what no source gives included (how to refer, whether it takes referrals, opening times).
* A *source's listing* (`source_listings`): a synced source (CQC, say) still listed the record, as shown,
  at its last successful sync. That confirms only the facts the source gives (the record's `field_sources`
  name them): CQC confirms a registration, a name and an address, never a referral route it does not hold.
  A dated file (a hospital list of 2014–15, its records accepted through the review queue) confirms nothing
  on the day it is imported: its listing is the file's, of its own date, and gives the facts its mapping reads.
  A record merged from two sources' records (`indexer.merge`) is listed by each source that gave a fact shown, for
  the facts it gave (`field_sources`): the 2014–15 hospital list is not said to give a phone the 2018 list gave.

A service is *due for verification* when no person has checked it (`last_verified` is empty) or the last check
is more than `verify_after_days` old (Settings, default 180), unless it is retired (inactive). A source's
recent listing does not clear it: the facts the source gives are confirmed by it, and are shown so, but what is
due is a person's check of the rest. Results say so with `verification_due`; maintainers list what is due with
`rehabmap verify-due` or `GET /maintain/verification-due`, and clear it with `POST /maintain/services/{id}/verify`.

A curated table's word that an area is covered (`rehabmap.coverage`: all its services there listed, or a `none`
row) rests on a person's check too, and is due by the same rule (`areas_due`); it is renewed by uploading the
table again with the new `verified_on`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

from rehabmap.coverage import CURATED
from rehabmap.maintain.database import each_value
from rehabmap.record import dating, relays

if TYPE_CHECKING:
    from rehabmap.coverage import Claim
    from rehabmap.maintain.store import Directory
    from rehabmap.record import FileEdition, Provenance, Service

_Listed = TypeVar("_Listed")  # a record's listing in the sync store (`Listings.listed`), or where it may have none

DEFAULT_VERIFY_AFTER_DAYS = 180
# The facts a page shows about a service, as a person names them, each with the record fields it rests on.
FACTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("registration", ("cqc_location_id",)), ("name", ("name",)), ("address", ("address", "postcode")),
    ("type of service", ("service_type", "subtype")), ("who it is for", ("needs_met", "min_age", "max_age", "gender")),
    ("beds", ("beds",)), ("rating", ("cqc_rating",)), ("phone", ("phone",)), ("email", ("email",)),
    ("website", ("website",)), ("referral route", ("referral_route",)),
    ("whether it takes referrals", ("accepting_referrals", "self_referral")), ("opening times", ("schedules",)),
    ("capacity", ("capacity",)))
# The sources (as a record's `connector` and `sync_state` name them) no run of which has succeeded since a day, or
# ever: each connector of the records once, by a loose scan of the index leading with it (`sync_records_counted`),
# each looked up in `sync_state` (its key). While every source syncs, no record is read: before, every sync record was
# read for none (a scan of the store, on the first search after each run and each day).
_STALLED = (f"WITH RECURSIVE {each_value('connectors', 'sync_records', 'connector')}, stalled(connector) AS ("
            "SELECT c.connector FROM connectors c LEFT JOIN sync_state s ON s.source = c.connector "
            "WHERE c.connector IS NOT NULL AND (s.last_success_at IS NULL OR s.last_success_at < ?)) ")
_EMPTY: tuple[object, ...] = (None, "", [], (), {})  # a field a row left empty, which its file gives nothing of
_FACT_FIELDS = tuple(field for _, fields in FACTS for field in fields)


@dataclass(frozen=True)
class SourceConfirmation:
    """A synced source's listing of a service, as it stands: who, when, and which facts it gives."""

    source: str                         # the source's name in `field_sources` and provenance, e.g. "cqc"
    name: str                           # as a person reads it, e.g. "Care Quality Commission (CQC)"
    confirmed_on: date | None           # its last successful sync that still listed the record as shown;
                                        # None for a dated file (`file_of`), which no import confirms
    confirms: tuple[str, ...]           # the facts (`FACTS`) it gives
    does_not_confirm: tuple[str, ...]   # the facts it does not give: only a person's check confirms them
    is_file: bool = False               # a dated file's listing (the record's `FileEdition`), not a live source's
    file_of: str | None = None          # the file's date, as its mapping gave it on import (None: not given)
    relayed_by: str | None = None       # the feed that relayed a dated file's listing (`Relay`), as a person reads it


def source_listings(directory: Directory | None, service: Service, title: Callable[[str], str]
                    ) -> tuple[SourceConfirmation, ...]:
    """The listings of one service by its sources (see `source_confirmations`)."""
    return source_confirmations(directory, [service], title).get(service.id, ())


def source_confirmations(directory: Directory | None, services: Iterable[Service], title: Callable[[str], str]
                         ) -> dict[str, tuple[SourceConfirmation, ...]]:
    """By service id, the listings of each active synced service by its sources, named by `title` (as a
    person reads it: `AppState.source_title`), read from the sync store in one query (see `Listings`)."""
    wanted = {s.id: s for s in services if s.status == "active"}
    if directory is None or not wanted:
        return {}
    listings = Listings(directory, title, sorted({i for s in wanted.values() for i, _ in _records(s)}))
    return {i: found for i, s in wanted.items() if (found := listings.of(s))}


def _records(service: Service) -> list[tuple[str, Provenance]]:
    """Each source's record in the service, by its id in the sync store: the kept record's is the service's, each
    merged into it (`indexer.merge`) has its own (`source:source_id`, as the pipeline names a record); a record
    that took in an older copy of itself is one."""
    ids = [service.id, *(f"{p.source}:{p.source_id}" for p in service.provenance[1:])]
    records: dict[str, Provenance] = {}
    for record_id, record in zip(ids, service.provenance):
        records.setdefault(record_id, record)
    return list(records.items())


class Listings:
    """The sources' listings read from the sync store at once: of the given service ids, or of every synced
    record (an export: one query, not one a row). A listing's day is the later of the last time a run fetched
    the record and its source's last successful sync (a complete listing lists every record it holds, a change
    feed tells every change, so a run that ends well and says nothing of the record confirms it as shown). A
    dated file's (the `FileEdition` its record's provenance carries) has no such day: the file is as old as it
    says, and named as its import named it.
    A merged record (the same service from two sources or more, `indexer.merge`) is listed by each source that
    gave a fact it shows, with the facts that source gave (its `field_sources`): before, by its kept record's
    source alone, said to give every fact its file's mapping reads, where most were another source's.
    No listing for a record no source syncs, a retired one, or one whose source's latest version could not be used
    (what is shown is an older one). `before`: only the listings last confirmed before that day (`unconfirmed`)."""

    def __init__(self, directory: Directory | None, title: Callable[[str], str], ids: list[str] | None = None,
                 before: date | None = None) -> None:
        self.title = title
        self.listed: dict[str, tuple[str, str, date]] = {}
        self._made: dict[tuple[object, ...], tuple[SourceConfirmation, ...]] = {}
        if directory is None:
            return
        stalled, where = "", ""
        given: tuple[str, ...] = ()
        if ids is not None:
            where, given = f" AND r.service_id IN ({', '.join('?' * len(ids))})", tuple(ids)
        if before is not None:  # on neither the record's last fetch nor its source's last success since
            # A source synced since confirmed every record it lists: only a stalled source's records are read.
            stalled, where = _STALLED, where + " AND r.connector IN (SELECT connector FROM stalled) AND r.last_seen < ?"
            given = (before.isoformat(), *given, before.isoformat())
        with directory.database.connect() as conn:
            rows = conn.execute(stalled + "SELECT r.service_id, r.source, r.connector, r.last_seen, s.last_success_at "
                                "FROM sync_records r "
                                "LEFT JOIN sync_state s ON s.source = r.connector WHERE r.status = 'active' AND "
                                "r.problem IS NULL AND r.service IS NOT NULL" + where, given).fetchall()
        self.listed = {service_id: (source, connector, date.fromisoformat(max(last_seen, last_success or "")[:10]))
                       for service_id, source, connector, last_seen, last_success in rows}

    def of(self, service: Service) -> tuple[SourceConfirmation, ...]:
        """The listings of the record's sources the store lists it by, in its provenance's order (the kept
        record's first): each that gave a fact shown, or the first alone where none did. Each confirms the facts
        the record's `field_sources` trace to it (a field naming no source is the kept record's), a dated file's
        of those its mapping reads; none confirms what no source of the record gives (`does_not_confirm`)."""
        if service.status != "active":
            return ()
        found = _relayed(service, [(p, listed) for i, p in _records(service)
                                   if (listed := self.listed.get(i)) is not None])
        if not found:
            return ()
        # Records one sync listed share their sources, days, files and field sources: an export makes each
        # record's listings once, and reads which fields the sources give only then.
        key = (service.source, tuple((p.edition, p.relayed_by, listed) for p, listed in found),
               tuple(service.field_sources.items()),
               _filled(service) if any(p.edition for p, _ in found) else ())  # a file's facts: those its row filled
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._listings(service, found)
        return made

    def _listings(self, service: Service, found: list[tuple[Provenance, tuple[str, str, date]]]
                  ) -> tuple[SourceConfirmation, ...]:
        said_by = _said_by(service)
        named = [(p, _named(source, connector, said_by), day) for p, (source, connector, day) in found]
        given = [(p, source, day, _given(p.edition, source, said_by, service)) for p, source, day in named]
        giving = [listing for listing in given if listing[3]] or given[:1]
        confirmed = {fact for *_, facts in giving for fact in facts}
        not_given = tuple(fact for fact, _ in FACTS if fact not in confirmed)
        return tuple(_listing(p, source, self.title(source), day, facts, not_given)
                     for p, source, day, facts in giving)


    def unconfirmed(self, service: Service) -> tuple[tuple[str, date], ...]:
        """Of listings read `before` a day (`unconfirmed_listings`): each live source of the record (not a dated
        file), as a person reads it, with the day it last confirmed the record, where every live source's listing
        is among them, none having confirmed it since; else () (a live source did, or the record has none)."""
        if service.status != "active":
            return ()
        found = [listed for p, listed in _relayed(service, [(p, self.listed.get(i)) for i, p in _records(service)])
                 if p.edition is None]
        if not found or None in found:
            return ()
        said_by = _said_by(service)
        return tuple(dict.fromkeys((self.title(_named(source, connector, said_by)), day)
                                   for source, connector, day in filter(None, found)))


def _listing(p: Provenance, source: str, title: str, day: date, facts: tuple[str, ...],
             not_given: tuple[str, ...]) -> SourceConfirmation:
    """One source's listing: a dated file's as its import named it, with the feed that relayed it, if one did."""
    if (edition := p.edition) is None:
        return SourceConfirmation(source, title, day, facts, not_given)
    return SourceConfirmation(source, edition.title or title, None, facts, not_given, True, edition.dated,
                              p.relayed_by.named if p.relayed_by else None)


def _relayed(service: Service, found: list[tuple[Provenance, _Listed]]) -> list[tuple[Provenance, _Listed]]:
    """The record's listings with a relay's (another rehabmap's ORUK feed, `Relay`) read as the dated files' it
    relays: the feed lists the record on the day it is read, the file being as old as it says. Before, a second site
    read Forest Independent Hospital (the 2018 list alone) as "Listed by first rehabmap: last confirmed <today>". A
    relay that passes on a live source's entry (CQC's) stays listed as itself: the first site publishes no day its
    source last confirmed the record (docs/adr/0018)."""
    relaying = relays(service.provenance)
    if not relaying:
        return found
    dated = dating(service.provenance)  # a relay passed on (a third site's) dates nothing, nor stands for a file
    read: list[tuple[Provenance, _Listed]] = []
    for p, listed in found:
        passed = [r for r in dated if r.relayed_by is not None and r.relayed_by.source == p.source]
        files = [(r, listed) for r in passed if r.edition is not None]
        read += files if p.source in relaying and files and len(files) == len(passed) else [*files, (p, listed)]
    return read


def unconfirmed_listings(directory: Directory | None, title: Callable[[str], str], today: date,
                         max_age_days: int) -> Listings:
    """The listings of the records no live source has confirmed for more than `max_age_days` (its sync
    stopped, its feed removed from configuration, or its runs failing): what a match says of a result resting on them
    (`rehabmap.explanation.unconfirmed_listing`). Only a stalled source's records are read: none at all while
    every source syncs."""
    return Listings(directory, title, before=today - timedelta(days=max_age_days))


def _said_by(service: Service) -> dict[str, str]:
    """Each field's source as its `field_sources` names it (the part before the colon)."""
    return {field: said.split(":", 1)[0] for field, said in service.field_sources.items()}


def _named(source: str, connector: str, said_by: dict[str, str]) -> str:
    """A source is named by its connector where the record's fields name it (CQC's care directory and register
    give `cqc:` records whose fields say `cqc-directory:` or `cqc-hsca:`; named by the source they read "Listed by
    CQC … ()" and "Not from CQC: registration, name, address, …"), else by itself (an ORUK feed's records name
    their feed)."""
    return connector if connector in said_by.values() else source


def _given(edition: FileEdition | None, source: str, said_by: dict[str, str], service: Service) -> tuple[str, ...]:
    """The facts (`FACTS`) one source's record gives the service: the fields whose source (`said_by`, a field
    naming none being the kept record's) is `source`, a dated file's among those its mapping reads and its row
    filled. The mapping reads a column of every row: Forest Independent Hospital's row of the 2018 list gives no
    phone, email or website, and its listing said it did ("(name, address, phone, email, website)")."""
    if edition is not None:
        fields = {field for field in edition.gives
                  if said_by.get(field, service.source) == source and _has(service, field)}
    else:
        fields = {field for field, by in said_by.items() if by == source}
    return tuple(fact for fact, wanted in FACTS if fields.intersection(wanted))


def _has(service: Service, field: str) -> bool:
    return getattr(service, field, None) not in _EMPTY


def _filled(service: Service) -> tuple[bool, ...]:
    """Which of the facts' fields the record fills (`_given` counts a dated file's only where its row did)."""
    return tuple(_has(service, field) for field in _FACT_FIELDS)


def verification_due(service: Service, today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> bool:
    """Never for a retired (inactive) service: rehabmap no longer lists it, so nothing is left to check."""
    return service.status == "active" and (
        service.last_verified is None or service.last_verified < due_before(today, verify_after_days))


def due_before(today: date, verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> date:
    """A record last verified before this day is due on `today` (more than `verify_after_days` ago), as is
    one never verified: the rule as one cut-off, for a reply that asks it of a dozen records on one day
    (a `timedelta` and a subtraction a record less). `date.min` when the cut-off would lie before it."""
    try:
        return today - timedelta(days=verify_after_days)
    except OverflowError:
        return date.min


@dataclass(frozen=True)
class Due:
    service: Service
    days_since: int | None  # None: never verified


@dataclass(frozen=True)
class AreaDue:
    """An area a curated table says is covered for a category (its claim: every such service there is listed, or
    there is none), on a person's check older than `verify_after_days`. A source's claims are renewed by each of
    its syncs; a table's only by a person checking again, and until then the area is still said to be covered
    (searches there say "none found", the scorecard "missing") on that old word."""

    claim: Claim
    verified_on: date
    days_since: int

    @property
    def table(self) -> str:
        """The curated table's file name (`ips_services.csv`)."""
        return self.claim.basis.removeprefix(CURATED)


def areas_due(claims: Iterable[Claim], today: date,
              verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> list[AreaDue]:
    """The curated tables' claims due to be checked again (as `verification_due` is for a service), the longest
    overdue first; ties by table, category and area."""
    cut_off = due_before(today, verify_after_days)
    due = [AreaDue(claim, on, (today - on).days) for claim in claims if claim.basis.startswith(CURATED)
           if (on := date.fromisoformat(claim.as_of)) < cut_off]
    return sorted(due, key=lambda d: (-d.days_since, d.claim.basis, d.claim.category, d.claim.area_code))


def due_for_verification(services: Iterable[Service], today: date,
                         verify_after_days: int = DEFAULT_VERIFY_AFTER_DAYS) -> list[Due]:
    """Services due for verification, the longest overdue first: never verified, then oldest; ties by id."""
    due = [Due(s, None if s.last_verified is None else (today - s.last_verified).days)
           for s in services if verification_due(s, today, verify_after_days)]
    return sorted(due, key=lambda d: (d.days_since is not None, -(d.days_since or 0), d.service.id))
