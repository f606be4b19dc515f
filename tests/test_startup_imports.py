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

# The modules a probe's interpreter holds (an entry of None is an import refused, not a module: `cli.main`'s
# for httpx's command line).
LOADED = "sorted(name for name, module in sys.modules.items() if module is not None)"
# Every command's --help, in one fresh interpreter, then the modules it holds.
PROBE = """
import click, contextlib, io, json, sys
from cli.main import main
names = main.list_commands(click.Context(main))
helps = [["--help"], *([name, "--help"] for name in names)]
for name in names:
    helps += [[name, sub, "--help"] for sub in getattr(main.get_command(click.Context(main), name), "commands", {})]
for args in helps:
    with contextlib.redirect_stdout(io.StringIO()):
        main.main(args, prog_name="rehabmap", standalone_mode=False)
print(json.dumps({"helps": len(helps), "modules": LOADED}))
""".replace("LOADED", LOADED)


def loaded_by(probe: str, **env: str) -> dict:
    """What a fresh interpreter running `probe` (which prints JSON with its "modules") reports."""
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def among(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == n or m.startswith(n + ".") for n in names)]


def test_the_command_line_starts_without_the_heavy_libraries():
    seen = loaded_by(PROBE)
    assert seen["helps"] > 20  # the top level, every command and every subcommand of a group
    loaded = among(seen["modules"], HEAVY)
    assert not loaded, f"`rehabmap --help` loaded what only a command's run needs: {loaded}"


def test_a_command_loads_its_own_module_and_not_the_others():
    """`rehabmap match` (and its --help) imports `cli.match`, not the maintainers' commands with their token
    hashing, the gap analysis's options or the syncs' connectors: `cli.main` names each command's module. A
    command that fetches imports httpx without httpx's own command line (rich and pygments, here for the tests)."""
    probe = ("import contextlib, io, json, sys\nfrom cli.main import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    main.main(['match', '--help'], prog_name='rehabmap', standalone_mode=False)\n"
             f"modules = {LOADED}\nimport httpx\n"
             f"print(json.dumps({{'modules': modules, 'with_httpx': {LOADED}}}))")
    seen = loaded_by(probe)
    assert among(seen["modules"], ("cli",)) == ["cli", "cli.main", "cli.match", "cli.textgrid"]
    assert not among(seen["modules"], ("argon2", "rehabmap.maintain", "rehabmap.gaps", "indexer"))
    assert not among(seen["with_httpx"], ("rich", "pygments"))


def test_the_server_loads_scipy_and_geopy_when_first_used_and_never_the_sync_or_build_parts(geodata_dir: Path,
                                                                                           tmp_path: Path):
    """`rehabmap serve` needs the web framework, but the gap analysis's k-d trees (scipy) and geopy's great
    circle wait for the first question that needs them (in production, the warm-up at start asks it); a home's
    areas (the cells of each level, labelled without scipy.ndimage) load neither. What a worker's start never
    uses is not loaded by it: the syncs' HTTP client (httpx, ~60 ms of CPU, reached through the feeds' titles),
    the geodata builder, and the progress bars of an index build or a sync."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    probe = ("import json, sys\nimport uvicorn, app.main\napp.main.create_app()\n"
             "from geodata.geography import Geography\n"
             f"Geography.open({str(geodata_dir)!r}).resolve(postcode='LS9 7TF')\n"
             f"print(json.dumps({{'modules': {LOADED}}}))")
    seen = loaded_by(probe, REHABMAP_HOME=str(tmp_path / "home"), REHABMAP_WARM_UP="false",
                     REHABMAP_CACHE_DIR=str(tmp_path / "cache"))
    assert "fastapi" in seen["modules"] and "geodata.geography" in seen["modules"]
    assert not among(seen["modules"], ("scipy", "geopy", "httpx", "geodata.build", "tqdm"))
