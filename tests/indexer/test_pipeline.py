"""The pipeline on hand-made candidate rows: placing, classifying, merging, rejecting — nothing lost."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from indexer.pipeline import GeographyPlacer, build_index
from indexer.rows import Candidate, Origin, Rejection
from search.embedded import EmbeddedIndex, EmbeddedWriter
from rehabmap.taxonomy import ServiceType

FETCHED = datetime(2026, 11, 20, tzinfo=timezone.utc)


def row(line: int, source: str = "test", **fields) -> Candidate:
    return Candidate(dict(fields), Origin(source, "rows.csv", line, source_id=str(line), fetched_at=FETCHED))


@pytest.fixture()
def index(tmp_path):
    return tmp_path / "index.sqlite"


def test_rows_become_records_or_rejections(geography, index):
    rows = [
        row(2, name="Aire Locked Rehab", original_label="Locked rehabilitation", postcode="ls9 7tf",
            description="Mixed gender. Accepts people detained under the Mental Health Act."),
        row(3, name="Harbour House", original_label="Community rehabilitation unit", postcode="M1 1AD"),
        row(4, name="Nowhere Unit", original_label="High dependency rehabilitation", postcode="ZZ99 9ZZ"),
        row(5, name="District Only", original_label="High dependency rehabilitation", postcode="LS9"),
        row(6, name="Secure Ward", original_label="Medium secure unit", postcode="LS9 7TF"),
        row(7, name="Mystery", postcode="LS9 7TF"),
        row(8, name="Bad Ages", service_type="vcfse", postcode="LS9 7TF", min_age=65, max_age=18),
        Rejection(Origin("test", "rows.csv", 9), "unreadable row: 3 columns, header has 5"),
    ]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert (report.read, report.indexed, len(report.rejected)) == (8, 2, 6)
    reasons = {r.origin.line: r.reason for r in report.rejected}
    assert "ZZ99 9ZZ" in reasons[4]
    assert "full postcode" in reasons[5]
    assert "not rehabilitation" in reasons[6]
    assert "cannot tell the service type" in reasons[7]
    assert "min_age 65 is greater than max_age 18" in reasons[8]
    assert reasons[9].startswith("unreadable row")
    assert all(str(r).startswith(f"rows.csv:{r.origin.line}: ") for r in report.rejected)

    served = EmbeddedIndex(index)
    locked = served.get("test:2")
    assert locked.service_type is ServiceType.inpatient_rehab_level2
    assert locked.legacy_locked_label and locked.original_label == "Locked rehabilitation"
    assert locked.areas.icb_code == "E54000054" and locked.areas.lad_code == "E08000035"
    assert "detained_mha" in locked.needs_met and locked.gender == "mixed_gender"
    assert locked.provenance[0].file == "rows.csv" and locked.provenance[0].line == 2
    harbour = served.get("test:3")
    assert harbour.service_type is ServiceType.inpatient_rehab_level1
    assert harbour.areas.icb_code == "E54000057"


def test_duplicates_merge_and_remember_sources(geography, index):
    rows = [
        row(2, source="cqc", name="Kingfisher Lodge", service_type="inpatient_rehab_level2",
            postcode="LS9 7TF", cqc_location_id="1-111", cqc_rating="Good", needs_met=["autism"]),
        row(3, source="oruk", name="Kingfisher  Lodge", service_type="inpatient_rehab_level2",
            postcode="ls97tf", phone="0113 000 0000", needs_not_met=["autism"], needs_met=["detained_mha"]),
        row(4, source="csv", name="Other name", service_type="inpatient_rehab_level2", postcode="M1 1AD",
            cqc_location_id="1-111", beds=12),
    ]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert (report.read, report.indexed, len(report.merged), len(report.rejected)) == (3, 1, 2, 0)
    merged = EmbeddedIndex(index).get("cqc:2")
    assert merged.phone == "0113 000 0000" and merged.beds == 12 and merged.cqc_rating == "Good"
    assert merged.field_sources["phone"] == "oruk" and merged.field_sources["beds"] == "csv"
    assert merged.field_sources["cqc_rating"] == "cqc"
    assert [p.source for p in merged.provenance] == ["cqc", "oruk", "csv"]
    # One source says autism is met, another says not: a conflict reads as unknown, never as yes.
    assert "autism" not in merged.needs_met and "autism" not in merged.needs_not_met
    assert "detained_mha" in merged.needs_met
    assert {(m.kept, m.merged, m.key) for m in report.merged} == {
        ("cqc:2", "oruk:3", "name+postcode"), ("cqc:2", "csv:4", "cqc")}


def test_importer_warnings_reach_the_report_and_rows_are_not_mutated(geography, index):
    candidate = row(2, name="Leeds Recovery College", postcode="LS9 7TF", original_label="Recovery college")
    candidate.warnings.append("service has 2 locations; only the first is indexed")
    before = dict(candidate.fields)
    report = build_index([candidate], GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1
    assert report.warnings == ["rows.csv:2: service has 2 locations; only the first is indexed"]
    assert "warning rows.csv:2: service has 2 locations; only the first is indexed" in report.summary_lines()
    assert candidate.fields == before


def test_invalid_catchment_polygon_is_rejected_with_reason(geography, index):
    bowtie = {"type": "Polygon", "coordinates": [[[0, 51], [1, 52], [1, 51], [0, 52], [0, 51]]]}
    bad = row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="supported_accommodation",
              service_area={"polygon": bowtie})
    report = build_index([bad], GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 0
    assert "service_area.polygon" in report.rejected[0].reason
    assert "Self-intersection" in report.rejected[0].reason
