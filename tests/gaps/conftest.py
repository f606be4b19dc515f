"""A known set of services on real geography, and the gap analysis of it, built once per session.

The services are synthetic ones at real LSOA population-weighted centroids (bench.synthetic, every type
equally likely, 5% inactive), plus hand-placed records for the scorecard: two legacy "locked
rehabilitation" units and a personality-disorder unit in West Yorkshire, and an inactive level 2 unit in
Cornwall (which must count nowhere). No level 2 unit is active in Cornwall and the Isles of Scilly ICB.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from bench.synthetic import load_small_areas, make_services
from geodata.areas import AreaCodes
from rehabmap.gaps.analysis import GapAnalysis, ServicePoints
from rehabmap.gaps.population import SmallAreas
from rehabmap.record import Provenance, Service
from rehabmap.taxonomy import ServiceType

TODAY = date(2026, 11, 23)
CORNWALL_ICB = "E54000036"
DEVON_ICB = "E54000037"
WEST_YORKSHIRE_ICB = "E54000054"
FETCHED = datetime(2026, 11, 1, tzinfo=UTC)


def service(id: str, service_type: ServiceType, lat: float, lon: float, icb: str | None, lad: str | None,
            **extra) -> Service:
    return Service(id=id, name=extra.pop("name", f"Known {id}"), service_type=service_type, lat=lat, lon=lon,
                   areas=AreaCodes(icb_code=icb, icb_name=extra.pop("icb_name", None), lad_code=lad,
                                   lad_name=extra.pop("lad_name", None)),
                   provenance=[Provenance(source="known", source_id=id, fetched_at=FETCHED)], **extra)


@dataclass(frozen=True)
class Lsoa:
    """A small area as the tests read it, straight from the CSV (independently of rehabmap.gaps.population)."""

    code: str
    name: str
    lat: float
    lon: float
    icb: str
    la: str
    adults: int
    county: str  # the upper-tier authority: a county council (E10…), or the unitary authority itself


@pytest.fixture(scope="session")
def lsoas(data_dir: Path) -> list[Lsoa]:
    path = data_dir / "smallareas" / "england_lsoa21_pwc_population_icb_lad.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return [Lsoa(r["lsoa21_code"], r["lsoa21_name"], float(r["lat"]), float(r["lon"]), r["icb24_code"],
                     r["ltla24_code"], int(r["pop_total_c2021"]) - int(r["pop_15_under"]), r["utla23_code"])
                for r in csv.DictReader(handle)]


@pytest.fixture(scope="session")
def known_services(data_dir: Path, lsoas: list[Lsoa]) -> list[Service]:
    services = make_services(load_small_areas(data_dir), 420, seed=20261123, today=TODAY)
    # Nothing level 2 and active in Cornwall: the known gap.
    services = [s for s in services
                if not (s.service_type is ServiceType.inpatient_rehab_level2 and s.areas.icb_code == CORNWALL_ICB)]
    by_code = {a.code: a for a in lsoas}
    leeds = by_code["E01011711"]  # Leeds 005D
    bradford = next(a for a in lsoas if a.la == "E08000032")
    truro = next(a for a in lsoas if a.icb == CORNWALL_ICB)
    services += [
        service("known:locked-1", ServiceType.inpatient_rehab_level2, leeds.lat + 0.001, leeds.lon, leeds.icb,
                leeds.la, name="Old Mill locked rehabilitation unit", original_label="locked rehabilitation",
                legacy_locked_label=True),
        service("known:locked-2", ServiceType.inpatient_rehab_level2, bradford.lat, bradford.lon + 0.001,
                bradford.icb, bradford.la, name="Heath View locked rehab", legacy_locked_label=True),
        service("known:pd-1", ServiceType.inpatient_rehab_level1, bradford.lat + 0.002, bradford.lon,
                bradford.icb, bradford.la, name="Aire personality disorder rehab unit", pd_specialist=True),
        service("known:inactive-cornwall", ServiceType.inpatient_rehab_level2, truro.lat, truro.lon, truro.icb,
                truro.la, name="Closed Cornwall unit", status="inactive"),
    ]
    return services


@pytest.fixture(scope="session")
def small_areas(data_dir: Path) -> SmallAreas:
    return SmallAreas.load(data_dir)


@pytest.fixture(scope="session")
def analysis(small_areas: SmallAreas, known_services: list[Service]) -> GapAnalysis:
    return GapAnalysis(small_areas, ServicePoints.from_services(known_services))


@pytest.fixture(scope="session")
def active(known_services: list[Service]) -> list[Service]:
    return [s for s in known_services if s.status == "active"]


def as_arrays(services: list[Service]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([s.lat for s in services]), np.array([s.lon for s in services])
