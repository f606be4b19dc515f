"""A record with every field ORUK carries set (FULL), and the provenance its tests give records: what the ORUK
round trip and the language tests publish and read back. Not a test module: importing it brings no tests or
fixtures along (these lived in tests/test_oruk_roundtrip.py, which test_languages.py imported)."""

from __future__ import annotations

from datetime import date, datetime, timezone

from rehabmap.record import Provenance, Schedule, Service
from rehabmap.taxonomy import ServiceType


def provenance(source: str = "cqc", licence: str | None = "OGL-UK-3.0") -> Provenance:
    return Provenance(source=source, source_id="1-101", fetched_at=datetime(2026, 11, 2, 8, 30, tzinfo=timezone.utc),
                      licence=licence, file="cqc.json", line=3)


FULL = Service(
    id="cqc:1-101", name="Foxglove Locked Rehabilitation Ward", organisation="Harbourlight Care Group Ltd",
    provider_type="independent", service_type=ServiceType.inpatient_rehab_level2,
    original_label="Longer term high dependency / locked rehabilitation", legacy_locked_label=True, pd_specialist=True,
    description="A ward for women.", needs_met=["autism", "detained_mha", "language:pl"],
    needs_not_met=["restricted_s37_41"], min_age=18, max_age=65, gender="female_only",
    address="Foxglove House, 12 Sample Road, Leeds, West Yorkshire", town="Leeds", county="West Yorkshire",
    postcode="LS9 7TF", lat=53.806869, lon=-1.520359,
    service_area={"codes": ["E08000035", "E54000054"], "description": "Leeds residents first",
                  "polygon": {"type": "Polygon", "coordinates": [[[-1.6, 53.7], [-1.4, 53.7], [-1.4, 53.9],
                                                                  [-1.6, 53.7]]]}},
    beds=14, capacity="limited", capacity_as_of=date(2026, 11, 20), accepting_referrals=False,
    referral_route="Care coordinator to the rehab panel", phone="0113 496 0999", email="referrals@foxglove.example.org",
    website="https://foxglove.example.org", cqc_location_id="1-101", cqc_rating="Good",
    cqc_rating_date=date(2025, 5, 1),
    status="inactive", provenance=[provenance(), provenance("oruk-leeds", None)], last_verified=date(2026, 11, 3),
    self_referral=False, schedules=[Schedule(byday=["MO", "TU", "WE", "TH", "FR"], opens_at="09:00", closes_at="17:30"),
                                    Schedule(description="Visiting 2pm to 8pm, every day")],
)
