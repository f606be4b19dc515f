"""What an operator checks from cron (`rehabmap sync-status`): per source, when it last synced successfully and
completely, where its cursor is, how many records it holds, how many wait in the review queue, how its last run
ended, whether a run was left unfinished, and what it applied that the live index has not yet followed, with what
holds that back (a mapping put wrong). Read from the sync store, and the mappings where the index is behind: it
never touches a source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

from indexer.precedence import PrecedenceInvalid, source_precedence
from indexer.sync.connectors import discard_command, retire_command, run_again
from indexer.sync.live import NotYetShown, applied_stored
from indexer.sync.publish import COVERAGE_DUE
from indexer.sync.store import LIVE_PUBLISHED, LeftOutDetail, SourceCounts, SyncStore
from rehabmap.errors import for_operator
from rehabmap.maintain.audit import AuditLog

_COUNTS = ("added", "changed", "retired", "held", "rejected")


@dataclass(frozen=True)
class LastRun:
    outcome: str              # "applied"; "stopped" at the change threshold (waits for --force or --discard);
                              # "failed": the source could not give what was asked (the error says why);
                              # "discarded": what a run had fetched was dropped (`rehabmap sync --discard`); or
                              # "retired": a person retired every record of a feed no longer configured
                              # (`rehabmap sync oruk --retire-removed`)
    started_at: str
    finished_at: str
    counts: dict[str, int]    # fetched, not_fetched, added, changed, retired, held, rejected
    error: str | None = None  # a failed run's one-line error
    stopped: str | None = None  # a stopped run's report: why, and the command that applies or drops it
    discarded: int = 0        # the fetched records a discarded run dropped
    retired_reason: str | None = None  # why a person retired every record (outcome "retired")
    remedy: str | None = None  # a stopped run's command to apply or drop it; None for one recorded before it was kept
    # What its source's configuration said that it does not read, or its listing missed (`SyncReport.warnings`)
    warnings: tuple[str, ...] = ()

    @property
    def said(self) -> str:
        """What the run came to, in one line: a failed run's error, what a discarded run dropped, else its counts.
        `rehabmap sync-status` and the keepers' Sources page both say it, so they never tell two stories."""
        if self.error:
            return self.error
        if self.outcome == "discarded":
            return f"{self.discarded} fetched records dropped; the next run starts from the last applied one"
        if self.outcome == "retired":
            retired = self.counts["retired"]
            return f"{retired} {'record' if retired == 1 else 'records'} retired: {self.retired_reason}"
        return ", ".join(f"{k} {v}" if k != "not_fetched" else f"{v} unchanged, not fetched again"
                         for k, v in self.counts.items() if v or k != "not_fetched")


@dataclass(frozen=True)
class AddedByMaintainer:
    """A contact detail a sync left out that a maintainer has since added by hand (the maintainers' overlay holds
    it, so the record's `field_sources` call it the directory's): the record is shown with it, though the source
    still gives a value that is none."""

    field: str                # phone, email or website
    on: str | None            # the day (ISO) of the edit that set it, from the audit log; None if no row says

    def __str__(self) -> str:
        return f"{self.field}: added by a maintainer" + (f" on {self.on}" if self.on else "")


@dataclass(frozen=True)
class LeftOut:
    """A record shown with a contact detail its source gave left out (refused, the service kept): a phone that is
    no number ("Ask for the manager"), a website that is none. The source's to fix; until then it is listed, and
    the record is shown without it unless a maintainer has added the detail by hand (`added`). Said once in the
    report of the run that read it, and here for as long as it lasts."""

    service_id: str
    name: str
    details: tuple[str, ...]   # each as the run's report said it: the field, the value, why, "dropped"
    fields: tuple[str, ...]    # the field of each detail (phone, email or website), as the sync kept it
    added: tuple[AddedByMaintainer, ...] = ()  # of those, the ones a maintainer has since added

    @cached_property
    def lines(self) -> tuple[str, ...]:
        """Each detail as the run said it and, where a maintainer has since added it, so: what
        `rehabmap sync-status` and the keepers' Sources page both say, in the same words (the page asks thrice a
        row, of as many rows as a source has records without a detail)."""
        added = {a.field: a for a in self.added}
        return tuple(f"{detail} ({added[field]})" if field in added else detail
                     for detail, field in zip(self.details, self.fields))


