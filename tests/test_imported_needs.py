"""Needs and languages as a source states them, one truth from the import to the filter: the real sample directory,
as a council's feed might publish some of its services, through the real import pipeline into a real embedded index,
and matched as a clinician asks.

Before: a service stating needs_met ["female_only"] without `gender` (as a feed that publishes only needs does) was
shown to a man, because a person's gender is filtered on `gender` alone; a row whose gender and gender needs disagree
was indexed with the needs silently overwritten; a record's `language:ben` or `language:pan` was never found by a
search for Bengali or Punjabi (asked as `language:bn`, `language:pa`), and a Cantonese-speaking service not by a
search for Chinese.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from geodata.geography import Geography
from indexer.pipeline import GeographyPlacer, IndexReport, build_index
from indexer.sources import load_source
from rehabmap.match import MatchRequest, match
from rehabmap.record import Service
from search.embedded import EmbeddedIndex, EmbeddedWriter

SAMPLE = Path(__file__).resolve().parents[1] / "sample" / "rehabmap-sample.oruk.json"
TODAY = date(2026, 12, 2)
HALIFAX = "sample:halifax-women-s-rehabilitation-unit"
DAGENHAM = "sample:dagenham-women-s-wellbeing-centre"
BOW, HANDSWORTH, NEWHAM = ("sample:bow-rehabilitation-unit", "sample:handsworth-supported-housing",
                           "sample:newham-ips-employment-team")


def _as_a_feed_states_them(services: list[dict]) -> None:
    """Halifax's women-only unit with only its needs_met female_only (no gender, no other gender need); Dagenham's
    women's centre with gender male_only beside its need female_only; Bow's Bengali, Handsworth's Punjabi by ISO
    639-3's codes (ben, pan), and Newham's language as Cantonese (yue)."""
    codes = {"Bow Rehabilitation Unit (sample)": "language:ben", "Handsworth Supported Housing (sample)":
             "language:pan", "Newham IPS Employment Team (sample)": "language:yue"}
    for service in services:
        attributes = service["attributes"]
        if service["name"] == "Halifax Women's Rehabilitation Unit (sample)":
            service["attributes"] = [a for a in attributes if a["taxonomy_term"]["code"] not in (
                "gender", "male_only", "mixed_gender")]
        for attribute in attributes:
            term = attribute["taxonomy_term"]
            if service["name"] == "Dagenham Women's Wellbeing Centre (sample)" and term["code"] == "gender":
                attribute["value"] = "male_only"
            if term["code"].startswith("language:") and service["name"] in codes:
                term.update(code=codes[service["name"]], id=f"feed-term-{codes[service['name']]}", name="")
                attribute["taxonomy_term_id"] = term["id"]


@pytest.fixture(scope="module")
def imported(geography: Geography, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IndexReport,
                                                                                                 EmbeddedIndex]]:
    folder = tmp_path_factory.mktemp("feed-needs")
    page = json.loads(SAMPLE.read_text(encoding="utf-8"))
    _as_a_feed_states_them(page["contents"])
    feed = folder / "feed.oruk.json"
    feed.write_text(json.dumps(page), encoding="utf-8")
    report = build_index(load_source(feed), GeographyPlacer(geography), EmbeddedWriter(folder / "index.sqlite"),
                         progress=False)
    yield report, EmbeddedIndex(folder / "index.sqlite")


def _near(index: EmbeddedIndex, geography: Geography, service_id: str, **asked) -> dict[str, list[str]]:
    """The services a match near `service_id` lists (each with its matched needs), for a person asking `asked`."""
    service = index.get(service_id)
    assert service is not None
    home = geography.resolve(lat=service.lat, lon=service.lon)
    request = MatchRequest.from_input(types=[service.service_type.value], max_distance_km=5, **asked)
    return {r.service.id: r.matched_needs for r in match(index, home, request, TODAY).results}


def test_a_gender_stated_only_by_a_need_leaves_out_the_other_gender(imported, geography):
    report, index = imported
    halifax = index.get(HALIFAX)
    assert isinstance(halifax, Service)
    assert (halifax.gender, halifax.needs_not_met) == ("female_only", ["male_only", "mixed_gender"])
    assert HALIFAX not in _near(index, geography, HALIFAX, gender="male")
    assert _near(index, geography, HALIFAX, gender="female", needs=["female_only"])[HALIFAX] == ["female_only"]


def test_a_row_whose_gender_and_gender_needs_disagree_is_refused_naming_it(imported):
    report, index = imported
    [refused] = report.rejected  # the 38th service of the file
    assert str(refused) == ("feed.oruk.json record 38: record: Value error, gender male_only but needs_met states "
                            "female_only: two different answers to who the service takes: give one")
    assert report.indexed == 59 and index.get(DAGENHAM) is None


def test_a_language_is_kept_as_records_carry_it_and_found_by_its_name(imported, geography):
    _, index = imported
    assert "language:bn" in index.get(BOW).needs_met and "language:pa" in index.get(HANDSWORTH).needs_met
    assert _near(index, geography, BOW, needs=["language:Bengali"])[BOW] == ["language:bn"]
    assert _near(index, geography, HANDSWORTH, needs=["language:Punjabi"])[HANDSWORTH] == ["language:pa"]
    # Cantonese is a Chinese language: a search for Chinese finds it. A service stating Cantonese says nothing
    # of Mandarin: listed for it, the language not known.
    newham = index.get(NEWHAM)
    assert {"language:yue", "language:zh"} <= set(newham.needs_met)
    assert _near(index, geography, NEWHAM, needs=["language:Chinese"])[NEWHAM] == ["language:zh"]
    assert _near(index, geography, NEWHAM, needs=["language:Cantonese"])[NEWHAM] == ["language:yue"]
    assert _near(index, geography, NEWHAM, needs=["language:Mandarin"])[NEWHAM] == []
