"""`rehabmap sync` and `rehabmap review`: keeping the directory current from the national sources, and the
maintainers' decisions on what the sources only suggest. Each command is a thin wrapper over
`app.sync` (which opens the store, live index and connectors) and the library it returns."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import click

from cli.main import caller_words
from cli.maintain import _actor
from cli.textgrid import grid
from indexer.sync.connectors import SOURCES
from rehabmap.errors import InvalidValue, shorten
from rehabmap.taxonomy import ServiceType, type_words

UNWRITTEN = 4  # exit status: a run applied whose live write failed (`RunNotWritten`); it catches up with no person

if TYPE_CHECKING:
    from app.sync import SourceRuns
    from indexer.sync.review import ReviewItem
    from indexer.sync.store import ReviewState


@click.command("sync")
@click.argument("source", type=click.Choice(SOURCES))
@click.option("--dry-run", is_flag=True, help="Fetch and print the changes; write nothing (not even the cursor).")
@click.option("--force", is_flag=True, help="Apply a run that changes more than the allowed share of the source.")
@click.option("--full", is_flag=True, help="List everything again (a complete listing retires what is gone).")
@click.option("--discard", is_flag=True, help="Drop what an unfinished or stopped run fetched, and stop.")
@click.option("--retire-removed", "retire_removed", metavar="FEED",
              help="Retire every record of an ORUK feed whose file has left the feed folder (oruk-<feed>, as "
                   "sync-status names it), with the reason and date; alone, or with --dry-run.")
@click.option("--max-change", "max_change", type=click.FloatRange(0, 1),
              help="Stop when a run would change or retire more than this share of the source's records "
                   "(default: REHABMAP_SYNC_MAX_CHANGE_SHARE, 0.25).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar (on a terminal).")
def sync_command(source: str, dry_run: bool, force: bool, full: bool, discard: bool, retire_removed: str | None,
                 max_change: float | None, progress: bool) -> None:
    """Bring the directory up to date with SOURCE, and print what changed.

    A first run lists everything; later runs fetch only what changed. A killed run resumes where it stopped.
    Nothing is ever deleted: what the source drops is retired with the reason and date. Types a source only
    suggests wait in the review queue ('rehabmap review list')."""
    from app.sync import discard_run, sync_source
    from rehabmap.config import get_settings

    settings = get_settings()
    if retire_removed is not None:
        _retire(source, retire_removed, dry_run=dry_run, others=force or full or discard or max_change is not None)
        return
    if discard:
        for name, discarded in discard_run(settings, source).items():
            if discarded.configured:
                click.echo(f"{name}: dropped {discarded.dropped} fetched records of an unfinished run; the next run "
                           "starts from the last applied one")
            elif discarded.dropped:  # a feed no longer configured: named only where it had something to drop
                click.echo(f"{name}: dropped {discarded.dropped} fetched records of an unfinished run; its feed is no "
                           "longer configured, so no run of it will come")
        return
    share = max_change if max_change is not None else settings.sync_max_change_share
    runs = sync_source(settings, source, actor=f"rehabmap sync {source}, {_actor()}", dry_run=dry_run, force=force,
                       full=full, max_change_share=share, progress=progress and sys.stderr.isatty())
    end_runs(f"rehabmap sync {source}", runs, detail=dry_run)


def end_runs(command: str, runs: SourceRuns, *, detail: bool = False) -> None:
    """How `command` (`rehabmap sync SOURCE`, or `rehabmap index` for its held rows' runs) ends on its runs: their
    reports and `error:` lines (`echo_runs`, `echo_failed`), then exit status 2 for a failed run or a refused live
    write, 3 for a run stopped at the share threshold, 4 (`UNWRITTEN`) for a live write that failed; 0 else."""
    echo_runs(runs, detail=detail)
    if runs.failed:
        echo_failed(command, runs)
    if runs.failed or runs.unshown:
        sys.exit(2)
    if any(r.stopped for r in runs.reports):
        sys.exit(3)
    if runs.unwritten:
        sys.exit(UNWRITTEN)


def echo_runs(runs: SourceRuns, *, detail: bool = False) -> None:
    """Each run's report (`detail`: a dry run's diff), then an `error:` line for each whose live write was refused
    (`RunNotShown`: its report above; the operator has a mapping to mend, as for a failure) or failed otherwise
    (`RunNotWritten`: the index unavailable; the next live write catches it up): what `rehabmap sync` and the review
    queue's runs of `rehabmap index` print alike."""
    for report in runs.reports:
        for line in report.summary_lines(detail=detail):
            click.echo(line)
    for cut_short in [*runs.unshown, *runs.unwritten]:
        click.echo(f"error: {caller_words(cut_short)}", err=True)


