"""What every benchmark shares: the cached corpus and geodata, the fixed query set, timing and tables,
and a throw-away PostgreSQL + PostGIS server on 127.0.0.1.

Everything built here goes under bench/.cache (or $REHABMAP_BENCH_CACHE) and is reused by later runs:
the geodata (~10 s), and one embedded index file per corpus size (the 500k corpus takes ~25 s to make).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from bench.synthetic import REALISTIC_MIX, load_small_areas, make_services
from rehabmap.config import Settings
from rehabmap.maintain.migrations import LATEST as STORE_VERSION
from rehabmap.match import MatchRequest
from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = Path(os.environ.get("REHABMAP_BENCH_CACHE", BENCH / ".cache"))
QUERIES = BENCH / "queries.csv"
TODAY = date(2026, 11, 23)
SEED = 2026
SIZES = {"10k": 10_000, "100k": 100_000, "500k": 500_000}
# The query shape of the targets: 10 nearest within 50 km, two types (any of), one need.
K, RADIUS_KM = 10, 50.0
# The request shapes `match()` is measured in: the targets' (above), and "any", what `POST /match` and the
# clinicians' page ask when nothing is narrowed: every type its own list of K, at any distance.
SHAPES = ("targets", "any", "best_fit")
CORPUS_VERSION = "1"  # bump when the generator changes, so cached index files are rebuilt


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[int]:
    return [SIZES[s] if s in SIZES else int(s) for s in text.split(",") if s]


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def data_dir() -> Path:
    return Settings().data_dir


# --- corpus, index, geodata ------------------------------------------------------------------------------

def corpus(n: int, seed: int = SEED) -> list[Service]:
    """n services at population-weighted LSOA centroids, with the realistic mix of types and needs."""
    return make_services(load_small_areas(data_dir()), n, seed=seed, today=TODAY, mix=REALISTIC_MIX)


def index_file(n: int) -> Path:
    """The embedded index of the n-service corpus, written once and reused."""
    from search.embedded import SCHEMA_VERSION, EmbeddedWriter

    # Named by the index schema too, so a file in an older layout (which cannot be opened) is never reused.
    path = CACHE / f"index-v{CORPUS_VERSION}-schema{SCHEMA_VERSION}-{n}.sqlite"
    if not path.exists():
        log(f"making the {label(n)} corpus and its index (once; cached in {CACHE}) …")
        started = time.perf_counter()
        EmbeddedWriter(path).replace_all(corpus(n))
        log(f"  done in {time.perf_counter() - started:.1f} s")
    return path


def index_names() -> tuple[str, str]:
    """The names a home's embedded index goes by: this tree's (by schema, `search.embedded.index_file`), and
    `index.sqlite`, which the trees before names carried a schema read, so a home serves one (`--checkout`) too."""
    from search.embedded import index_file as home_index

    return home_index(Path()).name, "index.sqlite"


_BUILD_GEODATA = """
import sys
from pathlib import Path
from geodata.geography import Geography
from geodata.layout import FORMAT_VERSION
path = Path(sys.argv[1]) / f"geodata-format{FORMAT_VERSION}"
Geography.open(path, source_dir=Path(sys.argv[2])).close()
print(path)
"""


def geodata_dir(checkout: Path = ROOT) -> Path:
    """Geodata built from the real ONS files in ../shared/data by `checkout`'s code, once per geodata format.

    A before/after whose trees differ in format gets one build for each: with one shared folder, each server
    start found the other tree's build outdated and rebuilt it (13-18 s), beside the other's measurement."""
    if checkout == ROOT:
        from geodata.geography import Geography
        from geodata.layout import FORMAT_VERSION

        path = CACHE / f"geodata-format{FORMAT_VERSION}"
        Geography.open(path, source_dir=data_dir()).close()
        return path
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))}
    built = subprocess.run([sys.executable, "-c", _BUILD_GEODATA, str(CACHE), str(data_dir())], cwd=checkout,
                           env=env, check=True, capture_output=True, text=True)
    return Path(built.stdout.strip().splitlines()[-1])


def app_home(n: int, checkout: Path = ROOT) -> Path:
    """A REHABMAP_HOME for the API: the cached geodata and the n-service index, linked in. One per version of
    the maintainers' store, which the app migrates on open, and one for another checkout served beside this
    one (`--checkout`): an older tree refuses a store a newer one migrated."""
    home = CACHE / (f"home-{n}-store{STORE_VERSION}" if checkout == ROOT else f"home-{n}-{checkout.name}")
    home.mkdir(parents=True, exist_ok=True)
    for name, target in (("geodata", geodata_dir(checkout)), *((name, index_file(n)) for name in index_names())):
        link = home / name
        if link.is_symlink() or link.exists():
            if link.resolve() == target.resolve():
                continue
            link.unlink()
        link.symlink_to(target)
    return home


# --- queries ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    postcode: str
    types: tuple[ServiceType, ...]
    needs: tuple[str, ...]


def load_queries() -> list[Query]:
    with QUERIES.open(newline="") as handle:
        return [Query(r["postcode"], tuple(ServiceType(t) for t in r["types"].split(";")),
                      tuple(n for n in r["needs"].split(";") if n))
                for r in csv.DictReader(handle)]


def add_shape_option(parser: argparse.ArgumentParser) -> None:
    """`--shape`, the requests a `match()` bench asks: one of `SHAPES` (see `match_requests`)."""
    parser.add_argument("--shape", choices=SHAPES, default="targets",
                        help="the requests: the targets' shape, 'any' (each type, no radius), or 'best_fit' "
                             "(the same, best fit first: the clinicians' page's default)")


def match_requests(queries: list[Query], shape: str = "targets",
                   request: Callable[..., MatchRequest] = MatchRequest) -> list[MatchRequest]:
    """The queries as `match()` requests of one of `SHAPES`: each query's home and needs either way.
    `request`: the class that makes them, when another tree's `match()` is to be asked (`bench.ab_match`)."""
    if shape in ("any", "best_fit"):
        order = "best_fit" if shape == "best_fit" else "nearest"
        return [request(needs=q.needs, each_type=True, limit=K, order=order) for q in queries]
    return [request(needs=q.needs, types=q.types, max_distance_km=RADIUS_KM, limit=K) for q in queries]


