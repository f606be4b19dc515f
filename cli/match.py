"""`rehabmap match`: the clinicians' question in a terminal, as a ranked table and one explanation per result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from cli.textgrid import grid
from rehabmap.orders import ORDERS

if TYPE_CHECKING:
    from rehabmap.coverage import Coverage
    from rehabmap.match import LeftOut, MatchRequest, MatchResponse
    from rehabmap.taxonomy import ServiceType


def _split(values: tuple[str, ...]) -> list[str]:
    """Repeated options, each of which may be a comma-separated list."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@click.command("match")
@click.option("--postcode", help="Home postcode (full, sector or district).")
@click.option("--place", help="Home town or place name.")
@click.option("--lat", type=float)
@click.option("--lon", type=float)
@click.option("--need", "needs", multiple=True, help="A need to meet (repeat, or comma-separate).")
@click.option("--type", "types", multiple=True, help="Service type(s); omit or 'any' for any suitable option.")
@click.option("--age", type=int)
@click.option("--gender", type=click.Choice(["female", "male"]))
@click.option("--max-km", type=click.FloatRange(0, 1000, min_open=True),
              help="Only services within this many km (more than 0, at most 1000).")
@click.option("--own-icb", is_flag=True, help="Only services inside the person's ICB.")
@click.option("--accepting", is_flag=True, help="Only services accepting referrals.")
@click.option("--confirmed", is_flag=True, help="Only services that state every need (no unknowns; a need only read "
              "from a service's words does not count).")
@click.option("--current-postcode", help="Postcode of the current placement, to show distance saved.")
@click.option("--limit", type=click.IntRange(1, 100), default=10, show_default=True,
              help="Options listed of each type (1 to 100): with no --type, that many of every suitable type.")
@click.option("--order", type=click.Choice(ORDERS), default="nearest", show_default=True,
              help="nearest: by distance, the person's own ICB first; best_fit: needs confirmed, taking referrals, a "
              "recent vacancy, then distance.")
def match_command(postcode, place, lat, lon, needs, types, age, gender, max_km, own_icb, accepting,
                  confirmed, current_postcode, limit, order) -> None:
    """Rank the options nearest a person's home that meet their needs."""
    from app.parts import name_sources, open_backend, open_geography
    from rehabmap.browse import locate_placement
    from rehabmap.config import get_settings
    from rehabmap.coverage import none_found_lines
    from rehabmap.explanation import measured_from, measured_note
    from rehabmap.maintain.store import Directory
    from rehabmap.match import MatchRequest, fewer_needs_list_some, left_out, match
    from rehabmap.state import AppState

    settings = get_settings()
    geography = open_geography(settings)
    home = geography.resolve(postcode=postcode, place=place, lat=lat, lon=lon)
    placement = None
    if current_postcode:
        current = locate_placement(geography, current_postcode)
        placement = (current.lat, current.lon)
    request = MatchRequest.from_input(
        needs=_split(needs), types=_split(types), age=age, gender=gender, max_distance_km=max_km,
        own_icb_only=own_icb, accepting_only=accepting, needs_confirmed=confirmed, limit=limit,
        current_placement=placement, order=order)
    backend = open_backend(settings)
    # As the server reads them: the store's coverage and the listings no live source has confirmed lately.
    state = AppState(settings, geography, backend, Directory.existing(settings))
    name_sources(state)
    # Local output: a sector is named as typed ("the middle of NG18 2"), where a reply says no more than the district.
    measured = measured_from(home.precision, home.district, home.label)
    (coverage, listings), today = state.coverage_read(), state.today()
    response = match(backend, home, request, today, state.unconfirmed_listings(today, listings), measured)
    click.echo(f"Home: {home.label} — {home.areas.icb_name} ({home.areas.icb_code}), {home.areas.lad_name}")
    if measured:
        click.echo(measured_note(measured, home.precision))
    listed = {r.service.service_type for r in response.results}
    at_home = coverage.at_home(home.areas.codes(), request.reach(home))
    answers = {t.service_type: at_home.for_request(t.service_type, request.subtypes) for t in response.summary}
    found = {t: left for t in answers if t not in listed and (left := left_out(backend, home, request, response, t))}
    click.echo(render_table(request, response, answers, found,
                            not response.results and fewer_needs_list_some(backend, home, request)))
    for line in none_found_lines(answers, listed, {t: _left_out_text(left, request) for t, left in found.items()}):
        click.echo(line)


# The flags of the search's own options (`rehabmap.match.NARROWING`) that this command has.
_FLAGS = {"accepting_only": "--accepting", "needs_confirmed": "--confirmed", "own_icb_only": "--own-icb"}


def _left_out_text(left: LeftOut, request: MatchRequest) -> str:
    """What the options left out, and the flags to drop to see it."""
    from rehabmap.match import LIMIT

    words = [f"without {_FLAGS[o]}" for o in left.by if o in _FLAGS] + ["with a larger --limit"] * (LIMIT in left.by)
    # The command has no flag to show services out of catchment: where it left some out, the flags show "more".
    whom = "more" if "include_out_of_catchment" in left.by else "it" if left.total == 1 else "them"
    see = f" Run again {' and '.join(words)} to see {whom}." if words else ""
    return left.says(request) + see


def render_table(request: MatchRequest, response: MatchResponse, answers: Mapping[ServiceType, Coverage],
                 left_out: Mapping[ServiceType, LeftOut], fewer_needs: bool) -> str:
    """A fixed-width table a clinician can paste into notes; listing none, what was not found (`nothing_found`:
    `answers`, each type's coverage at home; `left_out`, what the search's own options left out of a type;
    `fewer_needs`, whether fewer needs list some)."""
    from geodata.distance import miles_and_km_figures
    from web.present import ORDER_WORDS, nothing_found

    if not response.results:
        found = nothing_found(request, answers, left_out, fewer_needs)
        return f"{found} For each type asked for, what finding none means:"
    named, how = ORDER_WORDS[request.order]
    saved = response.current_placement_km is not None
    header = ["#", "miles (km)", "ICB", "type", "service", "meets", "unknown", "capacity"] + (
        ["saved miles (km)"] if saved else [])
    rows = [header]
    for i, r in enumerate(response.results, 1):
        row = [str(i), miles_and_km_figures(r.distance_km), "in" if r.in_home_icb else "out",
               r.service.service_type.value,
               r.service.name[:48], ",".join(r.matched_needs) or "-", ",".join(r.unknown_needs) or "-",
               r.capacity or "unknown"]
        if saved:
            row.append("-" if r.distance_saved_km is None else miles_and_km_figures(r.distance_saved_km))
        rows.append(row)
    lines = [f"{named}: {how[0].lower()}{how[1:]}.", grid(rows), ""]
    lines += [f"{i}. {r.service.name}: {r.explanation}" for i, r in enumerate(response.results, 1)]
    return "\n".join(lines)