def _retire(source: str, feed: str, *, dry_run: bool, others: bool) -> None:
    """`rehabmap sync oruk --retire-removed FEED`: the retirement's report, as a run's; one applied whose live write
    was refused (`RunNotShown`) too, above the `error:` line saying so (before, that line alone), as a sync's runs
    are said (`SourceRuns.ran`, `echo_runs`), exit status 2."""
    from app.sync import SourceRuns, retire_removed
    from rehabmap.config import get_settings

    if source != "oruk":
        raise click.UsageError(f"--retire-removed retires an ORUK feed's records: 'rehabmap sync oruk "
                               f"--retire-removed oruk-<feed>', not 'rehabmap sync {source}'.")
    if others:
        raise click.UsageError("--retire-removed is given alone, or with --dry-run.")
    runs = SourceRuns([], [])
    runs.ran(lambda: retire_removed(get_settings(), feed, actor=f"rehabmap sync oruk --retire-removed, {_actor()}",
                                    dry_run=dry_run))
    echo_runs(runs)
    if runs.unshown:
        sys.exit(2)
    if runs.unwritten:
        sys.exit(UNWRITTEN)


def echo_failed(command: str, runs: SourceRuns) -> None:
    """Each failed run of `command` (`rehabmap sync SOURCE`, or `rehabmap index` for its held rows' runs into the
    review queue) on an `error:` line of its own, named when the command ran several (ORUK's feeds, CQC's files),
    with a fault of rehabmap's own's traceback above it and a `warning:` line below it for each key of its
    configuration it does not read (`FailedRun.warnings`), and a last line naming them all: the reports of the runs
    that ended are above, so that a log read from its end does not take one council's failure for all."""
    from indexer.sync.runner import RunNotStarted

    # A run the index kept from starting after a rebuild (`SourceRuns.ran`) is one of the command's runs too: before,
    # with two failed beside it, the last line said "all 2 runs … failed".
    unstarted = [u.source for u in runs.unwritten if isinstance(u, RunNotStarted)]
    in_all = len(runs.reports) + len(runs.failed) + len(unstarted)
    several = in_all > 1
    for alike in runs.failed_alike():
        said = caller_words(alike[0].error)
        if said is None:  # its traceback once, above the first of the runs it ended (before, once a run)
            traceback.print_exception(alike[0].error)
            said = f"{type(alike[0].error).__name__}: a fault of rehabmap's own (its traceback is above): report it"
        for failure in alike:
            named = failure.source + ": " if several else ""
            click.echo(f"error: {named}{said}", err=True)
            for warning in failure.warnings:
                click.echo(f"warning: {named}{warning}", err=True)
    if several and len(runs.failed) < in_all:
        # What each of the others did, counted: before, "each of the others ran on its own, as reported" where one of
        # them had not started. "Ended": a run stopped at the change threshold is one, its report saying so.
        others = [f"{len(runs.reports)} ended, as reported"] if runs.reports else []
        if unstarted:
            others.append(f"{len(unstarted)} did not start ({', '.join(unstarted)}), as said above")
        click.echo(f"error: {len(runs.failed)} of the {in_all} runs of '{command}' failed "
                   f"({', '.join(f.source for f in runs.failed)}); {', and '.join(others)}", err=True)
    elif several:  # (before, "each of the others" named others where there were none)
        click.echo(f"error: all {len(runs.failed)} runs of '{command}' failed", err=True)


