"""`rehabmap index SOURCE...`: a new index from the sources, with the maintainers' edits laid over it, swapped in."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.command("index")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Column mapping (TOML) for a generic CSV source.")
@click.option("--max-drop-share", type=click.FloatRange(0.0, 1.0), default=None,
              help="The largest share (0 to 1) of the live services the new index may drop "
                   "[default: REHABMAP_INDEX_MAX_DROP_SHARE, 0.2].")
@click.option("--force", is_flag=True, help="Swap the new index in even if it drops more than that.")
@click.option("--force-queue", is_flag=True,
              help="Apply the rows held for review to the review queue even if they change or retire more than "
                   "the allowed share of a source's held records [REHABMAP_SYNC_MAX_CHANGE_SHARE, 0.25].")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes that prepare and store the rows of an import of 10,000 rows or more, each in part "
                   "files the new index is copied from; 1 prepares them in this process. The index and the report "
                   "are the same either way [default: the cores this process may use].")
def index_command(sources: tuple[Path, ...], mapping: Path | None, max_drop_share: float | None, force: bool,
                  force_queue: bool, progress: bool, workers: int | None) -> None:
    """Build a new index from SOURCES (ORUK JSON, CQC CSV/JSON, mapped CSV, curated tables), the curated
    tables uploaded through the maintainers' pages and the synced records, and swap it in.

    Nothing is swapped in (exit status 2, the live index unchanged) when a source cannot be read at all,
    when no service is left to index, or when the new index would drop more than the allowed share of
    the live services without --force. The rows held for review go on to the review queue once the index is
    live; a source's run there that would change or retire more than the allowed share of its held records
    stops (exit status 3) without --force-queue: --force accepts only a loss from the index. A run there whose
    live write a mapping refuses is reported, then said so on an error line (exit status 2); one that fails (the
    store's disk full) is named on an error line after the reports, the new index live (exit status 2)."""
    from app.rebuild import rebuild_index
    from cli.maintain import _actor
    from cli.sync import end_runs
    from indexer.pipeline import ImportRefused, IndexReport
    from rehabmap.config import get_settings

    def echo(report: IndexReport) -> None:
        for line in report.summary_lines():
            click.echo(line)

    try:
        rebuilt = rebuild_index(get_settings(), sources, actor=f"rehabmap index, {_actor()}", mapping=mapping,
                                force=force, max_drop_share=max_drop_share, progress=progress and sys.stderr.isatty(),
                                force_queue=force_queue,
                                workers=len(os.sched_getaffinity(0)) if workers is None else workers)
    except ImportRefused as refused:
        echo(refused.report)
        raise
    echo(rebuilt.report)
    end_runs("rehabmap index", rebuilt.queued)
