"""The all-areas comparison, an ICB's small-area exports, the services exports and a page of the ORUK feed over
HTTP, warm: what the downloads a commissioner (or a directory syncing the feed) repeats cost once the analysis is
made.

`rehabmap serve` on 127.0.0.1 over the cached N-service home; each endpoint is asked once cold (the analysis and
the table made), then --rounds times warm, one request at a time; the table gives the median and best warm
milliseconds. `--checkout DIR` serves the same requests from another checkout too (e.g. `git archive integ/s20 |
tar -x -C DIR`), after this one's, over the same index: a before/after in one run, compared as a ratio.

    python -m bench.bench_gaps_table [--sizes 10k] [--rounds 15] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.request
from pathlib import Path

from bench import common
from bench.common import fmt, label

# West Yorkshire's small areas: 1,434, the fourth most of the 42 ICBs (1,126-1,889 the six largest).
ENDPOINTS = ("/gaps?level=la", "/gaps?level=icb", "/gaps/areas.csv?level=la", "/gaps/areas.geojson?level=la",
             "/gaps/E54000054/smallareas.csv", "/gaps/E54000054/smallareas.geojson", "/services.csv",
             "/services.geojson", "/oruk/services?per_page=100")


def _get_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def measure(n: int, checkout: Path, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Per endpoint: the cold milliseconds, then the median and best warm ones."""
    port = common.free_port()
    server = common.start_server(n, port, checkout=checkout, log_name=f"gaps-table-{checkout.name}")
    try:
        base = f"http://127.0.0.1:{port}"
        common.wait_ready(base, server, timeout_s=300)
        out = {}
        for path in ENDPOINTS:
            cold = _get_ms(base + path)
            warm = [_get_ms(base + path) for _ in range(rounds)]
            out[path] = (cold, statistics.median(warm), min(warm))
        return out
    finally:
        common.stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--checkout", type=Path, help="also serve from this checkout (before/after)")
    args = parser.parse_args()
    checkouts = [common.ROOT] + ([args.checkout.resolve()] if args.checkout else [])
    load_before = common.load_average()
    rows = []
    for n in common.parse_sizes(args.sizes):
        results = {checkout: measure(n, checkout, args.rounds) for checkout in checkouts}
        here = results[common.ROOT]
        for path in ENDPOINTS:
            for checkout, result in results.items():
                cold, median, best = result[path]
                ratio = fmt(median / here[path][1], 2) if checkout != common.ROOT else "1.00"
                rows.append([label(n), path, checkout.name, fmt(cold, 0), fmt(median, 1), fmt(best, 1), ratio])
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print()
    print(common.table(f"GET the all-areas comparison, one ICB's small areas, the services and the ORUK feed, one "
                       f"request at a time: cold once, then {args.rounds} warm",
                       ["N", "endpoint", "checkout", "cold ms", "warm median ms", "warm best ms",
                        "warm median / this checkout's"], rows))


if __name__ == "__main__":
    main()
