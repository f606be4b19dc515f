"""The Census 2021 small-area file, read once a process: every English LSOA with its population-weighted centroid,
the areas that hold it (ICB, sub-ICB, local authority, county, region; ONS codes) and its population by age band.

Coverage (which areas a source covers, `rehabmap.coverage`) and the gaps (whose population a service reaches,
`rehabmap.gaps.population`) each make their table from these columns; they had a parse and a copy each. The
columns are read-only, since both tables hold them."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from rehabmap.errors import DataFileMissing

SMALL_AREAS_FILE = Path("smallareas") / "england_lsoa21_pwc_population_icb_lad.csv"

TEXT_COLUMNS = ("lsoa21_code", "lsoa21_name", "icb24_code", "icb24_name", "sicbl24_code", "ltla24_code",
                "ltla24_name", "utla23_code", "utla23_name", "region24_code")
_FLOAT_COLUMNS = ("lat", "lon")
_COUNT_COLUMNS = ("pop_total_c2021", "pop_15_under")


def in_data(data_dir: Path, file: Path) -> Path:
    """The file in a data folder, or `data_dir` itself when it is the file."""
    path = Path(data_dir)
    return (path / file if path.is_dir() else path).resolve()


def small_areas_missing() -> DataFileMissing:
    """What a search, an area's coverage or a gap figure answers without the file: every one of them needs it
    (coverage to tell "none found" from "no data for this area", gaps for the population)."""
    return DataFileMissing(f"Census 2021 small-area file ({SMALL_AREAS_FILE})",
                           "to tell which areas its sources cover and to measure gaps")


def small_area_file(data_dir: Path) -> Path:
    """The file in a data folder (or `data_dir` itself when it is the file), as the tables' caches know it."""
    return in_data(data_dir, SMALL_AREAS_FILE)


@lru_cache(maxsize=2)
def small_area_columns(path: Path) -> Mapping[str, np.ndarray]:
    """The file's columns that rehabmap reads, by their names in the file: text as object arrays, the centroid's
    `lat` and `lon` as floats, the counts as int64. DataFileMissing when there is no such file."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise small_areas_missing() from None
    with handle:
        rows = csv.reader(handle)
        header = next(rows)
        at = {name: header.index(name) for name in (*TEXT_COLUMNS, *_FLOAT_COLUMNS, *_COUNT_COLUMNS)}
        cells: dict[str, list[str]] = {name: [] for name in at}
        for row in rows:
            for name, i in at.items():
                cells[name].append(row[i])
    columns = {name: np.array(_one_each(cells.pop(name)), dtype=object) for name in TEXT_COLUMNS}
    columns.update((name, np.array(cells.pop(name), dtype=np.float64)) for name in _FLOAT_COLUMNS)
    columns.update((name, np.array(cells.pop(name), dtype=np.int64)) for name in _COUNT_COLUMNS)
    for column in columns.values():
        column.flags.writeable = False
    return columns


def _one_each(values: list[str]) -> list[str]:
    """One string object for each distinct value: an area's code or name is repeated in each of its small areas
    (~33,000 rows, ~7,000 districts' and 42 ICBs' codes), and a copy in each row held ~2 MiB a column."""
    seen: dict[str, str] = {}
    return [seen.setdefault(value, value) for value in values]
