"""What a wrong API token costs the server: requests/s and the server's memory.

A token's id is public, so anyone can send a known id with a wrong secret. For each kind of token this
starts a fresh `python -m cli serve` on 127.0.0.1 (one worker, rate limit off) over a throw-away
REHABMAP_HOME (the cached geodata and 10k-service index linked in), reads its resident memory (VmRSS),
sends `--requests` `GET /maintain/me` with the token's id and a wrong secret from `--concurrency` clients
at once, reads the memory again, and then does the same with the right secret. Every wrong answer must be
401 and every right one 200, or the run fails.

Kinds of token:

* `made now`: the token as the code under test makes it (`Directory.create_token`).
* `argon2 (legacy)`: a row whose hash is Argon2id with the parameters rehabmap used before keyed hashes
  (19 MiB, 2 passes, 1 lane), as an older store holds it. Its right-secret row shows what happens after the
  first right use (the code under test may rehash it).

    python -m bench.bench_tokens [--requests 300] [--concurrency 16]

The same script runs against an older checkout (it only uses `Directory(path).create_token`), which is how
the "before" figures in RESULTS.md were taken.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import common
from bench.common import fmt, log, table

SIZE = 10_000


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def make_home(root: Path) -> Path:
    home = root / "home"
    home.mkdir()
    (home / "geodata").symlink_to(common.geodata_dir())
    for name in common.index_names():
        (home / name).symlink_to(common.index_file(SIZE))
    return home


def tokens(home: Path) -> dict[str, str]:
    """One token of each kind, by kind: made by the code under test, and a legacy Argon2id row."""
    from argon2 import PasswordHasher

    from rehabmap.maintain.store import Directory

    path = home / "directory.sqlite"
    _info, made = Directory(path).tokens.create("admin", "bench: made now", actor="bench")
    token_id, secret = "0123456789ab", secrets.token_urlsafe(32)
    legacy = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1).hash(secret)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO tokens (id, name, role, organisation_id, hash, created_at) "
                     "VALUES (?, 'bench: legacy', 'admin', NULL, ?, '2026-06-01T09:00:00+00:00')", (token_id, legacy))
    return {"made now": made, "argon2 (legacy)": f"rmk_{token_id}_{secret}"}


def wrong(token: str) -> str:
    prefix, token_id, _secret = token.split("_", 2)
    return f"{prefix}_{token_id}_{'A' * 43}"


async def hammer(url: str, token: str, n: int, concurrency: int, expect: int) -> tuple[float, list[float]]:
    """(seconds, latencies in ms) of n requests with this token, `concurrency` at a time."""
    queue = list(range(n))
    latencies: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            queue.pop()
            started = time.perf_counter()
            reply = await http.get("/maintain/me", headers={"Authorization": f"Bearer {token}"})
            latencies.append((time.perf_counter() - started) * 1000)
            if reply.status_code != expect:
                raise SystemExit(f"expected {expect}, got {reply.status_code}: {reply.text[:200]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def measure(kind: str, n: int, concurrency: int) -> list[list[object]]:
    with tempfile.TemporaryDirectory(prefix="rehabmap-bench-tokens-") as tmp:
        home = make_home(Path(tmp))
        token = tokens(home)[kind]
        port = common.free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(common.data_dir()),
               "REHABMAP_RATE_LIMIT_PER_MINUTE": "0",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(common.ROOT), os.environ.get("PYTHONPATH")]))}
        with open(Path(tmp) / "server.log", "w") as server_log:
            server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port",
                                       str(port)], cwd=common.ROOT, env=env, stdout=server_log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
            try:
                common.wait_ready(url, server)
                rows = []
                for secret, attempt, expect in (("wrong", wrong(token), 401), ("right", token, 200)):
                    before = rss_mib(server.pid)
                    log(f"{kind}: {n} requests with the {secret} secret, {concurrency} at a time …")
                    seconds, latencies = asyncio.run(hammer(url, attempt, n, concurrency, expect))
                    rows.append([kind, secret, fmt(n / seconds, 1), fmt(common.percentile(latencies, 50), 1),
                                 fmt(common.percentile(latencies, 99), 1), fmt(before, 0),
                                 fmt(rss_mib(server.pid), 0)])
                return rows
            finally:
                common.stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {common.machine()}; {common.load_average()}")
    rows = []
    for kind in ("made now", "argon2 (legacy)"):
        rows += measure(kind, args.requests, args.concurrency)
    print(table(f"GET /maintain/me: {args.requests} requests, {args.concurrency} at a time, a fresh server per kind",
                ["token", "secret", "requests/s", "p50 ms", "p99 ms", "RSS before MiB", "RSS after MiB"], rows))
    print(f"\n{common.load_average()}")


if __name__ == "__main__":
    main()
