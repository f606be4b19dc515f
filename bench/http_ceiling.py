"""The ceiling for `POST /match` in bench_http: what the HTTP stack alone serves on this machine.

An empty FastAPI app whose `POST /match` parses and validates the same body as the real route (the API's
own `MatchIn`) and answers `{"results": []}`, under uvicorn started exactly as `rehabmap serve` starts it
(`cli.workers.run`: factory, `access_log=False`, the same `--workers`, each on a listening socket of its own;
httptools and uvloop are picked the same way). No index, no geography, no middleware: the gap between this and the
real route is the answer.

    python -m bench.http_ceiling --port P [--workers N]
"""

from __future__ import annotations

import argparse

from fastapi import FastAPI

from api.schemas import MatchIn


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/match")
    async def post_match(body: MatchIn) -> dict[str, list[object]]:
        return {"results": []}

    return app


def main() -> None:
    from cli import workers

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    workers.run("bench.http_ceiling:create_app", host=args.host, port=args.port, fd=None, workers=args.workers)


if __name__ == "__main__":
    main()
