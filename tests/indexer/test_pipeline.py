"""The pipeline on hand-made candidate rows: placing, classifying, merging, rejecting — nothing lost."""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from geodata.errors import GeodataError
from indexer.merge import Keyed, MergeNote, Merging, Precedence, _combine, merge_duplicates
from indexer.pipeline import (STEP_READS, GeographyPlacer, ImportRefused, IndexReport, build_index, prepare_all,
                              prepare_rows)
from indexer.rows import Candidate, Held, Origin, Rejection, place
from indexer.sources import load_source
from search.elastic import ElasticIndex, ElasticWriter
from search.embedded import EmbeddedIndex, EmbeddedWriter
from rehabmap.errors import DomainError
from rehabmap.maintain.audit import Change
from rehabmap.maintain.edits import OverlayWriter
from rehabmap.maintain.store import Directory
from rehabmap.record import Service, ServiceArea
from rehabmap.record_keys import KeyGroups, merge_keys
from rehabmap.taxonomy import ServiceType
from tests.cqc_records import ASHTON, ASHTON_ID, GROVELANDS, GROVELANDS_ID

FETCHED = datetime(2026, 11, 20, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parents[2]


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
    # Read from its description, kept apart from what it states (it states no need and no gender), with the
    # words read: the gender too ("Mixed gender." was its gender, stated, before session 18).
    assert locked.gender is None and locked.gender_read_from_text == {"mixed_gender": "mixed gender"}
    assert locked.needs_read_from_text == {"detained_mha": "detained", "mixed_gender": "mixed gender"}
    assert locked.needs_read_not_met == {"female_only": "mixed gender", "male_only": "mixed gender"}
    assert not {"detained_mha", "mixed_gender"} & {*locked.needs_met, *locked.needs_not_met}
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


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_need_said_met_and_not_met_is_unknown_whatever_the_order_of_the_records(geography, order):
    """Two sources say autism is met and one that it is not: unknown, as with two, in every order the records come
    in. Before, the conflict was settled record by record, and a third "met" after it made autism met (met, not
    met, met) where another order left it unknown."""
    rows = [row(2, source="cqc", name="Kingfisher Lodge", service_type="inpatient_rehab_level2", postcode="LS9 7TF",
                needs_met=["autism", "detained_mha"]),
            row(3, source="oruk", name="Kingfisher Lodge", service_type="inpatient_rehab_level2", postcode="LS9 7TF",
                needs_not_met=["autism", "older_adult"]),
            row(4, source="csv", name="Kingfisher Lodge", service_type="inpatient_rehab_level2", postcode="LS9 7TF",
                needs_met=["autism"])]
    records = prepare_all(rows, GeographyPlacer(geography))

    [merged], _ = merge_duplicates([records[i] for i in order], Precedence())

    assert (merged.needs_met, merged.needs_not_met) == (["detained_mha"], ["older_adult"])


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
    good = row(3, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse")
    report = build_index([bad, good], GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1
    assert "service_area.polygon" in report.rejected[0].reason
    assert "Self-intersection" in report.rejected[0].reason


# --- labels a type cannot overrule ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Holly Medium-Secure Unit", "Ivy Low-Secure Service", "Oak low/secure ward",
                                  "Elm MEDIUM SECURE"])
def test_a_secure_service_is_not_rehab_even_when_a_type_is_given(geography, index, name):
    given = row(2, name=name, service_type="inpatient_rehab_level2", original_label="Level 2 rehabilitation unit",
                postcode="LS9 7TF")
    keep = row(3, name="Aire Locked-Rehabilitation Ward", postcode="LS9 7TF")
    report = build_index([given, keep], GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1
    [rejected] = report.rejected
    assert rejected.origin.line == 2 and "adult secure service, which is not rehabilitation" in rejected.reason
    locked = EmbeddedIndex(index).get("test:3")
    assert locked.service_type is ServiceType.inpatient_rehab_level2 and locked.legacy_locked_label


def test_a_repeated_label_is_read_the_same_on_every_row(geography, index):
    """Labels are classified once per distinct text (the pipeline remembers them): every row with a secure
    label is still refused with its own line, and every row with a known label gets its type."""
    rows = [row(line, name=f"Unit {line}", original_label=label, postcode="LS9 7TF")
            for line, label in enumerate(["Medium secure unit", "Locked rehabilitation"] * 3, start=2)]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert [r.origin.line for r in report.rejected] == [2, 4, 6]
    assert all("adult secure service, which is not rehabilitation" in r.reason for r in report.rejected)
    reader = EmbeddedIndex(index)
    for line in (3, 5, 7):
        service = reader.get(f"test:{line}")
        assert service.service_type is ServiceType.inpatient_rehab_level2 and service.legacy_locked_label


# --- values an import must not take as given ---------------------------------------------------------------

def test_a_boolean_is_not_a_number(geography, index):
    rows = [row(2, name="Yes Unit", service_type="vcfse", postcode="LS9 7TF", max_age=True),
            row(3, name="Beds Unit", service_type="vcfse", postcode="LS9 7TF", beds=False),
            row(4, name="Good Unit", service_type="vcfse", postcode="LS9 7TF", max_age=65, beds=0)]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    reasons = {r.origin.line: r.reason for r in report.rejected}
    assert set(reasons) == {2, 3}
    assert "max_age" in reasons[2] and "true is a yes/no value, not a number" in reasons[2]
    assert "beds" in reasons[3] and "false is a yes/no value, not a number" in reasons[3]
    assert EmbeddedIndex(index).get("test:4").max_age == 65


def test_needs_met_and_not_met_must_not_clash_nor_a_gender_and_its_needs(geography, index):
    rows = [row(2, name="Clash Unit", service_type="vcfse", postcode="LS9 7TF", needs_met=["autism"],
                needs_not_met=["autism", "older_adult"]),
            row(3, name="Told Unit", service_type="vcfse", postcode="LS9 7TF", gender="female_only",
                needs_met=["male_only", "autism"], needs_not_met=["female_only"]),
            row(4, name="Said Unit", service_type="vcfse", postcode="LS9 7TF", gender="male_only",
                needs_met=["autism", "male_only"], needs_not_met=["female_only", "mixed_gender"]),
            row(5, name="Silent Unit", service_type="vcfse", postcode="LS9 7TF", gender="mixed_gender"),
            row(6, name="Both Unit", service_type="vcfse", postcode="LS9 7TF", gender="male_only",
                needs_met=["female_only", "male_only"], needs_not_met=["mixed_gender"])]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    # A row whose gender its gender needs contradict says two things: which one its source means is not for the
    # import to guess (before session 19, the gender won and the needs were silently rewritten).
    assert [str(r) for r in report.rejected] == [
        "rows.csv:2: record: Value error, needs both met and not met: autism",
        "rows.csv:3: record: Value error, gender female_only but needs_met states male_only: two different answers to "
        "who the service takes: give one",
        "rows.csv:6: record: Value error, gender male_only but needs_met states female_only: two different answers to "
        "who the service takes: give one"]
    served = EmbeddedIndex(index)
    said, silent = (served.get(f"test:{line}") for line in (4, 5))
    assert (said.needs_met, said.needs_not_met) == (["autism", "male_only"], ["female_only", "mixed_gender"])
    assert (silent.needs_met, silent.needs_not_met) == (["mixed_gender"], ["female_only", "male_only"])


def test_each_bad_point_is_rejected_with_its_own_reason_and_the_rest_indexed(geography, index):
    """The points of a chunk are checked together; one that fails sends each point to its own check."""
    rows = [row(2, name="Good Unit", service_type="vcfse", lat=53.80, lon=-1.55),
            row(3, name="North Unit", service_type="vcfse", lat=95.0, lon=-1.55),
            row(4, name="West Unit", service_type="vcfse", lat=53.80, lon=-200.0),
            row(5, name="Nan Unit", service_type="vcfse", lat=float("nan"), lon=-1.55),
            row(6, name="Paris Unit", service_type="vcfse", lat=48.85, lon=2.35),
            row(7, name="Text Unit", service_type="vcfse", lat="53.79", lon="-1.54")]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    reasons = {r.origin.line: r.reason for r in report.rejected}
    assert reasons == {3: "Latitude must be a number between -90 and 90.",
                       4: "Longitude must be a number between -180 and 180.",
                       5: "Latitude must be a number between -90 and 90.",
                       6: reasons[6]}
    assert "outside England" in reasons[6]
    assert sorted(EmbeddedIndex(index).ids()) == ["test:2", "test:7"]


def test_a_catchment_not_in_degrees_rejects_its_row_saying_why(geography, index, leeds_triangle):
    """Coordinates past longitude -180..180 or latitude -90..90 are refused, eastings and northings named."""
    beyond = {"type": "Polygon", "coordinates": [[[-1.6, 53.7], [181, 53.7], [-1.4, 53.9], [-1.6, 53.7]]]}
    rows = [row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="supported_accommodation",
                service_area={"polygon": leeds_triangle["bng"]}),
            row(3, name="Leeds Outreach", postcode="LS9 7TF", service_type="vcfse", service_area={"polygon": beyond}),
            row(4, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse",
                service_area={"polygon": leeds_triangle["degrees"]})]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and [r.origin.line for r in report.rejected] == [2, 3]
    bng, past = (r.reason for r in report.rejected)
    assert "service_area.polygon" in bng and "British National Grid eastings and northings" in bng, bng
    assert "-1.6..181 across" in past and "British National Grid" not in past, past
    assert all("give longitude and latitude (WGS 84), as GeoJSON does" in r for r in (bng, past))
    assert EmbeddedIndex(index).ids() == ["test:4"]


def test_a_catchment_written_latitude_first_rejects_its_row_saying_so(geography, index, west_yorkshire_icb):
    """A source's catchment with each position written (latitude, longitude), a real ICB's boundary, is in range for
    degrees and was indexed, a catchment no one in England is in; its row is rejected, the swap named."""
    rows = [row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="supported_accommodation",
                service_area={"polygon": west_yorkshire_icb["swapped"]}),
            row(3, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse",
                service_area={"polygon": west_yorkshire_icb["degrees"]})]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and [r.origin.line for r in report.rejected] == [2]
    (reason,) = (r.reason for r in report.rejected)
    assert "service_area.polygon" in reason and "beyond the British Isles" in reason, reason
    assert "they look like latitude and longitude, in that order: give longitude first" in reason, reason
    assert EmbeddedIndex(index).ids() == ["test:3"]


