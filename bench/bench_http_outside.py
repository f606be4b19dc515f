"""The CPU a `POST /match` request spends outside `match()`, against the CPU of the ceiling's whole request:
issue 18's HTTP target restated as what the request around the answer costs (bench/RESULTS.md, "POST /match,
fifth pass"), since `match()` alone bounds the req/s ratio.

In process, no server and no socket (uvicorn's share is left out of both sides): the app as `rehabmap serve`
builds it (`app.main.create_served_app` over the cached 100k home, the rate limit off as in bench_http, the
access line formatted and written, to /dev/null) is called as raw ASGI with the 200 bench bodies, and so is the
ceiling (`bench/http_ceiling.py`: the same body parsed into `MatchIn`, `{"results": []}` answered), pass by
pass in turn. `time.process_time` per pass of 200 requests; `match()` is wrapped where the route calls it, so
its CPU is read on the same calls: outside = the request's CPU − `match()`'s.

Each checkout runs in a child process of its own (this file run by path with the checkout first on the
path, its own `app`, `api` and `bench.common`), `--rounds` times, the checkouts alternating round by round.
The first pass of each child also records every reply (status, header pairs in order, body; REHABMAP_TODAY
fixed) and the table says whether they are byte-identical to this checkout's (`--replies DIR` keeps them).

    python -m bench.bench_http_outside [--checkout DIR] [--rounds 3] [--passes 8] [--replies DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def post_in_process(app, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """`POST /match` with `body` straight to the ASGI `app` (no server, no socket): the reply's status, its
    header pairs in order and its body."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/match", "raw_path": b"/match", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "state": {}}
    sent = False
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        else:
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def _reply_line(reply: tuple[int, list[tuple[bytes, bytes]], bytes]) -> str:
    status, headers, body = reply
    return json.dumps([status, [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers],
                       body.decode("utf-8")])


async def _child(passes: int, replies: Path | None) -> dict[str, object]:
    """One checkout's measure (run with that checkout first on sys.path); a JSON object on stdout."""
    import logging

    from bench import common
    from bench.bench_http import bodies
    from bench.http_ceiling import create_app as create_ceiling

    os.environ.update(REHABMAP_HOME=str(common.app_home(100_000)), REHABMAP_DATA_DIR=str(common.data_dir()),
                      REHABMAP_RATE_LIMIT_PER_MINUTE="0", REHABMAP_WARM_UP="0",
                      REHABMAP_TODAY=common.TODAY.isoformat())
    import api.routes.match as route
    import app.main as composition

    # A checkout older than session 20 has no create_served_app: its create_app froze at each load itself.
    served = getattr(composition, "create_served_app", composition.create_app)
    app, ceiling = served(), create_ceiling()
    for handler in logging.getLogger().handlers:  # the access line is made and written, as a server writes it
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))
    answer = route.match
    spent = [0.0]

    def timed_match(*args, **kwargs):
        started = time.process_time()
        try:
            return answer(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - started

    route.match = timed_match
    all_bodies = [b.encode() for b in bodies(common.load_queries())]
    lines = []
    for body in all_bodies:
        reply = await post_in_process(app, body)
        if reply[0] != 200 or (await post_in_process(ceiling, body))[0] != 200:
            raise SystemExit(f"POST /match answered {reply[0]}: {reply[2][:300]!r}")
        lines.append(_reply_line(reply))
    text = "\n".join(lines) + "\n"
    if replies is not None:
        replies.write_text(text, encoding="utf-8")
    request_us, match_us, ceiling_us = [], [], []
    for _ in range(passes):
        spent[0] = 0.0
        started = time.process_time()
        for body in all_bodies:
            await post_in_process(app, body)
        request_us.append((time.process_time() - started) / len(all_bodies) * 1e6)
        match_us.append(spent[0] / len(all_bodies) * 1e6)
        started = time.process_time()
        for body in all_bodies:
            await post_in_process(ceiling, body)
        ceiling_us.append((time.process_time() - started) / len(all_bodies) * 1e6)
    return {"request": request_us, "match": match_us, "ceiling": ceiling_us,
            "replies": hashlib.sha256(text.encode()).hexdigest()}


def _run_child(checkout: Path, passes: int, replies: Path | None) -> dict:
    from bench import common

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")])),
           "REHABMAP_BENCH_CACHE": str(common.CACHE)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--passes", str(passes)]
    if replies is not None:
        command += ["--replies", str(replies)]
    out = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the measure in {checkout} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkout", type=Path, help="also measure this checkout (before/after), alternating")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per checkout")
    parser.add_argument("--passes", type=int, default=8, help="passes of the 200 bodies per child")
    parser.add_argument("--replies", type=Path, help="keep each checkout's replies (JSON lines) in this folder")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # run by path: the checkout's own packages, not this file's folder, come first
        if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
            del sys.path[0]
        print(json.dumps(asyncio.run(_child(args.passes, args.replies))))
        return
    from bench import common

    checkouts = [("this checkout", ROOT)] + ([(args.checkout.name, args.checkout.resolve())] if args.checkout else [])
    if args.replies is not None:
        args.replies.mkdir(parents=True, exist_ok=True)
    load_before = common.load_average()
    runs: dict[str, list[dict]] = {name: [] for name, _ in checkouts}
    for number in range(args.rounds):
        for name, checkout in checkouts:
            keep = args.replies / f"{checkout.name}.jsonl" if args.replies is not None and number == 0 else None
            runs[name].append(_run_child(checkout, args.passes, keep))
            common.log(f"round {number + 1} {name}: done")
    mine = runs["this checkout"][0]["replies"]
    rows = []
    for name, results in runs.items():
        median = {key: statistics.median(v for r in results for v in r[key]) for key in ("request", "match", "ceiling")}
        outside = statistics.median(a - b for r in results for a, b in zip(r["request"], r["match"]))
        rows.append([name, common.fmt(median["request"], 0), common.fmt(median["match"], 0), common.fmt(outside, 0),
                     common.fmt(median["ceiling"], 0), common.fmt(outside / median["ceiling"], 2),
                     common.fmt(median["ceiling"] / median["request"], 3),
                     "yes" if all(r["replies"] == mine for r in results) else "NO"])
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()}")
    print()
    print(common.table(
        f"POST /match in process over 100k, µs of CPU a request (median of {args.rounds} × {args.passes} passes of "
        "200 bodies; no server: uvicorn left out of both sides)",
        ["checkout", "request", "match()", "outside match()", "ceiling's request", "outside / ceiling",
         "ceiling / request (req/s bound)", "replies identical"], rows))


if __name__ == "__main__":
    main()
