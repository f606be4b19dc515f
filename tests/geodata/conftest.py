"""Geodata fixtures of its own: a source folder in the full ONSPD layout."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest


# English rows of the ONSPD schema sample (SE1 9ZZ was terminated in December 1998), the two rows with
# no grid reference (ONSPD lat 99.999999) and a few Scottish rows, live and terminated.
ONSPD_FIXTURE_POSTCODES = (
    "SE1P 5ZZ", "SE1 9ZZ", "M11 1AA", "M1 1AD", "SE1 2DL",
    "AB11 3AG", "JE2 4WD",
    "AB1 0AA", "AB10 1AB",
)  # fmt: skip


@pytest.fixture(scope="session")
def onspd_source_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source folder whose only postcode file is in the full ONSPD layout (rows from the schema sample)."""
    root = tmp_path_factory.mktemp("onspd-source")
    for folder in ("boundaries", "smallareas", "lookups"):
        (root / folder).symlink_to(data_dir / folder, target_is_directory=True)
    (root / "postcodes").mkdir()
    with (data_dir / "postcodes" / "onspd_schema_sample_2025.csv").open(newline="", encoding="utf-8") as src:
        reader = csv.reader(src)
        header = next(reader)
        pcds_at = header.index("pcds")
        rows = [row for row in reader if row[pcds_at] in ONSPD_FIXTURE_POSTCODES]
    assert len(rows) == len(ONSPD_FIXTURE_POSTCODES)
    with (root / "postcodes" / "ONSPD_NOV_2025_UK.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return root
