"""Opens what a sync or a review needs from the one settings object: the store, the live index, the
geography, the connectors. The CLI (and later the maintainers' pages) call these, and nothing else."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.pipeline import GeographyPlacer, IndexReport, Placer, build_index
from indexer.precedence import PrecedenceInvalid
from indexer.rows import Held
from indexer.sync.file_candidates import by_source
from indexer.sync.items import Connector
from indexer.sync.live import EARLIER_STORED, LiveIndex, NotYetShown
from indexer.sync.rebuild import synced_rows
from indexer.sync.review import ReviewQueue
from indexer.sync.runner import (
    DEFAULT_MAX_CHANGE_SHARE,
    RunNotShown,
    RunNotStarted,
    RunNotWritten,
    SyncReport,
    SyncRunner,
    reprepare_due,
)
from indexer.sync.store import SyncStore
from rehabmap.config import Settings
from rehabmap.errors import DomainError, for_operator, tell_operator
from rehabmap.maintain.store import Directory, store_of
from rehabmap.maintain.edits import OverlayWriter

if TYPE_CHECKING:
    from rehabmap.state import AppState


log = logging.getLogger("rehabmap.api")
_THEN_INDEX = "Check the file, then run 'rehabmap index' again with --force-queue to apply it."


def open_store(settings: Settings) -> SyncStore:
    return SyncStore(store_of(settings))


def open_live(settings: Settings, placer: Callable[[], Placer], state: AppState | None = None) -> LiveIndex:
    """The live index of the configured backend; with none built yet, the first write builds it from the
    directory (synced records and the maintainers' own services). `state`: a server's open parts, whose
    backend (loaded once, and kept up with every write) and maintainers' store are used instead of opening
    new ones, as a command does once: a new embedded backend loads the whole index on its first read (some
    1.5 s and a second copy in memory at 100k services), which a server would pay on every review decision.
    A command's first finishes a rebuild killed once its index went live (`finish_interrupted`, as a server's start
    does): before, a sync or review decision after it let the store learn the index was live, but its uploaded
    table, curated coverage claims and sources waited for a server's start or the next rebuild."""
    from app.parts import open_backend, open_writer
    from app.pending_rebuild import finish_interrupted

    if state is None:
        finish_interrupted(settings)
    writer = open_writer(settings)
    directory = (state.directory if state is not None else None) or Directory.from_settings(settings)

    def build() -> IndexReport:
        return build_index(synced_rows(store_of(settings)), placer(), OverlayWriter(writer, directory),
                           progress=False)

    return LiveIndex(state.backend if state is not None else open_backend(settings), writer, directory, build)


def converge(state: AppState) -> int:
    """At a server's start, and whenever it finds its live index behind the store (`app.converge`): what a sync
    or a review decision committed and was killed before the live index and the coverage claims followed
    (`LiveIndex.converge`) is finished here, so a directory converges without a person and without waiting for
    the next run. With no index built yet there is nothing to serve, and the next sync builds it. Returns how
    many records were written (logged: a crash or a store migration came before)."""
    store = SyncStore.served(state)
    if store is None or state.directory is None:
        return 0
    live = open_live(state.settings, partial(_placer, state.settings), state)
    try:
        reprepare_due(store, partial(_placer, state.settings))  # once after an upgrade (migration 14)
        written = live.follow(store, earlier_unshown) if live.exists() else 0
    except NotYetShown as unshown:
        # A mapping's `supersedes` put wrong, met at the start and at a look that finds it or the store changed since
        # its last refusal (`app.converge`; the looks between tell it in these words, not trying): told as any
        # problem with a file of the server's is, once a minute at most. Before, each look logged it again.
        tell_operator(unshown)
        return 0
    except Exception as exc:  # noqa: BLE001 - a search cluster that is down must not stop the server (starting)
        # A domain error's words and file are the operator's; any other's type alone (a search client's may quote
        # its URL).
        log.warning("synced records not checked against the live index: %s",
                    for_operator(exc) if isinstance(exc, DomainError) else type(exc).__name__)
        return 0
    if written:  # the store's word the live index had not yet followed: not always a crash (migration 13)
        log.warning("wrote %s the live index lacked (a sync or review decision cut short, or a store migration)",
                    "1 synced record" if written == 1 else f"{written} synced records")
    return written


def earlier_unshown(refused: PrecedenceInvalid) -> NotYetShown:
    """What a catch-up (`converge`) a mapping refused tells the operator, in one set of words whether it was
    refused or, nothing having changed since, not tried again (`app.converge.Converger.look`): the operator's log
    tells one problem once a minute at most, which two wordings would make two."""
    return NotYetShown(EARLIER_STORED, refused)


def _placer(settings: Settings) -> Placer:
    from app.parts import open_geography

    return GeographyPlacer(open_geography(settings))


