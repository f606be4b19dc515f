"""CPU per request of the app's own middleware stack, in process: the app as `rehabmap serve` builds it
(`app.main.create_served_app`, over the cached 100k home), with its router swapped for a trivial ASGI app that
reads the body and answers a small JSON reply, called directly (no server, no socket) with the 200 bench bodies as
`POST /match`. What is timed is everything between the server and the routes: Starlette's and FastAPI's
own layers and ours (limits, security headers, the request log and metrics, the catch-all).

`time.process_time` per request over `--passes` passes of the bodies, `--rounds` rounds, median and range.
Compare two trees in one sitting by running it from each checkout in turn (`cd DIR && python -m
bench.bench_http_stack`), alternating; `--rate-limit N` turns the per-address limit on (N a minute).

    python -m bench.bench_http_stack [--rounds 5] [--passes 25] [--rate-limit 0]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time

from bench import common
from bench.bench_http import bodies
from bench.bench_http_outside import post_in_process


async def _trivial(scope, receive, send) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"15"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"results": []}'})


async def _measure(rounds: int, passes: int) -> list[float]:
    from app.main import create_served_app

    app = create_served_app()
    logging.getLogger().handlers[:] = [logging.NullHandler()]  # the line is still made, not written
    app.router = _trivial  # type: ignore[assignment]
    all_bodies = [b.encode() for b in bodies(common.load_queries())]
    for body in all_bodies:
        if (await post_in_process(app, body))[0] != 200:
            raise SystemExit("the stack did not answer 200")
    per_request = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(passes):
            for body in all_bodies:
                await post_in_process(app, body)
        per_request.append((time.process_time() - started) / (passes * len(all_bodies)) * 1e6)
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=25)
    parser.add_argument("--rate-limit", type=int, default=0, help="requests a minute per address (0: off)")
    args = parser.parse_args()
    os.environ.update(REHABMAP_HOME=str(common.app_home(100_000)), REHABMAP_DATA_DIR=str(common.data_dir()),
                      REHABMAP_RATE_LIMIT_PER_MINUTE=str(args.rate_limit), REHABMAP_WARM_UP="0")
    load_before = common.load_average()
    per_request = asyncio.run(_measure(args.rounds, args.passes))
    print(f"Machine: {common.machine()}; before: {load_before}; after: {common.load_average()}")
    print(f"stack CPU per request: median {statistics.median(per_request):.1f} us "
          f"(range {min(per_request):.1f}-{max(per_request):.1f}; rate limit {args.rate_limit or 'off'})")


if __name__ == "__main__":
    main()
