"""`rehabmap ARGS` as the command-line tests run it over a home: `rehabmap`, a real process; `rehabmap_here`, the
same command in this process. Not a test module: importing these brings no tests or fixtures along (they lived
in tests/test_cli.py, which the maintainers', gaps and index command tests imported them from)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def environment(home: Path, data_dir: Path, **env: str) -> dict[str, str]:
    """This process's environment with `home` and `data_dir` as rehabmap's, and `env` on top: what a `rehabmap`
    process a test starts runs with."""
    return {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **env}


def rehabmap(home: Path, data_dir: Path, *args: str, timeout: float = 300,
             **env: str) -> subprocess.CompletedProcess[str]:
    """`rehabmap ARGS` in a process of its own over `home`, with `env` on top (`environment`), its output captured:
    the one way the tests run a command to its end (tests/sync/store_fixtures.py adds a sync's settings,
    tests/maintain/conftest.py `cli` a site's store). `timeout`: a bound on a command that hangs."""
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=environment(home, data_dir, **env),
                          capture_output=True, text=True, timeout=timeout)


def rehabmap_here(home: Path, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`rehabmap ARGS` in this process: the real `main` group (its parsing, its errors' exit status 2 and
    message), the settings read afresh from the same environment (with `env` on top), its output and exit
    status as `rehabmap` gives them. For the checks of what a command reads, refuses and reports, ~1 s of a
    process's start less each; what only a process shows (an exit to the shell, a traceback, a lock held by
    another process) is checked with `rehabmap` itself, once per behaviour. An exception the command does not
    handle fails the test as a traceback would."""
    from click.testing import CliRunner

    from cli.main import main
    from rehabmap.config import get_settings

    get_settings.cache_clear()
    try:
        env = {"REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir), **env}
        done = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    return subprocess.CompletedProcess(["rehabmap", *args], done.exit_code, done.stdout, done.stderr)