@click.command("sync-status")
@click.option("--source", help="Only this source, by the name its runs are recorded under (e.g. cqc, oruk-bristol).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for monitoring.")
def sync_status_command(source: str | None, as_json: bool) -> None:
    """Per source: last successful and complete runs, cursor, records held, records awaiting review, how the
    last run ended, any unfinished run, applied changes not yet in the live index, and a rebuild not finished (on
    stderr with --json). Exit status 3 when a source's last run stopped at the change threshold or failed, or a
    mapping put wrong holds its applied changes back from the live index (it needs a person); a rebuild failed or cut
    short leaves it 0, as a run's warnings do: the next look finishes or forgets it. Reads the store (and the
    mappings, where the index is behind); never contacts a source."""
    from indexer.sync.connectors import discard_command, removed_feeds, retire_command
    from indexer.sync.status import sync_status
    from app.pending_rebuild import unfinished
    from app.sync import open_store
    from rehabmap.config import get_settings

    settings = get_settings()
    store = open_store(settings)
    reports = sync_status(store, source, removed=removed_feeds(settings))
    if source and not reports:  # a name mistyped read as healthy: exit 0, "no sync of cqcc has run"
        ran = ", ".join(r.source for r in sync_status(store, None)) or "none yet"
        raise click.UsageError(f"No sync of '{source}' has run (sources run so far: {ran}).")
    rebuild = unfinished(settings)
    if as_json:  # the rebuild is the home's: the same in every source's entry
        rebuilding = rebuild.to_dict() if rebuild is not None else None
        click.echo(json.dumps([r.to_dict() | {"rebuild": rebuilding} for r in reports], indent=2, sort_keys=True))
    elif not reports:
        click.echo("no source has been synced yet")
    for r in reports if not as_json else ():
        click.echo(f"{r.source}: last success {r.last_success_at or 'never'}, last complete listing "
                   f"{r.last_complete_at or 'never'}; {r.active} active, {r.retired} retired, "
                   f"{r.awaiting_review} awaiting review" + (f"; {r.facts} facts for other sources' records"
                                                             if r.facts else ""))
        if r.last_run is not None:
            click.echo(f"  last run {r.last_run.outcome} at {r.last_run.finished_at}: {r.last_run.said}")
            for warning in r.last_run.warnings:
                click.echo(f"  warning: {warning}")
        if not r.configured:
            click.echo(f"  no longer configured: {r.removed_from} has left the feed folder, so it "
                       "is no longer synced; " + (
                           "its records stay as its last applied run left them until a person retires them: "
                           f"'{retire_command(r.source)}'" if r.still_shown else "none of its records is shown")
                       + "; its last run needs no person")
        elif r.last_run is not None and r.last_run.outcome == "stopped":
            click.echo(f"  STOPPED: {r.last_run.stopped}")
        elif r.run_needs_a_person:
            click.echo(f"  FAILED: nothing was applied, so it holds what the last successful run gave; {r.run_remedy}")
        if r.unfinished_since:
            click.echo(f"  unfinished run since {r.unfinished_since}: {r.staged} fetched records kept; " + (
                "the next run goes on from it" if r.configured else
                f"no run of it will come to go on from it: '{discard_command(r.source)}' drops them"))
        if r.not_yet_shown:  # no live write can write them until a person mends a mapping
            click.echo(f"  HELD BACK: {caller_words(r.not_yet_shown)}")
        elif r.not_live:
            click.echo(f"  {r.not_live} applied changes are not yet in the live index or its coverage (a run or "
                       "review decision was cut short): the next sync, review decision or server start writes them")
        for records, said in ((r.left_out, "shown without a contact detail the source gave (refused; the source's "
                                            "to correct)"),
                              (r.left_out_added, "shown with a contact detail a maintainer added by hand where the "
                                                 "source gave none usable (still refused; the source's to correct)")):
            if records:
                click.echo(f"  {len(records)} {said}:")
            for record in records:
                click.echo(f"    {record.service_id} {record.name}: {'; '.join(record.lines)}")
        click.echo(f"  cursor: {shorten(json.dumps(r.cursor, sort_keys=True), 200) if r.cursor else 'none'}")
    if rebuild is not None:  # and on stderr beside the JSON, whose list may be empty (no source synced yet)
        click.echo(rebuild.said, err=as_json)
    if any(r.needs_a_person for r in reports):
        sys.exit(3)