@dataclass(frozen=True)
class FailedRun:
    """A connector's run that failed (recorded so by the runner, for `sync-status`). `error` ended it: a source's
    (a `DomainError`, said in one line) or a fault of rehabmap's own (its traceback is for a report). `warnings`:
    what its configuration says that it does not read (`Connector.warnings`), said with the error, since a key
    misspelt (`trust_cout`) may be why it failed."""

    source: str
    error: Exception
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceRuns:
    """What `rehabmap sync SOURCE`, or the review queue's runs of `rehabmap index`'s held rows, came to: the report of
    each connector's run that ended, each that failed, and of those that ended, each whose live write was refused
    (`RunNotShown`: stored, not yet shown; a person must mend a mapping) and each whose live write failed otherwise
    (`RunNotWritten`: stored, not yet shown; the index was unavailable, and the next live write catches it up).
    `after_rebuild`: the review queue's runs, after the rebuild went live, where one whose start could not write the
    index (`RunNotStarted`) is also said as unwritten (`ran`)."""

    reports: list[SyncReport]
    failed: list[FailedRun]
    unshown: list[RunNotShown] = field(default_factory=list)
    unwritten: list[RunNotWritten | RunNotStarted] = field(default_factory=list)
    after_rebuild: bool = False

    def ran(self, run: Callable[[], SyncReport]) -> None:
        """The report of `run`, one connector's run, kept whether or not its live write was refused or failed: one
        so cut short applied (or stopped), its report stands and why its live write did not happen is named with it.
        After a rebuild, a run cut short at its start by the index unavailable since the swap is kept with the
        unwritten (`RunNotStarted`, its own words: nothing of it applied, the next rebuild stores its rows): the new
        index is live, so the command exits 4, not 2's "live index unchanged", and the upload page says its rows are
        not stored, where before it raised out of the rebuild: no report printed, exit status 2, the page a 503
        advising a command. A sync's stays a failed run (exit status 2)."""
        try:
            self.reports.append(run())
        except RunNotShown as unshown:
            self.reports.append(unshown.report)
            self.unshown.append(unshown)
        except RunNotWritten as unwritten:
            self.reports.append(unwritten.report)
            self.unwritten.append(unwritten)
        except RunNotStarted as unstarted:
            if not self.after_rebuild:
                raise
            self.unwritten.append(unstarted)

    def ran_or_failed(self, connector: Connector, run: Callable[[], SyncReport]) -> None:
        """`ran`, and a run that failed (its error recorded by the runner) kept as failed, for the command to name
        at its end, after the reports of the others: one council's feed down, a store's disk full."""
        try:
            self.ran(run)
        except Exception as exc:  # noqa: BLE001 - the runner recorded it; the command names it at its end
            self.fail(connector, exc)

    def fail(self, connector: Connector, error: Exception) -> None:
        """The connector's run failed with `error`, for the command to name at its end."""
        self.failed.append(FailedRun(connector.name, error, connector.warnings))

    def failed_alike(self) -> list[list[FailedRun]]:
        """The failed runs grouped by the error that ended them, the groups in the order of each one's first run
        and each group's runs in run order: one error ends every run where the store or the live index could not be
        opened for them (`hold_for_review`), and its traceback is said once, not once a source."""
        alike: dict[int, list[FailedRun]] = {}
        for failure in self.failed:
            alike.setdefault(id(failure.error), []).append(failure)
        return list(alike.values())


def sync_source(settings: Settings, source: str, *, actor: str, dry_run: bool = False, force: bool = False,
                full: bool = False, max_change_share: float = DEFAULT_MAX_CHANGE_SHARE,
                progress: bool = False) -> SourceRuns:
    """`rehabmap sync SOURCE`: each of the source's connectors run in turn (ORUK has one per feed), each on its
    own: one that fails (a council's feed down, a bug its answer finds) or cannot start (its feed file unreadable)
    is recorded as failed and named, and the others are still run, since one broken council must not keep every
    other one stale. A dry run works on a throwaway copy of the store and leaves the live index alone: it writes
    nothing."""
    from indexer.sync.connectors import runs_for

    chosen, unusable = runs_for(source, settings)
    placer = _placer(settings)
    with tempfile.TemporaryDirectory(prefix="rehabmap-dry-run-") as scratch:
        store = SyncStore.scratch_copy(store_of(settings), Path(scratch)) if dry_run else open_store(settings)
        runner = SyncRunner(store, placer, None if dry_run else open_live(settings, lambda: placer), actor=actor,
                            progress=progress, folders=settings.own_folders)
        runs = SourceRuns([], [])
        for error in unusable:
            runner.cannot_start(error.source, error, error.ignored, dry_run=dry_run)
            runs.failed.append(FailedRun(error.source, error, error.ignored))
        for connector in chosen:
            runs.ran_or_failed(connector, partial(runner.run, connector, dry_run=dry_run, force=force, full=full,
                                                  max_change_share=max_change_share))
        return runs


