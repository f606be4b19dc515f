"""Instructions a `POST /match` request spends in each of its parts, counted by callgrind: where the request
around `match()` goes, part by part (issue 18), so that the next cut starts from the largest part.

Python's own functions do not show in callgrind (every one is the interpreter's eval loop), so each part is
counted in a run of its own: the app and bodies of `request_instructions.py`, the part's function wrapped so
that collection is switched on at its entry and off at its exit (`CALLGRIND_TOGGLE_COLLECT`, from a two-line C
library built here with gcc and called through ctypes), two passes of the 200 bench bodies with
instrumentation off, then one counted. A part's count is inclusive (what it calls is in it) and ÷ 200 is a
request's; a part called twice a request counts both calls. The wrapper's own cost (the ctypes call and the
switch, ~2k instructions a call: the `empty` part) is left in each number. Instructions are not time: cold
caches cost cycles they do not show.

    cd CHECKOUT && PYTHONHASHSEED=0 python -m bench.request_parts [--parts request,match,json_of ...]

runs valgrind once a part (~25 s each; do not `nice` it, the counts do not depend on it, but do not run it
beside a timing either) and prints each part's instructions a request. `--part NAME` is one such run's child.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import inspect
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

_TOGGLE_C = "#include <valgrind/callgrind.h>\nvoid rehabmap_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }\n"


def _toggle() -> Callable[[], Any]:
    """The C function that switches callgrind's collection on or off (a no-op outside valgrind)."""
    folder = Path(tempfile.gettempdir()) / f"rehabmap-request-parts-{os.getuid()}"
    library = folder / "libtoggle.so"
    if not library.exists():  # built aside and renamed: another run may be loading it
        folder.mkdir(exist_ok=True)
        source, built = folder / f"toggle-{os.getpid()}.c", folder / f"libtoggle-{os.getpid()}.so"
        source.write_text(_TOGGLE_C)
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(built), str(source)], check=True)
        source.unlink()
        built.replace(library)
    return ctypes.CDLL(str(library)).rehabmap_toggle


def _counted(function: Callable[..., Any], toggle: Callable[[], Any]) -> Callable[..., Any]:
    """`function` with collection on from its entry to its exit (a coroutine function: to its awaited end)."""
    if inspect.iscoroutinefunction(function):
        async def counted_coroutine(*args: Any, **kwargs: Any) -> Any:
            toggle()
            try:
                return await function(*args, **kwargs)
            finally:
                toggle()
        return counted_coroutine

    def counted(*args: Any, **kwargs: Any) -> Any:
        toggle()
        try:
            return function(*args, **kwargs)
        finally:
            toggle()
    return counted


