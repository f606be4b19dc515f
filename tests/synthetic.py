"""Synthetic services at real small-area population centroids, for tests and benchmarks.

Positions are real LSOA population-weighted centroids (with their official ICB and LAD codes), so
distances, ICB membership and catchments behave as they do for real services.
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
    with open(data_dir / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv", newline="") as f:
        return [SmallArea(r["lsoa21_code"], float(r["lat"]), float(r["lon"]), r["icb24_code"], r["icb24_name"],
                          r["ltla24_code"], r["ltla24_name"], int(r["pop_total_c2021"]))
                for r in csv.DictReader(f)]


def make_services(areas: list[SmallArea], n: int, seed: int, today: date) -> list[Service]:
    rng = random.Random(seed)
    chosen = rng.choices(areas, weights=[a.population for a in areas], k=n)
    fetched = datetime(2026, 11, 1, tzinfo=timezone.utc)
    services = []
    for i, area in enumerate(chosen):
        service_type = rng.choice(list(ServiceType))
        needs = rng.sample(NEEDS, rng.randint(0, 4))
        split = rng.randint(0, len(needs))
        min_age = rng.choice([None, 18, 18, 25])
        max_age = rng.choice([None, 64, 65, 120]) if min_age is None or min_age <= 64 else None
        restricted = not service_type.is_inpatient and rng.random() < 0.5
        capacity = rng.choice([None, "available", "limited", "none"])
        services.append(Service(
            id=f"synthetic:{i:06d}", name=f"Synthetic {service_type.value} {i}",
            service_type=service_type,
            subtype=rng.choice(SUBTYPES[service_type]) if service_type in SUBTYPES else None,
            description="Synthetic record for tests.",
            needs_met=needs[:split], needs_not_met=needs[split:],
            min_age=min_age, max_age=max_age,
            gender=rng.choice([None, None, "female_only", "male_only", "mixed_gender"]),
            lat=area.lat + rng.uniform(-0.002, 0.002), lon=area.lon + rng.uniform(-0.002, 0.002),
            areas=AreaCodes(icb_code=area.icb, icb_name=area.icb_name, lad_code=area.lad, lad_name=area.lad_name),
            service_area={"codes": [rng.choice([area.lad, area.icb])] if restricted else []},
            capacity=capacity,
            capacity_as_of=today - timedelta(days=rng.randint(0, 30)) if capacity else None,
            accepting_referrals=rng.choice([None, True, False]),
            status="active" if rng.random() < 0.95 else "inactive",
            provenance=[Provenance(source="synthetic", source_id=str(i), fetched_at=fetched)],
        ))
    return services
