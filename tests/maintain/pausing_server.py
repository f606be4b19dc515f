"""`rehabmap serve` with a pause inside the maintainers' write transactions, for the crash tests.

    REHABMAP_TEST_PAUSE_IN_WRITE=directory|index python -m tests.maintain.pausing_server --fd N

runs the same application as `rehabmap serve` (`app.main.create_app` under uvicorn) with its editor's
`before_commit` seam set: inside that transaction a write says so in `REHABMAP_HOME/paused-<stage>` and
waits to be killed. The product knows nothing of it; `start_server` in conftest.py launches this instead of
`rehabmap serve` when a test asks for the pause.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from app.main import create_app
from cli.workers import run
from rehabmap.config import get_settings


def pause_at(stage: str, home: Path) -> Callable[[str], None]:
    def pause(at: str) -> None:
        if at != stage:
            return
        (home / f"paused-{at}").write_text(str(os.getpid()))
        while True:
            time.sleep(3600)

    return pause


def create_pausing_app() -> FastAPI:
    app = create_app()
    editor = app.state.rehabmap.editor
    assert editor is not None, "the directory store did not open"
    editor.before_commit = pause_at(os.environ["REHABMAP_TEST_PAUSE_IN_WRITE"], get_settings().home)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    args = parser.parse_args()
    # As `rehabmap serve --fd` runs it (one process), its inherited socket set to reply at once (TCP_NODELAY).
    run("tests.maintain.pausing_server:create_pausing_app", "127.0.0.1", 0, args.fd, workers=1)


if __name__ == "__main__":
    main()
