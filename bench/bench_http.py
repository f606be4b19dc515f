"""HTTP throughput and latency of `POST /match` under uvicorn on 127.0.0.1, with wrk as the load generator.

The server is the product's own command, `python -m cli serve --host 127.0.0.1 --port P` (one uvicorn
worker, default settings: INFO logging, one privacy-safe access line per request; only the per-address rate
limit is turned off, REHABMAP_RATE_LIMIT_PER_MINUTE=0, as all load comes from one address), over the cached
benchmark index and geodata. `--workers N` runs `rehabmap serve --workers N` (the same app; each worker
on a listening socket of its own, SO_REUSEPORT). Each request body is one of the fixed queries (bench/queries.csv:
real postcode, two types, one need, 50 km, limit 10; with `--shape any` the default request instead: the postcode
and the need only, so every type its own list of 10 at any distance), cycled by a small wrk Lua script. Every body
is first sent once and must answer 200. Then, per concurrency level, a short warm-up and a bounded run (--seconds,
default 10); wrk reports requests/s and the latency percentiles; any non-2xx answer or socket error is counted and
shown. Only 127.0.0.1 is ever addressed; the server is stopped at the end.

The ceiling is measured in the same run, first, with the same bodies, levels and workers: an empty FastAPI
`POST /match` that parses the same body and answers `{"results": []}` under the same uvicorn settings
(bench/http_ceiling.py). The table gives each level's req/s and p99 of `/match` as a share of the ceiling's
(issue 18's targets: at least half its req/s, at most 3x its p99). `--no-ceiling` skips it.

`--checkout DIR` also serves `/match` from another checkout of rehabmap (e.g. `git archive <commit> | tar -x
-C DIR`), over the same index and geodata: a before/after in one run, so both sides meet the same machine (on a
shared machine the load moves more than most changes do). The two are served in ABBA order (this checkout, the
other, the other again, this one), each serving's rows numbered: the server measured second did better in every
before/after run of sessions 15–26, whichever tree it was (bench/RESULTS.md), so one order alone measures the order.

    python -m bench.bench_http [--sizes 100k] [--concurrency 1,16,64] [--seconds 10] [--workers 1] [--no-ceiling]
                               [--checkout DIR] [--shape any]

Needs `wrk` (Debian package).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from bench import common
from bench.common import K, RADIUS_KM, fmt, label, log

TARGET_RPS, TARGET_P99_MS = 1000.0, 30.0
CEILING_RPS_SHARE, CEILING_P99_RATIO = 0.5, 3.0  # issue 18: /match against the empty endpoint

LUA = r"""
local bodies = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  i = math.random(#bodies)
end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"seconds\": %.6f, \"p50\": %d, \"p90\": %d, \"p95\": %d, \"p99\": %d, " ..
    "\"max\": %d, \"mean\": %.1f, \"status\": %d, \"connect\": %d, \"read\": %d, \"write\": %d, \"timeout\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def bodies(queries, shape: str = "targets") -> list[str]:
    """Each query as a `POST /match` body of one of `common.SHAPES`: the targets' (two types, 50 km, limit 10) or
    the default request's (the home and needs only, as the clinicians' page first asks: every type its own list)."""
    if shape == "any":
        return [json.dumps({"home": {"postcode": q.postcode}, "needs": list(q.needs)}) for q in queries]
    return [json.dumps({"home": {"postcode": q.postcode}, "types": [t.value for t in q.types],
                        "needs": list(q.needs), "max_distance_km": RADIUS_KM, "limit": K})
            for q in queries]


def post(url: str, body: str, timeout: float = 30.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def run_wrk(url: str, script: Path, bodies_file: Path, connections: int, seconds: int) -> dict:
    """One wrk run; halfway through it, how its connections fall between the server's processes (`spread`,
    e.g. "9/7"): the kernel hashes each connection to one worker's socket, so the spread varies from run to
    run, and at c=16 on 2 workers a spread of 16/0 or 4/12 (one shared socket, before) served ~40% fewer
    req/s than 7/9 in one sitting (bench/RESULTS.md, "POST /match, fifth pass")."""
    threads = 1 if connections < 16 else 2
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s",
               "-s", str(script), url, "--", str(bodies_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as wrk:
        try:
            out, _ = wrk.communicate(timeout=seconds / 2)
        except subprocess.TimeoutExpired:
            spread = connections_per_process(int(url.rsplit(":", 1)[1].split("/", 1)[0]))
            out, _ = wrk.communicate(timeout=seconds + 60)
        else:
            spread = "-"
    if wrk.returncode != 0:
        raise SystemExit(f"wrk failed ({wrk.returncode}):\n{out}")
    match = re.search(r"^RESULT (\{.*\})$", out, re.M)
    if not match:
        raise SystemExit(f"wrk gave no result:\n{out}")
    result = json.loads(match.group(1))
    result["rps"] = result["requests"] / result["seconds"]
    result["spread"] = spread
    return result


def connections_per_process(port: int) -> str:
    """The established connections to `port` per server process (`ss`), most first: "9/7"."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, check=False).stdout
    counts = sorted(Counter(re.findall(r"pid=(\d+)", out)).values(), reverse=True)
    return "/".join(map(str, counts)) or "?"


def start_ceiling(port: int, workers: int) -> subprocess.Popen:
    """The empty endpoint (bench/http_ceiling.py) under uvicorn, in its own process group."""
    common.CACHE.mkdir(parents=True, exist_ok=True)
    log_file = open(common.CACHE / "ceiling.log", "w")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(common.ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "bench.http_ceiling", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", str(workers)], cwd=common.ROOT, env=env, stdout=log_file,
                            stderr=subprocess.STDOUT, start_new_session=True)


def measure(server: subprocess.Popen, url: str, name: str, all_bodies: list[str], levels: list[int],
            script: Path, bodies_file: Path, seconds: int, warmup: int) -> dict[int, dict]:
    """Every body once (each must answer 200), then per level a warm-up and a measured wrk run."""
    ready = common.wait_ready(url, server, timeout_s=600)
    log(f"{name}: server ready in {ready:.1f} s")
    for body in all_bodies:
        status, payload = post(url + "/match", body)
        if status != 200:
            raise SystemExit(f"POST /match answered {status}: {payload[:300]!r} for {body}")
    results = {}
    for c in levels:
        if warmup:
            run_wrk(url + "/match", script, bodies_file, c, warmup)
        r = results[c] = run_wrk(url + "/match", script, bodies_file, c, seconds)
        r["errors"] = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
        log(f"  {name} c={c}: {r['rps']:.0f} req/s, p99 {r['p99'] / 1000:.1f} ms, errors {r['errors']}")
    return results


def row(n: str, workers: int, endpoint: str, c: int, r: dict, ceiling: dict | None) -> list[object]:
    ms = {p: r[p] / 1000 for p in ("p50", "p95", "p99", "max")}
    shares = ["-", "-"] if ceiling is None else [fmt(r["rps"] / ceiling["rps"], 2), fmt(r["p99"] / ceiling["p99"], 2)]
    return [n, workers, endpoint, c, r["spread"], f"{r['requests']:,}", fmt(r["rps"], 0), fmt(ms["p50"], 2),
            fmt(ms["p95"], 2), fmt(ms["p99"], 2), fmt(ms["max"], 1), r["errors"], *shares]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100k")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run (at most 120)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before each measured run")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (1: `rehabmap serve`)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the empty endpoint")
    parser.add_argument("--checkout", type=Path, help="also serve /match from this checkout (before/after)")
    common.add_shape_option(parser)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk (see bench/README.md)")
    seconds = max(1, min(args.seconds, 120))
    levels = [int(c) for c in args.concurrency.split(",")]
    queries = common.load_queries()
    work = Path(tempfile.mkdtemp(prefix="rehabmap-wrk-"))
    script, bodies_file = work / "match.lua", work / "bodies.jsonl"
    script.write_text(LUA)
    all_bodies = bodies(queries, args.shape)
    bodies_file.write_text("\n".join(all_bodies) + "\n")
    load_before = common.load_average()
    rows = []
    ceiling: dict[int, dict] | None = None
    try:
        if not args.no_ceiling:
            port = common.free_port()
            server = start_ceiling(port, args.workers)
            try:
                ceiling = measure(server, f"http://127.0.0.1:{port}", "ceiling", all_bodies, levels, script,
                                  bodies_file, seconds, args.warmup)
            finally:
                common.stop_server(server)
            rows += [row("-", args.workers, "ceiling (empty POST)", c, r, None) for c, r in ceiling.items()]
        checkouts = [(common.ROOT, "POST /match")]
        if args.checkout is not None:
            other = (args.checkout.resolve(), f"POST /match ({args.checkout.name})")
            checkouts = [(path, f"{endpoint} #{k}") for k, (path, endpoint) in
                         enumerate([checkouts[0], other, other, checkouts[0]], 1)]
        for n in common.parse_sizes(args.sizes):
            for checkout, endpoint in checkouts:
                port = common.free_port()
                server = common.start_server(n, port, args.workers, checkout=checkout)
                try:
                    results = measure(server, f"http://127.0.0.1:{port}", f"{label(n)} {endpoint}", all_bodies,
                                      levels, script, bodies_file, seconds, args.warmup)
                finally:
                    common.stop_server(server)
                rows += [row(label(n), args.workers, endpoint, c, r, ceiling and ceiling[c])
                         for c, r in results.items()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}; wrk shares the 2 cores with the server")
    print()
    print(common.table(
        f"POST /match under uvicorn on 127.0.0.1 (wrk, {seconds} s per level; {len(queries)} bodies cycled, "
        f"shape {args.shape}; "
        f"target >= {TARGET_RPS:,.0f} req/s at c=16 with p99 <= {TARGET_P99_MS:.0f} ms; against the ceiling: "
        f">= {CEILING_RPS_SHARE:.0%} of its req/s, p99 <= {CEILING_P99_RATIO:g}x its p99)",
        ["N", "workers", "endpoint", "connections", "per process", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms",
         "max ms", "errors", "req/s / ceiling", "p99 / ceiling"], rows))


if __name__ == "__main__":
    main()
