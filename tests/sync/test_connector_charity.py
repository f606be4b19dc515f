"""The Charity Commission register extract against the replay's file server. No real extract is in ../shared,
so a small one is BUILT here in the published shape (three zipped JSON files with a BOM, the register's field
names); the charities in it are INVENTED and say so in their names ("(fixture)"), at real postcodes."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

import pytest

from indexer.sync.connectors import connectors_for
from indexer.sync.items import Gone, Refused, SourceItem
from rehabmap.config import Settings
from rehabmap.taxonomy import ServiceType
from tests.sync.replay import MemoryState


def charity(number: int, name: str, activities: str, postcode: str | None = "BS1 5TR", *, linked: int = 0,
            status: str = "Registered", removed: str | None = None) -> dict:
    return {"date_of_extract": "2026-11-29T00:00:00", "organisation_number": number * 10,
            "registered_charity_number": number, "linked_charity_number": linked, "charity_name": name,
            "charity_type": "Trust", "charity_registration_status": status,
            "date_of_registration": "2001-05-01T00:00:00",
            "date_of_removal": removed, "charity_activities": activities,
            "charity_contact_address1": "1 Fixture Street", "charity_contact_address2": None,
            "charity_contact_address3": "Bristol", "charity_contact_address4": None, "charity_contact_address5": None,
            "charity_contact_postcode": postcode, "charity_contact_phone": "0117 000 0000",
            "charity_contact_email": None, "charity_contact_web": "www.example.org"}


REGISTER = [
    charity(1900001, "Northvale Mind (fixture)", "Local mental health support, peer groups and a drop-in."),
    charity(1900002, "Fixture Voices Advocacy (fixture)", "Independent mental health advocacy (IMHA) for people "
                                                          "detained in hospital."),
    charity(1900003, "Harbour Clubhouse (fixture)", "A clubhouse for people recovering from serious mental illness."),
    charity(1900004, "Fixture Bowls Club (fixture)", "Lawn bowls for the village."),
    charity(1900005, "Old Town Mind (fixture)", "Mental health support.", status="Removed",
            removed="2024-03-31T00:00:00"),
    charity(1900001, "Northvale Mind Trading (fixture)", "Mental health shop.", linked=1),
    charity(1900006, "Moorland Mental Health Trust (fixture)", "Mental health day services.", postcode=None),
]
CLASSES = [{"registered_charity_number": 1900002, "linked_charity_number": 0, "classification_code": 301,
            "classification_type": "How", "classification_description": "Provides Advocacy/advice/information"},
           {"registered_charity_number": 1900001, "linked_charity_number": 0, "classification_code": 104,
            "classification_type": "What",
            "classification_description": "The Advancement Of Health Or Saving Of Lives"}]
AREAS = [{"registered_charity_number": 1900001, "linked_charity_number": 0, "geographic_area_type": "Local Authority",
          "geographic_area_description": "Bristol City"}]


def zipped(name: str, rows: list) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{name}.json", "\ufeff" + json.dumps(rows))
    return out.getvalue()


@pytest.fixture
def register(replay):
    replay.serve_file("charity/publicextract.charity.zip", zipped("publicextract.charity", REGISTER))
    replay.serve_file("charity/publicextract.charity_classification.zip",
                      zipped("publicextract.charity_classification", CLASSES))
    replay.serve_file("charity/publicextract.charity_area_of_operation.zip",
                      zipped("publicextract.charity_area_of_operation", AREAS))


def test_mental_health_charities_are_candidates_held_for_review(replay, register):
    [connector] = connectors_for("charity", Settings(charity_url=replay.file_url("charity"), charity_rate=1000))
    state = MemoryState()
    outcomes = list(connector.fetch(state))
    assert connector.complete and connector.skipped == 1          # the bowls club; the linked charity is not counted
    items = {o.key[1]: o for o in outcomes if isinstance(o, SourceItem)}
    assert all(i.type_status == "inferred" for i in items.values())
    kinds = {n: (i.candidate.fields["service_type"], i.candidate.fields.get("subtype")) for n, i in items.items()}
    assert kinds == {"1900001": (ServiceType.vcfse, None), "1900002": (ServiceType.advocacy, "imha"),
                     "1900003": (ServiceType.vcfse, None)}
    mind = items["1900001"]
    assert [(e.field, e.value) for e in mind.evidence] == [("charity_name/charity_activities", "Mind"),
                                                          ("area_of_operation", "Bristol City")]
    assert mind.candidate.fields["service_area"] == {"description": "Area of operation: Bristol City"}
    assert mind.candidate.fields["postcode"] == "BS1 5TR" and mind.candidate.fields["provider_type"] == "vcfse"
    assert items["1900002"].evidence[1].means == "the charity says it provides advocacy"
    [gone] = [o for o in outcomes if isinstance(o, Gone)]
    assert gone == Gone("charity", "1900005", "removed from the register on 2024-03-31", date(2024, 3, 31))
    [refused] = [o for o in outcomes if isinstance(o, Refused)]
    assert refused.reason == ("'Moorland Mental Health Trust (fixture)' is a candidate (Mental Health) but the "
                              "register gives no postcode to place it")
    # The next day's extract unchanged: one conditional request, a 304, nothing read.
    again = connectors_for("charity", Settings(charity_url=replay.file_url("charity"), charity_rate=1000))[0]
    assert list(again.fetch(state)) == [] and not again.complete
    assert replay.seen("/files/charity/")[-1].status == 304 and len(replay.seen("/files/charity/")) == 4
