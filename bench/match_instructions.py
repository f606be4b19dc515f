"""Instructions `match()` costs over the 200 bench queries, counted by valgrind: an A/B a loaded machine cannot blur.

A change of a few per cent to `match()` does not show between `bench_match` runs on the shared machine, and
even `ab_match` (interleaved in one process) moves by a per cent or two at load 4+. Instructions executed do
not depend on the load: run under callgrind with instrumentation off, this opens the index, answers the bench
queries twice (the record cache filled, the columns' lazy parts built), then switches counting on
(`callgrind_control -i on`) and answers them once more, with the collector off. Run it in two checkouts and
subtract a run with `--part none` (what is counted after the switch besides the matches: the switch itself
and the interpreter's exit, freeing the index), then divide by the 200 queries:

    PYTHONHASHSEED=0 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python -m bench.match_instructions --size 100k --part match          # "I refs" is the count

`--shape any` counts the default request instead (every type its own list, at any distance; `common.SHAPES`).

Instructions are not time: memory (the cold caches of a match) costs cycles they do not show, so this says
which tree executes less, and `ab_match` and `bench_match` say what that is worth.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess

from bench import common
from rehabmap.match import match
from search.embedded import EmbeddedIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="100k")
    parser.add_argument("--part", choices=("none", "match"), default="match")
    common.add_shape_option(parser)
    args = parser.parse_args()
    (n,) = common.parse_sizes(args.size)
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    index = EmbeddedIndex(common.index_file(n))
    requests = common.match_requests(queries, args.shape)
    for _ in range(2):
        for home, request in zip(homes, requests):
            match(index, home, request, common.TODAY)
    gc.disable()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    if args.part == "match":
        for home, request in zip(homes, requests):
            match(index, home, request, common.TODAY)


if __name__ == "__main__":
    main()