@dataclass(frozen=True)
class SourceReport:
    source: str
    last_success_at: str | None
    last_complete_at: str | None
    cursor: dict[str, Any]
    active: int               # shown in the index: confirmed by the source or accepted; never a held record
    retired: int
    awaiting_review: int
    facts: int                # active facts about records other sources own (ODS sites, rehab-ward ratings)
    last_run: LastRun | None
    unfinished_since: str | None  # a run that fetched and did not apply: the next run resumes it
    staged: int
    not_live: int = 0         # applied changes the live index (or its coverage claims) has not yet followed:
                              # a run or review decision was killed; the next one, or a server start, writes them
    # what refuses every live write while `not_live` waits (a mapping's `supersedes` put wrong: `held_back()`), so
    # that none writes them until a person mends the mapping; None where nothing does
    held_back: PrecedenceInvalid | None = field(default=None, compare=False)
    left_out: tuple[LeftOut, ...] = ()  # its records shown without a contact detail the source gave
    # its records whose every contact detail a sync left out a maintainer has since added: shown with them, counted
    # apart, and listed still, since the source gives values that are none (worth asking it to correct them)
    left_out_added: tuple[LeftOut, ...] = ()
    # an ORUK feed's file that has left the feed folder: no longer configured, so no run of it will come, and its
    # records stay as its last applied run left them; None for a source still configured
    removed_from: Path | None = None

    @property
    def configured(self) -> bool:
        return self.removed_from is None

    @property
    def run_needs_a_person(self) -> bool:
        """A run stopped at the threshold waits for a decision; one that failed (a key refused, a source down
        or answering what is not its listing) fails again each night until someone looks, while the directory
        goes stale: either way the last run did not bring it up to date. Not for a source no longer configured:
        no run of it will come to bring it up to date, and its last run stays to be read."""
        return self.configured and self.last_run is not None and self.last_run.outcome in ("stopped", "failed")

    @property
    def not_yet_shown(self) -> NotYetShown | None:
        """Its applied changes that no live write shows until a person mends the mapping that refuses them
        (`held_back`), in the words a sync or decision so cut short says (`NotYetShown`: the mapping's file and key,
        and that the index follows once it is put right). Before, sync-status and the Sources page said the next
        sync, review decision or server start would write them, which each refused."""
        return not_yet_shown(self.not_live, self.held_back)

    @property
    def needs_a_person(self) -> bool:
        """Its last run needs a decision or a fix (`run_needs_a_person`), or what it applied waits on a mapping to
        be mended (`not_yet_shown`): `rehabmap sync-status`'s exit status 3, and the Sources page's callout."""
        return self.run_needs_a_person or self.not_yet_shown is not None

    @property
    def still_shown(self) -> bool:
        """No longer configured, yet records of it are shown or await review, as its last applied run left them,
        until a person retires them (`indexer.sync.connectors.retire_command`): sync-status and the keepers'
        Sources page say how."""
        return not self.configured and bool(self.active or self.awaiting_review)

    @property
    def remedy(self) -> str | None:
        """What a person does about the source now, where it needs anything (`needs_a_person`, or records or fetched
        ones a feed no longer configured left): the words `rehabmap sync-status` says, given to monitoring in
        `--json` too, which named none (an alert that said what failed, not what to run); its run's, then the
        mapping's to mend where one holds its changes back."""
        remedies = (self.run_remedy, for_operator(self.not_yet_shown) if self.not_yet_shown else None)
        return "; ".join(filter(None, remedies)) or None

    @property
    def run_remedy(self) -> str | None:
        """What a person does about its last run, or a feed no longer configured's records (sync-status's FAILED)."""
        if not self.configured:
            if self.still_shown:
                return f"'{retire_command(self.source)}' retires its records"
            return (f"'{discard_command(self.source)}' drops what its unfinished run fetched" if self.unfinished_since
                    else None)
        if not self.run_needs_a_person or self.last_run is None:
            return None
        if self.last_run.outcome == "stopped":
            return self.last_run.remedy or self.last_run.stopped  # a run stopped before its remedy was kept: its words
        return f"fix what the error names, then {run_again(self.source, self.cursor.get('files') or ())}"

    def to_dict(self) -> dict[str, Any]:
        """For `sync-status --json`: the feed file's path is the text's to name, `configured` says it is gone; the
        refusal that holds its applied changes back, with the mapping file (`held_back`, null where none does)."""
        said = asdict(replace(self, held_back=None))
        del said["removed_from"]
        return said | {"remedy": self.remedy, "configured": self.configured,
                       "held_back": for_operator(unshown.refused) if (unshown := self.not_yet_shown) else None}


