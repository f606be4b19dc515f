"""`rehabmap gaps AREA`: the commissioners' pathway scorecard in a terminal.

Only the options live here; the work and its tables are `cli.gaps_report`, imported when the command runs, so
that every other `rehabmap` command (and `--help`) starts without loading the gap analysis.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from rehabmap.gaps.options import ADDITION_FORMAT, GapOptions


@click.command("gaps")
@click.argument("area")
@click.option("--type", "types", multiple=True,
              help="Service type(s) or type:subtype to show (repeat or comma-separate); default: all.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as CSV to this file (its last columns: the services' date and the "
                   "population's census year).")
@click.option("--headers", type=click.Choice(["keys", "human"]), default="keys", show_default=True,
              help="The --csv's headers: machine keys, or the words a person reads (the web's sheet-style CSV's).")
@click.option("--smallareas-csv", type=click.Path(dir_okay=False, path_type=Path),
              help="Write every small area of AREA with its distance to the nearest service per type.")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an SVG map of AREA for the first --type (default community_rehab_team); with "
                   "AREA icb, la or county, an England map of --indicator.")
@click.option("--indicator", default="mean_km", show_default=True,
              help="Indicator for the England map (--svg of AREA icb, la or county).")
@click.option("--community-km", type=float, default=GapOptions.community_km, show_default=True,
              help="Threshold distance for community services.")
@click.option("--inpatient-km", type=float, default=GapOptions.inpatient_km, show_default=True,
              help="Threshold distance for inpatient units.")
@click.option("--furthest", type=click.IntRange(0, 1000), default=None,
              help="List the N small areas furthest from each shown type (default 10 with --type, else none).")
@click.option("--sort", default=None,
              help="For AREA icb|la|county: sort key, e.g. 'inpatient_rehab_level2.mean_km'.")
@click.option("--desc", is_flag=True, help="For AREA icb|la|county: sort descending.")
@click.option("--compare", is_flag=True,
              help="How AREA compares: each part beside England and its rank among its peers; with --type, "
                   "every area ranked.")
@click.option("--add-service", "add", multiple=True, metavar="TYPE@POSTCODE[@BEDS][@CATCHMENT]",
              help=f"What if: add a hypothetical service ({ADDITION_FORMAT}); repeatable.")
@click.option("--remove-service", "remove", multiple=True, metavar="ID",
              help="What if: remove a service by id; repeatable.")
def gaps_command(area: str, types: tuple[str, ...], csv_path: Path | None, headers: str,
                 smallareas_csv: Path | None, svg_path: Path | None, indicator: str, community_km: float,
                 inpatient_km: float, furthest: int | None, sort: str | None, desc: bool, compare: bool,
                 add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Pathway scorecard and gap indicators for AREA: an ICB, local authority or county council code or name
    (e.g. E54000054, 'West Yorkshire', Leeds, Nottinghamshire). AREA 'icb', 'la' or 'county' compares every area
    of that level, with England totals."""
    from cli.gaps_report import run_gaps

    # --indicator and --headers have defaults, so their values cannot tell whether they were given: a command that
    # does not use one refuses it if it was.
    context = click.get_current_context()
    named = frozenset(option for option in ("indicator", "headers")
                      if context.get_parameter_source(option) is not ParameterSource.DEFAULT)
    run_gaps(area, types, csv_path, headers == "human", smallareas_csv, svg_path, indicator, community_km,
             inpatient_km, furthest, sort, desc, compare, add, remove, named=named)
