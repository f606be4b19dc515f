"""Curated tables for the upload tests, built from real public data: NHS trusts (their ODS codes, names and
headquarters' postcodes from the ODS `etr` report in ../shared/data) and the ONS codes of the areas they serve.
No open list of community rehabilitation teams exists (that is why the table is curated), so each team is
named after its trust and marked invented; every code and postcode in it is real."""

from __future__ import annotations

import csv
from pathlib import Path

HEADER = ("trust_ods_code,serves,team_name,organisation,address,postcode,phone,email,website,referral_route,"
          "description,verified_by,verified_on,notes")
# trust ODS code -> the local authority it serves (Leeds, Birmingham)
SERVES = {"RGD": "E08000035", "RXT": "E08000025"}


def trusts(data_dir: Path) -> dict[str, tuple[str, str]]:
    """The trusts of `SERVES`: (name, postcode) from the ODS report."""
    found = {}
    with open(data_dir / "services" / "ods_trusts_2021_etr.csv", newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if row and row[0] in SERVES:
                found[row[0]] = (row[1].title().replace("Nhs", "NHS"), row[9])
    assert set(found) == set(SERVES)
    return found


def team_name(trust: str) -> str:
    return f"{trust} community rehabilitation team (invented)"


def teams_table(data_dir: Path) -> str:
    """Two good rows (lines 2 and 3) and one bad (line 4: an area code that does not exist)."""
    lines = [HEADER]
    for code, (name, postcode) in trusts(data_dir).items():
        lines.append(f"{code},{SERVES[code]},{team_name(name)},{name},,{postcode},,,,through the community mental "
                     f"health team,,Ann Curator,2026-11-02,")
    lines.append("RGD,E99999999,A team for nowhere (invented),,,LS15 8ZB,,,,,,Ann Curator,2026-11-02,")
    return "\n".join(lines) + "\n"


def bad_table() -> str:
    """Only bad rows: an area code that does not exist (line 2), no postcode (line 3)."""
    return "\n".join([HEADER, "RGD,E99999999,A team for nowhere (invented),,,LS15 8ZB,,,,,,,,",
                      "RGD,E08000035,A team with no base (invented),,,,,,,,,,,"]) + "\n"


IPS_HEADER = ("icb_code,serves,service_name,organisation,address,postcode,phone,email,website,referral_route,"
              "description,verified_by,verified_on,notes")
# An IPS service in West Yorkshire ICB (its base's postcode real, the service invented), verified
LEEDS_IPS = "E54000054,,Leeds IPS Employment Service (invented),,,LS9 7TF,,,,,,Ann Lead,2026-11-30,"
# Lancashire and South Cumbria ICB recorded, and verified, as having no IPS service
LANCASHIRE_NONE = "E54000048,,none,,,,,,,,,Ann Lead,2026-05-01,"
MANCHESTER_IPS = "E54000057,,Manchester IPS Service (invented),,,M13 9WL,,,,,,Ann Lead,2026-11-30,"


def ips_table(*rows: str) -> str:
    return "\n".join([IPS_HEADER, *rows]) + "\n"
