"""NHS ODS bulk reports: the names and addresses of trust sites (`ets`) and independent providers' sites
(`ephpsite`), to enrich and match the records other sources make — never a type on their own.

Each report is a zip holding one headerless CSV in the standard ODS layout (as the real `etr` file in
data/services/ shows): code, name, national grouping, high level health geography, five address lines,
postcode, open date, close date, …, parent organisation code (15th column). Each open site becomes an
`Enrichment` matched on its ODS code (a CQC location of an NHS trust, and an NHS website clinic, carry it):
its address and postcode fill what a record lacks. A closed site's enrichment carries the closing date as
evidence, so a record still listed elsewhere is questioned in review. Reports are fetched conditionally.
"""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from indexer.sources.common import join_address, parse_date, parse_postcode_text
from indexer.sync.connectors.base import BaseConnector
from indexer.sync.http import SourceClient, SourceError, Validators
from indexer.sync.items import Enrichment, Evidence, Outcome, Refused, SyncState

NAME = "ods"
LICENCE = "OGL-UK-3.0"
ATTRIBUTION = "Contains information from NHS England (Organisation Data Service), Open Government Licence v3.0"
# 0-based columns of the standard headerless layout.
CODE, SITE_NAME, ADDRESS, POSTCODE, OPENED, CLOSED, PARENT = 0, 1, slice(4, 9), 9, 10, 11, 14


class OdsConnector(BaseConnector):
    name = NAME
    licence = LICENCE
    attribution = ATTRIBUTION

    def __init__(self, http: SourceClient, reports: tuple[str, ...] = ("ets", "ephpsite")) -> None:
        super().__init__(http)
        self.reports = reports

    def covers(self) -> Mapping[str, frozenset[str]]:
        return {}   # names and addresses only: ODS says nothing about which services are on the pathway

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        """Every report that changed since the last read (all of them when `full`); complete when all were read."""
        self._complete = False
        saved = dict(state.load(self.name))
        read_all = True
        for report in self.reports:
            url = self.http.url(f"{report}.zip")
            validators = None if full else Validators.from_state(saved.get(report))
            with tempfile.TemporaryDirectory(prefix="rehabmap-") as folder:
                fetched = self.http.get(url, validators=validators, into=Path(folder) / f"{report}.zip")
                if fetched.not_modified:
                    read_all = False
                    continue
                assert fetched.path is not None
                yield from read_report(fetched.path, url)
            saved[report] = fetched.validators.to_state()
            state.save(self.name, saved)
        self._complete = read_all


def read_report(path: Path, url: str) -> Iterator[Outcome]:
    """The CSV inside an ODS report zip (or a bare CSV), row by row."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise SourceError(f"NHS ODS: {url} holds no .csv file")
            text = archive.read(names[0]).decode("utf-8-sig", errors="replace")
    except zipfile.BadZipFile:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    for line, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if any(c.strip() for c in cells):
            yield site(cells, f"{url} line {line}")


def site(cells: list[str], where: str) -> Outcome:
    cells = [c.strip() for c in cells] + [""] * max(0, PARENT + 1 - len(cells))
    code, name = cells[CODE], cells[SITE_NAME]
    if not code or not name:
        return Refused(NAME, code or None, where, "a row with no organisation code or name")
    parent = cells[PARENT]
    evidence = [Evidence(NAME, "Name", name[:80], f"NHS ODS names site {code} '{name}'" +
                         (f" of {parent}" if parent else ""))]
    fields: dict[str, str] = {}
    if cells[CLOSED]:
        try:
            closed = parse_date(cells[CLOSED], "Close Date").isoformat()
        except ValueError:
            closed = cells[CLOSED]
        evidence.append(Evidence(NAME, "Close Date", cells[CLOSED], f"NHS ODS says this site closed on {closed}"))
    else:
        address = join_address(*cells[ADDRESS])
        if address:
            fields["address"] = address
        try:
            fields["postcode"] = parse_postcode_text(cells[POSTCODE], "Postcode")
        except ValueError:
            pass   # an address without a usable postcode still names the site
    return Enrichment(NAME, code, {"ods_code": code}, fields=fields, evidence=tuple(evidence), raw={"row": cells},
                      field_sources={f: f"{NAME}:{'Postcode' if f == 'postcode' else 'Address Line 1-5'}"
                                     for f in fields})