def test_a_national_catchment_is_indexed_and_one_too_large_for_a_float_rejects_its_row(geography, index):
    """A catchment of all of the United Kingdom (a national service's) rejected its whole row as beyond England and a
    degree past it; a position a whole number too large for a float (an ORUK feed's extent is JSON, which holds one)
    ended the import in an OverflowError, nothing indexed. Now the first is indexed and the second's row rejected."""
    united_kingdom = {"type": "Polygon", "coordinates": [[[-8.2, 49.9], [1.8, 49.9], [1.8, 60.9], [-8.2, 60.9],
                                                          [-8.2, 49.9]]]}
    huge = {"type": "Polygon", "coordinates": [[[10 ** 400, 53.7], [-1.4, 53.7], [-1.4, 53.9], [-1.6, 53.7]]]}
    rows = [row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="supported_accommodation",
                service_area={"polygon": huge}),
            row(3, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse",
                service_area={"polygon": united_kingdom})]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and [r.origin.line for r in report.rejected] == [2]
    (reason,) = (r.reason for r in report.rejected)
    assert "service_area.polygon" in reason and "not valid GeoJSON" in reason, reason
    assert EmbeddedIndex(index).get("test:3").service_area.polygon == united_kingdom


def test_a_catchment_not_in_degrees_an_index_holds_still_reads(geography, index, leeds_triangle):
    """An index written before the degrees check may hold such a polygon (the embedded index took it): reading the
    record must not fail every answer that touches it until a rebuild, which then rejects its row."""
    report = build_index([row(2, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse",
                              service_area={"polygon": leeds_triangle["degrees"]})],
                         GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1
    record = EmbeddedIndex(index).get("test:2")
    as_written = record.model_copy(update={"service_area": ServiceArea.model_construct(  # unchecked, as then
        codes=[], polygon=leeds_triangle["bng"], description=None)})
    EmbeddedWriter(index).replace_all([as_written])
    assert EmbeddedIndex(index).get("test:2").service_area.polygon == leeds_triangle["bng"]


@pytest.mark.parametrize("polygon", [
    {"type": "Polygon"},
    {"type": "Polygon", "coordinates": None},
    {"type": "Polygon", "coordinates": "[[0, 51]]"},
    {"type": "MultiPolygon", "coordinates": [[[[0, 51], [1, 52]]]]},
    {"type": "Polygon", "coordinates": [[["a", "b"], [1, 52], [1, 51], ["a", "b"]]]},
    {"type": "Polygon", "coordinates": [[[0, 51, 3, 4, 5], [1, 52], [1, 51]]]},
    {"type": "Polygon", "coordinates": [[{"x": 1}]]},
    {"type": "Polygon", "coordinates": [[]]},
    {"type": "Polygon", "coordinates": [[[float("nan"), 51], [1, 52], [1, 51], [float("nan"), 51]]]},
])
def test_a_malformed_catchment_polygon_rejects_its_row_not_the_import(geography, index, polygon):
    bad = row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="supported_accommodation",
              service_area={"polygon": polygon})
    good = row(3, name="Leeds Peer Support", postcode="LS9 7TF", service_type="vcfse")
    report = build_index([bad, good], GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and [r.origin.line for r in report.rejected] == [2]
    assert "service_area.polygon" in report.rejected[0].reason


@pytest.mark.parametrize("field, value", [
    ("website", "javascript:alert(document.cookie)"),
    ("website", "https://javascript:alert(1)"),
    ("website", "data:text/html;base64,PHNjcmlwdD4="),
    ("website", "https://example.org/a page"),
    ("email", "CT6 6EB"),
    ("email", "referrals@example.org\nBcc: everyone@example.org"),
    ("phone", "javascript:alert(1)"),
    ("phone", "Appointments 01536 493300"),
])
def test_a_bad_contact_detail_is_dropped_with_a_warning_and_the_service_kept(geography, index, field, value):
    """A directory maintainer wants the unit listed; a link that could run a script is never republished."""
    report = build_index([row(2, name="Aire Rehabilitation Unit", postcode="LS9 7TF", **{field: value})],
                         GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and not report.rejected
    [warning] = report.warnings
    assert warning.startswith(f"rows.csv:2: {field} '") and "dropped" in warning
    assert getattr(EmbeddedIndex(index).get("test:2"), field) is None


@pytest.mark.parametrize("field, value", [
    ("website", "https://www.leedsandyorkpft.nhs.uk/our-services/rehab/"),
    ("website", "http://example.org:8080"),
    ("phone", "(01943) 465522"),
    ("phone", "01642 850850 (ext. 54243)"),
    ("phone", "+44 113 496 0000"),
    ("email", "referrals@example.nhs.uk"),
])
def test_good_contact_details_are_kept(geography, index, field, value):
    report = build_index([row(2, name="Aire Rehabilitation Unit", postcode="LS9 7TF", **{field: value})],
                         GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1 and not report.warnings
    assert getattr(EmbeddedIndex(index).get("test:2"), field) == value


def test_a_long_value_is_quoted_short_in_every_reason(geography, index):
    huge = "Q" * 10_000_000
    rows = [row(2, name="Mystery " + huge, postcode="LS9 7TF"),
            row(3, name="Secure", original_label="medium secure " + huge, postcode="LS9 7TF"),
            row(4, name="Site", service_type="vcfse", postcode="LS9 7TF", website="javascript:" + huge)]
    report = build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), progress=False,
                         force=True)
    lines = report.summary_lines()
    assert len(report.rejected) == 2 and len(report.warnings) == 1
    assert all(len(line) < 300 for line in lines), [len(line) for line in lines]
    assert all("QQQQ" in str(r) and "…" in str(r) for r in report.rejected)


# --- the live index is never lost ---------------------------------------------------------------------------

def sample_rows(count: int) -> list[Candidate]:
    return [row(i, name=f"Sample Peer Group {i}", service_type="vcfse", postcode="LS9 7TF")
            for i in range(2, 2 + count)]


@pytest.fixture()
def live(geography, index) -> EmbeddedIndex:
    build_index(sample_rows(10), GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    return EmbeddedIndex(index)


def test_an_unreadable_source_refuses_the_build_and_reports_it(geography, index, live):
    before = index.stat().st_ino
    rows = [*sample_rows(10), Rejection(Origin("file", "empty.csv", 0), "the file is empty", fatal=True)]
    with pytest.raises(ImportRefused) as refused:
        build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), live=live, progress=False)
    assert "empty.csv: the file is empty" in refused.value.message
    assert refused.value.report.read == 11 and refused.value.report.indexed == 0
    assert index.stat().st_ino == before and len(live.ids()) == 10


def test_the_drop_check_names_what_would_be_lost(geography, index, live):
    before = index.stat().st_ino
    with pytest.raises(ImportRefused) as refused:
        build_index(sample_rows(7), GeographyPlacer(geography), EmbeddedWriter(index), live=live, progress=False)
    loss = refused.value.report.loss
    assert (loss.live, loss.share, loss.by_source) == (10, 0.3, {"test": 3})
    assert loss.examples == [("test:10", "Sample Peer Group 10"), ("test:11", "Sample Peer Group 11"),
                             ("test:9", "Sample Peer Group 9")]
    assert index.stat().st_ino == before
    allowed = build_index(sample_rows(7), GeographyPlacer(geography), EmbeddedWriter(index), live=live,
                          max_drop_share=0.3, progress=False)
    assert allowed.indexed == 7 and allowed.loss.lost == ["test:10", "test:11", "test:9"]
    assert "dropped 3 of 10 live services (30%): test 3" in allowed.summary_lines()


def test_an_empty_result_is_refused_even_with_force(geography, index, live):
    rows = [row(2, name="Secure", original_label="Medium secure unit", postcode="LS9 7TF")]
    with pytest.raises(ImportRefused, match="nothing to index"):
        build_index(rows, GeographyPlacer(geography), EmbeddedWriter(index), live=live, force=True, progress=False)
    assert len(live.ids()) == 10


def test_the_drop_check_reads_the_live_elasticsearch_index(geography, es_settings, es_client):
    writer = ElasticWriter.from_settings(es_settings, client=es_client)
    build_index(sample_rows(10), GeographyPlacer(geography), writer, progress=False)
    live = ElasticIndex.from_settings(es_settings, client=es_client)
    with pytest.raises(ImportRefused) as refused:
        build_index(sample_rows(5), GeographyPlacer(geography), writer, live=live, progress=False)
    assert refused.value.report.loss.by_source == {"test": 5}
    assert len(live.ids()) == 10


def test_a_catchment_keeps_only_its_geometry(geography, index):
    """Foreign GeoJSON members say nothing about who is served, and an engine may refuse them."""
    square = [[[-1.6, 53.7], [-1.4, 53.7], [-1.4, 53.9], [-1.6, 53.9], [-1.6, 53.7]]]
    polygon = {"type": "Polygon", "coordinates": square, "bbox": "x", "crs": {"type": "name"}, "properties": {}}
    report = build_index([row(2, name="Leeds Floating Support", postcode="LS9 7TF", service_type="vcfse",
                              service_area={"polygon": polygon})],
                         GeographyPlacer(geography), EmbeddedWriter(index), progress=False)
    assert report.indexed == 1
    assert EmbeddedIndex(index).get("test:2").service_area.polygon == {"type": "Polygon", "coordinates": square}


def test_a_live_record_this_version_refuses_does_not_stop_the_check(geography, index, live):
    """An index built by another version may hold a record this one cannot read (here a need it no longer
    knows; a contact it now refuses is left out on reading, see tests/index); naming what would be lost must
    not trip over it."""
    import json
    import sqlite3

    with sqlite3.connect(index) as conn:
        doc = json.loads(conn.execute("SELECT doc FROM services WHERE id = 'test:11'").fetchone()[0])
        conn.execute("UPDATE services SET doc = ? WHERE id = 'test:11'",
                     (json.dumps({**doc, "website": "javascript:alert(1)", "needs_met": ["no_such_need"]}),))
    with pytest.raises(ImportRefused) as refused:
        build_index(sample_rows(8), GeographyPlacer(geography), EmbeddedWriter(index), live=EmbeddedIndex(index),
                    progress=False)
    assert refused.value.report.loss.examples == [("test:10", "Sample Peer Group 10"),
                                                  ("test:11", "(its record cannot be read)")]


