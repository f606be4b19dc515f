"""CQC's monthly files as the connector and review tests serve them (tests/sync/test_connector_cqc_files.py,
test_review.py): the connector for a file the replay serves, the 103 recorded CQC API locations, and spreadsheets
BUILT with odfpy in the published OpenDocument layouts from those real records (no real "Latest ratings" location
sheet is in ../shared). Not a test module: importing it brings no tests along."""

from __future__ import annotations

import csv
import io
import json
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
