"""The choices behind a gap analysis, owned in one place: the threshold distances (30 km for community
services, 50 km for inpatient units, unless a caller says otherwise), the quantile and how many of the
furthest small areas to list. The API, the pages and the command line all take their defaults from here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rehabmap.errors import InvalidValue
from rehabmap.gaps.categories import Category

ADULT_DEFINITION = "aged 16 and over (Census 2021 usual residents minus those aged 15 and under)"
# How a what-if addition is written (`rehabmap.gaps.scenario`); here, beside the other choices, because the
# command line's help states it and must not load the analysis to do so.
ADDITION_FORMAT = ("TYPE@POSTCODE, then optionally @BEDS and @CATCHMENT (area codes joined by '+'), e.g. "
                   "inpatient_rehab_level2@LS9 7TF@12 or community_rehab_team@LS9 7TF@E08000035+E08000032")


@dataclass(frozen=True)
class GapOptions:
    community_km: float = 30.0
    inpatient_km: float = 50.0
    quantile: float = 0.9
    furthest: int = 10

    def __post_init__(self) -> None:
        for name in ("community_km", "inpatient_km"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InvalidValue(f"{name} must be a positive number of kilometres (got {value!r}).", field=name)
        if not (0 < self.quantile <= 1):
            raise InvalidValue(f"quantile must be in (0, 1] (got {self.quantile!r}).", field="quantile")
        if not (0 <= self.furthest <= 1000):
            raise InvalidValue(f"furthest must be between 0 and 1000 (got {self.furthest!r}).", field="furthest")

    def threshold(self, category: Category) -> float:
        return self.inpatient_km if category.is_inpatient else self.community_km

    def to_dict(self) -> dict[str, Any]:
        """As the exports state them, beside the figures they were computed with."""
        return {"community_threshold_km": self.community_km, "inpatient_threshold_km": self.inpatient_km,
                "quantile": self.quantile, "adults": ADULT_DEFINITION}