NEW_ID = "cqc:1-12937516003"  # an invented id Ashton Lodge is registered again under


def ashton_lodge_three_ways(data_dir, geography) -> list[Service]:
    """Ashton Lodge as CQC recorded it (the real recording's record), its record retired (inactive, as a sync leaves a
    deregistered location), and the home registered again under a new location id at the same name and postcode."""
    recorded = data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json"
    prepared = prepare_all([r for r in load_source(recorded) if isinstance(r, Candidate)], GeographyPlacer(geography))
    [listed] = [s for s in prepared if isinstance(s, Service) and s.id == ASHTON_ID]
    retired = listed.model_copy(update={"status": "inactive", "provenance": [
        listed.provenance[0].model_copy(update={"file": "store", "line": None})]})
    again = listed.model_copy(update={"id": NEW_ID, "cqc_location_id": NEW_ID.removeprefix("cqc:")})
    return [retired, listed, again]


def ashton_lodge_with_a_council(data_dir, geography) -> list[Service]:
    """Ashton Lodge retired, its active copy and the home registered again (`ashton_lodge_three_ways`), with a
    council's two rows: homes:A, given the new registration's CQC location id under another name, and homes:B, at
    homes:A's name and postcode."""
    retired, listed, again = ashton_lodge_three_ways(data_dir, geography)
    council = listed.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": 2})
    home_a = listed.model_copy(update={"id": "homes:A", "source": "homes", "name": "Ashton Lodge Care Home",
                                       "cqc_location_id": again.cqc_location_id, "provenance": [council]})
    home_b = home_a.model_copy(update={"id": "homes:B", "cqc_location_id": None,
                                       "provenance": [council.model_copy(update={"line": 3})]})
    return [retired, listed, again, home_a, home_b]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_inactive_records_copies_are_merged_by_its_id_alone_whatever_the_order(data_dir, geography, tmp_path,
                                                                                   order):
    """A retired record and an active copy of it (a file still listing the location) are one record, inactive, and
    the home registered again under a new id stays a record of its own, in search, in every order the three come in,
    each written to the same index by a build in one process and one whose workers' records are written as they come.
    Before, the active copy read before the retirement counted its name and postcode: the new registration was
    merged into it, and the retired record after them, so the home was listed under the old id (or, the retirement
    read first, as here in the first order, the same three gave two records)."""
    retired, listed, again = three = ashton_lodge_three_ways(data_dir, geography)
    records = [three[i] for i in order]

    kept, _ = merge_duplicates(records, Precedence())

    assert {s.id: s.status for s in kept} == {ASHTON_ID: "inactive", NEW_ID: "active"}
    ashton = next(s for s in kept if s.id == ASHTON_ID)
    assert ashton.model_dump(exclude={"provenance", "field_sources"}) == retired.model_dump(
        exclude={"provenance", "field_sources"})
    assert ashton.provenance == [*retired.provenance, *listed.provenance], "the retired record's first, in any order"
    assert next(s for s in kept if s.id == NEW_ID) == again
    whole, streamed = tmp_path / "whole.sqlite", tmp_path / "streamed.sqlite"
    EmbeddedWriter(whole).replace_all(kept)
    EmbeddedWriter(streamed).replace_all(Merging(Precedence()).stream(records))
    assert {s.id: s for s in EmbeddedIndex(streamed).all()} == {s.id: s for s in EmbeddedIndex(whole).all()}


class FoldChecked(Merging):
    """A merging that checks at each fold that no key is known at the place folded away any more: `_fold` walks only
    the moved records' keys, where it walked every key known, and this holds it to what that walk left (every key at
    the place folded away known at the one it is folded into, the rest as they were). And that a kind merged again
    leaves each `_Given` as it was: the new mergings hold the same ones, not copies."""

    folds = again = 0

    def _fold(self, later: int, into: int, key: str, made: tuple[int, int]) -> None:
        super()._fold(later, into, key, made)
        assert later not in self._where.values(), f"a key still known at {later}, folded into {into}"
        FoldChecked.folds += 1

    def _merge_again(self, place: int, groups: list[list[tuple[int, Service]]]) -> None:
        given = copy.deepcopy(self._given)
        super()._merge_again(place, groups)
        assert self._given == given, "a kind merged again changed what an id counts"
        FoldChecked.again += 1


def imported_both_ways(tmp_path: Path, order: Sequence[Service], kept: list[Service],
                       directory: Directory | None = None, merging: type[Merging] = Merging,
                       synced: Collection[tuple[str, str | None]] = ()) -> tuple[Any, Any]:
    """The records `merge_duplicates` kept of `order` written whole (one.sqlite), and `order` written as a parallel
    import writes it (two.sqlite: part files, then `merging`'s stream, `synced` the records read from the sync's
    store), each through an `OverlayWriter` laying `directory`'s edits where one is given: the two writers, whose
    warnings a test may compare."""
    def laid(writer: EmbeddedWriter) -> Any:
        return writer if directory is None else OverlayWriter(writer, directory)

    one = laid(EmbeddedWriter(tmp_path / "one.sqlite"))
    one.replace_all(kept)
    writer = EmbeddedWriter(tmp_path / "two.sqlite")
    parts = writer.parts()
    stored = parts.stored(parts.write(list(order)), [s.id for s in order], [s.service_type for s in order])
    two = laid(writer)
    two.replace_all(merging(Precedence(), synced).stream(Keyed(merge_keys(s), r) for s, r in zip(order, stored)))
    parts.remove()
    return one, two


def records_of(path: Path) -> dict[str, Service]:
    return {s.id: s for s in EmbeddedIndex(path).all()}


def test_a_retirement_that_takes_apart_a_kind_two_were_folded_into_writes_each_id_at_one_row(data_dir, geography,
                                                                                            tmp_path):
    """Ashton Lodge retired, its active copy and the home registered again, with a council's two rows (homes:A,
    given the new registration's CQC location id under another name; homes:B, at homes:A's name and postcode): in
    all 120 orders, a parallel import (each record stored in a part file and read back where it is merged, laid
    over by the maintainers' edits of each, as it is written) writes the records, at the rows, and warns of the
    edits as one process does. Where the active copy and homes:A each came first, and the new registration showed
    them one, the retirement took that kind apart: before, it gave Ashton Lodge a new row while the row it was
    written at still held its id, and the import stopped (`UNIQUE constraint failed: services.id`, 12 orders); now
    each kind goes back to the row its first record was written at."""
    five = ashton_lodge_with_a_council(data_dir, geography)
    directory = Directory(tmp_path / "directory.sqlite")
    for record in five:
        directory.overlay.record("test", "update", record.id, [Change("beds", None, 6)], fields={"beds": 6})

    def rows(path) -> list[tuple[int, str, str]]:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT rowid, id, CAST(doc AS TEXT) FROM services ORDER BY rowid").fetchall()

    FoldChecked.folds = FoldChecked.again = 0
    for order in itertools.permutations(five):
        kept, _ = merge_duplicates(order, Precedence())
        assert [(s.id, s.status) for s in kept if s.id == ASHTON_ID] == [(ASHTON_ID, "inactive")]
        [home] = [s for s in kept if s.id != ASHTON_ID]
        registered_again = five[2].provenance[0].file
        assert home.status == "active" and {o.file for o in home.provenance} == {"homes.csv", registered_again}
        one, two = imported_both_ways(tmp_path, order, kept, directory, FoldChecked)
        assert rows(tmp_path / "two.sqlite") == rows(tmp_path / "one.sqlite"), [s.id for s in order]
        assert two.warnings == one.warnings, [s.id for s in order]
    assert FoldChecked.folds > 0, "the new registration showed two kinds one"
    assert FoldChecked.again > 0, "the retirement took a kind apart"


class CombinedAsMerged(Merging):
    """A merging that combines a kind again each time a record is merged into it, as `Merging` did before it
    combined a kind only when its record is read (`_record`)."""

    def _join(self, came, keys, other, hits) -> None:
        hit = min(hits, key=self._came.__getitem__)
        super()._join(came, keys, other, hits)
        self.merged[hit] = _combine([member for _, member in self.members[hit]], self.precedence)
        self._stale.discard(hit)


def merged_both_ways(records: list) -> None:
    """The records merged as `Merging` merges them and combined as each is merged: the same records, notes and
    stream (each record written as it comes, then each kind as it ends up)."""
    for keep in (lambda merging: merging.kept(), lambda merging: merging.make_notes()):
        made = []
        for kind in (Merging, CombinedAsMerged):
            merging = kind(Precedence())
            for record in records:
                merging.add(record)
            made.append(keep(merging))
        assert made[0] == made[1]
    assert list(Merging(Precedence()).stream(records)) == list(CombinedAsMerged(Precedence()).stream(records))


def test_a_kind_combined_when_read_is_the_kind_combined_as_each_record_came(data_dir, geography):
    """The 2018 and 2019 NHS hospital lists with the ODS sites (their 141 pairs), in the order read and reversed, and
    Ashton Lodge's five records (the retirement taking a kind apart) and its active copy again (a note of one id), in
    every order: a kind combined only when its record is read is the one combining it as each record came made."""
    services = data_dir / "services"
    rows = [row for name in ("nhs_website_hospitals_2018.csv", "nhs_website_hospitals_2019.csv",
                             "ods_trusts_and_sites_2018_geocoded.csv") for row in load_source(services / name)]
    prepared = prepare_rows(rows, GeographyPlacer(geography), IndexReport())
    merged_both_ways(prepared)
    merged_both_ways(prepared[::-1])
    five = ashton_lodge_with_a_council(data_dir, geography)
    for order in itertools.permutations([*five, five[1]]):
        merged_both_ways(list(order))


