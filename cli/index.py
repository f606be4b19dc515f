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
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def index_command(sources: tuple[Path, ...], mapping: Path | None, progress: bool) -> None:
    """Build a new index from SOURCES (ORUK JSON, CQC CSV/JSON, mapped CSV) and swap it in."""
    from indexer.pipeline import GeographyPlacer, build_index, chain
    from indexer.sources import load_source
    from rehabmap.maintain.store import Directory
    from rehabmap.maintain.edits import OverlayWriter
    from rehabmap.index.base import IndexWriter
    from app.parts import open_geography, open_writer

    settings = get_settings()
    placer = GeographyPlacer(open_geography(settings))
    rows = chain(*(load_source(path, mapping=mapping) for path in sources))
    live = open_writer(settings)
    directory = Directory.existing(settings.directory_path)
    writer: IndexWriter = live
    if directory is not None:  # the maintainers' edits are laid over the new index before it goes live
        writer = OverlayWriter(live, directory)
    report = build_index(rows, placer, writer, progress=progress and sys.stderr.isatty())
    report.warnings += getattr(writer, "warnings", [])
    for line in report.summary_lines():
        click.echo(line)
