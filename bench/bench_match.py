"""Match latency in-process: the embedded backend against PostGIS and a brute-force NumPy scan.

For every corpus size, the fixed query set (bench/queries.csv: real postcodes, two types any-of, one need)
is asked of:
  - `EmbeddedIndex.nearest`  the raw backend call: 10 nearest within 50 km, same filters as below;
  - `match()`                the whole domain call (`rehabmap.match.match`, with catchments, the home
                             ICB margin, explanations and the per-type summary), radius 50 km, limit 10;
  - `summarise()`            the per-type summary alone (part of `match()`);
  - NumPy floor              a brute-force scan, the floor for exact answers: one pass of bitmask filters
                             and a latitude band over every row, haversine on the survivors, top k;
  - `match()`, any type      the default request of `POST /match` and the clinicians' page: every type its
                             own list of 10, at any distance (~70 results a query), in rounds of its own
                             after the others' (its records would evict theirs from the record cache);
  - PostGIS                  PostgreSQL + PostGIS started here on 127.0.0.1: `ORDER BY geog <-> point`
                             on a GiST index, with the same filters in the WHERE (types, needs bitmask,
                             active, ST_DWithin 50 km on the sphere), through psycopg, prepared, with
                             the generic (KNN index scan) plan; see `PostGIS` below.
Every engine answers every query in every round, interleaved, so machine noise hits them alike. The ids
from the raw call, the floor and PostGIS are compared for every query: the table says how many agree.

    python -m bench.bench_match [--sizes 10k,100k,500k] [--rounds 5] [--no-postgis]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from dataclasses import dataclass

import numpy as np

from bench import common
from bench.common import K, RADIUS_KM, fmt, label, log, timed
from geodata.distance import EARTH_RADIUS_KM
from rehabmap.index.base import ServiceQuery
from search.embedded import EmbeddedIndex
from rehabmap.match import match, summarise
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, ServiceType

TYPES = list(ServiceType)
ANY = "match(), any type"  # the default request: every type its own list of K, at any distance
BEST_FIT = "match(), any type, best fit"  # the same, best fit first: the clinicians' page's default
NEED_BITS = {need: 1 << i for i, need in enumerate(NEED_LABELS)}


def need_bits(needs: list[str] | tuple[str, ...]) -> int:
    return sum(NEED_BITS.get(n, 0) for n in set(needs))


class NumpyFloor:
    """The simplest exact scan: every row is looked at once per query."""

    def __init__(self, services: list[Service]) -> None:
        self.ids = np.array([s.id for s in services], dtype=object)
        self.lat = np.array([s.lat for s in services])
        self.lon = np.array([s.lon for s in services])
        self.phi = np.radians(self.lat)
        self.lam = np.radians(self.lon)
        self.cos_phi = np.cos(self.phi)
        self.type_bit = np.array([(1 << TYPES.index(s.service_type)) if s.status == "active" else 0
                                  for s in services], dtype=np.uint8)
        self.not_met = np.array([need_bits(s.needs_not_met) for s in services], dtype=np.uint32)
        self.id_rank = np.empty(len(services), dtype=np.int64)
        self.id_rank[np.argsort(self.ids)] = np.arange(len(services))

    def nearest(self, lat: float, lon: float, types: tuple[ServiceType, ...], needs: tuple[str, ...],
                k: int, radius_km: float) -> list[tuple[str, float]]:
        want_type = np.uint8(sum(1 << TYPES.index(t) for t in types))
        want_needs = np.uint32(need_bits(needs))
        band = np.degrees(radius_km / EARTH_RADIUS_KM) * (1 + 1e-9) + 1e-12
        ok = (self.type_bit & want_type) != 0
        ok &= (self.not_met & want_needs) == 0
        ok &= np.abs(self.lat - lat) <= band
        rows = np.flatnonzero(ok)
        phi, lam = np.radians(lat), np.radians(lon)
        a = (np.sin((self.phi[rows] - phi) / 2) ** 2
             + np.cos(phi) * self.cos_phi[rows] * np.sin((self.lam[rows] - lam) / 2) ** 2)
        d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
        inside = d <= radius_km
        rows, d = rows[inside], d[inside]
        if len(rows) > k:
            kth = np.partition(d, k - 1)[k - 1]
            keep = d <= kth
            rows, d = rows[keep], d[keep]
        order = np.lexsort((self.id_rank[rows], d))[:k]
        return [(self.ids[rows[i]], float(d[i])) for i in order]


class PostGIS:
    """The same services in a PostGIS table, asked the same question.

    The inner query is the KNN form: `ORDER BY geog <-> point LIMIT k + 1` on the GiST index, with the
    filters (and the 50 km ST_DWithin, on the sphere) in its WHERE; the outer one breaks distance ties by
    id, like the embedded index. Plans are generic (`plan_cache_mode = force_generic_plan`): with the
    point known, the planner prefers a bitmap scan of the whole 50 km box plus a sort, 10-100 times
    slower than the index-ordered KNN scan. When the (k+1)-th row ties the k-th, the query is asked again
    with a larger limit, so the answer stays exact.
    """

    SQL = """
        SELECT id, d, o FROM (
            SELECT id, ST_Distance(geog, p.g, false) / 1000.0 AS d, geog <-> p.g AS o
            FROM services, (SELECT ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326)::geography AS g) AS p
            WHERE active AND type = ANY({types}) AND (not_met & {needs}) = 0
              AND ST_DWithin(geog, p.g, {radius}, false)
            ORDER BY geog <-> p.g
            LIMIT {limit}) AS nearest
        ORDER BY o, id"""
    NAMES = ("lat", "lon", "types", "needs", "radius", "limit")

    def __init__(self, host: str, port: int) -> None:
        import psycopg

        self.conn = psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True,
                                    prepare_threshold=0)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        self.conn.execute("SET plan_cache_mode = force_generic_plan")
        self.sql = self.SQL.format(**{name: f"%({name})s" for name in self.NAMES})

    def load(self, services: list[Service]) -> float:
        started = time.perf_counter()
        conn = self.conn
        conn.execute("DROP TABLE IF EXISTS services")
        conn.execute("CREATE TABLE services (id text PRIMARY KEY, type smallint NOT NULL, active boolean NOT NULL,"
                     " not_met integer NOT NULL, geog geography(Point, 4326) NOT NULL)")
        with conn.cursor() as cur, cur.copy("COPY services (id, type, active, not_met, geog) FROM STDIN") as copy:
            for s in services:
                copy.write_row((s.id, TYPES.index(s.service_type), s.status == "active", need_bits(s.needs_not_met),
                                f"SRID=4326;POINT({s.lon!r} {s.lat!r})"))
        conn.execute("CREATE INDEX services_geog ON services USING gist (geog)")
        conn.execute("VACUUM ANALYZE services")
        return time.perf_counter() - started

    def plan(self, lat: float, lon: float, types, needs) -> str:
        """The generic plan the benchmark's prepared statement runs."""
        positional = self.SQL.format(**{name: f"${i}" for i, name in enumerate(self.NAMES, 1)})
        self.conn.execute("PREPARE knn_plan (float8, float8, int2[], int4, float8, int8) AS " + positional)
        p = self._params(lat, lon, types, needs, K + 1)
        import psycopg

        with psycopg.ClientCursor(self.conn) as cur:  # EXPLAIN takes no server-side parameters
            rows = cur.execute("EXECUTE knn_plan (%s, %s, %s::int2[], %s, %s, %s)".join(["EXPLAIN ", ""]),
                               [p[name] for name in self.NAMES]).fetchall()
        self.conn.execute("DEALLOCATE knn_plan")
        return "\n".join(r[0] for r in rows)

    @staticmethod
    def _params(lat, lon, types, needs, limit) -> dict:
        return {"lat": lat, "lon": lon, "types": [TYPES.index(t) for t in types], "needs": need_bits(needs),
                "radius": RADIUS_KM * 1000.0, "limit": limit}

    def nearest(self, lat: float, lon: float, types, needs) -> list[tuple[str, float]]:
        limit = K + 1
        while True:
            rows = self.conn.execute(self.sql, self._params(lat, lon, types, needs, limit)).fetchall()
            if len(rows) < limit or rows[K - 1][2] != rows[-1][2]:
                return [(i, float(d)) for i, d, _ in rows[:K]]
            limit *= 4  # the last row ties the k-th: there may be more tied rows beyond it

    def close(self) -> None:
        self.conn.close()