def test_the_notes_of_a_kind_a_retirement_takes_apart_stay_where_their_records_came(data_dir, geography):
    """The report names what was merged into what in the order the records came, a kind a retirement took apart
    too: Ashton Lodge's active copy read twice, the home registered again (drawn in by its name and postcode), a
    council's row read twice, then the retirement. Before, the notes of the kind taken apart were made again after
    every other's, so the council's row came first."""
    retired, listed, again = ashton_lodge_three_ways(data_dir, geography)
    council = listed.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": 2})
    home = listed.model_copy(update={"id": "homes:A", "source": "homes", "name": "Ashton Lodge Care Home",
                                     "cqc_location_id": None, "provenance": [council]})

    kept, notes = merge_duplicates([listed, listed, again, home, home, retired], Precedence())

    assert [s.id for s in kept] == [ASHTON_ID, "homes:A", NEW_ID]
    assert [note.key.split(": ")[0] for note in notes] == [f"id {ASHTON_ID}", "id homes:A", f"id {ASHTON_ID}"]


def ashton_lodge_given_twice(data_dir, geography, tmp_path) -> list[Service]:
    """Ashton Lodge as CQC recorded it; a 104th record of the recording giving Ashton Lodge's id again under
    Grovelands Lodge's name and postcode (a source's mistake); Grovelands Lodge's own record; and a council's two
    rows: homes:A at Ashton Lodge's name and postcode, and homes:C under another name with its CQC location id."""
    recorded = data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json"
    locations = json.loads(recorded.read_text(encoding="utf-8"))
    first = next(location for location in locations if f"cqc:{location['locationId']}" == ASHTON_ID)
    other = next(location for location in locations if f"cqc:{location['locationId']}" == GROVELANDS_ID)
    locations.append({**first, "name": other["name"], "postalCode": other["postalCode"]})
    again = tmp_path / recorded.name
    again.write_text(json.dumps(locations), encoding="utf-8")
    prepared = prepare_all([r for r in load_source(again) if isinstance(r, Candidate)], GeographyPlacer(geography))
    listed, wrong = (s for s in prepared if isinstance(s, Service) and s.id == ASHTON_ID)
    [grovelands] = [s for s in prepared if isinstance(s, Service) and s.id == GROVELANDS_ID]
    council = listed.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": 2})
    home_a = listed.model_copy(update={"id": "homes:A", "source": "homes", "cqc_location_id": None,
                                       "provenance": [council]})
    home_c = listed.model_copy(update={"id": "homes:C", "source": "homes", "name": "Ashton Lodge Care Home",
                                       "provenance": [council.model_copy(update={"line": 3})]})
    return [listed, wrong, grovelands, home_a, home_c]


def kinds(records) -> set[frozenset[tuple[str | None, int | None]]]:
    """Which rows (by file and line) each record kept was merged from."""
    return {frozenset((origin.file, origin.line) for origin in record.provenance) for record in records}


def test_two_rows_of_one_id_that_disagree_merge_the_same_records_in_every_order(data_dir, geography, tmp_path):
    """Ashton Lodge's record and a second row of its id under Grovelands Lodge's name and postcode, with Grovelands
    Lodge's record and a council's two rows (`ashton_lodge_given_twice`): in all 120 orders, one process and a
    parallel import (each record stored in a part file and read back where it is merged, laid over by the
    maintainers' edits of each as it is written, warning of them alike) make the same three records: Ashton Lodge's
    two rows with homes:C (their CQC location id, which both give), Grovelands Lodge alone, homes:A alone (Ashton
    Lodge's name and postcode, which one of its id's rows gives and the other does not).
    Before, only the first-read row of the id counted its name and postcode: read first, the mistaken row drew
    Grovelands Lodge's record into Ashton Lodge's id; read second, Ashton Lodge's own row drew in homes:A."""
    five = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    listed, wrong, grovelands, home_a, home_c = five
    expected = kinds([Service.model_validate({**listed.model_dump(), "provenance": [
        *listed.provenance, *wrong.provenance, *home_c.provenance]}), grovelands, home_a])
    directory = Directory(tmp_path / "directory.sqlite")
    for record in five:
        directory.overlay.record("test", "update", record.id, [Change("beds", None, 6)], fields={"beds": 6})
    for order in itertools.permutations(five):
        kept, _ = merge_duplicates(order, Precedence())
        assert kinds(kept) == expected, [s.provenance[0].line for s in order]
        one, two = imported_both_ways(tmp_path, order, kept, directory)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")
        assert two.warnings == one.warnings


class DeclaredOnly(dict):
    """A row's fields that let a step read only the fields it declares (`indexer.pipeline.reads`): any other read,
    by key or whole, fails the test, naming the step and the field."""

    def __init__(self, fields: dict, step: str, declared: frozenset[str]) -> None:
        super().__init__(fields)
        self.step, self.declared = step, declared

    def _read(self, field: str) -> None:
        assert field in self.declared, f"{self.step} reads {field!r}, which it does not declare"

    def __getitem__(self, field):
        self._read(field)
        return super().__getitem__(field)

    def get(self, field, default=None):
        self._read(field)
        return super().get(field, default)

    def setdefault(self, field, default=None):
        self._read(field)
        return super().setdefault(field, default)

    def __contains__(self, field):
        self._read(field)
        return super().__contains__(field)

    def pop(self, field, *default):
        self._read(field)
        return super().pop(field, *default)

    def _whole(self, *_):
        raise AssertionError(f"{self.step} reads every field, declaring {sorted(self.declared)}")

    __iter__ = keys = values = items = copy = _whole  # type: ignore[assignment]


def every_field(candidate: Candidate) -> Candidate:
    """`candidate` with every field of the record it does not give present and empty: a step that reads a field
    whatever its value reads it here."""
    return replace(candidate, fields={**dict.fromkeys(Service.model_fields), **candidate.fields})


def test_every_step_of_a_rows_preparation_reads_only_the_fields_it_declares(data_dir, geography):
    """A reason a step rejects a row for says first that the row is short where a cell it may have lost gives a field
    the step reads (`Candidate.rejected`), as the lost cell may be why: the step's declaration (`reads`) is the one
    home of those fields. Before, two lists beside the steps said them (`_TYPED`, `_PLACED`): the type step's left out
    the description and gender its needs step reads, and the legacy label and PD flags it reads itself, so a field
    added to a step would have lost the word without a sound. Every declared step, run in the pipeline's order over
    the rows of the real NHS hospital lists, the ODS sites, CQC's recorded locations, the sample and a foreign ORUK
    feed, each row also with every other field of the record present and empty, reads only what it declares, and the
    steps a row goes through are all declared."""
    services, sources = data_dir / "services", Path(__file__).resolve().parents[1] / "fixtures" / "sources"
    rows = [r.candidate if isinstance(r, Held) else r for path in (
        services / "nhs_website_hospitals_2018.csv", services / "nhs_website_hospitals_2019.csv",
        services / "ods_trusts_and_sites_2018_geocoded.csv", data_dir / "feeds" / "cqc_api" /
        "locations_detail_2021.json", ROOT / "sample" / "rehabmap-sample.oruk.json",
        sources / "oruk_foreign_feed.json", sources / "cqc_care_directory.csv") for r in load_source(path)]
    candidates = [c for r in rows if isinstance(r, Candidate) for c in (r, every_field(r))]
    assert len(candidates) > 1_000
    steps = list(STEP_READS.items())
    assert {step.__name__ for step, _ in steps} == {"_classify", "_extract_needs", "_locate"}
    placer = GeographyPlacer(geography)
    for candidate in candidates:
        fields = dict(candidate.fields)
        given = {"label_text": candidate.label_text, "placer": placer, "postcode_named": candidate.postcode_named}
        for step, declared in steps:
            parameters = list(inspect.signature(step).parameters)
            assert parameters[0] == "fields" and set(parameters[1:]) <= set(given), step.__name__
            assert "label_text" not in parameters or "label_text" in declared, step.__name__
            watched = DeclaredOnly(fields, step.__name__, declared)
            try:
                step(watched, *(given[p] for p in parameters[1:]))
            except (ValueError, TypeError, DomainError, GeodataError):  # rejected here: no next step runs
                break
            finally:
                fields = dict(dict.items(watched))


def test_a_row_given_again_is_noted_against_its_own_ids_first_row(data_dir, geography, tmp_path):
    """Ashton Lodge's record read twice after a council's row (homes:C) that gives its CQC location id, and a row of
    a CSV given three times: each row given again is noted as merged into its id's first row, the same row, nothing
    lost. Before, the note measured it against the record merged so far: Ashton Lodge's second record was said to be
    merged into homes.csv:3 under homes:C's id, as another source's, whose name the record does not keep; the CSV's
    third row was "another row, of which the record keeps only what the first leaves empty: give each row its own
    id", as the two rows merged named their fields' source where the row itself does not."""
    listed, _, _, _, home_c = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    where = f"{listed.provenance[0].file} record {listed.provenance[0].line}"

    _, notes = merge_duplicates([home_c, listed, listed], Precedence())

    assert notes == [MergeNote("homes:C", ASHTON_ID, "cqc"),
                     MergeNote(where, where, f"id {ASHTON_ID}: the same row, nothing lost")]
    rows = prepare_all([row(2, name="Kingfisher Lodge", service_type="inpatient_rehab_level2", postcode="LS9 7TF")] * 3,
                       GeographyPlacer(geography))
    _, notes = merge_duplicates(rows, Precedence())
    assert notes == [MergeNote("rows.csv:2", "rows.csv:2", "id test:2: the same row, nothing lost")] * 2


