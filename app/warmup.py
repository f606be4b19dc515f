"""Loading, before the server takes its first request, what the first search would otherwise load on the way:
the postcode and place tables, the area boundaries, the index's open generation (with the embedded index's
tallies), the coverage claims, the stalled sources' listings, the pages' templates and the maps' boundaries.
Measured in bench/bench_first_request.py."""

from __future__ import annotations

import logging
import time

from rehabmap.errors import CALLER_ERRORS, DataFileMissing, IndexNotBuilt, for_operator
from rehabmap.match import MatchRequest, match
from rehabmap.oruk import language_ids
from rehabmap.state import AppState
from rehabmap.taxonomy import ServiceType
from web.warmup import warm_pages

log = logging.getLogger("rehabmap.api")
# Searched for once at start (never logged): any postcode and place will do; a geodata without them still warms.
WARM_POSTCODE, WARM_PLACE = "SW1A 1AA", "London"
# One match within this distance too: the embedded index builds its tallies (`search.tallies`) on the first
# count over a large box (0.2-0.3 s of CPU at 500k services), which would otherwise fall on a first request.
WARM_RADIUS_KM = 50.0


def warm_up(state: AppState) -> float:
    """Seconds taken. A part that cannot be loaded is left to the first request, which reports it as before:
    warming up is never a reason not to start."""
    started = time.perf_counter()
    try:
        home = None
        for postcode, place in ((WARM_POSTCODE, None), (None, WARM_PLACE)):
            try:
                home = state.geography.resolve(postcode=postcode, place=place)
            except CALLER_ERRORS:
                continue
        (coverage, listings), today = state.coverage_read(), state.today()
        if home is not None:  # every type once, as the clinicians' search asks, and each type's coverage
            match(state.backend, home, MatchRequest(limit=1, each_type=True), today)
            match(state.backend, home, MatchRequest(limit=1, max_distance_km=WARM_RADIUS_KM), today)
            for service_type in ServiceType:
                coverage.for_request(home.areas.codes(), service_type)
        warm_pages(state.geography)
        language_ids()  # the ORUK feed's language term ids (~0.1 s), else made by a first GET of one
        # Last: kept until a source syncs or the day changes (`AppState`); a read that fails skips nothing else.
        state.unconfirmed_listings(today, listings)
    except (DataFileMissing, IndexNotBuilt) as exc:  # the operator's to fix: said in full, with the file's place
        log.error("warm-up stopped: %s", for_operator(exc))
    except Exception as exc:  # noqa: BLE001 - see the docstring: the first request meets it as it would have
        log.warning("warm-up stopped early (%s); the first request will load the rest", type(exc).__name__)
    seconds = time.perf_counter() - started
    log.info("warmed up in %.2f s", seconds)
    return seconds
