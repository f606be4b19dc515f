"""What a `rehabmap` process loads before a command runs: click and the domain's vocabulary, nothing heavier.

Every command a person types, every `rehabmap serve` and each of the CLI processes the tests start pays for
what `cli.main` imports. The geometry, the arrays and the web framework cost ~2 s of CPU to import and only
the commands that use them may load them, inside the command. A structural check (which modules are in
`sys.modules` of a fresh process), not a timing one: the time is measured in `bench/bench_startup.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Libraries only some commands need, and the product modules that load them (geodata's areas and geography
# load shapely and scipy; the match and the gap analysis load both and numpy).
HEAVY = ("shapely", "scipy", "numpy", "geopy", "fastapi", "starlette", "uvicorn", "jinja2", "pydantic",
         "pydantic_settings", "elasticsearch", "opensearchpy", "psycopg", "httpx", "rapidfuzz", "cryptography",
         "geodata.areas", "geodata.geography", "geodata.distance", "rehabmap.config", "rehabmap.record",
         "rehabmap.match", "rehabmap.gaps.analysis", "indexer.pipeline", "search", "api", "web", "app")

# Every command's --help, in one fresh interpreter, then the modules it holds.
PROBE = """
import contextlib, io, json, sys
from cli.main import main
helps = [["--help"], *([name, "--help"] for name in main.commands)]
for name, command in main.commands.items():
    helps += [[name, sub, "--help"] for sub in getattr(command, "commands", {})]
for args in helps:
    with contextlib.redirect_stdout(io.StringIO()):
        main.main(args, prog_name="rehabmap", standalone_mode=False)
print(json.dumps({"helps": len(helps), "modules": sorted(sys.modules)}))
"""


def test_the_command_line_starts_without_the_heavy_libraries():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["helps"] > 20  # the top level, every command and every subcommand of a group
    loaded = [m for m in seen["modules"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert not loaded, f"`rehabmap --help` loaded what only a command's run needs: {loaded}"
