"""CQC's monthly files as the connector and review tests serve them (tests/sync/test_connector_cqc_files.py,
test_review.py, test_runner.py): the connector for a file the replay serves, the 103 recorded CQC API locations, and
files BUILT from those real records in the published layouts: spreadsheets with odfpy, and the care directory's CSV
(no real "Latest ratings" location sheet, nor a care directory of locations, is in ../shared: its care directory file
counts locations by region, specialisms and service types). Not a test module: importing it brings no tests along."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from functools import cache
from pathlib import Path

from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P

from indexer.sync.http import HttpPolicy, SourceClient
from tests.cqc_records import FIELD_HOUSE
from tests.sync.replay import Replay

REHAB_WARD = "Long stay or rehabilitation mental health wards for working age adults"


def ods(sheets: dict[str, list[list[object]]]) -> bytes:
    doc = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            tr = TableRow()
            for value in row:
                cell = TableCell(valuetype="string")
                cell.addElement(P(text="" if value is None else str(value)))
                tr.addElement(cell)
            table.addElement(tr)
        doc.spreadsheet.addElement(table)
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def file_connector(kind, replay: Replay, name: str):
    url = replay.file_url(name)
    return kind(SourceClient(kind.label, url, policy=HttpPolicy(rate=1000)), url)


def api_records(feeds_dir: Path) -> list[dict]:
    return json.loads((feeds_dir / "cqc_api" / "locations_detail_2021.json").read_text())



def care_directory(records: list[dict], title: str = "Care directory with filters") -> bytes:
    """A "Care directory with filters" CSV BUILT from CQC API records in the published layout: a title block, then one
    row a location, its service types and specialisms in CQC's words, each list split by `|`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([[title], [], ["This data was produced on 2 October 2024"], []])
    writer.writerow(["Name", "Also known as", "Address", "Postcode", "Phone number", "Service's website (if available)",
                     "Service types", "Date of latest check", "Specialisms/services", "Provider name",
                     "Local authority", "Region", "Location URL", "CQC Location ID (for office use only)",
                     "CQC Provider ID (for office use only)"])
    for r in records:
        address = ", ".join(r[k] for k in ("postalAddressLine1", "postalAddressLine2", "postalAddressTownCity")
                            if r.get(k))
        writer.writerow([r["name"], "", address, r.get("postalCode", ""), r.get("mainPhoneNumber", ""),
                         r.get("website", ""), "|".join(t["name"] for t in r.get("gacServiceTypes") or []),
                         _checked((r.get("lastInspection") or {}).get("date")),
                         "|".join(s["name"] for s in r.get("specialisms") or []), "", r.get("localAuthority", ""),
                         r.get("region", ""), f"https://www.cqc.org.uk/location/{r['locationId']}", r["locationId"],
                         r.get("providerId", "")])
    return out.getvalue().encode("utf-8")


def _checked(day: str | None) -> str:
    """A date as the care directory's "Date of latest check" column gives it ("10/Nov/2017 - 00:00")."""
    return date.fromisoformat(day).strftime("%d/%b/%Y - 00:00") if day else ""

@cache
def field_house_rated(data_dir: Path, feeds_dir: Path, providers_rows: int | None = None) -> bytes:
    """A "Latest ratings" spreadsheet: a Locations sheet BUILT from Field House's own recorded service ratings (its
    rehab ward among them), and the real provider file's rows as the Providers sheet (its first `providers_rows`,
    header included; all of them if None). Made once a process for its arguments (the same bytes from the same
    read-only files): with every provider row, odfpy takes 6-12 s to write it, and tests/sync/test_review.py asks for
    it on each kind of store."""
    field_house = next(r for r in api_records(feeds_dir) if r["locationId"] == FIELD_HOUSE)
    header = ["Location ID", "Location ODS Code", "Location Name", "Care Home?", "Location Type",
              "Location Primary Inspection Category", "Location Street Address", "Location Address Line 2",
              "Location City", "Location Post Code", "Location Local Authority", "Location Region",
              "Service / Population Group", "Domain", "Latest Rating", "Publication Date", "Report Type",
              "Inherited Rating (Y/N)", "URL", "Provider ID", "Provider Name", "Brand ID", "Brand Name"]
    rows = [header]
    names = {"mhlongstay": REHAB_WARD, "mhdisabilities": "Wards for people with learning disabilities or autism"}
    for service in field_house["currentRatings"]["serviceRatings"]:
        rows.append([FIELD_HOUSE, "", field_house["name"], "N", "Independent Healthcare Org",
                     "Mental health - community & hospital - independent", field_house["postalAddressLine1"], "",
                     field_house["postalAddressTownCity"], field_house["postalCode"], field_house["localAuthority"],
                     field_house["region"], names[service["name"]], "Overall", service["rating"],
                     service["reportDate"], "Location", "N", "", field_house["providerId"], "Elysium", "BD482",
                     "BRAND Elysium Healthcare"])
    with (data_dir / "services" / "cqc" / "cqc_latest_ratings_providers_2021-02.csv").open(encoding="utf-8-sig") as f:
        providers = list(csv.reader(f))
    return ods({"Locations": rows, "Providers": providers[:providers_rows]})
