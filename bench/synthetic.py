"""Synthetic services at real small-area population centroids, for tests and benchmarks.

Positions are real LSOA population-weighted centroids (with their official ICB and LAD codes), drawn with
probability proportional to the Census 2021 population of each LSOA, so distances, ICB membership and
catchments behave as they do for real services and dense cities hold more services than moors.

`make_services(..., mix=None)` is the generator the tests use (every type equally likely, nothing else
varied; its output for a given seed must not change). The benchmarks pass `mix=REALISTIC_MIX`, which
draws types in proportions like the real pathway (many VCFSE groups and supported housing schemes, few
level 2 units) and adds the rarer record shapes: polygon catchments and language needs.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from geodata.areas import AreaCodes
from rehabmap.record import Provenance, Service
from rehabmap.taxonomy import NEED_LABELS, SUBTYPES, ServiceType

NEEDS = [n for n in NEED_LABELS if n not in ("female_only", "male_only", "mixed_gender")]

# Share of each type in a realistic directory (least restrictive first).
REALISTIC_MIX: dict[ServiceType, float] = {
    ServiceType.vcfse: 0.34,
    ServiceType.advocacy: 0.12,
    ServiceType.ips_employment: 0.08,
    ServiceType.supported_accommodation: 0.30,
    ServiceType.community_rehab_team: 0.08,
    ServiceType.inpatient_rehab_level1: 0.05,
    ServiceType.inpatient_rehab_level2: 0.03,
}
LANGUAGES = ("language:pl", "language:ur", "language:pa", "language:bn", "language:ro")


@dataclass(frozen=True)
class SmallArea:
    code: str
    lat: float
    lon: float
    icb: str
    icb_name: str
    lad: str
    lad_name: str
    population: int


def load_small_areas(data_dir: Path) -> list[SmallArea]:
    with open(Path(data_dir) / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv", newline="") as f:
        return [SmallArea(r["lsoa21_code"], float(r["lat"]), float(r["lon"]), r["icb24_code"], r["icb24_name"],
                          r["ltla24_code"], r["ltla24_name"], int(r["pop_total_c2021"]))
                for r in csv.DictReader(f)]


def _square(lat: float, lon: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def make_services(areas: list[SmallArea], n: int, seed: int, today: date,
                  mix: dict[ServiceType, float] | None = None) -> list[Service]:
    rng = random.Random(seed)
    chosen = rng.choices(areas, weights=[a.population for a in areas], k=n)
    fetched = datetime(2026, 11, 1, tzinfo=timezone.utc)
    types, weights = list(ServiceType), None if mix is None else [mix[t] for t in ServiceType]
    services = []
    for i, area in enumerate(chosen):
        service_type = rng.choice(types) if mix is None else rng.choices(types, weights)[0]
        needs = rng.sample(NEEDS, rng.randint(0, 4))
        split = rng.randint(0, len(needs))
        min_age = rng.choice([None, 18, 18, 25])
        max_age = rng.choice([None, 64, 65, 120]) if min_age is None or min_age <= 64 else None
        restricted = not service_type.is_inpatient and rng.random() < 0.5
        capacity = rng.choice([None, "available", "limited", "none"])
        # Draws in the order the original generator made them, so a seed gives the same corpus.
        subtype = rng.choice(SUBTYPES[service_type]) if service_type in SUBTYPES else None
        gender = rng.choice([None, None, "female_only", "male_only", "mixed_gender"])
        lat, lon = area.lat + rng.uniform(-0.002, 0.002), area.lon + rng.uniform(-0.002, 0.002)
        service_area: dict = {"codes": [rng.choice([area.lad, area.icb])] if restricted else []}
        capacity_as_of = today - timedelta(days=rng.randint(0, 30)) if capacity else None
        accepting = rng.choice([None, True, False])
        status = "active" if rng.random() < 0.95 else "inactive"
        met, not_met = needs[:split], needs[split:]
        if mix is not None:
            if restricted and rng.random() < 0.02:  # an outreach team drawn as a polygon
                service_area = {"codes": [], "polygon": _square(lat, lon, rng.uniform(0.05, 0.3))}
            if rng.random() < 0.05:
                (met if rng.random() < 0.7 else not_met).append(rng.choice(LANGUAGES))
        services.append(Service(
            id=f"synthetic:{i:06d}", name=f"Synthetic {service_type.value} {i}",
            service_type=service_type, subtype=subtype, description="Synthetic record for tests.",
            needs_met=met, needs_not_met=not_met, min_age=min_age, max_age=max_age, gender=gender,
            lat=lat, lon=lon,
            areas=AreaCodes(icb_code=area.icb, icb_name=area.icb_name, lad_code=area.lad, lad_name=area.lad_name),
            service_area=service_area, capacity=capacity, capacity_as_of=capacity_as_of,
            accepting_referrals=accepting, status=status,
            provenance=[Provenance(source="synthetic", source_id=str(i), fetched_at=fetched)],
        ))
    return services