def _owner(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    found: Any = __import__(module, fromlist=["_"])
    for attribute in name.split(".") if name else ():
        found = getattr(found, attribute)
    return found


# Each part: where its function is looked up when a request calls it (module or class, then attribute), and
# how it is bound there. Patched before the app is made (the body route binds `model_validate` then).
PARTS: dict[str, tuple[str, str, str]] = {
    "app": ("fastapi:FastAPI", "__call__", "method"),  # the app, all of it (the ASGI client's share is not)
    "layer": ("api.request_layer:RequestLayer", "__call__", "method"),
    "head": ("api.head:HeadAsGet", "__call__", "method"),
    "first": ("api.body_route:FirstRoutes", "__call__", "method"),  # the route found, then `serve`
    "serve": ("api.body_route:FirstRoutes", "_serve", "method"),  # the route's request from its body on
    "loads": ("api.body_route", "from_json", "plain"),  # the body's parse (pydantic-core's, read at each call)
    "validate": ("api.schemas:MatchIn", "model_validate", "class"),
    "state_of": ("api.routes.match", "state_of", "plain"),
    "turn_enter": ("api.turns:answer_turn", "__aenter__", "method"),  # waits for the loop's turn
    "turn_exit": ("api.turns:answer_turn", "__aexit__", "method"),
    "answer": ("api.routes.match", "_answer", "plain"),  # the route's own work, `match()` in it
    "locate": ("api.routes.match", "locate", "plain"),  # the home: its postcode and areas
    "postcode": ("geodata.postcodes:PostcodeDirectory", "lookup", "method"),
    "areas": ("geodata.areas:AreaIndex", "locate", "method"),
    "from_input": ("rehabmap.match:MatchRequest", "from_input", "class"),
    "match": ("api.routes.match", "match", "plain"),
    "today": ("rehabmap.state:AppState", "today", "method"),
    "coverage": ("rehabmap.state:AppState", "coverage", "method"),
    "at_home": ("rehabmap.coverage:CoverageMap", "at_home", "method"),
    "for_request": ("rehabmap.coverage:HomeCoverage", "for_request", "method"),
    "with_parts": ("rehabmap.coverage:HomeCoverage", "with_parts", "method"),  # the type's answer and its parts
    "unconfirmed": ("rehabmap.state:AppState", "unconfirmed_listings", "method"),
    "left_out": ("api.routes.match", "left_out", "plain"),
    "result": ("rehabmap.match:ResultMaker", "result", "method"),  # a result made, its explanation in it
    "explain": ("rehabmap.explanation:Explainer", "explain", "method"),
    "miles_and_km": ("rehabmap.explanation", "miles_and_km", "plain"),  # the explanation's distance
    "round_km": ("rehabmap.match", "round_km", "plain"),
    "json_of": ("api.schemas:MatchOut", "json_of", "static"),
    "result_pieces": ("api.schemas", "_result_pieces", "plain"),  # a result's JSON pieces, in `json_of`
    "home_out": ("api.schemas:HomeOut", "fields_of", "static"),  # the reply's home, in `json_of`
    "coverage_json": ("api.schemas", "_coverage_json", "plain"),  # an entry's found and coverage, in `json_of`
    "parts_json": ("api.schemas", "_parts_json", "plain"),  # an entry's parts, in `json_of`
    # The rest of `json_of` (session 30): every pydantic-core `to_json` call of api/schemas.py (the home's, a
    # `left_out`'s, a list of needs' first in a reply, a float not whole metres), a reply's lists of needs kept,
    # `found` (in `_coverage_json`'s making since session 30: its misses only), the reply's due date, the
    # ranking's cached words.
    "to_json": ("api.schemas", "to_json", "plain"),
    "kept": ("api.schemas", "_kept", "plain"),
    "found": ("api.schemas", "_found", "plain"),
    "due_before": ("api.schemas", "_due_before", "plain"),
    "text_json": ("api.schemas", "_text_json", "plain"),
    "response": ("api.routes.match", "Response", "plain"),
    "log_request": ("api.request_layer", "log_request", "plain"),
    "add_headers": ("api.security", "add_headers", "plain"),
}
DEFAULT = ["empty", "request", *PARTS]


def _patch(part: str, toggle: Callable[[], Any]) -> None:
    where, attribute, kind = PARTS[part]
    owner = _owner(where)
    if kind == "class":
        setattr(owner, attribute, classmethod(_counted(getattr(owner, attribute).__func__, toggle)))
    elif kind == "static":
        setattr(owner, attribute, staticmethod(_counted(getattr(owner, attribute), toggle)))
    elif isinstance(owner, ModuleType):  # a module's name, read at each call
        setattr(owner, attribute, _counted(getattr(owner, attribute), toggle))
    else:  # a method, found on the class at each call
        setattr(owner, attribute, _counted(vars(owner)[attribute], toggle))


def child(part: str) -> None:
    """One part's run, under callgrind with instrumentation off until the counted pass."""
    from bench.bench_http_outside import post_in_process
    from bench.request_instructions import app_and_bodies, send_all

    toggle = _toggle()
    if part in PARTS:
        _patch(part, toggle)
    app, bodies = app_and_bodies()
    post = _counted(post_in_process, toggle) if part == "request" else post_in_process
    loop = asyncio.new_event_loop()
    for _ in range(2):
        loop.run_until_complete(send_all(app, bodies, post))
    empty = _counted(lambda: None, toggle)
    gc.disable()
    subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
    if part == "empty":
        for _ in bodies:
            empty()
    else:
        loop.run_until_complete(send_all(app, bodies, post))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default=",".join(DEFAULT), help="comma-separated, of: " + ", ".join(DEFAULT))
    parser.add_argument("--part", choices=DEFAULT, help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="keep each part's callgrind file in this folder")
    args = parser.parse_args()
    if args.part:
        child(args.part)
        return
    parts = args.parts.split(",")
    if unknown := [part for part in parts if part not in DEFAULT]:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="request-parts-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        _count(parts, folder)


def _count(parts: list[str], folder: Path) -> None:
    """Each part in a valgrind run of its own; its instructions a request printed as a table row."""
    print("| part | instructions a request |\n|---|---:|")
    for part in parts:
        out = folder / f"callgrind-{part}.out"
        subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                        f"--callgrind-out-file={out}", sys.executable, "-m", "bench.request_parts", "--part", part],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        total = next(int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:"))
        print(f"| {part} | {total / 200 / 1000:,.1f}k |", flush=True)


if __name__ == "__main__":
    main()