def test_a_row_given_again_in_a_kind_kept_under_another_id_is_noted_against_its_own_ids_record(data_dir, geography,
                                                                                               tmp_path):
    """A council's row giving Ashton Lodge's CQC location id (homes:C, read first, so its id is kept), then Ashton
    Lodge's record given twice, the second with another phone: the second row is noted against the record Ashton
    Lodge's two rows make, whose phone is the first's, and the name both rows give is not said lost. Before, it was
    noted against homes:C's record, the kind's, and said "whose name 'Ashton Lodge Residential Home', phone … the
    record does not keep", though its name is its first row's: homes:C's name was noted by the note of the CQC
    location id."""
    listed, _, _, _, home_c = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    again = listed.model_copy(update={"phone": "0161 000 0000", "provenance": [
        listed.provenance[0].model_copy(update={"line": 104})]})

    [kept], notes = merge_duplicates([home_c, listed, again], Precedence())

    assert (kept.id, kept.name) == ("homes:C", home_c.name)
    file = listed.provenance[0].file
    assert notes == [MergeNote("homes:C", ASHTON_ID, "cqc"), MergeNote(
        f"{file} record {listed.provenance[0].line}", f"{file} record 104",
        f"id {ASHTON_ID}: another row, whose phone '0161 000 0000' the record does not keep: give each row its own id")]


def test_a_row_given_again_is_not_said_to_lose_a_value_the_indexed_record_shows(data_dir, geography, tmp_path):
    """A council's row giving Ashton Lodge's CQC location id and phone 0161 000 0000 (homes:C, read first, so its id
    is kept), then Ashton Lodge's record given twice, the second with that phone: the record indexed shows the phone,
    so the note says the row's phone is shown in place of the first's, not lost. Before, measured against Ashton
    Lodge's rows' record alone, it said "whose phone '0161 000 0000' the record does not keep"."""
    listed, _, _, _, home_c = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    home_c = home_c.model_copy(update={"phone": "0161 000 0000"})
    again = listed.model_copy(update={"phone": "0161 000 0000", "provenance": [
        listed.provenance[0].model_copy(update={"line": 104})]})

    [kept], notes = merge_duplicates([home_c, listed, again], Precedence())

    assert (kept.id, kept.phone) == ("homes:C", "0161 000 0000")
    file = listed.provenance[0].file
    assert notes[1:] == [MergeNote(
        f"{file} record {listed.provenance[0].line}", f"{file} record 104",
        f"id {ASHTON_ID}: another row, whose phone '0161 000 0000' the record shows in place of the first's "
        f"'{listed.phone}': give each row its own id")]


def synced(service: Service) -> Service:
    """A record as a rebuild reads it from the sync's store: its provenance names the page CQC's API gave it at."""
    page = f"https://api.service.cqc.org.uk/public/v1/locations/{service.id.removeprefix('cqc:')}"
    return service.model_copy(update={"provenance": [service.provenance[0].model_copy(
        update={"file": page, "line": 1})]})