def resolve_homes(queries: list[Query]):
    """Each query's home, through the product's own geography (postcode → point, ICB, LAD …)."""
    from geodata.geography import Geography

    geography = Geography.open(geodata_dir())
    try:
        return [geography.resolve(postcode=q.postcode) for q in queries]
    finally:
        geography.close()


# --- timing and tables -----------------------------------------------------------------------------------

def percentile(samples: list[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=float), q)) if len(samples) else float("nan")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """(milliseconds, result) of one call."""
    started = time.perf_counter_ns()
    result = fn()
    return (time.perf_counter_ns() - started) / 1e6, result


def fmt(value: float, digits: int = 3) -> str:
    if value != value:  # NaN
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = "| " + " | ".join("-" * w for w in widths) + " |"
    out = [f"### {title}", "", "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths)) + " |", line]
    out += ["| " + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
            for r in cells[1:]]
    return "\n".join(out)


def load_average() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import numpy

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}, "
            f"NumPy {numpy.__version__}, {platform.system()} {platform.release()}")


# --- PostgreSQL + PostGIS --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian's layout), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


# The benchmarks' server: memory for a national corpus, durability traded for load speed.
BENCH_SETTINGS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=1GB "
                  "-c work_mem=64MB -c maintenance_work_mem=512MB -c jit=off")
SERVER_USER = "postgres"


@contextmanager
def postgres(settings: str = BENCH_SETTINGS) -> Iterator[tuple[str, int]]:
    """A fresh PostgreSQL cluster in a temporary folder, on 127.0.0.1 and a free port, its superuser
    'postgres' trusted from there; stopped and deleted on exit. As root the server runs as the unprivileged
    user 'postgres' (PostgreSQL refuses to run as root), made first if the machine lacks it."""
    bindir = pg_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql postgis (see bench/README.md)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        if subprocess.run(["id", "-u", SERVER_USER], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", SERVER_USER], check=True)
        as_user = ["runuser", "-u", SERVER_USER, "--"]
    workdir = Path(tempfile.mkdtemp(prefix="rehabmap-pg-"))
    data = workdir / "data"
    if as_user:
        shutil.chown(workdir, SERVER_USER, SERVER_USER)

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        port = _start_on_a_free_port(run, bindir, data, workdir, settings)
        try:
            yield "127.0.0.1", port
        finally:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _start_on_a_free_port(run: Callable[..., None], bindir: Path, data: Path, workdir: Path, settings: str) -> int:
    """Start the cluster on a port the kernel just said was free. PostgreSQL cannot take an inherited socket,
    so another process (a second test worker, a benchmark) may bind that port first: the server then stops
    with "Address already in use", and only then is another port tried."""
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} {settings}"
        log = workdir / f"log-{attempt}"
        try:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
            return port
        except subprocess.CalledProcessError:
            if not log.exists() or "already in use" not in log.read_text(errors="replace"):
                raise
    raise RuntimeError(f"PostgreSQL found no free port in {_PORT_ATTEMPTS} attempts")


_PORT_ATTEMPTS = 5


def start_server(n: int, port: int, workers: int = 1, log_name: str = "server", home: Path | None = None,
                 checkout: Path = ROOT) -> subprocess.Popen:
    """`rehabmap serve` on 127.0.0.1 over the cached N-service home (or `home`), in its own process group,
    run from this checkout's code (or another's, for a before/after).

    The per-address rate limit is off: one load generator is one client address, and would get 429s."""
    env = {**os.environ, "REHABMAP_HOME": str(home or app_home(n, checkout)), "REHABMAP_DATA_DIR": str(data_dir()),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers)]
    log_file = open(CACHE / f"{log_name}-{n}.log", "w")
    return subprocess.Popen(command, cwd=checkout, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(url: str, server: subprocess.Popen | None, timeout_s: float = 120) -> float:
    """Seconds until /health answers 200; the run stops if the server dies or never answers."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if server is not None and server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}; see its log in {CACHE}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer /health within {timeout_s:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
