"""`rehabmap sync SOURCE`: run a connector, and turn what it says into a directory that stays true.

A run has two halves:

1. **Fetch.** The connector yields outcomes page by page; each page's outcomes are staged in the sync store
   together with the connector's state after that page, in one transaction. A killed run therefore resumes
   from its last committed page, and keeps what it had fetched.
2. **Apply.** Once the connector has finished, the staged outcomes are prepared through the import pipeline
   (`indexer.pipeline.prepare_all`: classify, needs, place, validate), compared with what the store holds,
   and applied in one transaction: records added, changed, retired (never deleted: a `Gone`, or a record a
   complete listing no longer has, is retired with its reason and date, and audited), held for review
   (a type only inferred), or rejected (with the reason; the previous version of the record stays). The
   connector's state becomes the source's state in that same transaction, and so do the coverage claims the
   run makes (as due). Then the live index follows, then the claims (`LiveIndex.converge`): a run killed
   in between leaves the previous index and claims served, and the next run, review decision or server
   start finishes it (`indexer.sync.steps` names each point).

A run that would change or retire more than a set share of a source's records stops before applying
anything (`--force` applies it); what it fetched stays staged, so `--force` does not fetch again. Until a person
applies or drops it (`--discard`), a later run reads what it fetched with its own, a complete listing staying one,
so that run stops again rather than clearing the stop.
`--dry-run` does the same work in memory and writes nothing at all: not the store, not the index, not the
connector's state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import PurePath
from typing import Any

from indexer.precedence import PrecedenceInvalid
from indexer.pipeline import Placer, prepare_all, refused_contacts, without_bad_contacts
from indexer.sources.common import said_without_folders
from indexer.rows import Candidate, Rejection
from indexer.sync.connectors import TITLES, command_source, retire_command, run_again
from indexer.sync.connectors.titles import CQC_FILES
from indexer.sync.connectors.base import OUR_READING_CHANGED
from indexer.sync.codec import (
    content_digest,
    enrichment_digest,
    enrichment_from_json,
    enrichment_to_json,
    evidence_digest,
    fetched_at_of,
    item_from_json,
    item_to_json,
    lost_fields_json,
    outcome_from_json,
    outcome_to_json,
)
from indexer.sync.enrich import Enrichments, enriched
from indexer.sync.items import Connector, Enrichment, Gone, Outcome, Refused, SourceItem, Unchanged
from indexer.sync.live import EARLIER_STORED, LiveIndex, NotYetShown
from indexer.sync.publish import coverage_due, held, publish_coverage, record_pending, shown
from indexer.sync.steps import reached
from indexer.sync.store import (
    REPREPARE_DUE,
    TITLED,
    Audit,
    LeftOutDetail,
    ReviewRow,
    RunRow,
    StoredEnrichment,
    StoredRecord,
    SyncStore,
    now,
)
from rehabmap.maintain.audit import PREPARED, QUESTIONED, AuditLog, Change
from rehabmap.maintain.database import machines_words
from rehabmap.maintain.overlay import Overlay
from rehabmap.maintain.retirement import RETIRED_DETAIL
from rehabmap.errors import DomainError, InvalidValue, sentence, shorten, tell_operator, told
from rehabmap.sync_digests import content, content_digest as item_json_digest, relays_marked
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType, type_words

log = logging.getLogger(__name__)

DEFAULT_MAX_CHANGE_SHARE = 0.25
# Fields that say when and where a record was fetched, not what it says: a change in them is no change.
_NOT_CONTENT = frozenset({"provenance"})
# `SyncReport.live_left`: what a run says where it found no live index and another process holds the rebuild lock.
_LEFT_TO_ANOTHER_BUILD = ("no live index yet: another process is building it (its own first build, or 'rehabmap "
                          "index'), reading the store itself; the next live write (a sync, a review decision, the "
                          "server's own) writes what it leaves out")
_PROBE_TYPE = ServiceType.vcfse  # stands in for an unknown type while the rest of a record is checked


def sync_then(connector: str) -> str:
    """How to go on from a run of `rehabmap sync` stopped at the share threshold, by the command that runs the
    connector (`command_source`: 'rehabmap sync oruk' runs `oruk-bristol`), as a busy or interrupted run's words
    name it: sync-status repeats it to a person who did not run it."""
    source = command_source(connector)
    return (f"Check the source, then run 'rehabmap sync {source} --force' to apply it, or 'rehabmap sync {source} "
            "--discard' to drop it.")


def _left_to_retire(store: SyncStore, name: str, report: SyncReport) -> None:
    """Refuse a retirement of every record of `name` that would retire none, a person having retired them all
    already with nothing listed since: before, a second `--retire-removed` was recorded as the source's last run,
    "0 records retired", hiding the day its records were retired. A first one that finds none active still goes
    ahead: it withdraws the feed's coverage claims and forgets its state."""
    last = store.last_run(name)
    if report.retired or last is None or last.outcome != "retired":
        return
    raise InvalidValue(f"{name} has nothing left to retire: its records were retired on {last.finished_at[:10]}, "
                       "and no run of it has listed any since ('rehabmap sync-status --source "
                       f"{name}' says so).", field="retire_removed")


def _retired(store: SyncStore, name: str) -> bool:
    """Whether `name`'s last run is a person's retirement of its records: a second one, once the index answers, is
    refused (`_left_to_retire`), so a retirement cut short at its start must not advise it."""
    last = store.last_run(name)
    return last is not None and last.outcome == "retired"


class SyncBusy(DomainError):
    code = "sync_busy"
    status = 409


class RunNotShown(NotYetShown):
    """A run applied (its records stored, recorded as its source's last run) whose live write was then refused
    (`NotYetShown`), or one stopped at the share threshold whose write of what earlier runs and decisions left
    unwritten was: `report` is the run's, as it ended. Before, the refusal read as the run's own failure, its report
    unprinted, though `sync-status` said it applied; and a stopped run did not say it at all."""

    code = "run_not_yet_shown"

    def __init__(self, report: SyncReport, refused: PrecedenceInvalid) -> None:
        super().__init__(_stored(report), refused)
        self.report = report


class RunNotWritten(DomainError):
    """A run applied, or stopped at the share threshold, whose live write then failed otherwise than by a mapping's
    refusal (`cause`: the index unavailable, a search cluster down or the embedded file busy past its wait):
    `report` is the run's, as it ended. The run stands, in the store and as its source's last run, and whatever next
    writes the live index writes it, with no person needed. Before, `rehabmap sync` printed the failure alone, exit
    status 2, as if nothing had been applied, while `sync-status` said it applied. A fault of rehabmap's own in the
    write is not one: it is raised as it is, its traceback for a report, since the next write would meet it too."""

    code = "run_not_written"
    status = 503

    def __init__(self, report: SyncReport, cause: DomainError) -> None:
        super().__init__(f"{_stored(report)}, but not yet shown in searches: the live index could not be written: "
                         f"{sentence(told(cause))} A running server writes them once the index answers (it looks "
                         "every REHABMAP_CONVERGE_EVERY_S seconds), as does the next sync, review decision or server "
                         "start.", where=cause.where)
        self.report = report


def _stored(report: SyncReport) -> str:
    """What a run whose live write did not happen (`RunNotShown`, `RunNotWritten`) left stored: its own records, or,
    stopped at the share threshold, what earlier runs and decisions applied."""
    return (f"the run of {report.source} applied and its records are stored" if report.stopped is None else
            f"the run of {report.source} stopped, applying nothing, and {EARLIER_STORED}")


