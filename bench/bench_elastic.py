"""`match()` on the search engine backend: the clinicians' default request, best fit first, against nearest first.

The bench corpus (`--sizes`, default 10k) is built into a private osmem (the in-memory OpenSearch-compatible server
the tests run on), or into the cluster at ELASTICSEARCH_URL, under an alias of its own that is deleted afterwards.
Then the 200 bench queries, each as the default request (every type its own list of 10, at any distance), are asked
of `match()` over `ElasticIndex`, nearest first and best fit first, query by query in turn, `--rounds` times: p50 and
p95 ms; the CPU this process spent a request (reading and validating the records, ranking, the reply), which is
what a rehabmap worker pays whatever the cluster; and the records the cluster's searches gave a request. osmem is
not Elasticsearch: its wall times are its own (it scores and sorts slowly), and the CPU and records are the columns
to compare between trees (run this file with another checkout first on PYTHONPATH for a before).

    python -m bench.bench_elastic [--sizes 10k] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench import common
from bench.common import fmt, label, log, timed
from rehabmap.match import match
from search.elastic import ElasticIndex, ElasticWriter
from tests.es_server import CountingRecords, drop_indices, search_server


def measure(n: int, rounds: int) -> list[list[object]]:
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    shapes = {shape: common.match_requests(queries, shape) for shape in ("any", "best_fit")}
    with search_server() as server:
        client = server.opensearch_client() if server.kind == "osmem" else server.client()
        base = f"rehabmap-bench-{uuid.uuid4().hex[:10]}"
        try:
            log(f"building {label(n)} services into {server.kind}")
            ElasticWriter(client, base).replace_all(common.corpus(n))
            counting = CountingRecords(client)
            index = ElasticIndex(counting, base)
            times: dict[str, list[float]] = {shape: [] for shape in shapes}
            records = dict.fromkeys(shapes, 0)
            cpu = dict.fromkeys(shapes, 0.0)
            for round_ in range(rounds):
                log(f"{label(n)}: round {round_ + 1} of {rounds}")
                for i, home in enumerate(homes):
                    for shape, requests in shapes.items():
                        counting.records, started = 0, time.process_time()
                        ms, _ = timed(lambda: match(index, home, requests[i], common.TODAY))
                        cpu[shape] += time.process_time() - started
                        times[shape].append(ms)
                        records[shape] += counting.records
        finally:
            drop_indices(client, base)
    calls = rounds * len(homes)
    words = {"any": "nearest first", "best_fit": "best fit first"}
    nearest_p50 = common.percentile(times["any"], 50)
    return [[label(n), words[shape], fmt(common.percentile(times[shape], 50)), fmt(common.percentile(times[shape], 95)),
             fmt(common.percentile(times[shape], 50) / nearest_p50, 2), fmt(cpu[shape] / calls * 1000, 1),
             fmt(records[shape] / calls, 1)] for shape in shapes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = [row for n in common.parse_sizes(args.sizes) for row in measure(n, args.rounds)]
    print(f"Machine: {common.machine()}")
    print(common.table("match() on the search engine backend, the default request (each type, any distance)",
                       ["size", "order", "p50 ms", "p95 ms", "p50 / nearest p50", "CPU ms a request (this process)",
                        "records read a request"], rows))


if __name__ == "__main__":
    main()
