"""`rehabmap serve`: the API and the pages (the composition root, `app.main:create_served_app`) under uvicorn."""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--fd", type=click.IntRange(0), default=None,
              help="Serve on this listening socket, inherited from the process that started this one (a "
                   "supervisor's socket activation, or the tests); --host and --port are then ignored.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads its own copy of the embedded index), each listening on a "
                   "socket of its own (SO_REUSEPORT), so the kernel spreads connections between them.")
def serve(host: str, port: int, fd: int | None, workers: int) -> None:
    """Run the API (and pages) with uvicorn."""
    from cli import workers as worker_processes

    worker_processes.run("app.main:create_served_app", host=host, port=port, fd=fd, workers=workers)
