"""`match()` of two trees in one process: a base tree's against this tree's, interleaved query by query.

On a shared machine one `bench_match` run's ratio moves by ±5%, so a change of a few per cent to the answer
side does not show between runs. Here both trees answer the same bench queries in the same process, one
right after the other (which goes first alternates), and each query keeps its best time of all rounds.
`--base` is either the base's `rehabmap/match.py` (e.g. from a `git archive` of the base commit), loaded from
its file with everything it imports taken from this tree, both trees asking one index object: this compares
match.py alone (while both match.py files ask the rest of this tree the same way); or the base's whole checkout (a
directory), whose own modules (the index, the records, the explanations...) are imported beside this tree's, each
tree asking its own index object of the same file: this compares everything `match()` runs. Both trees' answers are
compared first: the same ids and explanations, results and summary.

    python -m bench.ab_match --base /tmp/base/rehabmap/match.py [--sizes 10k,100k] [--rounds 20] [--shape any]
    python -m bench.ab_match --base /tmp/base [--sizes 10k,100k] [--rounds 20] [--shape any]

`--shape any` asks the default request (each type its own list, at any distance; `common.SHAPES`) instead of the
targets' shape.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

from bench import common
from bench.common import label
import search.embedded
import rehabmap.match as branch

# The packages a checkout's `match()` runs; bench (the queries, the homes) stays this tree's for both.
_TREE_PACKAGES = ("rehabmap", "search", "geodata")


def load_base(path: str) -> tuple[ModuleType, type]:
    """The base's `rehabmap.match` module, and the index class it is to ask (see the module's doc)."""
    if Path(path).is_dir():
        return _load_checkout(path)
    spec = importlib.util.spec_from_file_location("base_match", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["base_match"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module, search.embedded.EmbeddedIndex


def _in_tree(name: str) -> bool:
    return name.split(".", 1)[0] in _TREE_PACKAGES


def _load_checkout(root: str) -> tuple[ModuleType, type]:
    """The checkout's `rehabmap.match` and `search.embedded`, each module of its tree imported from it: this
    tree's modules are set aside while they import, and put back after, so each tree's code keeps its own."""
    ours = {name: sys.modules.pop(name) for name in list(sys.modules) if _in_tree(name)}
    sys.path.insert(0, root)
    try:
        match = importlib.import_module("rehabmap.match")
        index = importlib.import_module("search.embedded").EmbeddedIndex
        if not match.__file__ or not Path(match.__file__).is_relative_to(Path(root).resolve()):
            raise SystemExit(f"{root} is not a checkout of rehabmap (rehabmap.match came from {match.__file__})")
    finally:
        sys.path.remove(root)
        for name in [name for name in sys.modules if _in_tree(name)]:
            del sys.modules[name]
        sys.modules.update(ours)
    return match, index


def _answer(response) -> list:
    return ([(r.service.id, r.explanation) for r in response.results]
            + [(t.in_home_icb, t.nearest and t.nearest.explanation) for t in response.summary])


def compare(n: int, base: ModuleType, base_index: type, rounds: int, shape: str) -> list[object]:
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    index = search.embedded.EmbeddedIndex(common.index_file(n))
    indexes = {base: index if base_index is search.embedded.EmbeddedIndex else base_index(common.index_file(n)),
               branch: index}
    trees = (base, branch)
    requests = {tree: common.match_requests(queries, shape, tree.MatchRequest) for tree in trees}
    for i, home in enumerate(homes):  # also the warm pass: the record cache and the columns laid out
        if _answer(base.match(indexes[base], home, requests[base][i], common.TODAY)) != \
                _answer(branch.match(index, home, requests[branch][i], common.TODAY)):
            raise SystemExit(f"{label(n)}: query {i} answered differently by the two trees")
    best = {tree: [float("inf")] * len(homes) for tree in trees}
    total = dict.fromkeys(trees, 0.0)
    for round_ in range(rounds):
        for i, home in enumerate(homes):
            for tree in (trees if (round_ + i) % 2 == 0 else trees[::-1]):
                start = time.perf_counter()
                tree.match(indexes[tree], home, requests[tree][i], common.TODAY)
                took = time.perf_counter() - start
                total[tree] += took
                best[tree][i] = min(best[tree][i], took)
    base_us, branch_us = (sum(best[t]) / len(homes) * 1e6 for t in trees)
    return [label(n), f"{base_us:.0f}", f"{branch_us:.0f}", f"{branch_us / base_us:.3f}",
            f"{total[branch] / total[base]:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True,
                        help="the base tree's rehabmap/match.py, or its whole checkout (a directory)")
    parser.add_argument("--sizes", default="10k,100k")
    parser.add_argument("--rounds", type=int, default=20)
    common.add_shape_option(parser)
    args = parser.parse_args()
    base, base_index = load_base(args.base)
    load_before = common.load_average()
    rows = [compare(n, base, base_index, args.rounds, args.shape) for n in common.parse_sizes(args.sizes)]
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print(common.table(
        f"match() of two trees, interleaved query by query ({args.rounds} rounds of the 200 bench queries, "
        f"shape {args.shape})",
        ["N", "base µs (best per query)", "branch µs", "branch / base, best", "branch / base, all rounds"],
        rows))


if __name__ == "__main__":
    main()
