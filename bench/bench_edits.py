"""The read load of `bench_load` while maintainers edit the directory: does an edit stall searches?

One `rehabmap serve` (one uvicorn worker unless `--workers`) over a copy of the cached benchmark index
(`--size`, default 100k) in a throw-away home, so the cached file is never edited. Two phases of the same
mixed load (`bench_load`'s mix, `--concurrency` clients, `--seconds` each, after its 3 s warm-up):

1. no edits;
2. one edit every `1 / --edits-per-second` seconds, written to the live index by a writer in this process
   (`EmbeddedWriter.upsert`, what the maintainers' API does after its own store): a provider's daily update
   of a random service's capacity, its date and whether it accepts referrals, and its phone number. After
   each edit, `GET /services/{id}` is asked until it shows the new phone: the edit's lag, as a person
   using the API sees it.

The table gives per phase the requests, errors, req/s and latency percentiles of the whole mix; then the
edits: how many, how long `upsert` took, and the lag. The target (issue 17) is a p99 with edits within 2×
of the p99 without. `--checkout DIR` runs the server from another checkout's code (a before/after; the
index file must be one it reads).

    python -m bench.bench_edits [--size 100k] [--seconds 20] [--concurrency 16] [--edits-per-second 1] \
        [--mix all|match] [--workers 1] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench import common
from bench.bench_load import MIX, report, run
from bench.common import fmt, label, log
from rehabmap.sqlite_uri import sqlite_uri
from search.embedded import EmbeddedWriter


class Editor(threading.Thread):
    """Edits a random service at a steady rate and measures each edit's upsert time and its lag."""

    def __init__(self, url: str, index: Path, ids: list[str], per_second: float) -> None:
        super().__init__(daemon=True)
        self.url, self.writer, self.ids, self.interval = url, EmbeddedWriter(index), ids, 1.0 / per_second
        self.stop = threading.Event()
        self.upsert_ms: list[float] = []
        self.lag_ms: list[float] = []
        self.rng = random.Random(17)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._edit()
        except BaseException as exc:  # reported by main: a run whose edits failed measures nothing
            self.error = exc

    def _edit(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            n = 0
            next_at = time.perf_counter()
            while not self.stop.wait(max(0.0, next_at - time.perf_counter())):
                next_at += self.interval
                n += 1
                service_id = self.rng.choice(self.ids)
                phone = f"0113 496 {n % 10000:04d}"
                started = time.perf_counter()
                self.writer.upsert({service_id: {
                    "capacity": self.rng.choice(["available", "limited", "none"]),
                    "capacity_as_of": common.TODAY.isoformat(), "accepting_referrals": self.rng.random() < 0.7,
                    "phone": phone}})
                written = time.perf_counter()
                self.upsert_ms.append((written - started) * 1000)
                while not self.stop.is_set():
                    if http.get(f"/services/{service_id}").json().get("phone") == phone:
                        break
                    time.sleep(0.005)
                self.lag_ms.append((time.perf_counter() - written) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100k", help="corpus size: 10k, 100k, 500k or a number")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients sending at once")
    parser.add_argument("--edits-per-second", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the server")
    parser.add_argument("--mix", choices=["all", "match"], default="all",
                        help="bench_load's whole mix, or POST /match alone")
    parser.add_argument("--checkout", type=Path, default=common.ROOT, help="run the server from this checkout")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.concurrency <= 256 or not 0 < args.edits_per_second <= 50:
        raise SystemExit("--seconds must be in (0, 600], --concurrency in 1..256, --edits-per-second in (0, 50]")

    (n,) = common.parse_sizes(args.size)
    source = common.index_file(n)
    geodata = common.geodata_dir()
    home = Path(tempfile.mkdtemp(prefix="rehabmap-bench-edits-"))
    server = None
    try:
        ours, older = (home / name for name in common.index_names())
        shutil.copyfile(source, ours)
        older.symlink_to(ours)
        (home / "geodata").symlink_to(geodata)
        port = common.free_port()
        url = f"http://127.0.0.1:{port}"
        log(f"starting `rehabmap serve` ({args.workers} worker(s)) from {args.checkout} on {url} over a copy of "
            f"the {label(n)} index …")
        server = common.start_server(n, port, workers=args.workers, log_name="server-edits", home=home,
                                     checkout=args.checkout)
        common.wait_ready(url, server)
        with sqlite3.connect(sqlite_uri(source, "ro"), uri=True) as conn:
            ids = [i for (i,) in conn.execute("SELECT id FROM service_columns WHERE active = 1")]
        log(f"phase 1: no edits, {args.concurrency} clients, {args.seconds:g} s …")
        mix = MIX if args.mix == "all" else [("match", 1.0)]
        quiet = asyncio.run(run(url, args.seconds, args.concurrency, 10**9, mix))
        log(f"phase 2: {args.edits_per_second:g} edit(s)/s, {args.concurrency} clients, {args.seconds:g} s …")
        editor = Editor(url, ours, ids, args.edits_per_second)
        editor.start()
        try:
            edited = asyncio.run(run(url, args.seconds, args.concurrency, 10**9, mix))
        finally:
            editor.stop.set()
            editor.join()
        if editor.error is not None:
            raise SystemExit(f"the edits failed: {editor.error!r}")
    finally:
        if server is not None:
            common.stop_server(server)
        shutil.rmtree(home, ignore_errors=True)

    title = f"{label(n)} services, {args.concurrency} clients, {args.workers} worker(s), mix: {args.mix}"
    print(report(quiet, f"No edits: {title}, {quiet.finished - quiet.started:.0f} s"))
    print()
    print(report(edited, f"{args.edits_per_second:g} edit(s)/s: {title}, {edited.finished - edited.started:.0f} s"))
    print()
    p99 = [common.percentile([x for v in t.latencies.values() for x in v], 99) for t in (quiet, edited)]
    print(common.table("Edits", ["edits", "upsert p50 ms", "upsert max ms", "lag p50 ms", "lag p99 ms", "lag max ms",
                                 "p99 with / without edits"], [[
        len(editor.upsert_ms), fmt(common.percentile(editor.upsert_ms, 50), 1),
        fmt(max(editor.upsert_ms, default=0), 1),
        fmt(common.percentile(editor.lag_ms, 50), 1), fmt(common.percentile(editor.lag_ms, 99), 1),
        fmt(max(editor.lag_ms, default=0), 1), fmt(p99[1] / p99[0], 2)]]))
    print(f"\n{common.machine()}; {common.load_average()}")
    errors = sum(sum(c.values()) for t in (quiet, edited) for c in t.errors.values())
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
