"""Needs read from a row's words are kept apart from the needs it states, through the import, a merge, a
maintainer's edit and the ORUK feed: a guess is never turned into a statement on the way."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from indexer.merge import Precedence, merge_duplicates
from indexer.pipeline import GeographyPlacer, prepare_all
from indexer.rows import Candidate, Origin
from rehabmap.index.base import overlay_record
from rehabmap.oruk import oruk_to_fields, service_to_oruk
from rehabmap.record import Service

FETCHED = datetime(2026, 11, 20, tzinfo=timezone.utc)
WORDS = "Recovery house for autistic adults and people with a dual diagnosis. Does not accept restricted patients."


def prepared(geography, **fields) -> Service:
    row = Candidate({"name": "Birch House", "service_type": "supported_accommodation", "postcode": "LS9 7TF",
                     **fields}, Origin("test", "rows.csv", 2, source_id="2", fetched_at=FETCHED))
    [service] = prepare_all([row], GeographyPlacer(geography))
    assert isinstance(service, Service), service
    return service


def test_read_needs_stay_apart_from_stated_ones_with_their_words(geography):
    """Before, the words became needs_met/needs_not_met: 'meets autism' as if the service had said so, and a
    person needing a restricted placement never saw it."""
    service = prepared(geography, description=WORDS, needs_met=["substance_misuse"])
    assert (service.needs_met, service.needs_not_met) == (["substance_misuse"], [])
    # What the row states wins: its substance misuse is not also "read".
    assert service.needs_read_from_text == {"autism": "autistic"}
    assert service.needs_read_not_met == {"restricted_s37_41": "does not accept restricted patients"}


def test_a_statement_either_way_takes_a_need_out_of_the_read_ones(geography):
    service = prepared(geography, description=WORDS, needs_not_met=["autism"])
    assert service.needs_not_met == ["autism"] and "autism" not in service.needs_read_from_text
    # A maintainer confirms a read need by stating it: the edit moves it, and nothing else changes.
    edited = overlay_record(service, {"needs_met": ["restricted_s37_41"]})
    assert (edited.needs_met, edited.needs_read_not_met) == (["restricted_s37_41"], {})
    assert edited.needs_read_from_text == {"substance_misuse": "dual diagnosis"}


def test_a_merge_keeps_both_records_reads_and_drops_a_need_read_both_ways(geography):
    one = prepared(geography, description="For autistic adults. Wheelchair accessible.")
    other = prepared(geography, description="No wheelchair access.", needs_met=["older_adult"])
    [merged], _ = merge_duplicates([one, other], Precedence())
    assert merged.needs_met == ["older_adult"]
    assert (merged.needs_read_from_text, merged.needs_read_not_met) == ({"autism": "autistic"}, {})


def test_the_oruk_feed_publishes_read_needs_as_a_note_never_as_needs(geography):
    service = prepared(geography, description=WORDS, needs_met=["substance_misuse"])
    exported = service_to_oruk(service)
    terms = {(a["taxonomy_term"]["taxonomy"], a["taxonomy_term"]["code"]): a.get("value")
             for a in exported["attributes"]}
    assert [code for taxonomy, code in terms if taxonomy == "rehabmap-needs"] == ["substance_misuse"]
    assert terms[("rehabmap", "needs_read_from_text")] == (
        "Its listing mentions: Autism ('autistic'); not confirmed: ask the service. Its listing suggests it may not "
        "take: Restricted patient (s37/41) ('does not accept restricted patients'); not confirmed: ask the "
        "service.")
    # An import takes no need from the note: the pipeline reads the published description again.
    fields, _ = oruk_to_fields(json.loads(json.dumps(exported)))
    assert (fields["needs_met"], "needs_read_from_text" in fields) == (["substance_misuse"], False)