@dataclass
class Engine:
    name: str
    samples: list[float]
    cpu_s: float = 0.0  # process CPU time over all its calls: steadier than the wall clock on a shared machine

    def time(self, fn):
        """Call fn, keeping its wall-clock milliseconds and adding its CPU time; its result."""
        cpu = time.process_time()
        ms, result = timed(fn)
        self.cpu_s += time.process_time() - cpu
        self.samples.append(ms)
        return result


def run_size(n: int, rounds: int, pg: PostGIS | None, queries, homes) -> tuple[list[list[object]], dict]:
    path = common.index_file(n)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    index = EmbeddedIndex(path, exempt_from_gc=True)  # as a server opens it: the open time is the target's
    load_s, _ = timed(index.info)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    services = list(index.all())
    floor = NumpyFloor(services)
    pg_load = pg.load(services) if pg else float("nan")
    if pg:
        home, q = homes[0], queries[0]
        log(f"PostGIS plan at {label(n)} (first query):\n" + pg.plan(home.lat, home.lon, q.types, q.needs))
    log(f"{label(n)}: index opened in {load_s / 1000:.1f} s; PostGIS loaded in {pg_load:.1f} s")

    raw_queries = [ServiceQuery(types=frozenset(q.types), needs=q.needs) for q in queries]
    requests = common.match_requests(queries)
    engines = {name: Engine(name, []) for name in
               ("EmbeddedIndex.nearest", "match()", "summarise()", "NumPy floor", "PostGIS", ANY, BEST_FIT)}
    agree_floor = agree_pg = nonempty = 0
    # One untimed pass first: a server answers from a warm record cache and laid-out columns (both made
    # once per index generation), so the timed rounds measure that steady state.
    for home, raw, request in zip(homes, raw_queries, requests):
        index.nearest(home.lat, home.lon, raw, k=K, radius_km=RADIUS_KM)
        match(index, home, request, common.TODAY)
    for round_ in range(rounds):
        for q, home, raw, request in zip(queries, homes, raw_queries, requests):
            got = engines["EmbeddedIndex.nearest"].time(
                lambda: index.nearest(home.lat, home.lon, raw, k=K, radius_km=RADIUS_KM))
            engines["match()"].time(lambda: match(index, home, request, common.TODAY))
            engines["summarise()"].time(lambda: summarise(index, home, request, common.TODAY))
            expected = engines["NumPy floor"].time(
                lambda: floor.nearest(home.lat, home.lon, q.types, q.needs, K, RADIUS_KM))
            if pg:
                theirs = engines["PostGIS"].time(lambda: pg.nearest(home.lat, home.lon, q.types, q.needs))
            if round_ == 0:
                ids = [h.service.id for h in got]
                nonempty += bool(ids)
                agree_floor += ids == [i for i, _ in expected]
                agree_pg += pg is not None and ids == [i for i, _ in theirs]
                if ids != [i for i, _ in expected]:
                    log(f"  floor disagrees at {q.postcode}: {ids} != {[i for i, _ in expected]}")
                if pg and ids != [i for i, _ in theirs]:
                    log(f"  PostGIS disagrees at {q.postcode}: {ids} != {[i for i, _ in theirs]}")
    # The default request's shape, and the clinicians' page's, after the targets' rounds, not among them: their
    # ~70 results a query touch more records than the record cache holds at 100k, which would slow the targets'
    # rows by evicting theirs.
    for name, shape in ((ANY, "any"), (BEST_FIT, "best_fit")):
        for round_ in range(rounds + 1):  # the first untimed, as above
            for home, request in zip(homes, common.match_requests(queries, shape)):
                if round_:
                    engines[name].time(lambda: match(index, home, request, common.TODAY))
                else:
                    match(index, home, request, common.TODAY)
    pg_p50 = common.percentile(engines["PostGIS"].samples, 50)
    floor_p50 = common.percentile(engines["NumPy floor"].samples, 50)
    floor_cpu_s = engines["NumPy floor"].cpu_s
    rows = []
    for engine in engines.values():
        if not engine.samples:
            continue
        p50, p95 = common.percentile(engine.samples, 50), common.percentile(engine.samples, 95)
        cpu_ms = engine.cpu_s * 1000 / len(engine.samples)
        same_shape = engine.name not in (ANY, BEST_FIT)  # the floor and PostGIS answer the targets' shape only
        rows.append([label(n), engine.name, fmt(p50), fmt(p95), fmt(common.percentile(engine.samples, 99)),
                     fmt(p50 / pg_p50, 2) if pg and same_shape else "-",
                     fmt(p50 / floor_p50, 2) if same_shape else "-", fmt(cpu_ms),
                     fmt(engine.cpu_s / floor_cpu_s, 2) if same_shape else "-"])
    extra = {"n": n, "load_s": load_s / 1000, "rss_mib": (rss_after - rss_before) / 1024,
             "agree_floor": agree_floor, "agree_pg": agree_pg if pg else None, "queries": len(queries),
             "nonempty": nonempty, "pg_load_s": pg_load}
    return rows, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,500k")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-postgis", action="store_true", help="skip PostGIS (no ratios against it)")
    args = parser.parse_args()
    sizes = common.parse_sizes(args.sizes)
    load_before = common.load_average()
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    for n in sizes:
        common.index_file(n)
    results, extras = [], []
    if args.no_postgis:
        for n in sizes:
            rows, extra = run_size(n, args.rounds, None, queries, homes)
            results += rows
            extras.append(extra)
    else:
        with common.postgres() as (host, port):
            pg = PostGIS(host, port)
            try:
                version = pg.conn.execute("SELECT postgis_lib_version(), current_setting('server_version')").fetchone()
                log(f"PostGIS {version[0]} on PostgreSQL {version[1]}, 127.0.0.1:{port}")
                for n in sizes:
                    rows, extra = run_size(n, args.rounds, pg, queries, homes)
                    results += rows
                    extras.append(extra)
            finally:
                pg.close()
    print(f"Machine: {common.machine()}")
    print(f"Before: {load_before}; after: {common.load_average()} (other work on the machine shows here)")
    print()
    print(common.table(
        f"Match latency in-process, ms ({len(queries)} queries x {args.rounds} rounds; "
        f"{K} nearest within {RADIUS_KM:.0f} km, 2 types any-of, 1 need)",
        ["N", "engine", "p50", "p95", "p99", "p50 / PostGIS p50", "p50 / floor p50", "CPU ms / call",
         "CPU / floor CPU"], results))
    print()
    print(common.table(
        "Exactness and index start-up",
        ["N", "ids = floor", "ids = PostGIS", "non-empty answers", "index open (s)", "open RSS (MiB)",
         "PostGIS load (s)"],
        [[label(e["n"]), f"{e['agree_floor']}/{e['queries']}",
          "-" if e["agree_pg"] is None else f"{e['agree_pg']}/{e['queries']}", f"{e['nonempty']}/{e['queries']}",
          fmt(e["load_s"], 2), fmt(e["rss_mib"], 0), fmt(e["pg_load_s"], 1)] for e in extras]))


if __name__ == "__main__":
    main()
