"""`rehabmap` command line: each command is a thin wrapper over one library function."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import click

from rehabmap.config import get_settings
from rehabmap.errors import DomainError
from rehabmap.matching import MatchRequest, MatchResponse, match
from rehabmap.taxonomy import parse_need, parse_type
from rehabmap.textgrid import grid


class _Group(click.Group):
    """Domain errors end a command with their message and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="rehabmap")
def main() -> None:
    """Find local mental health rehabilitation resources across the whole pathway."""


@main.group()
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

    settings = get_settings()
    summary = build_geodata(source or settings.data_dir, out or settings.geodata_dir)
    click.echo(summary)


@main.command("index")
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
    from indexer.pipeline import GeographyPlacer, ImportRefused, IndexReport, build_index, chain
    from indexer.sources import load_source
    from indexer.sync.rebuild import record_curated_coverage, with_directory
    from rehabmap.directory import Directory
    from rehabmap.edits import OverlayWriter
    from rehabmap.index.base import IndexWriter
    from rehabmap.runtime import open_backend, open_geography, open_writer

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
        from indexer.sync.wiring import hold_for_review
        from rehabmap.maintain_cli import _actor

        queued = hold_for_review(settings, report.held, actor=f"rehabmap index, {_actor()}", force=force)
        for line in (line for run in queued for line in run.summary_lines()):
            click.echo(line)
        if any(run.stopped for run in queued):
            sys.exit(3)


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@main.command("match")
@click.option("--postcode", help="Home postcode (full, sector or district).")
@click.option("--place", help="Home town or place name.")
@click.option("--lat", type=float)
@click.option("--lon", type=float)
@click.option("--need", "needs", multiple=True, help="A need to meet (repeat, or comma-separate).")
@click.option("--type", "types", multiple=True, help="Service type(s); omit or 'any' for any suitable option.")
@click.option("--age", type=int)
@click.option("--gender", type=click.Choice(["female", "male"]))
@click.option("--max-km", type=float, help="Only services within this distance.")
@click.option("--own-icb", is_flag=True, help="Only services inside the person's ICB.")
@click.option("--accepting", is_flag=True, help="Only services accepting referrals.")
@click.option("--confirmed", is_flag=True, help="Only services that confirm every need (no unknowns).")
@click.option("--current-postcode", help="Postcode of the current placement, to show distance saved.")
@click.option("--limit", type=int, default=10, show_default=True)
def match_command(postcode, place, lat, lon, needs, types, age, gender, max_km, own_icb, accepting,
                  confirmed, current_postcode, limit) -> None:
    """Rank the options nearest a person's home that meet their needs."""
    from rehabmap.coverage import CoverageStore, coverage_map, none_found_lines
    from rehabmap.runtime import open_backend, open_geography

    settings = get_settings()
    geography = open_geography(settings)
    home = geography.resolve(postcode=postcode, place=place, lat=lat, lon=lon)
    type_codes = [t for t in _split(types) if t.lower() != "any"]
    placement = None
    if current_postcode:
        current = geography.resolve(postcode=current_postcode)
        placement = (current.lat, current.lon)
    request = MatchRequest(
        needs=tuple(parse_need(n) for n in _split(needs)),
        types=tuple(parse_type(t) for t in type_codes) or None, age=age, gender=gender,
        max_distance_km=max_km, own_icb_only=own_icb, accepting_only=accepting, needs_confirmed=confirmed,
        limit=limit, current_placement=placement)
    response = match(open_backend(settings), home, request, date.today())
    click.echo(f"Home: {home.label} — {home.areas.icb_name} ({home.areas.icb_code}), {home.areas.lad_name}")
    click.echo(render_table(response))
    for line in none_found_lines(coverage_map(CoverageStore(settings.directory_path), settings.data_dir),
                                 home.areas.codes(), [t.service_type for t in response.summary],
                                 [r.service.service_type for r in response.results], request.subtypes or ()):
        click.echo(line)


def render_table(response: MatchResponse) -> str:
    """A fixed-width table a clinician can paste into notes."""
    if not response.results:
        return "No services meet these needs. Try a larger distance or fewer needs."
    saved = response.current_placement_km is not None
    header = ["#", "km", "ICB", "type", "service", "meets", "unknown", "capacity"] + (["saved km"] if saved else [])
    rows = [header]
    for i, r in enumerate(response.results, 1):
        row = [str(i), f"{r.distance_km:.1f}", "in" if r.in_home_icb else "out", r.service.service_type.value,
               r.service.name[:48], ",".join(r.matched_needs) or "-", ",".join(r.unknown_needs) or "-",
               r.capacity or "unknown"]
        if saved:
            row.append(f"{r.distance_saved_km:.1f}")
        rows.append(row)
    lines = [grid(rows), ""]
    lines += [f"{i}. {r.service.name}: {r.explanation}" for i, r in enumerate(response.results, 1)]
    return "\n".join(lines)


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads its own copy of the embedded index).")
def serve(host: str, port: int, workers: int) -> None:
    """Run the API (and pages) with uvicorn."""
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False)


def _register_gaps() -> None:
    from rehabmap.gaps_cli import gaps_command

    main.add_command(gaps_command)


_register_gaps()


def _register_maintain() -> None:
    from rehabmap.maintain_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_maintain()


def _register_sync() -> None:
    from rehabmap.sync_cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register_sync()
