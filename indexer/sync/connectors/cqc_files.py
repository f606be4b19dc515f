"""CQC's monthly files (no key): "Latest ratings", the care directory CSV and "HSCA Active Locations".

Each is downloaded with a conditional GET (the ETag / Last-Modified of the last copy read are kept in the
state), so an unchanged month costs the source a 304 and the sync nothing. CQC renames the files monthly; the
settings give this month's links.

* `cqc-ratings` — the rehab-ward ratings. A location rated for "Long stay or rehabilitation mental health wards
  for working age adults" holds a rehab ward; a provider so rated (the provider sheet, as in the real 2021
  file) runs one somewhere. Both are `Enrichment`s matched by CQC id onto the records the other CQC
  connectors make: evidence for review, never a record or a type of their own.
* `cqc-directory` and `cqc-hsca` — every active location, read as the CQC API's records are
  (`indexer.sources.cqc.read_pathway`), giving the same records (ids cqc:<location id>): a deployment without an
  API key syncs these instead of `cqc`. Both files list every active location, so a complete read lets the
  sync retire what is no longer there.
"""

from __future__ import annotations

import re
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from python_calamine import CalamineWorkbook

from indexer.sources.common import CsvProblem, base_suffix, csv_table, parse_date, read_text
from indexer.sources.cqc import (
    HSCA_SERVICE_TYPE,
    REHAB_WARD,
    TITLE_LINES_MAX,
    directory_rows,
    hsca_rows,
    is_directory_header,
)
from indexer.sync.connectors.base import BaseConnector, utc_now
from indexer.sync.connectors.titles import CQC_DIRECTORY, CQC_HSCA, CQC_RATINGS
from indexer.sync.connectors.cqc import ATTRIBUTION, LICENCE, location_coverage, location_item
from indexer.sync.http import SourceClient, SourceError, Validators
from indexer.sync.items import Enrichment, Evidence, Outcome, Refused, SyncState

HEADER_ROWS_MAX = 10   # a sheet may have a title block above its header
Sheet = tuple[str, list[str], Iterator[tuple[int, list[Any]]]]  # its name, its header, its rows numbered


def _key(column: Any) -> str:
    """Column names compared without case, spaces or punctuation: CQC writes "Service / Population Group" in
    one edition and "Service/PopulationGroup" in another."""
    return re.sub(r"[^a-z0-9]", "", str(column).lower())


class MonthlyFile(BaseConnector):
    """Shared by the three: download the file at `url` if it changed since the validators in the state."""

    licence = LICENCE
    attribution = ATTRIBUTION
    label: str

    def __init__(self, http: SourceClient, url: str) -> None:
        super().__init__(http)
        self.url = url

    def covers(self) -> Mapping[str, frozenset[str]]:
        return {}

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        """Nothing when the file is unchanged (304) since the last complete read, unless `full`."""
        self._complete = False
        saved = dict(state.load(self.name))
        validators = None if full or saved.get("url") != self.url else Validators.from_state(saved)
        with tempfile.TemporaryDirectory(prefix="rehabmap-") as folder:
            path = Path(folder) / (Path(self.url.split("?")[0]).name or "download")
            fetched = self.http.get(self.url, validators=validators, into=path)
            if fetched.not_modified:
                return
            yield from self.read(path, utc_now())
        state.save(self.name, {"url": self.url, **fetched.validators.to_state()})
        self._complete = True

    def read(self, path: Path, fetched_at: datetime) -> Iterator[Outcome]:
        raise NotImplementedError

    def unreadable(self, problem: CsvProblem) -> Refused:
        """A row of the file that cannot be read as cells, refused naming the file, its line and why: dropped
        unsaid, a rating or a location it held would vanish with nobody told."""
        return Refused(self.name, None, f"{self.url} line {problem.line}", problem.reason)

    def sheet_rows(self, path: Path, wanted: Callable[[list[str]], bool]) -> Iterator[Sheet]:
        """(sheet name, header, rows with their line numbers) of each sheet whose header `wanted` accepts, from an
        OpenDocument or Excel workbook (read by calamine, not by hand). A blank row is no row, above the header as
        below it (as in a CSV, `csv_table`): before, a title block's blank rows counted toward the rows searched for
        the header, so a title block found in the .csv was missed in the .ods or .xlsx."""
        try:
            book = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own errors for files that are not workbooks
            raise SourceError(f"{self.label}: {self.url} is not a spreadsheet CQC publishes (.ods/.xlsx): {exc}") \
                from None
        for sheet in book.sheet_names:
            rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
            filled = ((n + 1, list(r)) for n, r in enumerate(rows) if any(str(c).strip() for c in r))
            for _, row in islice(filled, HEADER_ROWS_MAX):
                header = [str(c).strip() for c in row]
                if wanted(header):
                    yield sheet, header, filled
                    break