@click.group("review")
def review() -> None:
    """The review queue: synced records whose type is only inferred, not shown until a maintainer decides."""


_STATES = ("pending", "accepted", "rejected", "superseded")


@review.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice([*_STATES, "all"]),
              help="Which (repeat); default: pending.")
@click.option("--source", help="Only records of this source (e.g. cqc, oruk-bristol).")
@click.option("--proposed", "proposed", help="Only records proposed as this type.")
@click.option("--changed", is_flag=True, help="Only decided records whose evidence changed since the decision.")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
def review_list(states: tuple[str, ...], source: str | None, proposed: str | None, changed: bool,
                limit: int) -> None:
    """List queued records, oldest first: id, name, where, state, what the source proposes."""
    from app.sync import open_review
    from rehabmap.config import get_settings

    wanted = cast("tuple[ReviewState, ...]", _STATES if "all" in states
                  else states or (("accepted", "rejected") if changed else ("pending",)))
    queue = open_review(get_settings(), live=False)
    items = queue.items(states=wanted, source=source, proposed_type=proposed, evidence_changed=changed)
    click.echo(f"{len(items)} records ({', '.join(wanted)})" + (f"; the first {limit}:" if len(items) > limit else ""))
    shown = queue.with_alike(items[:limit])  # the others each may be, for the rows shown only
    rows = [[i.service_id, i.name[:44], i.where[:40], i.state + (" *" if i.evidence_changed else ""),
             f"{i.type_status}: {type_words(i.proposed_type, i.proposed_subtype)}",
             type_words(i.decided_type, i.decided_subtype) if i.decided_type else (i.reason or "")[:30]]
            for i in shown]
    if rows:
        click.echo(grid([["id", "name", "where", "state", "source proposes", "decision"], *rows]))
    if any(i.evidence_changed for i in items):
        click.echo("* the source's evidence changed after the decision: 'rehabmap review show ID'")
    for item in shown:
        _echo_alike(item, f"{item.service_id}: ")


def _echo_alike(item: ReviewItem, lead: str) -> None:
    """Each other record that may be the same service (`ReviewItem.alike`, worked out by `with_alike`): a hint
    for the person deciding."""
    for other in item.alike or ():
        click.echo(f"{lead}{other.lead.lower()} {other.service_id} ({other.name}): {other.why}")


@review.command("show")
@click.argument("service_id")
@click.option("--raw", is_flag=True, help="Also print the source's own record.")
def review_show(service_id: str, raw: bool) -> None:
    """Everything a maintainer needs to decide on one record: where it is, what the source proposes, and
    the evidence for it."""
    from app.sync import open_review
    from rehabmap.config import get_settings

    queue = open_review(get_settings(), live=False)
    [item] = queue.with_alike([queue.item(service_id)])
    click.echo(f"{item.service_id}  {item.name}")
    click.echo(f"  where: {item.service.get('address') or '-'} ({item.where or 'not placed'})")
    click.echo(f"  source: {item.source} record {item.source_id}{' (retired by the source)' if item.retired else ''}")
    click.echo(f"  the source proposes: {type_words(item.proposed_type, item.proposed_subtype)} "
               f"({item.type_status})")
    click.echo(f"  state: {item.state}" + (f" as {type_words(item.decided_type, item.decided_subtype)}"
                                           if item.decided_type else "")
               + (f" by {item.decided_by} at {item.decided_at}" if item.decided_by else "")
               + (f": {item.reason}" if item.reason else ""))
    if item.evidence_changed:
        click.echo("  the source's evidence CHANGED after this decision; check it and decide again if need be")
    _echo_alike(item, "  ")
    click.echo("  evidence:" if item.evidence else "  evidence: none given")
    for e in item.evidence:
        click.echo(f"    {e.source} {e.field}: '{e.value}' — {e.means}")
    if raw:
        click.echo(json.dumps(item.raw, indent=2, ensure_ascii=False, sort_keys=True))