class RunNotStarted(DomainError):
    """A run that did not start: the live index, which its start writes with what earlier runs and decisions applied
    (`SyncRunner._caught_up`), could not be written (`cause`: the index unavailable). Nothing of the run was fetched
    or applied; it is recorded as failed (but a retirement), so that sync-status says so. Before, the command said
    the index's error alone, exit status 2, and nothing recorded the run: sync-status still said the last run
    applied."""

    code = "run_not_started"
    status = 503

    def __init__(self, name: str, again: str | None, cause: DomainError) -> None:
        """`again`: how a person runs it again; None for a retirement whose records a retirement already retired,
        which nothing but the index's own catch-up is left to do (`_left_to_retire` would refuse it again)."""
        then = (f"Once the index answers, {again}: it writes those first (a running server writes them too, every "
                "REHABMAP_CONVERGE_EVERY_S seconds)." if again is not None else
                f"Nothing is left to retire: {name}'s records were retired already, and the index follows on its own "
                "once it answers (a running server writes them, every REHABMAP_CONVERGE_EVERY_S seconds, as does the "
                "next sync, review decision or server start).")
        self.source = name
        super().__init__(f"The run of {name} did not start: the live index, which a run first brings up to what "
                         f"earlier runs and review decisions applied, could not be written: {sentence(told(cause))} "
                         f"Nothing was fetched or applied; what earlier runs applied is kept in the store. {then}",
                         where=cause.where)


class SyncInterrupted(DomainError):
    """The source failed part way (after its retries); the pages committed before are kept for the next run."""

    code = "sync_interrupted"
    status = 502


@dataclass(frozen=True)
class Line:
    """One record in a report: its id, its name and what happened to it (or why)."""

    service_id: str
    name: str
    note: str = ""

    def __str__(self) -> str:
        return " ".join(filter(None, (self.service_id, self.name))) + (f": {self.note}" if self.note else "")


@dataclass
class SyncReport:
    source: str
    dry_run: bool = False
    complete: bool = False
    fetched: int = 0
    unchanged: int = 0
    not_fetched: int = 0      # listed as unchanged since the connector last read them: not fetched again
    read_all: str | None = None  # why every record listed was fetched again (`BaseConnector.read_all`)
    short_of_count: str | None = None  # a listing short of a count not to be trusted (`BaseConnector.short_of_count`)
    warnings: tuple[str, ...] = ()  # what its configuration does not read, or its listing missed (`Connector.warnings`)
    added: list[Line] = field(default_factory=list)
    changed: list[Line] = field(default_factory=list)
    retired: list[Line] = field(default_factory=list)
    held: list[Line] = field(default_factory=list)
    rejected: list[Line] = field(default_factory=list)
    left_out: list[Line] = field(default_factory=list)  # a contact detail the record refuses: dropped, service kept
    evidence_changed: list[Line] = field(default_factory=list)
    # Records other sources own that this run's facts changed (an ODS site's name for an NHS website clinic): said
    # apart, since the counts and the other lists are this source's own.
    elsewhere: list[Line] = field(default_factory=list)
    questioned: list[Line] = field(default_factory=list)  # changed by the source where a maintainer's edit stays
    gone_unknown: int = 0
    unplaced: int = 0         # of the rejected: services on the pathway that the source gives no place for
    enrichments: int = 0
    awaiting_review: int = 0
    share: float = 0.0
    stopped: str | None = None
    remedy: str | None = None  # a stopped run's: what a person runs to apply or drop it (`sync-status --json`)
    held_back: str | None = None  # in words, the undecided stopped run's fetched records this run read with its own
    live_written: int = 0
    # No live index yet, and its first build left to another process (`LiveIndex.left_to_another_build`): said, since
    # "0 written" read as if the run's records were lost to searches.
    live_left: str | None = None

    def summary_lines(self, *, detail: bool = False) -> list[str]:
        """The report a person reads: counts, then every retirement, hold and rejection with its reason (and,
        with `detail`, every addition and change: the dry run's diff)."""
        lines = [f"{self.source}{' (dry run: nothing written)' if self.dry_run else ''}: fetched {self.fetched}, "
                 f"added {len(self.added)}, changed {len(self.changed)}, unchanged {self.unchanged}, retired "
                 f"{len(self.retired)}, held for review {len(self.held)}, rejected {len(self.rejected)}"]
        waiting = "1 record of this source awaits" if self.awaiting_review == 1 else (
            f"{self.awaiting_review or 'no'} records of this source await")
        lines.append(f"  {waiting} review" + (" ('rehabmap review list')" if self.awaiting_review else ""))
        if self.complete:
            lines.append("  a complete listing: anything it no longer lists is retired")
        if self.held_back:
            lines.append(f"  read with {self.held_back}, which no one has applied or dropped")
        if self.read_all:
            lines.append(f"  every service it lists was read again: {self.read_all}")
        if self.short_of_count:
            lines.append(f"  {self.short_of_count}")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        if self.not_fetched:
            lines.append(f"  {self.not_fetched} services the source lists as unchanged since they were last read were "
                         "not fetched again (each is read again at least weekly, and by --full)")
        if self.enrichments:
            lines.append(f"  {self.enrichments} facts for records other sources own were new or changed")
        if self.elsewhere:
            lines.append(f"  {len(self.elsewhere)} of other sources' records read differently with them: each is "
                         "listed below, with its own source's counts")
        if self.gone_unknown:
            lines.append(f"  {self.gone_unknown} records the source says are gone were never held here")
        if self.unplaced:
            lines.append(f"  {self.unplaced} of the rejected are services on the rehab pathway that the source gives "
                         "no place for (no location or postcode): each is listed below, with what would let it in")
        if self.live_left:
            lines.append(f"  {self.live_left}")
        if self.stopped:
            lines.append(f"stopped: {self.stopped}")
        groups: list[tuple[str, list[Line]]] = [("retired", self.retired), ("held", self.held),
                                                ("rejected", self.rejected), ("detail left out", self.left_out),
                                                ("evidence changed since the review decision", self.evidence_changed),
                                                ("another source's record, with these facts", self.elsewhere),
                                                ("edited here, changed by the source", self.questioned)]
        if detail:
            groups = [("added", self.added), ("changed", self.changed), *groups]
        for title, items in groups:
            lines += [f"{title} {line}" for line in items]
        return lines

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if not isinstance(v, list)}
        for key, value in vars(self).items():
            if isinstance(value, list):
                out[key] = [vars(line) for line in value]
        return out


def _how_read(connector: Connector, stopped: RunRow | None) -> tuple[str | None, str | None]:
    """Why the listing a run applies was read again whole, and how it fell short of a count not to be trusted
    (`SyncReport.read_all`, `short_of_count`): the connector's fetch's, or, for `--force` applying what a `stopped`
    run fetched (this run fetched nothing), that run's report's. Before, a forced run said neither, so the run that
    applied a listing short of its feed's count never said so."""
    if stopped is None:
        return connector.read_all, connector.short_of_count
    return stopped.report.get("read_all"), stopped.report.get("short_of_count")


def _no_longer_listed(connector: str, title: str | None, today: date) -> tuple[str, str | None]:
    """Why a complete listing retires what it no longer lists: that the source, by its `title` as people know it,
    no longer lists it, and the connector's code and the listing's day, the operator's detail (`_Plan.vanished`,
    `vanished_detail`); a source with no title, the detail alone. Before, a service's public page said "no longer
    listed by oruk-bristol (a complete listing on 2026-12-06)"."""
    listed = f"no longer listed by {connector} (a complete listing on {today.isoformat()})"
    return (f"no longer listed by {title}", listed) if title else (listed, None)


@dataclass
class _Prepared:
    service: dict[str, Any] | None
    problem: str | None
    proposed: tuple[str | None, str | None]
    left_out: tuple[LeftOutDetail, ...] = ()  # the contact details the record refuses, dropped (the service kept)


