"""The bulk files the replay's file server serves for the connector tests and `rehabmap sync` of every source
(test_connector_charity.py, test_connector_ods.py, test_every_source.py), as the fixtures `register` and `reports`.

The Charity Commission register extract: no real extract is in ../shared, so a small one is BUILT here in the
published shape (three zipped JSON files with a BOM, the register's field names); the charities in it are INVENTED
and say so in their names ("(fixture)"), at real postcodes. The NHS ODS reports: the real `etr` report zipped as ODS
publishes it, and an `ets` (trust sites) report BUILT from the real 2018 ODS sites of Sussex Partnership (RX2).

Not a test module: a module imports the fixture it asks for, and nothing else of another module comes with it."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest


def zipped(name: str, text: str) -> bytes:
    """`text` as the one file, `name`, of a zip archive."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, text)
    return out.getvalue()


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


def extract(name: str, rows: list) -> bytes:
    """One file of the register extract as the Commission publishes it: zipped JSON with a BOM."""
    return zipped(f"{name}.json", "\ufeff" + json.dumps(rows))


@pytest.fixture
def register(replay):
    replay.serve_file("charity/publicextract.charity.zip", extract("publicextract.charity", REGISTER))
    replay.serve_file("charity/publicextract.charity_classification.zip",
                      extract("publicextract.charity_classification", CLASSES))
    replay.serve_file("charity/publicextract.charity_area_of_operation.zip",
                      extract("publicextract.charity_area_of_operation", AREAS))


@pytest.fixture
def reports(replay, data_dir):
    """Both ODS reports served; the number of sites the `ets` report holds."""
    replay.serve_file("ods/etr.zip", zipped("etr.csv", (data_dir / "services" / "ods_trusts_2021_etr.csv").read_text()))
    with (data_dir / "services" / "ods_trusts_and_sites_2018_geocoded.csv").open(newline="") as f:
        sites = [r for r in csv.DictReader(f) if r["trust_code"] == "RX2" and r["org_code"] != "RX2"]
    out = io.StringIO()
    writer = csv.writer(out)
    for r in sites:
        writer.writerow([r["org_code"], r["name"], r["national_grouping"], r["hlhg"], r["addr1"], r["addr2"],
                         r["addr3"], r["addr4"], r["addr5"], r["postcode"], r["open_date"], r["close_date"], "", "",
                         r["trust_code"], "", "", "", "", "", "", "0", "", ""])
    replay.serve_file("ods/ets.zip", zipped("ets.csv", out.getvalue()))
    return len(sites)
