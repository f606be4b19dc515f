"""The index's rules written out plainly, one service at a time, and the brute-force answers they give: what the
behaviour suite (test_backend_behaviour.py) and the tallies, Elasticsearch and embedded store tests compare each
backend's answer with. Not a test module: importing it brings no tests or fixtures of another module along."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable

import numpy as np
from shapely.geometry import Point, shape

from geodata.distance import haversine_km
from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, SUBTYPES, ServiceType
from bench.synthetic import NEEDS

LANGUAGES = ["language:pl", "language:ur", "language:pa"]


def covers(service: Service, home: Coverage) -> bool:
    area = service.service_area
    if not area.restricted or set(area.codes) & home.codes:
        return True
    return area.polygon is not None and shape(area.polygon).intersects(Point(home.lon, home.lat))


def passes(s: Service, q: ServiceQuery) -> bool:
    if not q.include_inactive and s.status != "active":
        return False
    if q.types is not None and s.service_type not in q.types:
        return False
    # A subtype narrows only its own type: IMHA asked for leaves IPS services as they are.
    if q.subtypes and s.subtype not in q.subtypes and set(SUBTYPES.get(s.service_type, ())) & q.subtypes:
        return False
    for need in q.needs:
        if need not in NEED_LABELS and not need.startswith("language:"):
            continue
        if need in s.needs_not_met or (q.needs_confirmed and need not in s.needs_met):
            return False
    if q.age is not None and ((s.min_age is not None and s.min_age > q.age)
                              or (s.max_age is not None and s.max_age < q.age)):
        return False
    if q.gender == "female" and s.gender == "male_only" or q.gender == "male" and s.gender == "female_only":
        return False
    if q.area_codes is not None and not set(s.areas.codes()) & q.area_codes:
        return False
    if q.exclude_area_codes is not None and set(s.areas.codes()) & q.exclude_area_codes:
        return False
    if q.covers is not None and not covers(s, q.covers):
        return False
    return not q.accepting_only or s.accepting_referrals is True


def by_name(services: list[Service], q: ServiceQuery) -> list[str]:
    return [s.id for s in sorted((s for s in services if passes(s, q)), key=lambda s: (s.name.casefold(), s.id))]


def brute_nearest(services: list[Service], lat: float, lon: float, q: ServiceQuery, k: int,
                  radius_km: float | None) -> list[tuple[str, float]]:
    chosen = [s for s in services if passes(s, q)]
    if not chosen:
        return []
    d = haversine_km(lat, lon, np.array([s.lat for s in chosen]), np.array([s.lon for s in chosen]))
    ids = np.array([s.id for s in chosen], dtype=object)
    keep = np.ones(len(chosen), dtype=bool) if radius_km is None else d <= radius_km
    order = np.lexsort((ids[keep], d[keep]))[:k]
    return [(ids[keep][i], float(d[keep][i])) for i in order]


class Kept:
    """A brute-force function's answers, each worked out once: the tests run on each backend in turn ask every
    backend the same questions (the same seeded draws) of the same records (the corpus, or the one list of it as
    edited, which two backends read), and the answer depends on those alone, so a module keeps it rather than work
    it out again for each backend. Keyed by the records' list (held here, so its id is never another list's) and
    the function's other arguments; each caller gets a list of its own."""

    def __init__(self, find: Callable[..., list]) -> None:
        self.find = find
        self.found: dict[tuple, tuple[list[Service], list]] = {}

    def __call__(self, services: list[Service], *args: Hashable) -> list:
        key = (id(services), *args)
        if key not in self.found:
            self.found[key] = (services, self.find(services, *args))
        return list(self.found[key][1])


def home_of(service: Service) -> Coverage:
    return Coverage(frozenset(c for c in (service.areas.icb_code, service.areas.lad_code) if c),
                    service.lat, service.lon)


def random_query(rng: random.Random, services: list[Service]) -> ServiceQuery:
    some = rng.choice(services)
    return ServiceQuery(
        types=None if rng.random() < 0.4 else frozenset(rng.sample(list(ServiceType), rng.randint(1, 3))),
        needs=tuple(rng.sample(NEEDS + LANGUAGES, rng.choice([0, 0, 1, 2]))),
        needs_confirmed=rng.random() < 0.2,
        age=rng.choice([None, None, 17, 30, 70]),
        gender=rng.choice([None, "female", "male"]),
        area_codes=frozenset({some.areas.icb_code}) if rng.random() < 0.1 else None,
        exclude_area_codes=frozenset({some.areas.icb_code}) if rng.random() < 0.1 else None,
        covers=home_of(some) if rng.random() < 0.5 else None,
        accepting_only=rng.random() < 0.2,
        include_inactive=rng.random() < 0.1,
    )