class _PageState:
    """The connector's `SyncState` for one run: each `save` commits the page's outcomes and the state after
    it together (nothing is written in a dry run: the state is kept in memory)."""

    def __init__(self, store: SyncStore, source: str, dry_run: bool) -> None:
        self.store = store
        self.source = source
        self.dry_run = dry_run
        self.buffer: list[Outcome] = []
        self.fetched: list[Outcome] = []
        self._memory: dict[str, dict[str, Any]] = {}
        self.afresh = False  # a listing was started again at its first page, what was fetched of it dropped

    def load(self, source: str) -> dict[str, Any]:
        if source in self._memory:
            return dict(self._memory[source])
        return self.store.load_state(source)

    def save(self, source: str, state: Mapping[str, Any], *, listing: str | None = None,
             afresh: bool = False) -> None:
        if source != self.source:
            raise RuntimeError(f"connector '{self.source}' saved state under another name, '{source}'")
        # afresh: the connector then ends the run (`Crawl.tally`, `CqcConnector._page`)
        self._commit(dict(state), listing=listing, afresh=afresh)
        self.afresh = self.afresh or afresh

    def take(self, outcome: Outcome) -> None:
        self.buffer.append(outcome)

    def _commit(self, state: dict[str, Any] | None, *, listing: str | None = None, afresh: bool = False) -> None:
        if self.dry_run:
            if state is not None:
                self._memory[self.source] = state
        else:
            self.store.stage_page(self.source, [outcome_to_json(o) for o in self.buffer], state, listing=listing,
                                  afresh=afresh)
        self.fetched += self.buffer
        self.buffer = []

    def finish(self) -> None:
        """Stage what was yielded after the last save (the state stays as last saved)."""
        if self.buffer:
            self._commit(None)


