"""What a connector hands the sync: each record a live source gives, mapped onto the canonical fields, with
the evidence for its type, or a rejection, or word that a record is gone.

The contract between the connectors (one per source, `indexer/sync/connectors/`) and the sync runner
(`indexer/sync/runner.py`), which stores items, retires what vanished, holds inferred types for review and
updates the live index. A connector never decides what is shown: it says what the source says and how sure
that makes us (`type_status`).

Added by the connectors (D1), agreed for the runner (D2):
* `SourceItem.keys` — the identifiers a record is known by beyond its own key (CQC location and provider id,
  ODS code), so that facts from other sources can find it.
* `Enrichment` — facts about records another source owns, which never make a record or a type on their own
  (NHS ODS site names and addresses; a provider rated by CQC for rehabilitation wards). The runner applies
  one to every stored record whose `keys` hold all of its `match` keys, and keeps it so that a record
  arriving later is matched too.
* The state a connector saves (`SyncState.save`) after a page comes after that page's items were yielded: a
  runner that buffers items must commit them before (or with) the state, or a kill loses them. A full crawl's
  state holds `crawl_started` (ISO UTC) while it runs across resumed runs, so records not seen since then
  can be retired once it is `complete`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol

from indexer.rows import Candidate

TypeStatus = Literal["confirmed", "inferred", "unknown"]
"""confirmed: the source states a pathway type (a rehab ward rating, a curated table, a mapped feed term).
inferred: a guess (a CQC mental health hospital with no rehab-ward evidence, a charity named "Mind", a feed
item typed by keyword) — held for review, never shown as that type until a maintainer accepts it.
unknown: no type at all can be proposed; held for review with the evidence (a maintainer may type it)."""


@dataclass(frozen=True)
class Evidence:
    """One thing a source says that bears on a record's type, level or needs, for the review page."""

    source: str        # connector name, e.g. "cqc-api"
    field: str         # where the source says it, e.g. "gacServiceTypes", "name", "Service / Population Group"
    value: str         # what it says, quoted (at most ~80 characters)
    means: str         # what we read into it, e.g. "a mental health hospital: a candidate inpatient unit"


class SourceKeyed:
    """A record known by its source and that source's own id: the key the sync store keeps it under. Mixed
    into the frozen dataclasses that hold both fields (`SourceItem` reads its key from its candidate)."""

    source: str
    source_id: str

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.source_id


@dataclass(frozen=True)
class SourceItem:
    """One record as the source gives it now. `candidate.fields` hold canonical `Service` fields (the
    pipeline fills in type from label, needs from text, point from postcode, areas); `candidate.origin`
    carries source, source_id, licence, fetched_at and `file` = the URL it was fetched from."""

    candidate: Candidate
    type_status: TypeStatus
    evidence: tuple[Evidence, ...] = ()
    raw: Mapping[str, Any] | None = None    # the source's own record, shown beside the evidence for review
    field_sources: Mapping[str, str] = field(default_factory=dict)  # field -> "cqc-api:numberOfBeds"
    keys: Mapping[str, str] = field(default_factory=dict)  # MatchKey -> value, e.g. "cqc_provider_id" -> "1-101"
    # The MatchKey its source's own id is (an NHS hospital list's ids are ODS codes), as its mapping declares
    # (`id_is`): two sources that give a record the same such id may give one service (the review queue says so).
    id_is: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.candidate.origin.source, str(self.candidate.origin.source_id)


MatchKey = Literal["cqc_location_id", "cqc_provider_id", "ods_code"]
"""Identifiers shared across sources: CQC's location and provider ids, and NHS ODS codes (a CQC location of an
NHS trust carries its ODS site code; NHS Service Search and ODS use the same codes)."""


@dataclass(frozen=True)
class Enrichment(SourceKeyed):
    """Facts about records another source owns; never a record, and never a type, on its own.

    The runner finds every stored record whose `SourceItem.keys` hold all of `match`, fills in the `fields` that
    record lacks (the owning source's own values win; `fields` never hold service_type, subtype or the type
    flags), and adds `evidence` to it, which the review queue shows beside the record's own (it may support an
    inferred type, but a maintainer decides). It is kept, so that a record arriving later is matched too."""

    source: str
    source_id: str
    match: Mapping[str, str]                     # MatchKey -> value; all must agree
    fields: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    raw: Mapping[str, Any] | None = None
    field_sources: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Gone:
    """The source says this record no longer exists (deregistered, closed, removed from the feed)."""

    source: str
    source_id: str
    reason: str        # as the public reads it: "deregistered by the Care Quality Commission (CQC) on 31 January 2021"
    on: date | None
    detail: str | None = None  # the operator's why where it says more, for the report and the audit log alone