def _last_run(store: SyncStore, source: str) -> LastRun | None:
    run = store.last_run(source)
    if run is None:
        return None
    report = run.report  # summarised: each list of records as its length
    # not_fetched: listed as unchanged since last read, so not fetched again (`rehabmap sync oruk`'s later runs):
    # without it a run that kept 817 records as they were read "fetched 2" and nothing else.
    counts = {"fetched": int(report.get("fetched", 0)), "not_fetched": int(report.get("not_fetched", 0)),
              **{name: int(report.get(name) or 0) for name in _COUNTS}}
    return LastRun(run.outcome, run.started_at, run.finished_at, counts, report.get("error"),
                   report.get("stopped"), int(report.get("discarded", 0)), report.get("retired_reason"),
                   report.get("remedy"), tuple(report.get("warnings", ())))


class NotLive(NamedTuple):
    """What the live index or its coverage claims have not yet followed (a run or a review decision was killed
    between; the next one, or a server's start, writes them): per source, the applied changes (`changes`: records,
    and a run's coverage claims due), and how many of them, in the whole store, are `records`. Only writing records
    reads the mappings (`LiveIndex.catch_up`), so claims alone due are made whatever a mapping says (`held_back`)."""

    changes: Counter[str]
    records: int

    @property
    def total(self) -> int:
        """Every applied change not yet followed, of every source (/health's `not_live`)."""
        return sum(self.changes.values())


def not_live(store: SyncStore) -> NotLive:
    """What the live index or its coverage claims have not yet followed (`NotLive`), read in one connection."""
    changed, due = store.changed_since_meta(LIVE_PUBLISHED, COVERAGE_DUE + "sync:")
    behind = Counter(changed)
    behind.update(key[len(COVERAGE_DUE + "sync:"):] for key in due)
    return NotLive(behind, sum(changed.values()))


def held_back(records: int) -> PrecedenceInvalid | None:
    """What refuses every live write while the live index lacks `records` applied records (`NotLive.records`), so
    that no sync, review decision or server start writes them, nor any coverage claims due after them, until a person
    mends it: a mapping's `[source] supersedes` put wrong, read as each live write reads it (`source_precedence`, some
    1 ms); None where nothing does, or no record is behind (then nothing is read). Coverage claims alone due are made
    without the mappings, so nothing holds them back: before, they were said held back (sync-status's exit status 3)
    until the first try made them. The one home of the fact for `sync-status`, the keepers' Sources page and
    /health."""
    if not records:
        return None
    try:
        source_precedence()
    except PrecedenceInvalid as refused:
        return refused
    return None


def not_yet_shown(behind: int, refused: PrecedenceInvalid | None, *, in_all: bool = False) -> NotYetShown | None:
    """The `behind` applied changes that `refused` (`held_back`) keeps from the live index, in the words a sync or
    decision so cut short says (`NotYetShown`; `in_all`: said as the whole store's, `applied_stored`); None where
    nothing is behind or nothing refuses them."""
    if not behind or refused is None:
        return None
    return NotYetShown(applied_stored(behind, in_all=in_all), refused)


