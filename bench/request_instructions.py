"""Instructions a `POST /match` request costs in process, counted by valgrind: `bench_http_outside`'s A/B
without the load's noise.

On the shared machine the CPU of a request outside `match()` moves by ±100 µs between runs of the same tree
(bench/RESULTS.md), more than a change to one part of it. Instructions executed do not depend on the load: run
under callgrind with instrumentation off, this builds the app as `bench_http_outside` does (the cached 100k
home, the rate limit off, the access line written to /dev/null), sends the 200 bench bodies twice (caches
filled), then switches counting on (`callgrind_control -i on`) and sends them once more, with the collector
off. `--part none` stops after the switch (subtract it: the switch itself and the interpreter's exit). Run it
by path from each checkout, that checkout first on the path, and divide the difference by 200:

    cd CHECKOUT && PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --instr-atstart=no \\
        --callgrind-out-file=/tmp/cg.out python /path/to/bench/request_instructions.py --part requests

`match()` is the same code in both trees unless the change is to it, so the difference is the request's
outside `match()`. Instructions are not time: cold caches cost cycles they do not show.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


async def send_all(app: Any, bodies: list[bytes], post: Callable[..., Awaitable[Any]] | None = None) -> None:
    """Each body as `POST /match` (`post`: `bench_http_outside.post_in_process`, or a wrapper of it); any reply
    but 200 stops the run."""
    from bench.bench_http_outside import post_in_process

    for body in bodies:
        status, _, reply = await (post or post_in_process)(app, body)
        if status != 200:
            raise SystemExit(f"POST /match answered {status}: {reply[:300]!r}")


def app_and_bodies() -> tuple[Any, list[bytes]]:
    """The app as `bench_http_outside` builds it (the cached 100k home, the rate limit off, the access line made
    and written to /dev/null, as a server writes it) and the 200 bench bodies. Import after the checkout is on
    the path."""
    from bench import common
    from bench.bench_http import bodies

    os.environ.update(REHABMAP_HOME=str(common.app_home(100_000)), REHABMAP_DATA_DIR=str(common.data_dir()),
                      REHABMAP_RATE_LIMIT_PER_MINUTE="0", REHABMAP_WARM_UP="0",
                      REHABMAP_TODAY=common.TODAY.isoformat())
    from app.main import create_app

    app = create_app()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))
    return app, [b.encode() for b in bodies(common.load_queries())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("none", "requests"), default="requests")
    args = parser.parse_args()
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run by path: the checkout's own packages come first, not this file's folder
    app, all_bodies = app_and_bodies()
    loop = asyncio.new_event_loop()
    for _ in range(2):
        loop.run_until_complete(send_all(app, all_bodies))
    gc.disable()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    if args.part == "requests":
        loop.run_until_complete(send_all(app, all_bodies))


if __name__ == "__main__":
    main()
