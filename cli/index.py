"""`rehabmap index SOURCE...`: a new index from the sources, with the maintainers' edits laid over it, swapped in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rehabmap.config import get_settings


@click.command("index")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Column mapping (TOML) for a generic CSV source.")
@click.option("--max-drop-share", type=click.FloatRange(0.0, 1.0), default=None,
              help="The largest share (0 to 1) of the live services the new index may drop "
                   "[default: REHABMAP_INDEX_MAX_DROP_SHARE, 0.2].")
@click.option("--force", is_flag=True, help="Swap the new index in even if it drops more than that.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def index_command(sources: tuple[Path, ...], mapping: Path | None, max_drop_share: float | None, force: bool,
                  progress: bool) -> None:
    """Build a new index from SOURCES (ORUK JSON, CQC CSV/JSON, mapped CSV) and swap it in.

    Nothing is swapped in (exit status 2, the live index unchanged) when a source cannot be read at all,
    when no service is left to index, or when the new index would drop more than the allowed share of
    the live services without --force."""
    from app.parts import open_backend, open_geography, open_writer
    from indexer.pipeline import GeographyPlacer, ImportRefused, IndexReport, build_index, chain
    from indexer.sources import load_source
    from indexer.sync.rebuild import record_curated_coverage, with_directory
    from rehabmap.index.base import IndexWriter
    from rehabmap.maintain.edits import OverlayWriter
    from rehabmap.maintain.store import Directory

    def echo(report: IndexReport) -> None:
        report.warnings += getattr(writer, "warnings", [])
        for line in report.summary_lines():
            click.echo(line)

    settings = get_settings()
    placer = GeographyPlacer(open_geography(settings))
    rows = with_directory(settings.directory_path, sources, chain(*(load_source(path, mapping=mapping)
                                                                    for path in sources)))
    live_writer = open_writer(settings)
    directory = Directory.existing(settings.directory_path)
    writer: IndexWriter = live_writer
    if directory is not None:  # the maintainers' edits are laid over the new index before it goes live
        writer = OverlayWriter(live_writer, directory)
    try:
        report = build_index(rows, placer, writer, live=open_backend(settings), force=force,
                             max_drop_share=settings.index_max_drop_share if max_drop_share is None else max_drop_share,
                             progress=progress and sys.stderr.isatty())
    except ImportRefused as refused:
        echo(refused.report)
        raise
    record_curated_coverage(settings.directory_path, sources)
    echo(report)
    if report.held:  # rows whose type their source only suggests: into the review queue, now the index is live
        from app.sync import hold_for_review
        from cli.maintain import _actor

        queued = hold_for_review(settings, report.held, actor=f"rehabmap index, {_actor()}", force=force)
        for line in (line for run in queued for line in run.summary_lines()):
            click.echo(line)
        if any(run.stopped for run in queued):
            sys.exit(3)
