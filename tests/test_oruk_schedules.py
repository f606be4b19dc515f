"""Opening times and self-referral read from Open Referral feeds: HSDS 3's `schedules` (the specification's own
example service), ORUK v1's `regular_schedules`, and what cannot be read is refused with where it is."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest

from rehabmap.oruk import oruk_to_fields
from rehabmap.record import Schedule, Service

ROOT = Path(__file__).resolve().parents[1]
HSDS_EXAMPLE = ROOT.parent / "shared" / "data" / "feeds" / "oruk" / "v3_service_full.json"
SPEC_EXAMPLES = ROOT.parent / "shared" / "oruk" / "examples"


def test_hsds3_example_service_schedule_is_read_as_days_hours_and_words():
    example = json.loads(HSDS_EXAMPLE.read_text())
    example["service_areas"] = []  # the example's extent is the word 'extent', not GeoJSON
    fields, _ = oruk_to_fields(example)
    schedules = [Schedule.model_validate(s) for s in fields["schedules"]]
    assert schedules == [Schedule(byday=["TH", "FR"], opens_at=time(10), closes_at=time(18), description=(
        "The service is available from 10 am to 6pm weekdays. The service is not available on public holidays."))]


def test_a_schedule_the_specification_repeats_on_the_location_is_read_once():
    """HSDS 3's own full example gives one schedule on the service, on its service at location and on the
    location (the same id at all three); it was read twice (the service's and the location's)."""
    example = json.loads((SPEC_EXAMPLES / "service_full.json").read_text())
    example["service_areas"] = []
    fields, _ = oruk_to_fields(example)
    assert [Schedule.model_validate(s) for s in fields["schedules"]] == [Schedule(
        byday=["TH", "FR"], opens_at=time(10), closes_at=time(18), description=(
            "The service is available from 10 am to 6pm weekdays. The service is not available on public holidays."))]


def test_the_hours_and_phone_are_those_of_the_location_that_places_the_service():
    """The recorded HSDS 3 example with a helpline listed first (no point, no postcode, weekend hours, its own
    number), then its venue with weekday hours: the service is placed at the venue, and its hours were the
    helpline's. Its number was the service's own, or the helpline's, before the venue's: HSDS tells a service at
    a location's phone (this service there), the location's and the service's (all its places) apart."""
    example = json.loads(HSDS_EXAMPLE.read_text())
    venue = example["service_at_locations"][0]
    venue["location"]["schedules"] = [{"id": "v", "freq": "WEEKLY", "byday": "MO,TU", "opens_at": "09:00",
                                       "closes_at": "17:00"}]
    venue["location"]["phones"] = [{"id": "vp", "number": "0117 496 0001"}]
    helpline = {"id": "h", "location": {"id": "hl", "location_type": "virtual", "name": "Helpline", "schedules": [
        {"id": "w", "freq": "WEEKLY", "byday": "SA,SU", "opens_at": "08:00", "closes_at": "20:00"}]},
        "phones": [{"id": "hp", "number": "0800 496 0002"}]}
    example |= {"service_areas": [], "schedules": [], "service_at_locations": [helpline, venue],
                "phones": [{"id": "sp", "number": "0117 496 0003"}]}
    fields, _ = oruk_to_fields(example)
    assert (fields["lat"], fields["postcode"]) == (venue["location"]["latitude"],
                                                   venue["location"]["addresses"][0]["postal_code"])
    assert [Schedule.model_validate(s) for s in fields["schedules"]] == [
        Schedule(byday=["MO", "TU"], opens_at=time(9), closes_at=time(17))]
    assert fields["phone"] == "0117 496 0001"
    venue["phones"] = [{"id": "sal", "number": "0117 496 0004"}]  # the service at the venue: its own line first
    assert oruk_to_fields(example)[0]["phone"] == "0117 496 0004"
    del venue["location"]["phones"], venue["phones"]  # the venue gives none: the service's, never the helpline's
    assert oruk_to_fields(example)[0]["phone"] == "0117 496 0003"


def test_orukv1_regular_schedules_group_days_with_the_same_hours():
    item = {"name": "Drop-in", "regular_schedules": [
        {"weekday": "Monday", "opens_at": "09:00", "closes_at": "17:00"},
        {"weekday": "wednesday", "opens_at": "09:00", "closes_at": "17:00"},
        {"weekday": "Saturday", "opens_at": "10:00", "closes_at": "12:00"}]}
    fields, _ = oruk_to_fields(item)
    assert [Schedule.model_validate(s) for s in fields["schedules"]] == [
        Schedule(byday=["MO", "WE"], opens_at=time(9), closes_at=time(17)),
        Schedule(byday=["SA"], opens_at=time(10), closes_at=time(12))]


def test_a_schedule_that_is_not_weekly_keeps_only_its_words_and_an_empty_one_is_left_out():
    item = {"name": "Clinic", "schedules": [
        {"freq": "MONTHLY", "bymonthday": "1", "opens_at": "09:00", "closes_at": "12:00",
         "description": "First day of the month, mornings"},
        {"freq": "WEEKLY"}]}
    fields, _ = oruk_to_fields(item)
    assert fields["schedules"] == [{"description": "First day of the month, mornings"}]
    assert "schedules" not in oruk_to_fields({"name": "Nothing said", "schedules": []})[0]


@pytest.mark.parametrize("item, message", [
    ({"schedules": [{"byday": "MO,XX", "opens_at": "09:00", "closes_at": "17:00"}]},
     "schedules[0]: byday 'MO,XX' holds XX, not MO-SU"),
    ({"regular_schedules": [{"weekday": "Funday", "opens_at": "09:00", "closes_at": "17:00"}]},
     "regular_schedules[0]: weekday 'Funday' is not a day name"),
    ({"schedules": ["9 to 5"]}, "schedules[0]: a schedule must be an object"),
])
def test_an_unreadable_schedule_is_refused_saying_where(item, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        oruk_to_fields({"name": "X", **item})


def test_a_record_refuses_a_schedule_that_says_nothing_or_half_a_time():
    base = {"id": "t:x", "name": "Test", "service_type": "vcfse", "lat": 53.8, "lon": -1.5,
            "provenance": [{"source": "t", "source_id": "x", "fetched_at": "2026-11-01T00:00:00Z"}]}
    for schedule, reason in (({"byday": ["MO"]}, "needs days with opening and closing times"),
                             ({"description": "Mornings", "opens_at": "09:00"}, "needs a closing time too")):
        with pytest.raises(ValueError, match=reason):
            Service.model_validate({**base, "schedules": [schedule]})


def test_self_referral_is_yes_no_or_not_known():
    term = {"taxonomy": "rehabmap", "code": "self_referral"}
    for value, expected in (("yes", True), ("no", False), ("unknown", None)):
        fields, _ = oruk_to_fields({"name": "X", "attributes": [{"taxonomy_term": term, "value": value}]})
        assert fields.get("self_referral") is expected


def test_a_mapped_csv_column_can_say_self_referral_but_not_opening_times():
    from indexer.sources.common import parse_field
    from indexer.sources.csv_mapping import MAPPABLE_FIELDS

    assert (parse_field("self_referral", "Yes", "col"), parse_field("self_referral", "no", "col")) == (True, False)
    with pytest.raises(ValueError):
        parse_field("self_referral", "sometimes", "col")
    assert "self_referral" in MAPPABLE_FIELDS and "schedules" not in MAPPABLE_FIELDS
