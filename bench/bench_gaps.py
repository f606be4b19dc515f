"""Gap analysis for all of England in one run: time and memory.

For each corpus size (default 10k services, the realistic mix of bench.synthetic), every step of
`rehabmap.gaps` that the API's `/gaps?level=…` and `/gaps/{code}` need, from cold:
  - load small areas       the 33,755 LSOA rows from the CSV (cache cleared first)
  - services → columns     `ServicePoints.from_services` over the Service records
  - nearest, all types     one cKDTree per type/subtype (14), nearest service for every small area
  - all ICBs, all types    `GapAnalysis.indicators('icb')`: every indicator, 42 ICBs × 14 types,
                           including the out-of-area fallback for the two inpatient types
  - all LAs, all types     the same for 296 local authorities
  - all counties, all types  the same for the 21 county councils (their districts' small areas)
  - England totals         the same for England
  - tables as rows         `GapTable.rows()` for ICBs and LAs (the JSON/CSV shape)
  - one area report        `AreaGapReport.of(analysis, 'E54000054').gaps()` (scorecard, furthest small areas)
  - one county report      the same for Nottinghamshire county council (E10000024)
Time is the median of --rounds runs (each from cold); memory is the tracemalloc peak of one more run
(everything the steps allocate, NumPy arrays included) and the process's peak RSS (which also holds the
Service records of the corpus). Target: all ICBs and all types with 10k services in under 5 s and 1 GB.

    python -m bench.bench_gaps [--sizes 10k,100k] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time
import tracemalloc

from bench import common
from bench.common import fmt, label, log
from rehabmap.gaps import population
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import ALL_CATEGORIES
from rehabmap.gaps.comparison import GapTable
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import SmallAreas
from rehabmap.gaps.report import AreaGapReport

TARGET_S, TARGET_MB = 5.0, 1024.0
STEPS = ("load small areas", "services → columns", "nearest, all types", "all ICBs, all types",
         "all LAs, all types", "all counties, all types", "England totals", "tables as rows", "one area report",
         "one county report")


def run_once(services) -> dict[str, float]:
    """Milliseconds per step, from cold."""
    population._load.cache_clear()
    options = GapOptions()
    times: dict[str, float] = {}

    def step(name: str, fn):
        started = time.perf_counter()
        result = fn()
        times[name] = (time.perf_counter() - started) * 1000
        return result

    small_areas = step("load small areas", lambda: SmallAreas.load(common.data_dir()))
    points = step("services → columns", lambda: ServicePoints.from_services(services))
    analysis = step("nearest, all types", lambda: GapAnalysis(small_areas, points))
    step("all ICBs, all types", lambda: analysis.indicators("icb", options))
    step("all LAs, all types", lambda: analysis.indicators("la", options))
    step("all counties, all types", lambda: analysis.indicators("county", options))
    step("England totals", lambda: analysis.indicators("england", options))
    step("tables as rows", lambda: (GapTable.of(analysis, "icb", options).rows(),
                                    GapTable.of(analysis, "la", options).rows()))
    step("one area report", lambda: AreaGapReport.of(analysis, "E54000054", options).gaps())
    step("one county report", lambda: AreaGapReport.of(analysis, "E10000024", options).gaps())
    return times


def peak_mb(services) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        run_once(services)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k", help="corpus sizes, e.g. 10k,100k")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"Machine: {common.machine()}")
    print(f"Types: {len(ALL_CATEGORIES)} (7 types and 7 subtypes); small areas: LSOA 2021, 33,755; "
          "levels: 42 ICBs, 296 local authorities, 21 county councils, England.\n")
    summary = []
    for n in common.parse_sizes(args.sizes):
        log(f"making the {label(n)} corpus …")
        services = common.corpus(n)
        active = sum(1 for s in services if s.status == "active")
        rounds = [run_once(services) for _ in range(args.rounds)]
        median = {name: statistics.median(r[name] for r in rounds) for name in STEPS}
        best = {name: min(r[name] for r in rounds) for name in STEPS}
        total = [sum(r.values()) for r in rounds]
        all_icbs = [sum(r[s] for s in STEPS[:4]) for r in rounds]
        memory = peak_mb(services)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = [[name, fmt(median[name], 1), fmt(best[name], 1)] for name in STEPS]
        rows.append(["**all ICBs from cold** (first four steps)", fmt(statistics.median(all_icbs), 1),
                     fmt(min(all_icbs), 1)])
        rows.append(["**everything above**", fmt(statistics.median(total), 1), fmt(min(total), 1)])
        print(common.table(f"{label(n)} services ({active:,} active), {args.rounds} rounds", ["step", "median ms",
                                                                                             "best ms"], rows))
        print(f"\nMemory: tracemalloc peak {memory:.0f} MB for one whole run; process peak RSS {rss:.0f} MB "
              "(includes the corpus of Service records).\n")
        ok = statistics.median(all_icbs) / 1000 < TARGET_S and max(memory, rss) < TARGET_MB
        summary.append([label(n), fmt(statistics.median(all_icbs) / 1000, 2), fmt(statistics.median(total) / 1000, 2),
                        f"{memory:.0f}", f"{rss:.0f}", "met" if ok else "MISSED"])
        del services, rounds
        gc.collect()
    print(common.table(f"Target: all ICBs and all types in < {TARGET_S:g} s and < {TARGET_MB:.0f} MB",
                       ["services", "all ICBs s", "everything s", "tracemalloc MB", "peak RSS MB", "target"],
                       summary))


if __name__ == "__main__":
    main()
