"""A bounded load test of the whole read API on 127.0.0.1: mixed matching and browsing, many clients at once.

The server is the product's own command, `python -m cli serve --host 127.0.0.1` (one uvicorn worker),
over the cached benchmark index (`--size`, default 10k realistic synthetic services) and the real
geodata. Its per-address rate limit is off (REHABMAP_RATE_LIMIT_PER_MINUTE=0): every request here comes
from one address, and the limiter's own cost is a dictionary lookup. `--url http://127.0.0.1:PORT` loads
an already running server instead (only 127.0.0.1 or localhost is accepted).

`--concurrency` clients (asyncio + httpx, keep-alive) each send one request at a time, drawn from a fixed
mix with a fixed seed:

| kind          | share | request                                                                         |
|---------------|-------|---------------------------------------------------------------------------------|
| match         | 50 %  | POST /match: a real postcode, two types, one need, 50 km, 10 results            |
| browse_near   | 25 %  | GET /services near the postcode, one type, within 25 km, 20 a page               |
| browse_text   | 15 %  | GET /services?q=… (a type word, by relevance), 20 a page                         |
| service       | 10 %  | GET /services/{id} of a service seen in an earlier answer                        |

Bounded twice: it stops at `--seconds` (default 60) or `--max-requests` (default 200,000), whichever
comes first, after a 3 s warm-up that is not counted. Every answer must be 200: anything else, and every
transport error, is counted as an error, shown by kind, and makes the exit status 1. The table gives
requests, errors, throughput and latency percentiles per kind and in total.

    python -m bench.bench_load [--size 10k] [--seconds 60] [--concurrency 16] [--max-requests 200000]

The load generator runs on the same machine as the server and takes some of its CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from bench import common
from bench.common import RADIUS_KM, K, fmt, label, log

MIX = [("match", 0.50), ("browse_near", 0.25), ("browse_text", 0.15), ("service", 0.10)]
WORDS = ["vcfse", "advocacy", "ips", "supported", "community", "inpatient", "rehab", "synthetic"]
WARMUP_S = 3.0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    started: float = 0.0
    finished: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(sum(c.values()) for c in self.errors.values())


def loopback(url: str) -> str:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"only 127.0.0.1 is load-tested, not {host!r}")
    return url.rstrip("/")


class Requests:
    """The mix, drawn with a fixed seed per client."""

    def __init__(self, queries, seed: int, mix: list[tuple[str, float]] = MIX) -> None:
        self.queries = queries
        self.rng = random.Random(seed)
        self.seen_ids: list[str] = []
        self.mix = mix

    def next(self) -> tuple[str, str, str, dict]:
        kind = self.rng.choices([k for k, _ in self.mix], [w for _, w in self.mix])[0]
        if kind == "service" and not self.seen_ids:
            kind = "browse_near"
        query = self.rng.choice(self.queries)
        if kind == "match":
            return kind, "POST", "/match", {"json": {
                "home": {"postcode": query.postcode}, "types": [t.value for t in query.types],
                "needs": list(query.needs), "max_distance_km": RADIUS_KM, "limit": K}}
        if kind == "browse_near":
            return kind, "GET", "/services", {"params": {
                "postcode": query.postcode, "type": query.types[0].value, "radius_km": 25, "per_page": 20}}
        if kind == "browse_text":
            return kind, "GET", "/services", {"params": {"q": self.rng.choice(WORDS), "per_page": 20}}
        return kind, "GET", f"/services/{self.rng.choice(self.seen_ids)}", {}

    def learn(self, kind: str, body: dict) -> None:
        if kind in ("browse_near", "browse_text") and len(self.seen_ids) < 2000:
            self.seen_ids += [r["id"] for r in body.get("results", [])[:3]]


async def client(url: str, queries, seed: int, tally: Tally, stop_at: list[float], budget: list[int],
                 mix: list[tuple[str, float]]) -> None:
    requests = Requests(queries, seed, mix)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while time.perf_counter() < stop_at[0] and budget[0] > 0:
            kind, method, path, options = requests.next()
            started = time.perf_counter()
            counted = started >= tally.started
            try:
                reply = await http.request(method, path, **options)
                elapsed = (time.perf_counter() - started) * 1000
                if reply.status_code == 200:
                    requests.learn(kind, reply.json())
                    if counted:
                        tally.latencies[kind].append(elapsed)
                        budget[0] -= 1
                elif counted:
                    tally.errors[kind][str(reply.status_code)] += 1
                    budget[0] -= 1
            except httpx.HTTPError as exc:
                if counted:
                    tally.errors[kind][type(exc).__name__] += 1
                    budget[0] -= 1


async def run(url: str, seconds: float, concurrency: int, max_requests: int,
              mix: list[tuple[str, float]] = MIX) -> Tally:
    queries = common.load_queries()
    tally = Tally()
    now = time.perf_counter()
    tally.started = now + WARMUP_S
    stop_at = [tally.started + seconds]
    budget = [max_requests]
    await asyncio.gather(*(client(url, queries, 1000 + i, tally, stop_at, budget, mix)
                           for i in range(concurrency)))
    tally.finished = min(time.perf_counter(), stop_at[0])
    return tally


def report(tally: Tally, title: str) -> str:
    duration = max(tally.finished - tally.started, 1e-9)
    rows = []
    for kind in [k for k, _ in MIX] + ["total"]:
        samples = [x for v in tally.latencies.values() for x in v] if kind == "total" else tally.latencies[kind]
        errors = (sum(sum(c.values()) for c in tally.errors.values()) if kind == "total"
                  else sum(tally.errors[kind].values()))
        count = len(samples) + errors
        rows.append([kind, count, errors, fmt(count / duration, 1), fmt(common.percentile(samples, 50), 1),
                     fmt(common.percentile(samples, 90), 1), fmt(common.percentile(samples, 99), 1),
                     fmt(max(samples) if samples else float("nan"), 1)])
    lines = [common.table(title, ["kind", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows)]
    for kind, counts in tally.errors.items():
        if not counts:
            continue
        lines.append(f"errors in {kind}: " + ", ".join(f"{k} × {v}" for k, v in counts.most_common()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="10k", help="corpus size: 10k, 100k, 500k or a number")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration (after a 3 s warm-up)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients sending at once")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--url", help="an already running server on 127.0.0.1 (else one is started)")
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600 or not 0 < args.concurrency <= 256 or args.max_requests <= 0:
        raise SystemExit("--seconds must be in (0, 3600], --concurrency in 1..256, --max-requests positive")

    server = None
    if args.url:
        url = loopback(args.url)
        n = None
    else:
        (n,) = common.parse_sizes(args.size)
        port = common.free_port()
        url = f"http://127.0.0.1:{port}"
        log(f"starting `rehabmap serve` on {url} over the {label(n)} index …")
        server = common.start_server(n, port, log_name="server-load")
    try:
        common.wait_ready(url, server)
        log(f"load: {args.concurrency} clients, {args.seconds:g} s (max {args.max_requests:,} requests) …")
        tally = asyncio.run(run(url, args.seconds, args.concurrency, args.max_requests))
    finally:
        if server is not None:
            common.stop_server(server)
    where = f"{label(n)} services" if n else url
    print(report(tally, f"Mixed load on 127.0.0.1: {where}, {args.concurrency} clients, "
                        f"{tally.finished - tally.started:.0f} s"))
    print(f"\n{common.machine()}; {common.load_average()}")
    errors = sum(sum(c.values()) for c in tally.errors.values())
    sys.exit(1 if errors or not tally.requests else 0)


if __name__ == "__main__":
    main()
