"""`match()` of two trees in one process: a base tree's `rehabmap/match.py` against this tree's, interleaved.

On a shared machine one `bench_match` run's ratio moves by ±5%, so a change of a few per cent to the answer
side does not show between runs. Here both trees answer the same bench queries in the same process, on the
same index object, one right after the other (which goes first alternates), and each query keeps its best
time of all rounds. The base's match.py is loaded from its file (e.g. a `git archive` of the base commit);
everything it imports is this tree's, so this compares match.py (and the modules only this tree has)
alone. Both trees' answers are compared first: the same ids and explanations, results and summary.

    python -m bench.ab_match --base /tmp/base/rehabmap/match.py [--sizes 10k,100k] [--rounds 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from types import ModuleType

from bench import common
from bench.common import K, RADIUS_KM, label
from search.embedded import EmbeddedIndex
import rehabmap.match as branch


def load_base(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("base_match", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["base_match"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _answer(response) -> list:
    return ([(r.service.id, r.explanation) for r in response.results]
            + [(t.in_home_icb, t.nearest and t.nearest.explanation) for t in response.summary])


def compare(n: int, base: ModuleType, rounds: int) -> list[object]:
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    index = EmbeddedIndex(common.index_file(n))
    trees = (base, branch)
    requests = {tree: [tree.MatchRequest(needs=q.needs, types=q.types, max_distance_km=RADIUS_KM, limit=K)
                       for q in queries] for tree in trees}
    for i, home in enumerate(homes):  # also the warm pass: the record cache and the columns laid out
        if _answer(base.match(index, home, requests[base][i], common.TODAY)) != \
                _answer(branch.match(index, home, requests[branch][i], common.TODAY)):
            raise SystemExit(f"{label(n)}: query {i} answered differently by the two trees")
    best = {tree: [float("inf")] * len(homes) for tree in trees}
    total = dict.fromkeys(trees, 0.0)
    for round_ in range(rounds):
        for i, home in enumerate(homes):
            for tree in (trees if (round_ + i) % 2 == 0 else trees[::-1]):
                start = time.perf_counter()
                tree.match(index, home, requests[tree][i], common.TODAY)
                took = time.perf_counter() - start
                total[tree] += took
                best[tree][i] = min(best[tree][i], took)
    base_us, branch_us = (sum(best[t]) / len(homes) * 1e6 for t in trees)
    return [label(n), f"{base_us:.0f}", f"{branch_us:.0f}", f"{branch_us / base_us:.3f}",
            f"{total[branch] / total[base]:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base tree's rehabmap/match.py")
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    base = load_base(args.base)
    load_before = common.load_average()
    rows = [compare(n, base, args.rounds) for n in common.parse_sizes(args.sizes)]
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print(common.table(
        f"match() of two trees, interleaved query by query ({args.rounds} rounds of the 200 bench queries)",
        ["N", "base µs (best per query)", "branch µs", "branch / base, best", "branch / base, all rounds"],
        rows))


if __name__ == "__main__":
    main()