@pytest.mark.parametrize("synced_first", [True, False], ids=["synced record first", "inactive row first"])
def test_a_files_inactive_copy_is_noted_as_merged_into_the_synced_record_in_either_order(data_dir, geography,
                                                                                          synced_first):
    """Ashton Lodge as a sync stores it (active) and a file's inactive row of it, in either order: the synced record
    is the base, so the note says the file's row was merged into it, and that its state is not kept. Before, read
    first, the file's row was named the record kept, and the synced record's 'active' shown in place of its
    'inactive', though the synced record is the base."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first = synced(listed)
    retired = listed.model_copy(update={"status": "inactive", "provenance": [
        listed.provenance[0].model_copy(update={"line": 104})]})

    [kept], notes = merge_duplicates([first, retired] if synced_first else [retired, first], Precedence(),
                                     {(first.id, first.provenance[0].file)})

    assert kept.status == "active"
    assert notes == [MergeNote(place(first.provenance[0].file, 1), f"{listed.provenance[0].file} record 104",
                               f"id {ASHTON_ID}: the same service from another source, whose status 'inactive' the "
                               "record does not keep")]


@pytest.mark.parametrize("copy_from, copy_says, council_says", [
    ("file", {"cqc_location_id": None}, {"name": "Ashton Lodge Care Home"}),
    ("file", {"postcode": None}, {"cqc_location_id": None}),
    ("file", {"name": "Ashton Lodge Residential Care Home"}, {"cqc_location_id": None}),
    ("file", {"name": "Ashton Lodge Residential Care Home", "cqc_location_id": None}, {"name": "Ashton Lodge"}),
    ("same", {"cqc_location_id": None}, {"name": "Ashton Lodge Care Home"}),
], ids=["file copy without CQC id", "file copy without postcode", "file copy named otherwise",
        "file copy named otherwise without CQC id", "row given again without CQC id"])
def test_a_copy_that_leaves_a_key_out_or_is_read_elsewhere_withdraws_nothing_its_id_gives(
        data_dir, geography, tmp_path, copy_from, copy_says, council_says):
    """Ashton Lodge as a sync stores it (`synced`), a copy of it (a file's older copy, read from the real recording;
    or its source's row given again), which leaves a cell empty or spells the name otherwise, and a council's row that
    shares one key with the synced record alone (its CQC location id, or its name and postcode): in every order, one
    record of the three, in one process and as a parallel import writes it, as the live write, which reads the
    store's records alone (`KeyGroups`: the synced record and the council's row), merges the two. Before, a key one
    record of the id did not give, or gave otherwise from another place, counted for none of its records, so the
    council's row stayed apart in every order."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first = synced(listed)
    copied = listed if copy_from == "file" else first  # read from the recording, or from the synced record's page
    copy = copied.model_copy(update={**copy_says, "provenance": [
        copied.provenance[0].model_copy(update={"line": 104})]})
    council = listed.model_copy(update={"id": "homes:A", "source": "homes", **council_says, "provenance": [
        listed.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": 2})]})
    three = [first, copy, council]
    live = KeyGroups([s.model_dump(mode="json") for s in (first, council)])
    assert live.of(merge_keys(first)) == {0, 1}, "the live write merges the synced record and the council's row"
    for order in itertools.permutations(three):
        kept, _ = merge_duplicates(order, Precedence())
        assert kinds(kept) == {frozenset((o.file, o.line) for s in three for o in s.provenance)}, [
            s.provenance[0].line for s in order]
        imported_both_ways(tmp_path, order, kept)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def synced_council_row(listed: Service, **fields: Any) -> Service:
    """A council's record of Ashton Lodge (homes:A, without its CQC location id) as a sync of the council's ORUK feed
    stores it, `fields` changed."""
    page = "https://homes.example.org/oruk/services/A"
    return listed.model_copy(update={"id": "homes:A", "source": "homes", "cqc_location_id": None, **fields,
                                     "provenance": [listed.provenance[0].model_copy(update={
                                         "source": "homes", "file": page, "line": 1})]})


def merged_as_the_live_write_merges(tmp_path: Path, three: list[Service], synced_two: tuple[Service, Service],
                                    expected: set[frozenset[tuple[str | None, int | None]]]) -> list[list[Service]]:
    """`three` (two records a sync stores, `synced_two`, and a file's copy of the first) merged in every order into
    the records whose rows `expected` gives, one process and a parallel import alike: the records kept of each."""
    synced_at = {(s.id, s.provenance[0].file) for s in synced_two}
    each = []
    for order in itertools.permutations(three):
        kept, _ = merge_duplicates(order, Precedence(), synced_at)
        assert kinds(kept) == expected, [(s.id, s.provenance[0].line) for s in order]
        imported_both_ways(tmp_path, order, kept, synced=synced_at)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")
        each.append(kept)
    return each


def test_a_synced_record_sharing_a_key_only_with_a_files_copy_of_another_stays_apart_as_the_live_write_keeps_it(
        data_dir, geography, tmp_path):
    """Ashton Lodge as a sync stores it (`synced`), a file's older copy of it named otherwise ("Ashton Lodge
    Residential Care Home"), and a council's record a sync stores at that name and postcode, without a CQC location
    id: the live write, which reads the store's records alone (`KeyGroups`), keeps the council's record apart, and so
    does a rebuild, in every order, in one process and as a parallel import writes it: a synced record's keys are its
    id's, and a file's copy adds none. Before, the copy's name and postcode counted for Ashton Lodge's id, and the
    rebuild merged the council's record into it, which the next live write showed apart again."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first, named = synced(listed), "Ashton Lodge Residential Care Home"
    copy = listed.model_copy(update={"name": named, "provenance": [
        listed.provenance[0].model_copy(update={"line": 104})]})
    council = synced_council_row(listed, name=named)
    live = KeyGroups([s.model_dump(mode="json") for s in (first, council)])
    assert live.of(merge_keys(first)) == {0}, "the live write keeps the two synced records apart"
    merged_as_the_live_write_merges(tmp_path, [first, copy, council], (first, council), kinds([Service.model_validate(
        {**first.model_dump(), "provenance": [*first.provenance, *copy.provenance]}), council]))


def test_a_files_inactive_copy_of_a_synced_record_neither_retires_it_nor_keeps_apart_what_the_live_write_merges(
        data_dir, geography, tmp_path):
    """Ashton Lodge as a sync stores it, active, a file's row of its id given as inactive (an older list of
    locations since deregistered), and a council's record a sync stores at Ashton Lodge's name and postcode: the
    live write merges the two synced records, which the review queue's hint says ("Once both are shown, one record
    with"), and so does a rebuild, in every order, one record, active, in one process and as a parallel import
    writes it: the synced record says its id's keys and state, and is the base of the file's copy. Before, the
    file's inactive row made Ashton Lodge's id count its id alone, the council's record stayed apart, and Ashton
    Lodge's record, based on the file's row, was inactive: out of every search the live write kept it in."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first = synced(listed)
    retired = listed.model_copy(update={"status": "inactive", "provenance": [
        listed.provenance[0].model_copy(update={"line": 104})]})
    council = synced_council_row(listed)
    live = KeyGroups([s.model_dump(mode="json") for s in (first, council)])
    assert live.of(merge_keys(first)) == {0, 1}, "the live write merges the two synced records"
    three = [first, retired, council]
    for kept in merged_as_the_live_write_merges(tmp_path, three, (first, council), {
            frozenset((o.file, o.line) for s in three for o in s.provenance)}):
        assert [s.status for s in kept] == ["active"]


def test_a_files_row_sharing_a_key_with_each_of_two_synced_records_joins_one_as_the_live_write_keeps_them_apart(
        data_dir, geography, tmp_path):
    """Ashton Lodge as a sync stores it, a council's record a sync stores at Ashton Lodge's postcode under another
    name ("Ashton Lodge Residential Care Home", no CQC location id), and a council's file row of another id (homes:F)
    giving Ashton Lodge's CQC location id under the council's name: the live write, which reads the store's records
    alone (`KeyGroups`), shows the two synced records apart, and so does a rebuild, which reads them first (both
    orders, then the file's row), in one process and as a parallel import writes it: the row joins Ashton Lodge's
    record, whose CQC location id it gives, and the council's synced record stays a record of its own. Before, the row
    made the three one record in a rebuild, and the next live write of either showed them apart again."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first, named = synced(listed), "Ashton Lodge Residential Care Home"
    council = synced_council_row(listed, name=named)
    row = council_file_row(listed, "homes:F", 2, name=named)
    live = KeyGroups([s.model_dump(mode="json") for s in (first, council)])
    assert live.of(merge_keys(first)) == {0}, "the live write keeps the two synced records apart"
    synced_at = {(s.id, s.provenance[0].file) for s in (first, council)}
    expected = kinds([Service.model_validate({**first.model_dump(), "provenance": [*first.provenance,
                                                                                   *row.provenance]}), council])
    for order in ([first, council, row], [council, first, row]):
        kept, _ = merge_duplicates(order, Precedence(), synced_at)
        assert kinds(kept) == expected, [s.id for s in order]
        assert {s.id for s in kept} == {first.id, council.id}
        imported_both_ways(tmp_path, order, kept, synced=synced_at)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def council_file_row(listed: Service, ident: str, line: int, **fields: Any) -> Service:
    """A council's file row (homes.csv, `line`) of Ashton Lodge under id `ident`, `fields` changed."""
    return listed.model_copy(update={"id": ident, "source": "homes", **fields, "provenance": [
        listed.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": line})]})


ANNEXE, COUNCILS, NOBODYS = "Ashton Lodge Annexe", "Ashton Lodge Residential Care Home", "1-999999999"


@pytest.mark.parametrize("rows, joins_first", [
    ([("F1", {"name": ANNEXE}), ("F2", {"name": ANNEXE, "cqc_location_id": None}),
      ("F3", {"name": COUNCILS, "cqc_location_id": NOBODYS}), ("F4", {"name": ANNEXE, "cqc_location_id": NOBODYS})],
     True),
    ([("J", {"cqc_location_id": NOBODYS}), ("K", {"name": COUNCILS, "cqc_location_id": NOBODYS})], True),
    ([("F", {"name": COUNCILS}), ("G", {"name": "Ashton Lodge G"}), ("G", {"name": "Ashton Lodge G2"}),
      ("H", {"name": COUNCILS, "cqc_location_id": None})], True),
    ([("K", {"name": COUNCILS, "cqc_location_id": NOBODYS}), ("L", {"name": ANNEXE, "cqc_location_id": NOBODYS})],
     False),
    ([("J", {"cqc_location_id": NOBODYS}), ("K", {"name": COUNCILS, "cqc_location_id": NOBODYS}),
      (ASHTON_ID, {"source": "cqc", "name": COUNCILS, "cqc_location_id": NOBODYS})], True),
    ([("G", {"name": COUNCILS}), ("G", {"name": COUNCILS, "cqc_location_id": GROVELANDS})], False),
], ids=["a chain giving Ashton Lodge's CQC id", "a chain giving no synced record's CQC id",
        "a chain with a row given again otherwise", "a chain sharing a key with the council's record alone",
        "a chain beside a file's copy of Ashton Lodge at the council's name",
        "a row given again with Ashton Lodge's CQC id and another's"])
def test_a_chain_of_files_rows_sharing_keys_with_two_synced_records_joins_one_in_every_order(
        data_dir, geography, tmp_path, rows, joins_first):
    """Ashton Lodge as a sync stores it and a council's synced record at its postcode under another name
    ("Ashton Lodge Residential Care Home", no CQC location id), which the live write (`KeyGroups`) shows apart, and a
    council's file rows that share keys with one another, and some with each synced record: in every order, the
    synced records read first and among the rows, one process and a parallel import alike, the two stay apart and
    the rows, one service, join one of them: the one whose own CQC location id a row gives, else the first in the
    store's order (Ashton Lodge, source cqc), or the one record they share keys with. With a row given twice under
    two names (homes:G, whose name then counts for neither, taking its kind apart) too, or beside a file's copy of
    Ashton Lodge at the council's name and postcode (its keys are the synced record's alone). Where the store's order
    decided, the merging says so (`guesses`, a warning in the report; before, nothing did). No CQC location id is
    shown by two records. Before, which record each
    row joined depended on the order: 4 rows gave 3 sets of records over their 24 orders after the synced records,
    and a row at the council's name and postcode read after the split joined Ashton Lodge, read before it the
    council's record; and homes:G given twice at the council's name and postcode, with Ashton Lodge's CQC location
    id and with Grovelands Lodge's (which then count for neither), showed one of them on homes:A's record, which it
    joined, beside Ashton Lodge's: the live write, reading the store alone, shows homes:A without one."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first, council = synced(listed), synced_council_row(listed, name=COUNCILS)
    assert KeyGroups([s.model_dump(mode="json") for s in (first, council)]).of(merge_keys(first)) == {0}
    files = [council_file_row(listed, ident if ":" in ident else f"homes:{ident}", line, **fields)
             for line, (ident, fields) in enumerate(rows, 2)]
    joined = first if joins_first else council
    expected = kinds([Service.model_validate({**joined.model_dump(), "provenance": [
        *joined.provenance, *(o for s in files for o in s.provenance)]}), council if joins_first else first])
    synced_at = {(s.id, s.provenance[0].file) for s in (first, council)}
    # Joined by the store's order alone (no row gives Ashton Lodge's CQC location id, the only one given): said so.
    guessed = joins_first and all(fields.get("cqc_location_id", ASHTON) != ASHTON for _, fields in rows)
    for at, order in enumerate(itertools.permutations([first, council, *files])):
        merging = FoldChecked(Precedence(), synced_at)
        kept = merging.merge_all(order)
        assert kinds(kept) == expected, [s.id for s in order]
        shown = [s.cqc_location_id for s in kept if s.cqc_location_id]
        assert len(shown) == len(set(shown)), [s.id for s in order]
        assert merging.guesses == ([
            f"homes:J shares a name and postcode with {ASHTON_ID}, homes:K shares a name and postcode with homes:A: "
            f"the sync's store keeps {ASHTON_ID} and homes:A apart, and no row of the chain homes:J, homes:K (one "
            "service: they share keys) gives the CQC location id of one of them alone, so it joined "
            f"{ASHTON_ID}, the first by source name and id, not by anything the rows say: check which service it is"]
            if guessed else [])
        if at % 7 == 0:
            imported_both_ways(tmp_path, order, kept, synced=synced_at)
            assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_a_chain_giving_the_cqc_location_ids_of_two_synced_records_shows_only_the_one_it_joined_in_every_order(
        data_dir, geography, tmp_path):
    """Ashton Lodge and Grovelands Lodge as a sync stores them, and a council's file rows at one name and postcode (a
    chain: one service), homes:J giving Grovelands Lodge's CQC location id and homes:K Ashton Lodge's: the chain
    joins one of the two, Grovelands Lodge (the first by source name and id, as the warning says), and the record it
    joins shows Grovelands Lodge's CQC location id, never Ashton Lodge's, which Ashton Lodge's own record shows: in
    all 24 orders, one process and a parallel import alike, each CQC location id on one record, and the warning names
    the id left out and the row giving it. Before, where homes:K came before homes:J and Grovelands Lodge's record
    (8 of the 24 orders; not a rebuild's, which reads the synced records first), the record it joined showed Ashton
    Lodge's CQC location id beside Ashton Lodge's own: two records in search for one location, and the warning said
    nothing of it."""
    listed, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    ashton, grovelands = synced(listed), synced(grovelands)
    rows = [council_file_row(listed, "homes:J", 2, name=COUNCILS, cqc_location_id=GROVELANDS),
            council_file_row(listed, "homes:K", 3, name=COUNCILS)]
    synced_at = {(s.id, s.provenance[0].file) for s in (ashton, grovelands)}
    expected = kinds([ashton, Service.model_validate({**grovelands.model_dump(), "provenance": [
        *grovelands.provenance, *(o for s in rows for o in s.provenance)]})])
    for at, order in enumerate(itertools.permutations([ashton, grovelands, *rows])):
        merging = Merging(Precedence(), synced_at)
        kept = merging.merge_all(order)
        assert kinds(kept) == expected, [s.id for s in order]
        assert sorted((len(s.provenance), s.cqc_location_id) for s in kept) == [(1, ASHTON), (3, GROVELANDS)], [
            s.id for s in order]
        assert merging.guesses == [
            f"homes:J shares a CQC location id with {GROVELANDS_ID}, homes:K shares a CQC location id with "
            f"{ASHTON_ID}: the sync's store keeps {GROVELANDS_ID} and {ASHTON_ID} apart, and no row of the chain "
            "homes:J, homes:K (one service: they share keys) gives the CQC location id of one of them alone, so it "
            f"joined {GROVELANDS_ID}, the first by source name and id, not by anything the rows say, and does not show "
            f"{ASHTON_ID}'s CQC location id {ASHTON} (given by homes.csv:3): check which service it is"]
        if at % 5 == 0:
            imported_both_ways(tmp_path, order, kept, synced=synced_at)


def test_a_chain_giving_many_synced_records_cqc_location_ids_warns_naming_the_rows_giving_each_and_ten_at_most(
        data_dir, geography):
    """Twelve CQC locations as a sync stores them (the recording's six and an annexe of each), and a provider's list
    giving each one's CQC location id in a row under its head office's name and postcode (one chain, sharing keys
    with all twelve), the second location's id in the first of two rows of homes:R1: the warning names the row
    giving it by file and line (homes.csv:3, not homes:R1's other row, homes.csv:14), and each of its lists ten at
    most and how many more: the records sharing keys, those kept apart, the chain's own rows and the ids not shown.
    Before, it named ids ("given by homes:R1"), and every one of the records, rows and ids: 685 KB at 4,000
    locations."""
    recorded = data_dir / "feeds" / "cqc_api" / "locations_detail_2021.json"
    prepared = prepare_all([r for r in load_source(recorded) if isinstance(r, Candidate)], GeographyPlacer(geography))
    recorded_six = sorted((s for s in prepared if isinstance(s, Service)), key=lambda s: s.id)
    # The recording's six, and six more: each as an annexe registered as a location of its own.
    locations = sorted([*recorded_six, *(s.model_copy(update={
        "id": f"cqc:1-9{at:08d}", "cqc_location_id": f"1-9{at:08d}", "name": f"{s.name} Annexe"})
        for at, s in enumerate(recorded_six))], key=lambda s: s.id)
    stored = [synced(location) for location in locations]
    office = locations[0]
    rows = [council_file_row(office, f"homes:R{at}", at + 2, name="Head Office",
                             cqc_location_id=location.cqc_location_id) for at, location in enumerate(locations)]
    rows.append(council_file_row(office, "homes:R1", 14, name="Head Office", cqc_location_id=None))
    # homes:R2 gives the third location's id again at line 15: its rows named in line order, 4 before 15 (before, as
    # text: "homes.csv:15, homes.csv:4")
    rows.append(council_file_row(office, "homes:R2", 15, name="Head Office",
                                 cqc_location_id=locations[2].cqc_location_id))
    merging = Merging(Precedence(), {(s.id, s.provenance[0].file) for s in stored})
    kept = merging.merge_all([*stored, *rows])
    assert sorted(s.cqc_location_id for s in kept) == sorted(s.cqc_location_id for s in locations)
    [guess] = merging.guesses
    assert f"{locations[1].id}'s CQC location id {locations[1].cqc_location_id} (given by homes.csv:3)" in guess
    assert f"{locations[2].cqc_location_id} (given by homes.csv:4" in guess and "homes.csv:15, homes.csv:4" not in guess
    assert guess.count("shares a CQC location id with") == 10 and ": the sync's store keeps" in guess
    assert "…and 2 more: the sync's store keeps" in guess and "…and 2 more apart" in guess
    # The chain's own rows, by id: the first ten of its twelve ids, then how many more.
    named = ", ".join(sorted(f"homes:R{at}" for at in range(12))[:10])
    assert f"no row of the chain {named} …and 2 more (one service: they share keys)" in guess
    assert guess.count("'s CQC location id") == 10 and "…and 1 more: check which service it is" in guess


def test_a_synced_records_own_cqc_location_id_is_shown_whichever_row_comes_first(data_dir, geography, tmp_path):
    """Grovelands Lodge as a sync stores it, and a council's file row (homes:G) at its name and postcode giving
    another CQC location id: one service, whose record shows Grovelands Lodge's own CQC location id in both orders.
    Before, where the council's row came first (never in a rebuild, which reads the synced records first), the record
    showed the row's 1-999999999 in place of the id its synced record is known by."""
    _, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    grovelands = synced(grovelands)
    row = council_file_row(grovelands, "homes:G", 2, cqc_location_id=NOBODYS)
    synced_at = {(grovelands.id, grovelands.provenance[0].file)}
    for order in ([grovelands, row], [row, grovelands]):
        kept = Merging(Precedence(), synced_at).merge_all(order)
        assert [(len(s.provenance), s.cqc_location_id) for s in kept] == [(2, GROVELANDS)], [s.id for s in order]
        imported_both_ways(tmp_path, order, kept, synced=synced_at)


def test_a_chain_giving_a_retired_synced_records_cqc_location_id_does_not_show_it_in_any_order(
        data_dir, geography, tmp_path):
    """As test_a_chain_giving_the_cqc_location_ids_of_two_synced_records_shows_only_the_one_it_joined_in_every_order,
    but Ashton Lodge's synced record retired: its CQC location id is no key of it, so the chain (homes:J giving
    Grovelands Lodge's id, homes:K Ashton Lodge's) joins Grovelands Lodge's record by homes:J's, and that record shows
    Grovelands Lodge's CQC location id in all 24 orders, Ashton Lodge's retired record its own. Before, where homes:K
    came before homes:J and Grovelands Lodge's record (8 of the 24 orders), Grovelands Lodge's active record showed
    Ashton Lodge's retired id."""
    listed, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    ashton, grovelands = synced(listed).model_copy(update={"status": "inactive"}), synced(grovelands)
    rows = [council_file_row(listed, "homes:J", 2, name=COUNCILS, cqc_location_id=GROVELANDS),
            council_file_row(listed, "homes:K", 3, name=COUNCILS)]
    synced_at = {(s.id, s.provenance[0].file) for s in (ashton, grovelands)}
    for at, order in enumerate(itertools.permutations([ashton, grovelands, *rows])):
        kept = Merging(Precedence(), synced_at).merge_all(order)
        assert sorted((len(s.provenance), s.status, s.cqc_location_id) for s in kept) == [
            (1, "inactive", ASHTON), (3, "active", GROVELANDS)], [s.id for s in order]
        if at % 5 == 0:
            imported_both_ways(tmp_path, order, kept, synced=synced_at)
            assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_a_row_giving_a_retired_synced_records_cqc_location_id_leaves_it_out_of_the_record_it_joined_with_a_warning(
        data_dir, geography, tmp_path):
    """Grovelands Lodge as a council's ORUK feed is synced (homes:A, no CQC location id), Ashton Lodge's synced record
    retired, and a council's file row (homes:G, homes.csv:2) at Grovelands Lodge's name and postcode giving Ashton
    Lodge's CQC location id (a fuzzer's seed 163 of 3,000, minimised; there, retired Dovetail House's): the row joins
    homes:A by its name and postcode, and their record shows no CQC location id, in all 6 orders, one process and a
    parallel import alike; Ashton Lodge's retired record shows its own, and a warning names the row and why its id is
    left out. Before, homes:A's active record showed Ashton Lodge's retired id (a registration CQC has ended), with
    no warning."""
    listed, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    ashton = synced(listed).model_copy(update={"status": "inactive"})
    council = synced_council_row(grovelands)
    row = council_file_row(grovelands, "homes:G", 2, cqc_location_id=ASHTON)
    synced_at = {(s.id, s.provenance[0].file) for s in (ashton, council)}
    expected = kinds([ashton, Service.model_validate({**council.model_dump(), "provenance": [
        *council.provenance, *row.provenance]})])
    for order in itertools.permutations([ashton, council, row]):
        merging = Merging(Precedence(), synced_at)
        kept = merging.merge_all(order)
        assert kinds(kept) == expected, [s.id for s in order]
        assert sorted((len(s.provenance), s.status, s.cqc_location_id) for s in kept) == [
            (1, "inactive", ASHTON), (2, "active", None)], [s.id for s in order]
        assert merging.guesses == [
            "the record of homes:A (no synced record of which gives a CQC location id) does not show the CQC location "
            f"id {ASHTON} given by homes.csv:2: it is {ASHTON_ID}'s, which the sync's store holds as retired, and "
            "shown it would claim a registration that has ended: check the row's CQC location id"]
        imported_both_ways(tmp_path, order, kept, synced=synced_at)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_an_id_the_store_holds_twice_counts_the_keys_of_both_its_synced_records_as_the_live_write_does(
        data_dir, geography, tmp_path):
    """Ashton Lodge synced from two pages (the store's service id is not unique), the second spelling its name
    otherwise ("Ashton Lodge Residential Care Home"), and a council's synced record at that name and postcode: the
    live write, which reads every store record (`KeyGroups`), merges the three, and so does a rebuild, in every
    order, one record, in one process and as a parallel import writes it. Before, the synced record read last alone
    said its id's keys, so the 6 orders made 3 different answers."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first, named = synced(listed), "Ashton Lodge Residential Care Home"
    second = first.model_copy(update={"name": named, "provenance": [first.provenance[0].model_copy(
        update={"file": f"{first.provenance[0].file}?page=2"})]})
    council = synced_council_row(listed, name=named)
    three = [first, second, council]
    live = KeyGroups([s.model_dump(mode="json") for s in three])
    assert live.of(merge_keys(first)) == {0, 1, 2}, "the live write merges the three synced records"
    synced_at = {(s.id, s.provenance[0].file) for s in three}
    for order in itertools.permutations(three):
        kept, _ = merge_duplicates(order, Precedence(), synced_at)
        assert kinds(kept) == {frozenset((s.provenance[0].file, 1) for s in three)}, [s.name for s in order]
        imported_both_ways(tmp_path, order, kept, synced=synced_at)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


@pytest.mark.parametrize("status", ["active", "inactive"])
def test_a_cqc_location_id_only_a_files_copy_of_a_synced_record_gives_is_not_shown_by_its_record(
        data_dir, geography, tmp_path, status):
    """Ashton Lodge as a sync stores it without its CQC location id, a file's older copy giving it, and a council's
    file row giving it (homes:C): the synced record alone says its id's keys, so the council's row stays apart, as
    after a live write, which reads the store alone and shows Ashton Lodge without it; and Ashton Lodge's record
    does not show the copy's CQC location id either, in every order, one process and a parallel import: one record
    in search has that id. Before, Ashton Lodge's record took it from the copy, and two records showed it; then, where
    the copy was inactive (a retired record keeps its own), it did again, in every order."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    first = synced(listed).model_copy(update={"cqc_location_id": None})
    copy = listed.model_copy(update={"status": status,
                                     "provenance": [listed.provenance[0].model_copy(update={"line": 104})]})
    council = listed.model_copy(update={"id": "homes:C", "source": "homes", "name": "Ashton Lodge Care Home",
                                        "postcode": None, "provenance": [listed.provenance[0].model_copy(update={
                                            "source": "homes", "file": "homes.csv", "line": 3})]})
    synced_at = {(first.id, first.provenance[0].file)}
    for order in itertools.permutations([first, copy, council]):
        kept, notes = merge_duplicates(order, Precedence(), synced_at)
        assert {s.id: s.cqc_location_id for s in kept} == {ASHTON_ID: None, "homes:C": ASHTON}, [
            s.provenance[0].line for s in order]
        assert f"whose cqc_location_id '{ASHTON}'" in notes[0].key, "the note says the copy's id is not kept"
        imported_both_ways(tmp_path, order, kept, synced=synced_at)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_a_cqc_location_id_a_file_gives_one_id_two_of_is_shown_by_no_record_of_its_rows_in_every_order(
        data_dir, geography, tmp_path):
    """Ashton Lodge's and Grovelands Lodge's real records, and a council's list giving homes:A, and homes:G twice,
    all three rows at the council's name and Ashton Lodge's postcode, homes:G with Ashton Lodge's CQC location id and
    then with Grovelands Lodge's: the two CQC location ids count for neither of homes:G's rows (which of them is its
    own is not known), so the rows join homes:A by their name and postcode alone, and their record shows neither: in
    all 120 orders, one process and a parallel import alike, Ashton Lodge's CQC location id is shown by Ashton Lodge's
    record alone, Grovelands Lodge's by its own, and the report names both homes:G rows and both ids. Before, the
    council's record showed one of them (which, by the order the rows came) beside the location's own record: a
    clinician or commissioner would count one service twice, or follow the wrong registration."""
    listed, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    home_a = council_file_row(listed, "homes:A", 2, name=COUNCILS, cqc_location_id=None)
    with_ashton = council_file_row(listed, "homes:G", 3, name=COUNCILS)
    with_grovelands = council_file_row(listed, "homes:G", 4, name=COUNCILS, cqc_location_id=GROVELANDS)
    five = [listed, grovelands, home_a, with_ashton, with_grovelands]
    expected = kinds([listed, grovelands, Service.model_validate({**home_a.model_dump(), "provenance": [
        *home_a.provenance, *with_ashton.provenance, *with_grovelands.provenance]})])
    for order in itertools.permutations(five):
        kept, notes = merge_duplicates(order, Precedence())
        assert kinds(kept) == expected, [s.provenance[0].line for s in order]
        assert {s.cqc_location_id for s in kept if s.source == "homes"} == {None}, [s.id for s in order]
        assert {s.id: s.cqc_location_id for s in kept if s.source == "cqc"} == {
            ASHTON_ID: ASHTON, GROVELANDS_ID: GROVELANDS}
        [again] = [note for note in notes if note.key.startswith("id homes:G")]
        assert {again.kept, again.merged} == {"homes.csv:3", "homes.csv:4"}
        assert f"cqc_location_id '{ASHTON}'" in again.key and f"cqc_location_id '{GROVELANDS}'" in again.key
        assert "the record does not keep" in again.key
        imported_both_ways(tmp_path, order, kept)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_the_note_of_an_id_a_file_gives_two_cqc_location_ids_names_both_beside_a_record_showing_a_third(
        data_dir, geography):
    """homes:G given twice, with Ashton Lodge's CQC location id and then with Grovelands Lodge's, joining homes:A at
    their name and postcode, which gives a CQC location id of its own (nobody's): the record shows homes:A's, and the
    note of homes:G's two rows names both ids as not kept, in every order. Before, it named the later row's alone (the
    first's was said only where the record showed none)."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    rows = [council_file_row(listed, "homes:A", 2, name=COUNCILS, cqc_location_id=NOBODYS),
            council_file_row(listed, "homes:G", 3, name=COUNCILS),
            council_file_row(listed, "homes:G", 4, name=COUNCILS, cqc_location_id=GROVELANDS)]
    for order in itertools.permutations(rows):
        kept, notes = merge_duplicates(order, Precedence())
        assert [s.cqc_location_id for s in kept] == [NOBODYS], [s.provenance[0].line for s in order]
        [again] = [note for note in notes if note.key.startswith("id homes:G")]
        assert f"'{ASHTON}'" in again.key and f"'{GROVELANDS}'" in again.key, again.key


@pytest.mark.parametrize("second, later, lost", [
    ({"cqc_location_id": GROVELANDS}, {"cqc_location_id": None}, ("cqc_location_id", ASHTON)),
    ({"postcode": None}, {"town": None, "address": "1 Another Street"}, ("town", "Leicester")),
    ({"phone": "0116 000 0000"}, {"cqc_location_id": GROVELANDS}, ("cqc_location_id", ASHTON))],
    ids=["a CQC location id", "a town", "a CQC location id given again"])
def test_the_note_of_a_row_given_again_says_a_value_of_the_first_it_loses_once(data_dir, geography, second, later,
                                                                                  lost):
    """homes:G given three times, a later row leaving a value of the first empty: its CQC location id, where the second
    gives Grovelands Lodge's (neither shown: one file gives homes:G two), or its town, where the third's postcode
    gives the record's place (the others give none), or the second gives Ashton Lodge's again (with another phone) and
    the third Grovelands Lodge's: each note names the first's value once at most, and one names it. Before, the third's
    said it twice, the second time as the empty value the record shows in its place ("…nor the first's
    cqc_location_id '1-112816741', and whose cqc_location_id none the record shows in place of the first's
    '1-112816741'"); then the second's, given again, said it as the row's and as the first's ("whose phone
    '0116 000 0000', cqc_location_id '1-112816741' the record does not keep, nor the first's cqc_location_id
    '1-112816741'")."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    assert listed.town == "Leicester" and listed.postcode
    rows = [council_file_row(listed, "homes:G", line, **given)
            for line, given in ((2, {"postcode": None} if "town" in lost else {}), (3, second), (4, later))]
    kept, notes = merge_duplicates(rows, Precedence())
    assert getattr(kept[0], lost[0]) is None
    said = {note.merged: note.key.count(f"'{lost[1]}'") for note in notes}
    assert max(said.values()) == 1, [note.key for note in notes]


def test_a_cqc_location_id_one_file_gives_an_id_alone_is_shown_where_another_file_gives_it_beside_a_second(
        data_dir, geography, tmp_path):
    """homes:X at the council's name and Ashton Lodge's postcode, in one file with Ashton Lodge's CQC location id and
    in another twice, with it and with Grovelands Lodge's: the id counts Ashton Lodge's (the first file gives it
    alone; the second's two count for none), so its record is merged by it and shows it, in every order, one process
    and a parallel import alike. Before, it was left out as the second file gave it beside another: a record merged
    by a CQC location id that did not show it."""
    listed = ashton_lodge_three_ways(data_dir, geography)[1]
    alone = council_file_row(listed, "homes:X", 2, name=COUNCILS)
    alone = alone.model_copy(update={"provenance": [alone.provenance[0].model_copy(update={"file": "older.csv"})]})
    three = [alone, council_file_row(listed, "homes:X", 2, name=COUNCILS),
             council_file_row(listed, "homes:X", 3, name=COUNCILS, cqc_location_id=GROVELANDS)]
    for order in itertools.permutations(three):
        kept, _ = merge_duplicates(order, Precedence())
        assert [(s.id, s.cqc_location_id) for s in kept] == [("homes:X", ASHTON)], [
            (s.provenance[0].file, s.provenance[0].line) for s in order]
        imported_both_ways(tmp_path, order, kept)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_a_retired_ids_active_copy_does_not_show_another_locations_cqc_location_id(data_dir, geography, tmp_path):
    """Grovelands Lodge's real record, and a council's file giving homes:X as inactive (retired, no CQC location id)
    and again, active, with Grovelands Lodge's: the retirement counts homes:X's id alone, so the active row does not
    join Grovelands Lodge, and the retired record does not show that CQC location id either, in every order, one
    process and a parallel import alike; the report's note of the two rows says it is not kept. Before, the retired
    homes:X showed Grovelands Lodge's CQC location id beside Grovelands Lodge's own record."""
    _, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    retired = council_file_row(grovelands, "homes:X", 2, name=COUNCILS, cqc_location_id=None, status="inactive")
    active = council_file_row(grovelands, "homes:X", 3, name=COUNCILS)
    for order in itertools.permutations([retired, active, grovelands]):
        kept, notes = merge_duplicates(order, Precedence())
        assert sorted((s.id, s.status, s.cqc_location_id) for s in kept) == [
            (GROVELANDS_ID, "active", GROVELANDS), ("homes:X", "inactive", None)], [s.status for s in order]
        [again] = notes
        assert f"cqc_location_id '{GROVELANDS}'" in again.key and "the record does not keep" in again.key, again
        imported_both_ways(tmp_path, order, kept)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")


def test_a_key_a_row_brings_while_its_id_withdraws_another_joins_the_kinds_of_both_as_a_parallel_import_writes_them(
        data_dir, geography, tmp_path):
    """Grovelands Lodge's and Ashton Lodge's real records, and a council's list giving homes:X twice: at Grovelands
    Lodge's name and postcode without a CQC location id, then at Ashton Lodge's with its CQC location id. The two
    rows give two names and postcodes, which count for neither; the CQC location id one gives and the other leaves
    empty counts for both: in every order, Grovelands Lodge alone, and Ashton Lodge with the council's two rows, in one
    process and as a parallel import writes them. Before, with the rows in the order given, the first row's kind
    (Grovelands Lodge's) was taken apart, its homes:X given a new place, and that place folded into Ashton Lodge's
    before the import had written it: the import stopped ("a place is folded into another only once given")."""
    listed, _, grovelands, _, _ = ashton_lodge_given_twice(data_dir, geography, tmp_path)
    council = grovelands.provenance[0].model_copy(update={"source": "homes", "file": "homes.csv", "line": 2})
    at_grovelands = grovelands.model_copy(update={"id": "homes:X", "source": "homes", "cqc_location_id": None,
                                                  "provenance": [council]})
    at_ashton = listed.model_copy(update={"id": "homes:X", "source": "homes",
                                          "provenance": [council.model_copy(update={"line": 3})]})
    four = [grovelands, listed, at_grovelands, at_ashton]
    expected = kinds([grovelands, Service.model_validate({**listed.model_dump(), "provenance": [
        *listed.provenance, *at_grovelands.provenance, *at_ashton.provenance]})])
    for order in itertools.permutations(four):
        kept, _ = merge_duplicates(order, Precedence())
        assert kinds(kept) == expected, [s.provenance[0].line for s in order]
        imported_both_ways(tmp_path, order, kept)
        assert records_of(tmp_path / "two.sqlite") == records_of(tmp_path / "one.sqlite")
