"""Answers before and after a performance change must be identical: record them, then compare.

Asks the embedded index, over the cached benchmark corpora, a few thousand varied questions — `match()`
with every option (any-type, ages, genders, own ICB, catchments, confirmed needs, limits, radii, current
placement), raw `nearest` and `find` with area codes, languages, subtypes, coverage and text — and
writes every answer in full (ids, exact float distances, explanations, summaries) to a file. `check`
asks again and reports the first difference. Each `match()` answer includes every group's total, and each
raw query also its counts per type and within the radius.

    python -m bench.golden save  [--sizes 10k,100k]   # before the change
    python -m bench.golden check [--sizes 10k,100k]   # after it
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from dataclasses import asdict

from bench import common
from bench.synthetic import LANGUAGES, NEEDS
from rehabmap.index.base import Coverage, ServiceQuery
from search.embedded import EmbeddedIndex
from rehabmap.match import MatchRequest, match
from rehabmap.taxonomy import SUBTYPES, ServiceType

QUESTIONS = 600


def _result(r) -> list:
    return [r.service.id, repr(r.distance_km), r.in_home_icb, r.matched_needs, r.unknown_needs,
            r.out_of_catchment, r.capacity, r.explanation, None if r.distance_saved_km is None
            else repr(r.distance_saved_km)]


def answers(n: int) -> list:
    index = EmbeddedIndex(common.index_file(n))
    queries = common.load_queries()
    homes = common.resolve_homes(queries)
    rng = random.Random(n)
    out = []
    for i in range(QUESTIONS):
        home = homes[i % len(homes)]
        types = None if rng.random() < 0.25 else tuple(rng.sample(list(ServiceType), rng.randint(1, 3)))
        needs = tuple(rng.sample(NEEDS, rng.randint(0, 2))) + ((rng.choice(LANGUAGES),) if rng.random() < 0.1 else ())
        request = MatchRequest(
            needs=needs, types=types, subtypes=None if rng.random() < 0.9 else ("imha", "supported_housing"),
            age=rng.choice([None, 30, 70]), gender=rng.choice([None, "female", "male"]),
            max_distance_km=rng.choice([None, 5.0, 25.0, 50.0, 200.0]), own_icb_only=rng.random() < 0.15,
            accepting_only=rng.random() < 0.2, needs_confirmed=rng.random() < 0.15,
            include_out_of_catchment=rng.random() < 0.2, limit=rng.choice([1, 5, 10, 25, 100]),
            current_placement=None if rng.random() < 0.8 else (52.0, -1.0),
            order="best_fit" if rng.random() < 0.15 else "nearest", each_type=rng.random() < 0.15)
        response = match(index, home, request, common.TODAY)
        out.append(["match", [_result(r) for r in response.results],
                    [[t.service_type.value, t.in_home_icb, t.nearest and _result(t.nearest)]
                     for t in response.summary], repr(response.current_placement_km),
                    [[sorted(t.value for t in g.types), g.total] for g in response.groups]])
        subtype_type = rng.choice(list(SUBTYPES))
        query = ServiceQuery(
            types=None if rng.random() < 0.3 else frozenset(rng.sample(list(ServiceType), rng.randint(1, 4))),
            subtypes=None if rng.random() < 0.85 else frozenset(rng.sample(SUBTYPES[subtype_type], 2)),
            needs=needs, needs_confirmed=rng.random() < 0.2, age=rng.choice([None, 19, 66]),
            gender=rng.choice([None, "female", "male"]),
            area_codes=None if rng.random() < 0.7 else frozenset({home.areas.icb_code, "E06000001"}),
            exclude_area_codes=None if rng.random() < 0.85 else frozenset({home.areas.lad_code}),
            covers=None if rng.random() < 0.5 else Coverage(frozenset(home.areas.codes()), home.lat, home.lon),
            accepting_only=rng.random() < 0.2, include_inactive=rng.random() < 0.1,
            text=None if rng.random() < 0.9 else rng.choice(["synthetic", "advocacy 12", "zzz"]))
        k = rng.choice([1, 3, 10, 50])
        radius = rng.choice([None, 0.5, 10.0, 50.0, 300.0])
        hits = index.nearest(home.lat, home.lon, query, k=k, radius_km=radius)
        out.append(["nearest", [[h.service.id, repr(h.distance_km)] for h in hits]])
        counts = index.count_by_type(query)
        out.append(["count", {t.value: c for t, c in counts.items()},
                    radius and index.count_near(home.lat, home.lon, query, radius_km=radius)])
        page = index.find(query, limit=rng.choice([0, 1, 20]), offset=rng.choice([0, 0, 5]))
        out.append(["find", page.total, [s.id for s in page.items]])
    out.append(["get", [index.get(f"synthetic:{i:06d}") == s for i, s in enumerate(list(index.all())[:50])]])
    out.append(["info", asdict(index.info())["count"]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["save", "check"])
    parser.add_argument("--sizes", default="10k,100k")
    args = parser.parse_args()
    failed = False
    for n in common.parse_sizes(args.sizes):
        path = common.CACHE / f"golden-{n}.json"
        got = answers(n)
        text = json.dumps(got, default=str)
        if args.action == "save":
            path.write_text(text)
            print(f"{common.label(n)}: saved {len(got)} answers ({hashlib.sha256(text.encode()).hexdigest()[:12]})")
            continue
        expected = json.loads(path.read_text())
        got = json.loads(text)
        diffs = [i for i, (a, b) in enumerate(zip(expected, got)) if a != b]
        if diffs or len(expected) != len(got):
            failed = True
            first = diffs[0] if diffs else min(len(expected), len(got))
            print(f"{common.label(n)}: {len(diffs)} of {len(expected)} answers differ; first at {first}:")
            print("  expected", json.dumps(expected[first])[:1500] if first < len(expected) else None)
            print("  got     ", json.dumps(got[first])[:1500] if first < len(got) else None)
        else:
            print(f"{common.label(n)}: all {len(got)} answers identical")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