def held_back_in(store: SyncStore) -> NotYetShown | None:
    """All the store's applied changes that a mapping keeps from the live index (`not_live`, `held_back`), in
    `not_yet_shown`'s words: what a keepers' page says after a review decision or an upload whose live write was
    refused, as the Sources page says it of each source, but said as the store's in all ("In all, 3 applied changes
    are stored, …"): before, a keeper could read the count as that decision's or upload's own. None where nothing is
    held back (any more)."""
    behind = not_live(store)
    return not_yet_shown(behind.total, held_back(behind.records), in_all=True)


def sync_status(store: SyncStore, source: str | None = None, *, per_page: int | None = None,
                pages: Mapping[str, int] | None = None,
                removed: Callable[[str], Path | None] = lambda _source: None) -> list[SourceReport]:
    """Every source the store has heard of, by the name each run is recorded under (`oruk-<feed>`,
    `cqc-directory`, a mapped file's source ...), or only the one named, each with its feed file if that has left
    the feed folder (`removed`: the settings' to say, `indexer.sync.connectors.removed_feeds`). The database counts
    the records and gives only those shown without a detail: a page visit reads what it shows, not every record.
    Each source's `left_out` and `left_out_added` list them all (`rehabmap sync-status`) or, with `per_page`, only
    those on one page of its list, the first or the one `pages` names (`SyncStore.shown_left_out`; the keepers'
    Sources page, which says the totals `SyncStore.left_out_counts` gives)."""
    counts = store.counts(source)
    facts = store.enrichment_counts()
    behind = not_live(store)
    refused = held_back(behind.records)
    left = store.shown_left_out(source, per_page=per_page, pages=pages)
    dated = _dated(store, {(r.service_id, d.field): r.overlaid[d.field] for r in left for d in r.left_out
                           if r.overlaid.get(d.field)})
    left_out: dict[tuple[str, bool], list[LeftOut]] = {}  # by source, and whether every detail was added since
    for r in left:
        entry = LeftOut(r.service_id, r.name, tuple(d.said for d in r.left_out), tuple(d.field for d in r.left_out),
                        added_by_maintainer(r.service_id, r.left_out, r.overlaid, dated))
        left_out.setdefault((r.connector, len(entry.added) == len(entry.details)), []).append(entry)
    found = []
    for state in store.sources():
        if source is not None and state.source != source:
            continue
        name = state.source
        count = counts.get(name, SourceCounts(0, 0, 0))
        found.append(SourceReport(name, state.last_success_at, state.last_complete_at, state.state,
                                  count.shown, count.retired, count.held, facts.get(name, 0),
                                  _last_run(store, name), state.run_started_at, state.staged, behind.changes[name],
                                  refused, tuple(left_out.get((name, False), ())),
                                  tuple(left_out.get((name, True), ())), removed(name)))
    return found


_NONE = object()  # no value a maintainer added (an audit row's may be None)


def _dated(store: SyncStore, added: Mapping[tuple[str, str], Any]) -> dict[tuple[str, str], date]:
    """For each (service, field) a maintainer gave the value it maps to, the day of the latest audit row that set
    it (the row `AuditLog.last_change_setting` finds), read in one query for them all."""
    days = {}
    for row in AuditLog(store.database).of_resources("service", sorted({service_id for service_id, _ in added})):
        if added.get((row.resource_id, row.field), _NONE) == row.new:
            days[row.resource_id, row.field] = row.day  # oldest first: the latest stays
    return days


def added_by_maintainer(service_id: str, details: Sequence[LeftOutDetail], overlaid: Mapping[str, Any],
                        dated: Mapping[tuple[str, str], date]) -> tuple[AddedByMaintainer, ...]:
    """Of the contact details a sync left out of a record (`details`), those a maintainer has since added by hand:
    the maintainers' overlay (`overlaid`, its fields for the service) gives the field a value, which every write
    lays over the source's record (`rehabmap.index.base.overlay_record`). The one rule `rehabmap sync-status` and
    the keepers' Sources page follow; before it, a record a maintainer had given a phone was said to be shown
    without one. Each is dated by the audit row of the edit that set the value (`dated`, by `_dated`)."""
    return tuple(AddedByMaintainer(d.field, day.isoformat() if (day := dated.get((service_id, d.field))) else None)
                 for d in details if overlaid.get(d.field))