def _chosen(service_ids: tuple[str, ...], every: bool, source: str | None, proposed: str | None
            ) -> tuple[list[str], list[ReviewItem]]:
    """The ids named, or with --all those of every pending record that the filters select (at least one filter, so
    a bulk decision is always about one kind of record), with the queue's items read for them (none for ids named:
    a decision reads each itself). `review accept --all` reads from these which have a type proposed, where it read
    the source's queue a second time."""
    from app.sync import open_review
    from rehabmap.config import get_settings

    if every == bool(service_ids):
        raise InvalidValue("Name the records (SERVICE_ID...), or give --all with --source and/or --proposed.",
                           field="service_id")
    if not every:
        return list(service_ids), []
    if source is None and proposed is None:
        raise InvalidValue("--all needs --source or --proposed, so a bulk decision covers one kind of record.",
                           field="all")
    items = open_review(get_settings(), live=False).items(source=source, proposed_type=proposed)
    return [i.service_id for i in items], items


_BULK = [click.option("--all", "every", is_flag=True, help="Every pending record the filters select."),
         click.option("--source", help="With --all: records of this source."),
         click.option("--proposed", help="With --all: records proposed as this type.")]


def _bulk(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_BULK):
        command = option(command)
    return command


@review.command("accept")
@click.argument("service_ids", nargs=-1)
@click.option("--type", "service_type", type=click.Choice([t.value for t in ServiceType]),
              help="Accept as this type (default: the type the source proposes).")
@click.option("--subtype", help="Accept as this subtype (e.g. residential_24h, imha).")
@click.option("--level", type=click.IntRange(1, 2), help="Shorthand for --type inpatient_rehab_level1/2.")
@_bulk
def review_accept(service_ids: tuple[str, ...], service_type: str | None, subtype: str | None, level: int | None,
                  every: bool, source: str | None, proposed: str | None) -> None:
    """Accept records as a type: they become searchable as it at once, and stay so through re-syncs.
    With --all, each is accepted as the type its source proposes (records with none are left)."""
    from app.sync import open_review
    from rehabmap.config import get_settings

    if every and (service_type or subtype or level):
        raise InvalidValue("--all accepts each record as the type its source proposes; name the records to accept "
                           "them as another type.", field="type")
    ids, items = _chosen(service_ids, every, source, proposed)
    queue = open_review(get_settings())
    if every:
        proposing = {i.service_id for i in items if i.proposed_type}
        left = [i for i in ids if i not in proposing]
        ids = [i for i in ids if i in proposing]
        for service_id in left:
            click.echo(f"left {service_id}: no type proposed; accept it by name with --type")
    done = queue.accept(ids, actor=_actor(), service_type=service_type, subtype=subtype, level=level) if ids else []
    for item in done:
        click.echo(f"accepted {item.service_id} ({item.name}) as {type_words(item.decided_type, item.decided_subtype)}")
    click.echo(f"{len(done)} accepted")


@review.command("reject")
@click.argument("service_ids", nargs=-1)
@click.option("--reason", required=True, help="Why (kept in the audit log), e.g. 'acute ward, not rehab'.")
@_bulk
def review_reject(service_ids: tuple[str, ...], reason: str, every: bool, source: str | None,
                  proposed: str | None) -> None:
    """Reject records: they are not shown, and stay so through re-syncs (a later change in the source's
    evidence is flagged for another look)."""
    from app.sync import open_review
    from rehabmap.config import get_settings

    ids, _ = _chosen(service_ids, every, source, proposed)
    done = open_review(get_settings()).reject(ids, actor=_actor(), reason=reason) if ids else []
    for item in done:
        click.echo(f"rejected {item.service_id} ({item.name}): {item.reason}")
    click.echo(f"{len(done)} rejected")