class SyncRunner:
    def __init__(self, store: SyncStore, placer: Placer, live: LiveIndex | None, *, actor: str,
                 folders: Sequence[PurePath], progress: bool = False, today: date | None = None) -> None:
        """`folders`: the server's own (`Settings.own_folders`), which a failed run's error, read on the keepers'
        Sources page and in sync-status, must not name (`said_without_folders`). Required: before, a runner built
        without them (`retire_removed`'s) cut no folder at all."""
        self.store = store
        self.folders = folders
        self.placer = placer
        self.live = live
        self.actor = actor
        self.progress = progress
        self.today = today or date.today()
        self.overlay = Overlay(store.database, AuditLog(store.database))

    def run(self, connector: Connector, *, dry_run: bool = False, force: bool = False, full: bool = False,
            max_change_share: float = DEFAULT_MAX_CHANGE_SHARE, then: str | None = None) -> SyncReport:
        """One run of the connector; `then` tells a run stopped at the share threshold how to go on (the
        command that ran it says, since `rehabmap index` and `rehabmap sync` have flags of their own; by
        default `rehabmap sync`'s, `sync_then`)."""
        with self._running(connector.name, dry_run=dry_run) as caught_up:
            status = self.store.source_status(connector.name)
            started = status.run_started_at or now()
            held = self._stopped(connector.name, past_failures=True) if status.pending is not None else None
            stopped = self._stopped(connector.name) if force and not dry_run and held is not None else None
            try:
                # `--force` after a run stopped at the threshold applies what that run fetched and reported, and
                # fetches nothing more (an ORUK feed, which lists every page each run, was crawled again); after a
                # run that failed since, it finishes that run's fetch first, as any run goes on from a failed one.
                outcomes = (self._staged(connector.name) if stopped is not None
                            else self._fetch(connector, dry_run=dry_run, full=full))
            except SyncInterrupted as exc:  # recorded, so that `sync-status` tells the person watching it
                if not dry_run:
                    self._record_failure(connector.name, started, partial(str, exc.message), connector.warnings)
                raise
            except Exception as exc:
                # A fault of rehabmap's own (a bug a source's answer found), or of the machine, its database or a
                # damaged file (`machines_words`): recorded as failed too, with its traceback left to the caller.
                # Before, `sync-status` still said "last run applied", exit 0, and the failure was seen only by
                # whoever read the crontab's log.
                self._failed(connector, started, exc, f"in rehabmap's {connector.name} connector",
                             "A fault of rehabmap's, not only the source's: report it with the log.",
                             lambda _: "What was fetched before it is kept.", dry_run=dry_run)
                raise
            try:
                report = self._planned(connector, outcomes, held, stopped, started, dry_run=dry_run, force=force,
                                       max_change_share=max_change_share, then=then)
            except Exception as exc:
                # Planning, or applying in the store's one transaction (`apply_run`), which a fault undoes whole: a
                # full disk, a bug. Before, only the fetch was recorded: sync-status said the run was unfinished,
                # the next would go on from it, exit 0, while every run after failed the same way.
                self._failed(connector, started, exc, f"as rehabmap applied the run of {connector.name}",
                             "A fault of rehabmap's, not the source's: the log has its traceback.",
                             lambda again: "Nothing was applied: the store undid the run's one transaction. What "
                             f"was fetched is kept: {again} to apply it.", dry_run=dry_run)
                raise
            if dry_run:
                return report
            if report.stopped is None:
                reached("applied")
            self._follow(report, caught_up)  # a stopped run too: what earlier runs left unwritten, as any run ends
            return report

    def _planned(self, connector: Connector, outcomes: Sequence[Outcome], held: RunRow | None,
                 stopped: RunRow | None, started: str, *, dry_run: bool, force: bool, max_change_share: float,
                 then: str | None) -> SyncReport:
        """What the run fetched (`outcomes`) planned, and applied in one transaction, or recorded as stopped at the
        share threshold; nothing written in a dry run. `held`, a stopped run no person has decided on; `stopped`,
        that run, when `--force` applies it."""
        # What a stopped run fetched is read with what this run fetched: a complete listing among it stays
        # complete, so that a changes window after a stopped full crawl neither clears the stop nor keeps live
        # what the listing no longer lists (it stops again, until a person applies or drops the stopped run).
        held_complete = held is not None and bool(held.report.get("complete"))
        complete = held_complete or (stopped is None and connector.complete)
        read_all, short_of_count = _how_read(connector, stopped)
        plan = _Plan.make(self, connector.name, outcomes, complete=complete,
                          title=connector.title or TITLES.get(connector.name), read_all=read_all)
        report = plan.report
        report.short_of_count = short_of_count
        report.warnings = connector.warnings
        if held is not None and stopped is None:
            report.held_back = (f"what the run stopped at {held.finished_at} fetched"
                                + (" (a complete listing)" if held_complete else ""))
        report.dry_run = dry_run
        if report.share > max_change_share and not force:
            report.remedy = None if dry_run else then or sync_then(connector.name)
            outcome = ("A run would stop here and apply nothing (--force applies it)." if dry_run  # keeps none
                       else f"Nothing was applied; what was fetched is kept. {report.remedy}")
            report.stopped = (f"this run would change or retire {report.share:.0%} of the "
                              f"{plan.active_before} records held from {connector.name} (more than "
                              f"{max_change_share:.0%}). {outcome}")
            if not dry_run:
                self.store.record_run(connector.name, started, "stopped", report.to_dict())
            return report
        if dry_run:
            return report
        reached("fetched")
        self.store.apply_run(connector.name, plan.records, plan.enrichments, plan.reviews, plan.audits,
                             live_changed=plan.live_changed, complete=complete, started_at=started,
                             report=report.to_dict(),
                             meta=self._cover(connector.name, connector.covers() if complete else None)
                             | ({TITLED + connector.name: connector.title} if connector.title else {}))
        return report

    def _failed(self, connector: Connector, started: str, exc: Exception, where: str, whose: str,
                then: Callable[[str], str], *, dry_run: bool) -> None:
        """A run ended by an exception that is no source's error (`SyncInterrupted`), recorded as failed (not in a
        dry run), `where` and `then` (given how to run it again) saying where it failed and what is kept. Whose fault
        it is decides what a person does: the machine's, the database's or a damaged file's (`machines_words`: a
        full disk, a permission refused, the database down, the store's file damaged) is for its operator to mend; any
        other, as `whose` says (before, an `OSError` too was worded a fault of rehabmap's, to report, and then a full
        SQLite disk a fault of rehabmap's or of its store's). Said without the server's folders (the Sources page
        shows it); the exception, for the operator, keeps them."""
        def said() -> str:
            again = self._again(connector.name)
            kept = then(again)
            mend = machines_words(exc, nor="the source")
            if mend is not None:
                mend += "." if again in kept else f", then {again}."  # how to go on, said once
            return (f"{type(exc).__name__} {where}: {sentence(shorten(said_without_folders(exc, self.folders), 200))} "
                    f"{mend or whose} {kept}")

        if not dry_run:
            self._record_failure(connector.name, started, said, connector.warnings)

    def _record_failure(self, name: str, started: str, said: Callable[[], str], warnings: tuple[str, ...]) -> None:
        """A failed run recorded, its error `said`, while its exception is handled: a store that cannot read or write
        even that (the disk still full, the database down) has the operator's log say so, and the caller raises the
        run's own error. Before, the store's exception replaced it, and the command named the store's refusal alone."""
        try:
            self.store.record_run(name, started, "failed", {"error": said(), "warnings": warnings})
        except Exception as refused:  # noqa: BLE001 - the run's own error is the one raised
            log.error("The run of %s failed, and the store could not record its failure (%s: %s): sync-status "
                      "does not say it failed; the command reports the run's own error.", name,
                      type(refused).__name__, refused)

    def retire_all(self, name: str, reason: str, *, detail: str | None = None, dry_run: bool = False) -> SyncReport:
        """A person's word that no run of `name` will come again (an ORUK feed whose file has left the feed folder):
        every record of it still active retired with `reason` and today's date, audited, as a complete listing
        retires what it no longer lists (a sync never deletes), its coverage claims withdrawn (a page must not say
        "none found, and this feed covers the area" of a feed no longer synced), what an unfinished run of it
        fetched dropped and its state forgotten (were the file put back, its first run reads every service again,
        and lists again what it still lists), in one transaction recorded as its last run ('retired'); then the
        live index follows, as after a run. No share threshold: a person asked for every record. Before, nothing
        could retire them: a removed feed's records stayed shown as its last run left them, for ever. `reason` is
        what the public reads on the service's page and in the API; `detail`, the operator's why, is what the report
        and sync-status say, and the audit log keeps it beside the reason (`RETIRED_DETAIL`)."""
        with self._running(name, dry_run=dry_run, retiring=True) as caught_up:
            started = now()
            plan = _Plan.make(self, name, [], complete=True, vanished=reason, vanished_detail=detail)
            _left_to_retire(self.store, name, plan.report)
            report = plan.report
            report.complete, report.dry_run = False, dry_run
            if dry_run:
                return report
            self.store.apply_retirement(name, plan.records, plan.enrichments, plan.reviews, plan.audits,
                                        live_changed=plan.live_changed, started_at=started,
                                        report={**report.to_dict(), "retired_reason": detail or reason},
                                        meta=self._cover(name, {}))
            self._follow(report, caught_up)
            return report

    @contextmanager
    def _running(self, name: str, *, dry_run: bool, retiring: bool = False) -> Iterator[int]:
        """The one run of `name` at a time, once a store an upgrade marked is prepared again and what an earlier
        run or decision left unwritten is in the live index; yields how many records that wrote. `retiring`: a
        person's retirement of every record (`retire_all`), which a catch-up that fails ends unrecorded
        (`_caught_up`)."""
        with self.store.run_lock(name) as mine:
            if not mine:
                raise SyncBusy(f"Another run of {name} is under way: wait for it to finish, then {self._again(name)}.")
            if not dry_run:
                reprepare_due(self.store, lambda: self.placer)
            caught_up, refused = self._caught_up(name, retiring=retiring) if not dry_run else (0, None)
            try:
                yield caught_up
            except RunNotShown:
                raise  # the refusal met again as the run ended, and said with it
            except Exception:
                if refused is not None:  # a run that fails (a source down) still says what is held back
                    tell_operator(NotYetShown(EARLIER_STORED, refused))
                raise

    def _caught_up(self, name: str, *, retiring: bool) -> tuple[int, PrecedenceInvalid | None]:
        """What an earlier run or decision left unwritten, written before this run, and the refusal where a mapping
        refuses the live write (`PrecedenceInvalid`, writing none): the run goes on, keeping the store current, and
        as it ends says the refusal it meets again (`RunNotShown`, from `_follow`, for a run applied or stopped at
        the share threshold) or, for a run that ends otherwise (a source down, a connector's fault), `_running`
        tells it to the operator beside that failure. Before, every run was refused at its start until the mapping
        was mended, fetching nothing and recorded nowhere; then a failed run dropped the refusal without a trace.
        A write that fails otherwise (the index unavailable) ends the run before it fetches, recorded as failed
        (`RunNotStarted`), as `_follow` tells one at a run's end; a retirement (`retiring`) is not recorded, since a
        failed run as its feed's last would hide the day its records were retired (`_left_to_retire`)."""
        if self.live is None:
            return 0, None
        try:
            return self.live.converge(self.store), None
        except PrecedenceInvalid as refused:
            return 0, refused
        except DomainError as unavailable:
            again = (self._again(name) if not retiring else None if _retired(self.store, name) else
                     f"run '{retire_command(name)}' again")
            not_started = RunNotStarted(name, again, unavailable)
            if not retiring:
                self._record_failure(name, now(), partial(str, not_started.message), ())
            raise not_started from unavailable

    def _again(self, name: str) -> str:
        """How a person runs `name` again (`run_again`, by the files its last applied run read, where it read any):
        `rehabmap sync` for a connector, `rehabmap index` for an import's held rows. Before, a busy or interrupted
        run named 'rehabmap sync nhs-hospitals-2018' for the latter, which is no command."""
        return run_again(name, self.store.load_state(name).get("files") or ())

    def _follow(self, report: SyncReport, caught_up: int) -> None:
        """As a run ends (its commit, or its stop at the share threshold, which commits nothing of its own but may
        follow a catch-up that wrote nothing: `_caught_up`): the live index and the coverage claims follow the store
        (with no live index, the claims hold at once); the report says how many records were written with the
        `caught_up` before, or that the first index is another process's to build. A live write refused raises
        `RunNotShown` with the report: the run stands; one that fails otherwise (the index unavailable) raises
        `RunNotWritten` with it. Before, a stopped run returned first, so a refused catch-up at
        its start went unsaid."""
        if self.live is None:
            publish_coverage(self.store)
            record_pending(self.store)
            report.live_written = caught_up
            return
        try:
            report.live_written = caught_up + self.live.follow(self.store, partial(RunNotShown, report))
        except RunNotShown:
            raise
        except DomainError as unavailable:  # the store holds the run: said with its report
            raise RunNotWritten(report, unavailable) from unavailable
        if self.live.left_to_another_build:
            report.live_left = _LEFT_TO_ANOTHER_BUILD

    def cannot_start(self, name: str, error: DomainError, warnings: tuple[str, ...] = (), *,
                     dry_run: bool = False) -> None:
        """A run that cannot start (its ORUK feed file cannot be read: `runs_for`), recorded as failed as a
        fetch that fails is, so that `sync-status` names it while the source's other runs go ahead, with the
        `warnings` of its configuration (the file's keys rehabmap does not read: a misspelt one may be the cause). A
        store that cannot record it is logged (`_record_failure`); before, its error ended the whole sync, this run's
        reason and every other feed's run lost."""
        if not dry_run:
            self._record_failure(name, now(), partial(str, error.message), warnings)

    def _cover(self, name: str, claims: Mapping[str, frozenset[str]] | None) -> dict[str, str]:
        """A complete listing makes the source's claims (`Connector.covers()`) as of today; any later
        successful run (`claims` None) keeps them current; a retirement of all its records (none) withdraws them.
        Committed with the run, made once its records are live."""
        return coverage_due(f"sync:{name}", self.today.isoformat(), claims)

    def _stopped(self, source: str, *, past_failures: bool = False) -> RunRow | None:
        """The source's last run, when it stopped at the share threshold and what it fetched is still staged: no
        person has decided on it yet (`--force`, `--discard`). With `past_failures`, also when runs that failed
        since came after it (each keeps what was staged). Its report summarised (`SyncStore.last_run`)."""
        last = self.store.last_run(source, past_failures=past_failures)
        return last if last is not None and last.outcome == "stopped" else None

    def _staged(self, source: str) -> list[Outcome]:
        return [outcome_from_json(kind, payload) for kind, payload in self.store.staged(source)]

    def _fetch(self, connector: Connector, *, dry_run: bool, full: bool) -> list[Outcome]:
        earlier = self._staged(connector.name)
        state = _PageState(self.store, connector.name, dry_run)
        outcomes: Iterator[Outcome] = connector.fetch(state, full=full)
        from tqdm import tqdm  # here: every server start imports this module, and only a sync shows progress

        try:
            for outcome in tqdm(outcomes, desc=f"sync {connector.name}", unit=" records",
                                disable=not self.progress, leave=False):
                state.take(outcome)
        except DomainError as exc:
            # A listing short of its count was started again, what it fetched dropped (`SyncState.save`'s afresh):
            # "what was fetched before it is kept … to go on from there" said the opposite of what the next run does
            then = (f"What it fetched of that listing is dropped: {self._again(connector.name)} to list it afresh from "
                    "its first page." if state.afresh else
                    f"What was fetched before it is kept: {self._again(connector.name)} to go on from there.")
            raise SyncInterrupted(exc.message if dry_run else f"{sentence(exc.message)} {then}",
                                  field=exc.field) from exc
        state.finish()
        return earlier + state.fetched

    # --- preparing items ---------------------------------------------------------------------------------

    def prepare(self, items: Sequence[SourceItem]) -> list[_Prepared]:
        return prepare_items(items, self.placer)


