"""Instructions a monitoring probe (`GET /health`, `GET /metrics`) costs in process, counted by valgrind, over a
home with a sync store (REHABMAP_HOME: e.g. the tests' `synced_home`, a real `rehabmap sync cqc` of the recorded
CQC API).

A probe is asked every few seconds by every load balancer and scraper, and reads the sync store. Run under
callgrind with instrumentation off, this builds the app (warm-up off), sends `--count` probes of `--path` twice
(caches filled, the threadpool's threads started), then switches counting on (`callgrind_control -i on`) and sends
them once more, with the collector off. `--count 0` gives the switch itself and the interpreter's exit: subtract
it, and divide by the count. Run it by path from each checkout, that checkout first on the path:

    cd CHECKOUT && REHABMAP_HOME=HOME REHABMAP_DATA_DIR=DATA PYTHONHASHSEED=0 PYTHONPATH=. valgrind \\
        --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        python /path/to/bench/probe_instructions.py --path /health --count 200
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import subprocess
import sys
from pathlib import Path


async def get_in_process(app, path: str) -> int:
    """`GET path` straight to the ASGI `app`: the reply's status."""
    path, _, query = path.partition("?")  # e.g. /gaps/areas.geojson?level=la
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
             "state": {}}
    status = 0

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _probe(app, path: str, count: int) -> None:
    for _ in range(count):
        status = await get_in_process(app, path)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", default="/health")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args()
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run by path: the checkout's own packages come first, not this file's folder
    os.environ.update(REHABMAP_RATE_LIMIT_PER_MINUTE="0", REHABMAP_WARM_UP="0")
    from app.main import create_app

    app = create_app()
    for handler in logging.getLogger().handlers:  # the access line is made and written, as a server writes it
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))
    loop = asyncio.new_event_loop()
    for _ in range(2):
        loop.run_until_complete(_probe(app, args.path, args.count))
    gc.disable()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    loop.run_until_complete(_probe(app, args.path, args.count))


if __name__ == "__main__":
    main()
