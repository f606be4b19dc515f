"""The Census 2021 small-area file, read once a process: every English LSOA with its population-weighted centroid,
the areas that hold it (ICB, sub-ICB, local authority, county, region; ONS codes) and its population by age band.

Coverage (which areas a source covers, `rehabmap.coverage`) and the gaps (whose population a service reaches,
`rehabmap.gaps.population`) each make their table from these columns; they had a parse and a copy each. The
columns are read-only, since both tables hold them. An area's code or name is one string however many small areas
it has. Loading both tables: 0.74 -> 0.30 s, peak resident memory 128 -> 55 MiB; coverage alone 0.24 -> 0.27 s,
44 -> 48 MiB (bench/RESULTS.md, session 33)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from rehabmap.errors import DataFileMissing

SMALL_AREAS_FILE = Path("smallareas") / "england_lsoa21_pwc_population_icb_lad.csv"

TEXT_COLUMNS = ("lsoa21_code", "lsoa21_name", "icb24_code", "icb24_name", "sicbl24_code", "ltla24_code",
                "ltla24_name", "utla23_code", "utla23_name", "region24_code")
_UNIQUE = ("lsoa21_code", "lsoa21_name")  # a small area's own: every other text column repeats an area's
_FLOAT_COLUMNS = ("lat", "lon")
_COUNT_COLUMNS = ("pop_total_c2021", "pop_15_under")


def in_data(data_dir: Path, file: Path) -> Path:
    """The file in a data folder, or `data_dir` itself when it is the file."""
    path = Path(data_dir)
    return (path / file if path.is_dir() else path).resolve()


def small_area_file(data_dir: Path) -> Path:
    """The file in a data folder (or `data_dir` itself when it is the file), as the tables' caches know it."""
    return in_data(data_dir, SMALL_AREAS_FILE)


@lru_cache(maxsize=2)
def small_area_columns(path: Path) -> Mapping[str, np.ndarray]:
    """The file's columns that rehabmap reads, by their names in the file: text as object arrays, the centroid's
    `lat` and `lon` as floats, the counts as int64; and `adults`, everyone aged 16 and over (`pop_total_c2021 -
    pop_15_under`: the census bands split at 15/16, so 16+ is the nearest adult population the file gives), which
    coverage's shares and the gaps' weights both count. DataFileMissing when there is no such file: a search, an
    area's coverage and a gap figure each need it (coverage to tell "none found" from "no data for this area", gaps
    for the population)."""
    try:
        handle = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise DataFileMissing(f"Census 2021 small-area file ({SMALL_AREAS_FILE})",
                              "to tell which areas its sources cover and to measure gaps", where=str(path)) from None
    names = (*TEXT_COLUMNS, *_FLOAT_COLUMNS, *_COUNT_COLUMNS)
    cells: dict[str, list[str]] = {name: [] for name in names}
    with handle:
        rows = csv.reader(handle)
        at = [(cells[name].append, i, name not in _UNIQUE and name in TEXT_COLUMNS)
              for name, i in zip(names, map(next(rows).index, names))]
        intern = sys.intern  # an area's code or name: one string for its ~5 to ~2,000 small areas, as read
        for row in rows:
            for append, i, repeated in at:
                append(intern(row[i]) if repeated else row[i])
    columns = {name: np.array(cells[name], dtype=object) for name in TEXT_COLUMNS}
    columns.update((name, np.array(cells[name], dtype=np.float64)) for name in _FLOAT_COLUMNS)
    columns.update((name, np.array(cells[name], dtype=np.int64)) for name in _COUNT_COLUMNS)
    columns["adults"] = columns["pop_total_c2021"] - columns["pop_15_under"]
    for column in columns.values():
        column.flags.writeable = False
    return columns