def hold_for_review(settings: Settings, held: Sequence[Held], placer: Placer, *, actor: str,
                    force: bool = False) -> SourceRuns:
    """After `rehabmap index` went live: the rows it held for review into the queue, one run per source
    (`indexer.sync.file_candidates`). A run that would change more than the allowed share of a source's held
    records stops, as a sync does, unless `force` (`rehabmap index --force-queue`: its `--force` accepts a
    loss from the index, a check of its own). `placer` is the rebuild's: a geography of its own loaded the
    boundaries a second time (~0.15 s of CPU). A run whose live write a mapping refuses (`RunNotShown`) is kept
    with its report, as a sync's is, and the next source's run goes on: the rebuild read the mappings before it
    began, so only mappings put wrong since (an edit during a long import) refuse it; before, the refusal ended the
    command, the new index live and its report unprinted. A run that fails (the store's disk full, its database
    down, a fault of rehabmap's) is kept as failed, as a sync's is: before, it ended the command as if the new index
    had not gone live ("then run the command again", exit status 2), with no report printed. So is each run where
    the store or the live index cannot be opened for them (its database down since the swap): before, that ended
    the command so, though the index was live."""
    from indexer.sync.connectors import source_titles

    runs = SourceRuns([], [], after_rebuild=True)
    try:
        store = open_store(settings)
        runner = SyncRunner(store, placer, open_live(settings, lambda: placer), actor=actor,
                            folders=settings.own_folders)
        recorded = store.titles()
    except Exception as exc:  # noqa: BLE001 - the new index is live: each run failed, named after the index's report
        for connector in by_source(held, source_titles(settings.oruk_feeds_dir)):
            runs.fail(connector, exc)
        return runs
    for connector in by_source(held, source_titles(settings.oruk_feeds_dir, recorded)):
        runs.ran_or_failed(connector, partial(runner.run, connector, force=force,
                                              max_change_share=settings.sync_max_change_share, then=_THEN_INDEX))
    return runs


def retire_removed(settings: Settings, source: str, *, actor: str, dry_run: bool = False) -> SyncReport:
    """`rehabmap sync oruk --retire-removed oruk-<feed>`: every record of a feed whose file has left the feed folder
    retired by a person, with why and the date, audited, the live index following (`SyncRunner.retire_all`); a dry
    run says what it would retire and writes nothing. The public reads that rehabmap no longer reads the feed, by the
    name people know it by; the operator's why (its file has left the feed folder) is the report's and the audit
    log's: before, a service's page said "its feed file, bristol.toml, has left rehabmap's feed folder". Refused for
    a feed still configured (`feed_removed`), and for a name no sync has run under: a name mistyped would retire
    nothing, and say so as if done."""
    from indexer.sync.connectors import UnknownSource, feed_removed

    path = feed_removed(source, settings)
    store = open_store(settings)
    names = store.names()
    if source not in names:
        raise UnknownSource(f"No sync of '{source}' has run, so it has no record to retire (sources run so far: "
                            f"{', '.join(names) or 'none yet'}).", field="retire_removed")
    placer = _placer(settings)
    runner = SyncRunner(store, placer, None if dry_run else open_live(settings, lambda: placer), actor=actor,
                        folders=settings.own_folders)
    title = store.titles().get(source)  # its file is gone: only the title its last applied run had can name it
    listed = f"{title}, where it was listed" if title else "the directory it was listed in"
    return runner.retire_all(source, f"rehabmap no longer reads {listed}",
                             detail=f"no longer synced: its feed file, {path.name}, has left rehabmap's feed folder",
                             dry_run=dry_run)


@dataclass(frozen=True)
class Discarded:
    """What `discard_run` dropped of one connector's unapplied run."""

    dropped: int      # fetched records
    configured: bool  # whether a run of it will come: not for a feed whose file has left the feed folder


def discard_run(settings: Settings, source: str) -> dict[str, Discarded]:
    """Drop what an unapplied run of each of the source's connectors fetched; per connector, how many, and whether
    it is still configured (one of the source's connectors now: `connector_names`), as the command says which. Those
    of a feed no longer configured too, whose runs the store recorded under `source` (`command_source`): no run of
    it will come to go on from what it fetched, and before, only the feeds whose files were there were looked at."""
    from indexer.sync.connectors import command_source, connector_names

    store = open_store(settings)
    names = connector_names(source, settings)
    gone = [name for name in store.names() if command_source(name) == source and name not in names]
    return {name: Discarded(store.abandon_run(name), name not in gone) for name in names + gone}


def open_review(settings: Settings, *, live: bool = True, state: AppState | None = None) -> ReviewQueue:
    """The queue; decisions go on to the live index unless `live` is False (reading only), through the
    server's own backend and stores when `state` gives them (see `open_live`, `SyncStore.served`: a page opens
    nothing again)."""
    from indexer.sync.connectors import source_titles

    store = (SyncStore.served(state) if state is not None else None) or open_store(settings)
    titles = state.source_titles if state is not None else source_titles(settings.oruk_feeds_dir, store.titles())
    return ReviewQueue(store, open_live(settings, partial(_placer, settings), state) if live else None,
                       source_titles=titles)
