"""A CSV file as a spreadsheet program saves it, for the tests of reading one (test_sources_csv.py and
test_index_command.py). Not a test module: importing it brings no tests or fixtures along (as_excel_saves lived in
tests/indexer/test_sources_csv.py, which test_index_command.py imported)."""

from __future__ import annotations

import csv
import io


def as_excel_saves(text: str) -> str:
    """The CSV text as older Excel versions save a sheet: past the 16th row, a row's empty cells at its end are
    not written, nor the commas before them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""))):
        while number >= 16 and cells and not cells[-1]:
            cells.pop()
        writer.writerow(cells)
    return out.getvalue()
