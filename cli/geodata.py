"""`rehabmap geodata build`: the offline lookup files, rebuilt from the official ONS downloads."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("geodata")
def geodata() -> None:
    """Offline geography: postcodes, places, ONS areas."""


@geodata.command("build")
@click.option("--source", "source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder with the official ONS downloads (default: REHABMAP_DATA_DIR).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the lookup files (default: REHABMAP_HOME/geodata).")
def geodata_build(source: Path | None, out: Path | None) -> None:
    """Rebuild the compact lookup files from the official ONS downloads."""
    from geodata.build import build_geodata
    from rehabmap.config import get_settings

    settings = get_settings()
    summary = build_geodata(source or settings.data_dir, out or settings.geodata_dir)
    click.echo(summary.text())