class RatingsFile(MonthlyFile):
    name = CQC_RATINGS
    label = "CQC ratings file"

    def read(self, path: Path, fetched_at: datetime) -> Iterator[Outcome]:
        rated: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
        for table in self._tables(path):
            for entry in table:
                if isinstance(entry, Refused):
                    yield entry
                    continue
                where, row = entry
                if not REHAB_WARD.search(row.get("servicepopulationgroup", "")):
                    continue
                if row.get("locationid"):
                    rated[("location", row["locationid"])].append({**row, "_where": where})
                elif row.get("providerid"):
                    rated[("provider", row["providerid"])].append({**row, "_where": where})
                else:
                    yield Refused(self.name, None, where,
                                  "a rehabilitation ward rating with no location or provider id")
        for (level, cqc_id), rows in rated.items():
            yield _ward_evidence(self.name, level, cqc_id, rows)

    def _tables(self, path: Path) -> Iterator[Iterator[tuple[str, dict[str, str]] | Refused]]:
        """Each table of the file (the CSV, or each sheet with the column), its rows by where they are, a row that
        cannot be read refused (`unreadable`)."""
        def wanted(header: list[str]) -> bool:
            return "servicepopulationgroup" in {_key(h) for h in header}

        if base_suffix(path) == ".csv":
            table = csv_table(read_text(path), wanted, HEADER_ROWS_MAX)
            if table is None:
                raise SourceError(f"{self.label}: {self.url} has no 'Service / Population Group' column")
            yield (self.unreadable(r) if isinstance(r, CsvProblem)
                   else (f"{self.url} line {r.line}", {_key(k): v for k, v in r.values.items()}) for r in table.rows)
            return
        found = False
        for sheet, header, rows in self.sheet_rows(path, wanted):
            found = True
            keys = [_key(h) for h in header]
            yield ((f"{self.url} sheet {sheet} row {n}", {k: str(v).strip() for k, v in zip(keys, cells)})
                   for n, cells in rows)
        if not found:
            raise SourceError(f"{self.label}: no sheet of {self.url} has a 'Service / Population Group' column")


def _ward_evidence(source: str, level: str, cqc_id: str, rows: list[dict[str, str]]) -> Enrichment:
    """The overall rating of the rehab ward service, as evidence on the location, or on the provider's hospitals."""
    overall = next((r for r in rows if r.get("domain", "").lower() == "overall"), rows[0])
    rating, published = overall.get("latestrating") or "unrated", overall.get("publicationdate", "")
    try:
        when = parse_date(published, "Publication Date").isoformat() if published else "no date"
    except ValueError:
        when = published
    ward = overall.get("servicepopulationgroup", "")
    if level == "location":
        name = overall.get("locationname") or cqc_id
        means = f"CQC rates a rehabilitation ward at {name} ({rating}, {when}): an inpatient rehab unit"
        match = {"cqc_location_id": cqc_id}
    else:
        name = overall.get("providername") or cqc_id
        means = (f"{name} runs a rehabilitation ward CQC rated {rating} ({when}): evidence for its mental health "
                 "hospitals, though not which of them holds it")
        match = {"cqc_provider_id": cqc_id}
    return Enrichment(source, f"{level}:{cqc_id}", match,
                      evidence=(Evidence(source, "Service / Population Group", ward[:80], means),),
                      raw={k: v for k, v in overall.items() if not k.startswith("_")})


class LocationsFile(MonthlyFile):
    """A file listing every active CQC location: it covers what the API crawl covers."""

    def covers(self) -> Mapping[str, frozenset[str]]:
        return location_coverage()


class DirectoryFile(LocationsFile):
    name = CQC_DIRECTORY
    label = "CQC care directory"

    def read(self, path: Path, fetched_at: datetime) -> Iterator[Outcome]:
        table = csv_table(read_text(path), is_directory_header, TITLE_LINES_MAX)
        if table is None:
            raise SourceError(f"{self.label}: {self.url} is not the care directory CSV (no header with Name, "
                              "Postcode, Service types, Specialisms/services and CQC Location ID)")
        for row in directory_rows(table):
            if isinstance(row, CsvProblem):
                yield self.unreadable(row)
            else:
                yield location_item(self.name, row, self.url, fetched_at)


class HscaFile(LocationsFile):
    name = CQC_HSCA
    label = "CQC HSCA active locations"

    def read(self, path: Path, fetched_at: datetime) -> Iterator[Outcome]:
        def wanted(header: list[str]) -> bool:
            return "Location ID" in header and any(h.startswith(HSCA_SERVICE_TYPE) for h in header)

        sheets = list(self.sheet_rows(path, wanted))
        if not sheets:
            raise SourceError(f"{self.label}: no sheet of {self.url} has 'Location ID' and 'Service type - …' "
                              "columns")
        for _, header, rows in sheets:
            for row in hsca_rows(header, rows):
                ods = row.raw.get("Location ODS Code") or None
                yield location_item(self.name, row, f"{self.url}", fetched_at, ods_code=ods)