def prepare_items(items: Sequence[SourceItem], placer: Placer) -> list[_Prepared]:
    """Each item through the import pipeline, as `rehabmap index` reads a row: a phone, email or website the record
    refuses is left out and said, the service kept (before, a sync rejected the whole record for it, where an
    import kept it). An item whose type nobody can tell yet (type status 'unknown') is checked with a stand-in
    type, so that it is held for review only if everything else about it is usable; its proposed type stays
    empty."""
    given = [_candidate(item) for item in items]
    refused = [refused_contacts(candidate) for candidate in given]
    candidates = [without_bad_contacts(candidate, r) for candidate, r in zip(given, refused)]
    first = prepare_all(candidates, placer)
    retry = [i for i, (item, out) in enumerate(zip(items, first))
             if isinstance(out, Rejection) and item.type_status != "confirmed"
             and not item.candidate.fields.get("service_type")]
    probes = prepare_all([replace(candidates[i], fields={**candidates[i].fields, "service_type": _PROBE_TYPE})
                          for i in retry], placer)
    second = dict(zip(retry, probes))
    prepared = []
    for i, out in enumerate(first):
        proposed = (out.service_type.value, out.subtype) if isinstance(out, Service) else (None, None)
        out = second.get(i, out)
        if isinstance(out, Rejection):
            prepared.append(_Prepared(None, out.reason, (None, None)))
        else:
            left_out = tuple(LeftOutDetail(name, said) for name, said in refused[i].items())
            prepared.append(_Prepared(out.model_dump(mode="json"), None, proposed, left_out))
    return prepared


def reprepare_due(store: SyncStore, placer: Callable[[], Placer]) -> int:
    """Once after an upgrade that changed what the pipeline makes of an unchanged item (migration 14 marks the
    store, `REPREPARE_DUE`): every stored record prepared again from the item its source gave (with the
    enrichments in force), as a sync of that item would now prepare it. A sync skips an unchanged item, and a
    rebuild reads the prepared record, so a store synced before needs and the gender read from a service's
    words were kept apart from those it states (sessions 17 and 18) kept them merged, as if stated, for good.
    A record whose item can no longer be prepared keeps its last good version, as in a sync; the maintainers'
    edits live in their overlay, untouched (stated by definition). The changed records, a live revision for
    each whose shown record changed (the live index follows: `LiveIndex.converge`) and the mark's removal are
    one transaction. Returns how many records it changed (0 where another process, preparing at once, wrote first:
    `SyncStore.write_reprepared`); the mark alone is read when none is due. Called where a
    directory is shown from the store: a sync's start, a server's start and its catch-up (a rebuild reads the
    store as they left it, and the server's start brings the live index up to it). A record it makes usable, or
    no longer usable, is said (`_problem_news`)."""
    mark = store.meta(REPREPARE_DUE)
    if mark is None:
        return 0
    records = [r for r in store.records() if r.service is not None]
    index = Enrichments([enrichment_from_json(e.enrichment) for e in store.enrichments()])
    items = [enriched(own, index.matching(own.keys)) for own in (_as_read(item_from_json(r.item, r.raw), r)
                                                                 for r in records)]
    changed = [(record, after) for record, prepared in zip(records, prepare_items(items, placer()) if records else ())
               if (after := _reprepared(record, prepared)) is not record]
    # the review rows of the records that changed alone, which say whether each is shown (before, every row)
    reviews = {r.key: r for r in store.reviews(keys=[r.key for r, _ in changed])} if changed else {}
    live = {after.key for before, after in changed
            if shown(after, reviews.get(after.key)) != shown(before, reviews.get(before.key))}
    news = [said for before, after in changed if (said := _problem_news(before, after, mark)) is not None]
    moved = store.write_reprepared(changed, live_changed=live, mark=REPREPARE_DUE, asked=mark,
                                   audits=[audit for audit, _ in news])
    if moved is None:
        return 0  # another process prepared them first, and said what it did
    left = {r.service_id for r in moved}
    for audit, line in news:  # once committed: a process killed before it says nothing it did not do
        if audit.service_id not in left:
            log.warning("%s", line)
    for record in moved:
        log.warning("%s: not prepared again after the upgrade (%s): a sync run changed it while it was prepared, and "
                    "what the run wrote stands", record.service_id, mark)
    return len(changed) - len(moved)


def _problem_news(before: StoredRecord, after: StoredRecord, mark: str) -> tuple[Audit, str] | None:
    """Where preparing a record again after an upgrade (`reprepare_due`, asked by `mark`: "migration 14") cleared its
    problem or recorded one, the audit row (`PREPARED`, the problem before and after) and the report line, in a sync
    report's words, that say so: the line goes to the log of the process that prepared it (a server's start, a
    sync's), as an upgrade's other changes to records do. Before, nothing said it, so an operator could not tell
    which records an upgrade let in or held to their last good version. None where the problem is as it was."""
    if before.problem == after.problem:
        return None
    if after.problem is None:
        said = f"no longer rejected (it was: {before.problem})"
    else:
        said = f"rejected: {after.problem}" + ("; the previous version stays" if after.service is not None else "")
    audit = Audit(f"rehabmap (applied on upgrade, {mark})", PREPARED, after.service_id,
                  (Change("problem", before.problem, after.problem),))
    return audit, f"{' '.join(filter(None, (after.service_id, _name(after))))}: prepared again on upgrade, {said}"


def _reprepared(record: StoredRecord, prepared: _Prepared) -> StoredRecord:
    """`record` as a sync of its item would write it now (`_Plan._item`), or `record` itself when that changes
    nothing. Its item is the source's latest, the one its `problem` (if any) was found in: an item that prepares
    now is the record, with no problem (before, a record rejected by the release before kept its problem while
    showing the version its item now makes, so it had no listing and named no source for what it showed); one
    that no longer prepares keeps its last good version, its problem said, as a sync of it would say."""
    if prepared.service is None:
        return record if prepared.problem == record.problem else replace(record, problem=prepared.problem)
    assert record.service is not None
    if (not record.problem and _same_record(prepared.service, record.service)
            and prepared.left_out == record.left_out):
        return record
    return replace(record, service=prepared.service, left_out=prepared.left_out, problem=None,
                   proposed_type=prepared.proposed[0], proposed_subtype=prepared.proposed[1])


