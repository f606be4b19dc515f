"""The Census 2021 small-area file is read once a process, and coverage and the gaps answer from the same columns:
the same small areas in each ICB and the same adults, where two parses could drift apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rehabmap.coverage import SmallAreaTable
from rehabmap.gaps.population import SmallAreas
from rehabmap.small_areas import small_area_columns, small_area_file

WEST_YORKSHIRE = "E54000054"


def test_coverage_and_gaps_share_one_read_of_the_file(data_dir: Path):
    columns = small_area_columns(small_area_file(data_dir))
    gaps, coverage = SmallAreas.load(data_dir), SmallAreaTable.load(data_dir)
    assert len(gaps) == len(coverage) == len(columns["lsoa21_code"]) > 33_000
    assert gaps.codes is columns["lsoa21_code"] and gaps.icb is columns["icb24_code"]  # not a copy each
    assert np.array_equal(gaps.adult_pop, coverage.adults)
    assert np.array_equal(gaps.members(WEST_YORKSHIRE), coverage.members(WEST_YORKSHIRE))
    assert coverage.codes_of("icb") == frozenset(gaps.groups("icb").codes.tolist())


def test_the_shared_columns_cannot_be_changed_by_either(data_dir: Path):
    gaps = SmallAreas.load(data_dir)
    for column, value in ((gaps.total_pop, 0), (gaps.lat, 0.0), (gaps.icb, "E54000001")):
        with pytest.raises(ValueError, match="read-only"):
            column[0] = value