@dataclass(frozen=True)
class Refused:
    """A record the source gives that cannot be used, with the reason (reported, never silently dropped)."""

    source: str
    source_id: str | None
    where: str         # URL or file, and item/line
    reason: str
    unplaced: bool = False  # a pathway service the source gives no place for: counted apart in the run's report
    # A value in it cannot be read (a bed count that is not a number, a postcode that is not one, a blank name), or
    # the record itself (a detail page missing, 404, though the source lists it): that says nothing about the
    # service, so the record made from its last good version stays shown, not retired. Retiring is for the source's
    # own word that the service is gone: deregistered, dormant, off the pathway, or no longer in a complete listing.
    unreadable: bool = False
    # Its name as the source gives it, for the report: a record never held here has no other (CQC's 41 refusals
    # of the recorded locations were listed by id and URL alone).
    name: str = ""
    # The source's record no longer reads as a service on the pathway, and whose word that is (`NotRehabPathway.cause`:
    # "mental_health", "over_65", "reading"; a feed's service that lost its terms, "reading"); "" for any other
    # refusal. A held record so refused is retired, the public told why in words that own the judgement.
    off_pathway: str = ""

    @property
    def keeps_previous(self) -> bool:
        """Whether the record made from its last good version stays: a reading that cannot be read, or that gives
        no place (a feed's detail page that stops giving the location it gave), says nothing of the service. Before,
        a service placed once and then given no location was retired, as if the source had said it was gone."""
        return self.unreadable or self.unplaced


@dataclass(frozen=True)
class Unchanged(SourceKeyed):
    """The source lists this record as unchanged since the connector last read it (an ORUK feed's list item
    carries its modification date), so it was not fetched again: the record stays as the last reading made it,
    and a complete listing does not retire it. A connector says so only for a record it read in a run since
    applied (its state, committed with that run), never for one it has not read."""

    source: str
    source_id: str


Outcome = SourceItem | Gone | Refused | Enrichment | Unchanged


class SyncState(Protocol):
    """Per-source state a connector keeps between runs and between pages of one run, so a second run fetches
    only what changed and a killed run resumes: cursor, last successful window, ETag / Last-Modified."""

    def load(self, source: str) -> dict[str, Any]: ...

    def save(self, source: str, state: Mapping[str, Any], *, listing: str | None = None,
             afresh: bool = False) -> None:
        """Durably (committed) — called after each page, so a kill loses at most the page in flight. `listing`
        names the listing what was fetched since the last save came from, where a run lists several (CQC's service
        types; None where it has one). `afresh`: that listing starts again at its first page, so what the run and
        the runs it goes on from fetched of it is superseded, and dropped in the same commit (read with the new
        listing, a record it no longer lists would escape retirement for a run); the other listings' is kept."""
        ...


class Connector(Protocol):
    """One live source. `fetch` yields what changed since the state's cursor (everything on a first or
    `full` run); on a full run `complete` says afterwards whether every record was listed, so that records
    not seen can be retired as vanished (a partial crawl retires nothing)."""

    name: str            # "cqc", "cqc-ratings", "ods", "oruk-<feed>", "charity", "nhs-service-search"
    licence: str         # e.g. "OGL-UK-3.0"
    attribution: str     # e.g. "Contains CQC information"
    read_all: str | None  # after `fetch`: why it read again every record listed, where it can skip unchanged ones
    # after `fetch`: how its listing fell short of a count its configuration says is not to be trusted, None if not
    short_of_count: str | None
    # A warning line each of its run's report: what its configuration says that it does not read (an ORUK feed
    # file's keys rehabmap does not know: a misspelt `trust_cout = false` did nothing, unsaid), or, after `fetch`, a
    # CQC service type its crawl listed nothing under (`CqcConnector._types_lost`); () for the rest
    warnings: tuple[str, ...]
    # The name people know it by, where only its configuration says it (an ORUK feed's `label`, a mapped list's or
    # curated table's title: `FileCandidates`): kept with its runs (`SyncStore.titles`), so that it is still named so
    # once that configuration is gone; None for the rest (`TITLES`)
    title: str | None

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]: ...

    @property
    def complete(self) -> bool: ...

    def covers(self) -> Mapping[str, frozenset[str]]:
        """What a complete run of this source covers: category (a service type code, or `type:subtype` for one
        subtype only) -> ONS area codes ("E92000001" for all of England). Coverage lets every face say "none
        found" rather than "not covered"."""
        ...
