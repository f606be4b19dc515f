"""`rehabmap oaps import FILE`: keep one month of NHS Digital's out-of-area placements open data, to show
beside the gaps (`rehabmap.gaps.oaps`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("oaps")
def oaps() -> None:
    """Out-of-area placements (NHS Digital open data), shown beside the pathway gaps."""


@oaps.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--month", default=None, metavar="YYYY-MM",
              help="The month the file is for, when neither its PublicationPeriod column nor its name says.")
def import_command(file: Path, month: str | None) -> None:
    """Import one monthly long-format CSV (e.g. oaps-open-data-feb-2017.csv); a month imported again is
    replaced."""
    from rehabmap.config import get_settings
    from rehabmap.gaps.oaps import OapStore, read_month

    settings = get_settings()
    result = read_month(file, settings.data_dir, month, settings.current_date())
    path = OapStore(settings.home).save(result)
    mapped = len(result.ccgs) - len(result.unmapped)
    click.echo(f"{result.month}: {len(result.ccgs)} sending CCGs ({mapped} mapped to today's sub-ICB locations "
               f"and ICBs), {len(result.receiving_providers)} receiving providers; wrote {path}")
    if result.unmapped:
        click.echo(f"Not mapped (no sub-ICB location has the code today; CCGs merged since): "
                   f"{'; '.join(f'{c.code} {c.name}' if c.name else c.code for c in result.unmapped)}")
    for bad in result.rejected:
        click.echo(f"{file.name}, line {bad.line}: {bad.reason}", err=True)