def _same_record(prepared: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether the stored record says what the one prepared now does: read as a record, so a field a later
    version added with its default (an empty `gender_read_from_text`) is no change."""
    try:
        return prepared == stored or Service.stored(prepared) == Service.stored(stored)
    except ValueError:  # pydantic's ValidationError: a record this version no longer reads is a change
        return False


def _as_read(own: SourceItem, record: StoredRecord | None) -> SourceItem:
    """`own`, its source's item of the stored `record`, read when the record says it was (`fetched_at_of`) where the
    item does not say so itself (a file's row), if it says what the record's item said: prepared again from its item
    (after an upgrade, `reprepare_due`) or read again unchanged from the same file (for its edition or `id_is`:
    `_same`), the record was not read anew. Before, each preparation of a file's row stamped the record with its own
    time, so the record claimed a read that never happened, and `reprepare_due` rewrote every row held from the NHS
    hospital lists (521) as changed. Not for a record whose latest item could not be used: its record is an earlier
    item's."""
    origin = own.candidate.origin
    if (origin.fetched_at is not None or record is None or record.problem
            or item_json_digest(record.item) != content_digest(own)):
        return own
    read = replace(origin, fetched_at=fetched_at_of(record.service))
    return replace(own, candidate=replace(own.candidate, origin=read))


def _candidate(item: SourceItem) -> Candidate:
    """The item's candidate row, carrying the source's field provenance into the record."""
    fields = {**item.candidate.fields, "field_sources": {**item.candidate.fields.get("field_sources", {}),
                                                         **item.field_sources}}
    return replace(item.candidate, fields=fields)


def _name(record: StoredRecord | None, item: SourceItem | None = None) -> str:
    if item is not None and item.candidate.fields.get("name"):
        return str(item.candidate.fields["name"])
    if record is not None:
        return str((record.service or {}).get("name") or record.item.get("fields", {}).get("name") or "")
    return ""


def _changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    before, after = before or {}, after or {}
    return sorted(k for k in set(before) | set(after) if k not in _NOT_CONTENT and before.get(k) != after.get(k))


# Why a held record its source now gives off the pathway is retired, as the public reads it after "Taken off the
# list on …:", by `Refused.off_pathway`, in words that own the judgement: CQC's where its registration says it, else
# rehabmap's reading of the source ("ours": a run that read everything again because that reading changed, where
# the source may have changed nothing). Before session 51 every cause said "<source> no longer describes it as a
# mental health rehabilitation or recovery service", words no source says.
# CQC's words are the regulator's wherever they are read: a care directory registers nothing ("…, as its care
# directory records"). A home with neither the band nor a band or activity under the Mental Health Act: its other
# bands may be for a mental illness ("Eating disorders"), so the band is named rather than "mental health conditions".
_OFF_PATHWAY = {
    "mental_health": "{regulator} no longer registers it for the 'Mental health conditions' service user band{where}",
    "over_65": "{regulator} now registers it for adults over 65 only{where}",
    "reading": "rehabmap no longer reads it as a rehabilitation service from what {title} records",
    "ours": "rehabmap no longer reads it as a rehabilitation service: rehabmap changed how it reads {title}",
}


@dataclass
class _Plan:
    """What a run changes: the records, enrichments and review rows to write, the audit rows, the report."""

    runner: SyncRunner
    connector: str
    report: SyncReport
    at: str = field(default_factory=now)
    records: list[StoredRecord] = field(default_factory=list)
    enrichments: list[StoredEnrichment] = field(default_factory=list)
    reviews: list[ReviewRow] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    live_changed: set[tuple[str, str]] = field(default_factory=set)
    active_before: int = 0
    touched: int = 0
    rejected: frozenset[tuple[str, str]] = frozenset()   # records a maintainer rejected: never shown
    vanished: str = ""  # why what a complete run does not list is retired, as the public reads it (`make`)
    vanished_detail: str | None = None  # the operator's why beside it, for the report and the audit log alone
    title: str | None = None  # the source as people know it (`TITLES`, a feed's label), for the public's reasons

    @classmethod
    def make(cls, runner: SyncRunner, connector: str, outcomes: Sequence[Outcome], *, complete: bool,
             title: str | None = None, vanished: str | None = None, vanished_detail: str | None = None,
             read_all: str | None = None) -> _Plan:
        """`vanished`: why what it does not list is retired, by default `_no_longer_listed`."""
        if vanished is None:
            vanished, vanished_detail = _no_longer_listed(connector, title, runner.today)
        plan = cls(runner, connector, SyncReport(connector, complete=complete, read_all=read_all), vanished=vanished,
                   vanished_detail=vanished_detail, title=title)
        latest = plan._latest(outcomes)
        plan.report.not_fetched = sum(isinstance(o, Unchanged) for o in latest.values())
        # each record once, however often listed
        plan.report.fetched = len(latest) - plan.report.not_fetched + len(plan.report.rejected)
        store = runner.store
        existing = {r.key: r for r in store.records(connector)}
        stored_enrichments = {e.key: e for e in store.enrichments(active_only=False)}
        own_enrichments = {k: e for k, e in stored_enrichments.items() if e.connector == connector}
        reviews = {r.key: r for r in store.reviews()}
        plan.rejected = frozenset(k for k, r in reviews.items() if r.state == "rejected")
        plan.active_before = (sum(map(plan._counts, existing.values()))
                              + sum(e.status == "active" for e in own_enrichments.values()))

        changed_enrichments = plan._enrichments(latest, own_enrichments, complete)
        active = [enrichment_from_json(e.enrichment) for e in
                  {**stored_enrichments, **{e.key: e for e in plan.enrichments}}.values() if e.status == "active"]
        index = Enrichments(active)

        items = {k: (o, enriched(_as_read(o, existing.get(k)), index.matching(o.keys))) for k, o in latest.items()
                 if isinstance(o, SourceItem)}
        others = plan._matched_elsewhere(changed_enrichments, set(latest), index)
        # A record whose last reading was rejected is read again from its item, changed or not: the release that
        # rejected it may read it otherwise now (a bare website, before session 19), and a source that lists it as
        # unchanged, or gives no news of it, would keep it rejected until it changed.
        again = {k: r for k, r in existing.items() if r.problem and r.status == "active" and (
            (k not in latest and not complete) or isinstance(latest.get(k), Unchanged) or k in items)}
        stored = {k: (own, enriched(own, index.matching(own.keys))) for k, r in again.items() if k not in items
                  for own in (item_from_json(r.item, r.raw),)}
        fresh = [i for k, (_o, i) in items.items() if not _same(existing.get(k), i) or k in again]
        fresh += [i for _o, i in stored.values()]
        fresh += [i for _o, (r, i) in others.items() if not _same(r, i)]
        prepared = dict(zip((i.key for i in fresh), runner.prepare(fresh)))

        for key, outcome in latest.items():
            before = existing.get(key)
            after: StoredRecord | None
            if isinstance(outcome, SourceItem):
                after = plan._item(*items[key], before, prepared.get(key))
                plan.touched += (before is not None and plan._counts(before) and after.digest != before.digest
                                 and not _only_adds(content(before.item), content(after.item)))
            elif isinstance(outcome, Gone):
                if key in own_enrichments:
                    continue  # an enrichment that is gone: retired above
                after = plan._gone(outcome, before)
                plan.touched += before is not None and plan._counts(before)
            elif isinstance(outcome, Refused):
                after = plan._refused(outcome, before)
            elif isinstance(outcome, Unchanged) and before is not None and before.status == "active" \
                    and key not in again:
                plan.report.unchanged += 1  # as the last reading made it: nothing to settle
                plan.records.append(replace(before, last_seen=plan.at))
                continue
            else:
                continue
            if after is not None:
                plan._settle(before, after, reviews.get(key))
        for key, (own, item) in stored.items():
            plan._settle(existing[key], plan._item(own, item, existing[key], prepared[key]), reviews.get(key))
        for key, (record, item) in others.items():
            if key in prepared:
                said = plan._said()
                own = item_from_json(record.item, record.raw)
                after = replace(plan._item(own, item, record, prepared[key]), status=record.status,
                                retired_at=record.retired_at, retired_reason=record.retired_reason)
                plan._settle(record, after, reviews.get(key))
                plan._elsewhere(said)
        if complete:
            for key, before in existing.items():
                if key not in latest and before.status == "active":
                    plan._settle(before, plan._vanished(before), reviews.get(key))
        plan._finish(existing, reviews)
        return plan

    def _latest(self, outcomes: Sequence[Outcome]) -> dict[tuple[str, str], Outcome]:
        """The last word on each record, in the order it was said (a resumed page may repeat one)."""
        latest: dict[tuple[str, str], Outcome] = {}
        for outcome in outcomes:
            if isinstance(outcome, Refused) and outcome.source_id is None:
                self.report.rejected.append(Line("-", "", f"{outcome.where}: {outcome.reason}"))
                continue
            key = (outcome.key if isinstance(outcome, (SourceItem, Enrichment))
                   else (outcome.source, str(outcome.source_id)))
            if isinstance(outcome, Unchanged) and key in latest:
                # A run gone on after a stop or a kill lists again what it staged: unchanged since that reading,
                # which stands (taken for the stored record, `--force` applied nothing of an ORUK feed's changes).
                continue
            latest.pop(key, None)
            latest[key] = outcome
        return latest

    def _groups(self) -> dict[str, list[Line]]:
        report = self.report
        return {"added": report.added, "changed": report.changed, "held for review": report.held,
                "rejected": report.rejected, "detail left out": report.left_out}

    def _said(self) -> dict[str, int]:
        """How many lines each of the report's own lists holds, for `_elsewhere`."""
        return {title: len(lines) for title, lines in self._groups().items()}

    def _elsewhere(self, said: Mapping[str, int]) -> None:
        """The lines written since `said` are of another source's record: moved to `elsewhere`, so that this run's
        counts are its source's own (an ODS run printed "held for review 1", an NHS website clinic its sites'
        names were read into, beside "no records of this source await review")."""
        for title, lines in self._groups().items():
            self.report.elsewhere += [replace(line, note=f"{title}: {line.note}" if line.note else title)
                                      for line in lines[said[title]:]]
            del lines[said[title]:]

    def _enrichments(self, latest: Mapping[tuple[str, str], Outcome],
                     own: Mapping[tuple[str, str], StoredEnrichment], complete: bool) -> list[Enrichment]:
        """This run's enrichments stored (new, changed, gone, vanished); returns every version, old and new,
        of those that changed, so the records either matched are looked at again."""
        changed: list[Enrichment] = []

        def retire(before: StoredEnrichment, reason: str, on: str) -> None:
            self.enrichments.append(replace(before, status="retired", retired_at=on, retired_reason=reason))
            changed.append(enrichment_from_json(before.enrichment))
            self.touched += 1

        for key, outcome in latest.items():
            before = own.get(key)
            if isinstance(outcome, Enrichment):
                digest = enrichment_digest(outcome)
                if before is not None and before.digest == digest and before.status == "active":
                    self.enrichments.append(replace(before, last_seen=self.at))
                    continue
                self.enrichments.append(StoredEnrichment(
                    outcome.source, outcome.source_id, self.connector, enrichment_to_json(outcome),
                    None if outcome.raw is None else dict(outcome.raw), digest, "active",
                    before.first_seen if before else self.at, self.at, None, None))
                changed.append(outcome)
                self.report.enrichments += 1
                if before is not None:
                    changed.append(enrichment_from_json(before.enrichment))
                    self.touched += before.status == "active"
            elif isinstance(outcome, Gone) and before is not None and before.status == "active":
                retire(before, outcome.detail or outcome.reason, (outcome.on or self.runner.today).isoformat())
        if complete:
            for key, before in own.items():
                if key not in latest and before.status == "active":
                    retire(before, self.vanished_detail or self.vanished, self.runner.today.isoformat())
        return changed

    def _matched_elsewhere(self, changed: Sequence[Enrichment], fetched: set[tuple[str, str]],
                           index: Enrichments) -> dict[tuple[str, str], tuple[StoredRecord, SourceItem]]:
        """Stored records (of any source) that a changed enrichment matches or matched, and that this run did
        not fetch: each with its item as the enrichments in force now make it."""
        if not changed:
            return {}
        either = Enrichments(changed)
        found = {}
        for record in self.runner.store.records():
            if record.key in fetched:
                continue
            item = item_from_json(record.item, record.raw)
            if either.matching(item.keys):
                found[record.key] = (record, enriched(item, index.matching(item.keys)))
        return found

    def _counts(self, before: StoredRecord) -> bool:
        """Whether a change to this record counts toward the share threshold: an active record, unless a
        maintainer rejected it (shown nowhere, so its changes cannot harm the directory, and must not stop a
        run that changes nothing a person sees)."""
        return before.status == "active" and before.key not in self.rejected

    def _vanished(self, before: StoredRecord) -> StoredRecord:
        self.touched += self._counts(before)
        after = self._gone(Gone(before.source, before.source_id, self.vanished, self.runner.today), before,
                           detail=self.vanished_detail)
        assert after is not None
        return after

    def _finish(self, existing: Mapping[tuple[str, str], StoredRecord],
                reviews: Mapping[tuple[str, str], ReviewRow]) -> None:
        report = self.report
        report.share = self.touched / self.active_before if self.active_before else 0.0
        final_reviews = {**reviews, **{r.key: r for r in self.reviews}}
        final_records = {**existing, **{r.key: r for r in self.records if r.connector == self.connector}}
        report.awaiting_review = sum(held(r, final_reviews.get(r.key)) for r in final_records.values())

    def _item(self, own: SourceItem, item: SourceItem, before: StoredRecord | None,
              prepared: _Prepared | None) -> StoredRecord:
        """The record as the source's item (`own`; `item` is it with the enrichments in force) makes it;
        `prepared` is None when it is the same as stored."""
        report = self.report
        if prepared is None:
            assert before is not None
            if before.problem:
                report.rejected.append(Line(before.service_id, _name(before, item), before.problem))
            elif before.status == "active":
                report.unchanged += 1
            return replace(before, last_seen=self.at, status="active", retired_at=None, retired_reason=None)
        service_id = (prepared.service or {}).get("id") or (before.service_id if before else
                                                             f"{item.key[0]}:{item.key[1]}")
        proposed = prepared.proposed
        if prepared.service is None and before is not None:  # unusable now: the last good version stays
            proposed = (before.proposed_type, before.proposed_subtype)
        record = StoredRecord(
            source=item.key[0], source_id=item.key[1], connector=before.connector if before else self.connector,
            service_id=service_id, status="active", type_status=item.type_status,
            item=item_to_json(own), raw=own.raw,
            service=prepared.service if prepared.service is not None else (before.service if before else None),
            proposed_type=proposed[0], proposed_subtype=proposed[1], problem=prepared.problem,
            digest=content_digest(item), evidence_digest=evidence_digest(item),
            first_seen=before.first_seen if before else self.at, last_seen=self.at, changed_at=self.at,
            retired_at=None, retired_reason=None, live_revision=before.live_revision if before else 0,
            left_out=prepared.left_out if prepared.service is not None else (before.left_out if before else ()))
        if before is not None and before.status == "active" and not before.problem and not prepared.problem and (
                record.digest == before.digest):
            report.unchanged += 1  # read again only for the file it is from (`_same`)
        if prepared.problem:
            kept = "; the previous version stays" if before is not None and before.service is not None else ""
            report.rejected.append(Line(service_id, _name(before, item), prepared.problem + kept))
        report.left_out += [Line(service_id, _name(before, item), detail.said) for detail in prepared.left_out]
        if before is not None and before.problem and not prepared.problem and record.digest == before.digest:
            report.changed.append(Line(service_id, _name(before, item),
                                       f"read again, no longer rejected (it was: {before.problem})"))
        return record

    def _questioned(self, after: StoredRecord, changed: Sequence[str]) -> None:
        """A field the source changed that a maintainer's edit keeps: the edit stays shown, and the news is said
        (report, audit log, the service's keepers' page) for a maintainer to weigh."""
        assert after.service is not None
        for news in self.runner.overlay.questioned(after.service_id, after.service, changed):
            self.report.questioned.append(Line(after.service_id, _name(after), str(news)))
            self.audits.append(Audit(self.runner.actor, QUESTIONED, after.service_id, (news.change(),)))

    def _gone(self, gone: Gone, before: StoredRecord | None, *, detail: str | None = None) -> StoredRecord | None:
        """Retired with the source's reason, which the public reads; `detail` (else the source's own, `Gone.detail`),
        an operator's why where it is other than the reason, is what the report says, and the audit log keeps it
        beside the reason."""
        detail = detail or gone.detail
        if before is None:
            self.report.gone_unknown += 1
            return None
        if before.status == "retired":
            return None
        on = (gone.on or self.runner.today).isoformat()
        # A maintainer's restore is older than this news of the source: the retirement wins, and says whose it undid.
        restore = self.runner.overlay.restore_pinning(before.service_id)
        self.report.retired.append(Line(before.service_id, _name(before),
                                        f"{detail or gone.reason} (on {on})" + (f"; {restore}" if restore else "")))
        self.audits.append(Audit(self.runner.actor, "retire", before.service_id,
                                 (Change("status", "active", "inactive"), Change("retired_reason", None, gone.reason),
                                  *((Change(RETIRED_DETAIL, None, detail),) if detail else ()),
                                  *((restore.change(),) if restore else ())), yields=("status",) if restore else ()))
        return replace(before, status="retired", retired_at=on, retired_reason=gone.reason, changed_at=self.at)

    def _refused(self, refused: Refused, before: StoredRecord | None) -> StoredRecord | None:
        """Reported; and a record held from the source that it now refuses (no longer on the pathway, say) is
        retired: what the source no longer supports is not shown as if it did. One the source gives with a value
        that cannot be read, cannot give whole, or gives no place for (`Refused.keeps_previous`), keeps its last good
        version, as a record the pipeline rejects does."""
        service_id = before.service_id if before else f"{refused.source}:{refused.source_id}"
        active = before is not None and before.status == "active"
        kept = ("; the previous version stays" if refused.keeps_previous and active and before is not None
                and before.service is not None else "")
        self.report.rejected.append(Line(service_id, _name(before) or refused.name,
                                         f"{refused.where}: {refused.reason}{kept}"))
        self.report.unplaced += refused.unplaced
        if before is None or not active or refused.keeps_previous:
            return None
        self.touched += self._counts(before)
        # Off the pathway, the refusal's words are the classifier's ("not a rehab pathway service: 'Residential homes
        # | Care home service without nursing' with no mental health specialism"), the operator's detail: the public
        # page said them after "Taken off the list on …:".
        detail = f"the source's record can no longer be used: {refused.reason}"
        if not (refused.off_pathway and self.title):
            return self._gone(Gone(refused.source, str(refused.source_id), detail, None), before)
        cause = "ours" if self.report.read_all in OUR_READING_CHANGED else refused.off_pathway
        in_file = CQC_FILES.get(self.connector)
        said = _OFF_PATHWAY.get(cause, _OFF_PATHWAY["reading"]).format(
            title=self.title, regulator=TITLES["cqc"] if in_file else self.title,
            where=f", as its {in_file} records" if in_file else "")
        return self._gone(Gone(refused.source, str(refused.source_id), said, None, detail), before)

    def _settle(self, before: StoredRecord | None, after: StoredRecord, review: ReviewRow | None) -> None:
        """Queue, or close, its review; note what changes for the live index and the report."""
        report = self.report
        new_review = review
        if held(after, review) and (review is None or review.state == "superseded"):
            new_review = ReviewRow(after.source, after.source_id, "pending", None, None, None, None, None, None,
                                   self.at)
        elif review is not None and review.state == "pending" and not held(after, review):
            why = ("the source now confirms its type" if after.type_status == "confirmed"
                   else f"retired: {after.retired_reason}" if after.status == "retired" else "no longer usable")
            new_review = replace(review, state="superseded", reason=why)
        if new_review is not review and new_review is not None:
            self.reviews.append(new_review)
        content_changed = before is None or after.digest != before.digest
        if held(after, new_review) and content_changed and after.problem is None:
            proposed = type_words(after.proposed_type, after.proposed_subtype) if after.proposed_type else (
                "no type proposed")
            report.held.append(Line(after.service_id, _name(after), f"{after.type_status}: {proposed}"))
        elif before is not None and before.status == "retired" and after.status == "active":
            report.changed.append(Line(after.service_id, _name(after), "listed again by the source"))
            # A maintainer's restore is now the source's word too: a later retirement takes back no maintainer's.
            restored = self.runner.overlay.restore_pinning(after.service_id) is not None
            self.audits.append(Audit(self.runner.actor, "update", after.service_id,
                                     (Change("status", "inactive", "active"),), yields=("status",) if restored else ()))
            self._questioned(after, ["status"])  # a maintainer who retired it too keeps it retired, told of this
        elif (after.problem is None and after.status == "active" and content_changed
              and shown(after, new_review) is not None):  # a record a maintainer rejected changes unseen
            if before is None or before.service is None:
                report.added.append(Line(after.service_id, _name(after), type_words(
                    after.proposed_type, after.proposed_subtype) if after.proposed_type else ""))
            else:
                changed = _changed_fields(before.service, after.service)
                report.changed.append(Line(after.service_id, _name(after), ", ".join(changed) or "evidence"))
                self._questioned(after, changed)
        if (review is not None and review.state in ("accepted", "rejected")
                and review.decided_on_evidence != after.evidence_digest
                and (before is None or before.evidence_digest != after.evidence_digest)):
            report.evidence_changed.append(Line(after.service_id, _name(after),
                                                f"{review.state} on {review.decided_at}; 'rehabmap review show "
                                                f"{after.service_id}'"))
        if shown(after, new_review) != (shown(before, review) if before is not None else None):
            self.live_changed.add(after.key)
        self.records.append(after)


def _only_adds(before: Any, after: Any) -> bool:
    """Whether `after` says everything `before` said, and more only under keys `before` lacks: what a release that
    keeps more of a source (the town and county apart, session 16) finds in every record once, on its next full
    run. Such a change takes nothing a person sees away, so it must not stop the run that brings it at the share
    threshold, which is there to stop a source's mass change or loss."""
    if isinstance(before, dict) and isinstance(after, dict):
        return all(key in after and _only_adds(value, after[key]) for key, value in before.items())
    return bool(before == after)


def _same(record: StoredRecord | None, item: SourceItem) -> bool:
    """Whether the item says what the stored record's did, read from the same file (a dated file's edition is
    not content, but its records carry it: one stored before session 20, or renamed from another file's by
    migration 15, is read again, and counted unchanged), its id the same kind (`SourceItem.id_is`, which is not
    content either: a row stored before its mapping said its ids are ODS codes is read again, counted unchanged,
    so that the review queue may say another source gives it the same code), and read as short or whole alike,
    with the same fields its lost cells may give (`Candidate.short` and `lost_fields`, not content: a short row
    stored before the store kept them, or whose mapping now maps the cut column to another field, is read again
    for them), and with the same relays marked on its feed's published provenance (`relays_marked`: a record synced
    before the release that marks them is read again for them, counted unchanged)."""
    edition = item.candidate.origin.edition
    return (record is not None and record.digest == content_digest(item)
            and record.item["origin"].get("edition") == (edition.model_dump(mode="json") if edition else None)
            and record.item.get("id_is") == item.id_is and record.item.get("short", "") == item.candidate.short
            and record.item.get("lost_fields") == lost_fields_json(item.candidate)
            and relays_marked(record.item["fields"]) == relays_marked(item.candidate.fields))
