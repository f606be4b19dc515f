"""What if: the time to add a hypothetical service (or remove one) and see every indicator change.

For each corpus size (default 10k and 100k services, the realistic mix of bench.synthetic), with the
analysis of the corpus already built (the server keeps one per index generation, `analysis_for`), one
scenario is timed end to end as every face runs it (`rehabmap.gaps.scenario.what_if`): place the postcode,
apply the change (search again only the categories it touches), reduce the indicators before and after,
and list the changes —
  - one ICB     a level 2 unit added in Leeds, one removed, for West Yorkshire (E54000054) and England
  - England     the same scenario, England only (AREA E92000001)
and then the one-area report of the scenario (`AreaGapReport.of(...).gaps()`, what the page shows).
Time is the median (and best) of --rounds runs, wall clock, and the median CPU time of this process (on a
shared machine the wall clock also counts the time other processes held the cores; the CPU time does not).
Target: one ICB well under a second (< 0.5 s).

    python -m bench.bench_gaps_whatif [--sizes 10k,100k] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench import common
from bench.common import fmt, label, log
from geodata.england import ENGLAND
from geodata.geography import Geography
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.categories import parse_category
from rehabmap.gaps.options import GapOptions
from rehabmap.gaps.population import SmallAreas
from rehabmap.gaps.report import AreaGapReport
from rehabmap.gaps.scenario import Scenario, what_if

TARGET_S = 0.5
ICB = "E54000054"  # West Yorkshire
LEVEL2 = parse_category("inpatient_rehab_level2")


def scenario_for(analysis: GapAnalysis) -> Scenario:
    """A level 2 unit added in Leeds, and the first level 2 unit of the corpus removed."""
    removed = analysis.points.ids[analysis.service_rows(LEVEL2)[0]]
    return Scenario.from_input(["inpatient_rehab_level2@LS9 7TF@12"], [removed])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k", help="corpus sizes, e.g. 10k,100k")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"Machine: {common.machine()}\n")
    geography = Geography(common.geodata_dir())
    small_areas = SmallAreas.load(common.data_dir())
    options = GapOptions()
    summary = []
    for n in common.parse_sizes(args.sizes):
        log(f"making the {label(n)} corpus …")
        analysis = GapAnalysis(small_areas, ServicePoints.from_services(common.corpus(n)))
        for level in ("icb", "england"):  # the fallbacks and columns, as a running server has them
            analysis.indicators(level, options)
        scenario = scenario_for(analysis)
        rows, times = [], {}
        for name, code in (("one ICB (and England)", ICB), ("England", ENGLAND)):
            samples, cpu = [], []
            for _ in range(args.rounds):
                started, started_cpu = time.perf_counter(), time.process_time()
                result = what_if(analysis, code, scenario, geography, options)
                samples.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            times[name] = statistics.median(samples)
            rows.append([name, fmt(times[name] * 1000, 1), fmt(min(samples) * 1000, 1),
                         fmt(statistics.median(cpu) * 1000, 1), str(len(result.changes))])
        samples, cpu = [], []
        for _ in range(args.rounds):
            started, started_cpu = time.perf_counter(), time.process_time()
            after = what_if(analysis, ICB, scenario, geography, options).analysis
            AreaGapReport.of(after, ICB, options).gaps()
            samples.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        rows.append(["one ICB + its full report", fmt(statistics.median(samples) * 1000, 1),
                     fmt(min(samples) * 1000, 1), fmt(statistics.median(cpu) * 1000, 1), ""])
        print(common.table(f"{label(n)} services, {args.rounds} rounds", ["what if", "median ms", "best ms",
                                                                          "median CPU ms", "changes"], rows))
        print()
        summary.append([label(n), fmt(times["one ICB (and England)"], 3), fmt(times["England"], 3),
                        "met" if times["one ICB (and England)"] < TARGET_S else "MISSED"])
    print(common.table(f"Target: one ICB in < {TARGET_S:g} s", ["services", "one ICB s", "England s", "target"],
                       summary))


if __name__ == "__main__":
    main()
