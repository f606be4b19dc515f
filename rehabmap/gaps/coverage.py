"""Gaps read with the directory's coverage (`rehabmap.coverage`): a part absent inside an area is *missing*
only where the directory covers that area for it; elsewhere it is *not covered*, because rehabmap holds no
such data there yet and "none found" would mean nothing. The figures themselves do not change."""

from __future__ import annotations

from dataclasses import replace

from rehabmap.coverage import CoverageMap
from rehabmap.gaps.comparison import AreaRow, GapTable
from rehabmap.gaps.report import Scorecard


def scorecard_with_coverage(card: Scorecard, area_code: str, coverage: CoverageMap) -> Scorecard:
    """Each part with its status and coverage; the absent parts and subtypes split into covered (`missing`)
    and not covered."""
    parts = []
    for part in card.parts:
        answer = coverage.for_area(area_code, part.type)
        status = "present" if part.present else "missing" if answer.covered else "not_covered"
        parts.append(replace(part, status=status, coverage=answer.to_dict()))
    missing = [k for k in card.missing if coverage.for_area(area_code, k).covered]
    subtypes = [k for k in card.missing_subtypes if coverage.for_area(area_code, k).covered]
    return replace(card, parts=parts, missing=missing, missing_subtypes=subtypes,
                   not_covered=[k for k in card.missing if k not in missing],
                   not_covered_subtypes=[k for k in card.missing_subtypes if k not in subtypes])


def table_with_coverage(table: GapTable, coverage: CoverageMap) -> GapTable:
    """The same comparison, each area's absent parts split into missing (covered) and not covered."""
    return replace(table, _rows=[_row_with_coverage(row, coverage) for row in table.rows()])


def _row_with_coverage(row: AreaRow, coverage: CoverageMap) -> AreaRow:
    missing = [k for k in row.missing_parts if coverage.for_area(row.code, k).covered]
    uncovered = [k for k in row.missing_parts if k not in missing]
    return replace(row, missing_parts=missing, missing_count=len(missing), not_covered_parts=uncovered,
                   not_covered_count=len(uncovered))
