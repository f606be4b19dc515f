"""Every CSV rehabmap writes gives text a spreadsheet would run as a formula a leading apostrophe, by one
rule (`rehabmap.spreadsheet`): the services export's cells and the gap analysis's rows alike. Numbers are
numbers, never defused."""

from __future__ import annotations

import csv
import io

from api.exports import _cell
from rehabmap.gaps.exports import csv_text
from rehabmap.spreadsheet import BOM

FORMULAS = ['=HYPERLINK("http://x")', "+44 113 496 0000", "-1+1", "@SUM(A1:A9)", "\tLeeds"]


def test_the_services_export_and_the_gaps_exports_defuse_the_same_text():
    assert [_cell(text) for text in FORMULAS] == ["'" + text for text in FORMULAS]
    written = csv_text([{"name": text, "mean_km": -1.5} for text in [*FORMULAS, "Leeds"]])
    assert _rows(written) == [["name", "mean_km"], *(["'" + text, "-1.5"] for text in FORMULAS), ["Leeds", "-1.5"]]


def test_a_carriage_return_in_a_value_stays_in_its_row():
    """With "\\n" ending its rows, the gaps' CSV wrote a carriage return unquoted, which splits the row for most
    readers (W8 found it); rows now end as RFC 4180's and the services export's do."""
    written = csv_text([{"name": "a\rb", "n": 1}, {"name": "c", "n": 2}])
    assert _rows(written) == [["name", "n"], ["a\rb", "1"], ["c", "2"]]


def _rows(written: str) -> list[list[str]]:
    """The rows as a reader opening the file as utf-8-sig reads them: after the byte order mark Excel reads."""
    assert written.startswith(BOM)
    return list(csv.reader(io.StringIO(written.removeprefix(BOM), newline="")))
