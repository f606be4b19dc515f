"""The indicators of a gap analysis: their names, what each means, which way is worse, how each is rounded
for the exports and how each reads to a person. One home, for the API, the exports, the maps, the pages and
the command line alike (the definitions behind the numbers are in `rehabmap.gaps.analysis`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from rehabmap.errors import InvalidValue

if TYPE_CHECKING:
    from rehabmap.gaps.categories import Category

INDICATORS: tuple[str, ...] = (
    "count", "per_100k_adults", "mean_km", "p90_km", "share_beyond_threshold",
    "population_beyond_threshold", "share_nearest_outside_area", "fallback_mean_km", "fallback_p90_km",
    "fallback_share_beyond_threshold", "nearest_provider_km")
INDICATOR_LABELS: dict[str, str] = {
    "count": "services in the area",
    "per_100k_adults": "services per 100,000 adults (16+)",
    "mean_km": "population-weighted mean distance to nearest (km)",
    "p90_km": "population-weighted 90th percentile distance to nearest (km)",
    "share_beyond_threshold": "share of adults beyond the threshold distance",
    "population_beyond_threshold": "adults beyond the threshold distance",
    "share_nearest_outside_area": "share of adults whose nearest service is outside the area",
    "fallback_mean_km": "mean distance to the nearest unit outside the area (km)",
    "fallback_p90_km": "90th percentile distance to the nearest unit outside the area (km)",
    "fallback_share_beyond_threshold": "share of adults beyond the threshold if local units were full",
    "nearest_provider_km": "distance from the area's population centre to the nearest service (km)",
}
FALLBACK_INDICATORS: tuple[str, ...] = tuple(name for name in INDICATORS if name.startswith("fallback_"))
# For maps and colour scales: is a larger value worse for the population?
HIGHER_IS_WORSE: dict[str, bool] = {name: name not in ("count", "per_100k_adults") for name in INDICATORS}

Unit = Literal["count", "rate", "km", "share"]
UNITS: dict[str, Unit] = {
    name: "share" if "share" in name else "km" if name.endswith("_km") else "rate" if name == "per_100k_adults"
    else "count" for name in INDICATORS}
_DIGITS: dict[Unit, int] = {"count": 0, "rate": 3, "km": 3, "share": 4}


def check_map_indicator(indicator: str, category: Category | None) -> None:
    """An England map's indicator, checked before anything is drawn (or, on the command line, printed): one of
    `INDICATORS`, and a fallback only of an inpatient type (`category`, the type the map draws: None where no map
    is drawn), the only types it is computed for."""
    if indicator not in INDICATORS:
        raise InvalidValue(f"Unknown indicator '{indicator}'. Use one of: {', '.join(INDICATORS)}.",
                           field="indicator")
    if indicator.startswith("fallback_") and category is not None and not category.is_inpatient:
        raise InvalidValue(f"'{indicator}' is only computed for inpatient types.", field="indicator")


def rounded(value: float | None, digits: int = 3) -> float | None:
    """JSON-safe numbers: NaN and infinity become None."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def indicator_value(name: str, value: float) -> float | int | None:
    """An indicator as the API and the exports give it: counts whole, rates and km to 3 decimals, shares to 4."""
    number = rounded(value, _DIGITS[UNITS[name]])
    if number is not None and UNITS[name] == "count":
        return int(number)
    return number


def whole_percents(parts: Sequence[int]) -> list[int]:
    """Each part of their total as a whole percentage, the percentages summing to 100 (largest remainder): each
    rounded alone, a map's legend gave shares summing to 101%. Integer arithmetic, so exact; of equal remainders
    the earlier part takes the point. Nothing at all: every part 0."""
    total = sum(parts)
    if total <= 0:
        return [0] * len(parts)
    whole = [100 * part // total for part in parts]
    left = [100 * part % total for part in parts]
    for i in sorted(range(len(parts)), key=lambda i: (-left[i], i))[:100 - sum(whole)]:
        whole[i] += 1
    return whole


def km_text(value: float | None, missing: str = "–", unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return missing
    return f"{value:.1f}{unit}"


def share_text(value: float | None, missing: str = "–", whole: bool = False) -> str:
    """A percentage to one decimal; `whole` rounds shares of 10% or more (and none at all) to whole percent. A
    share that is not none, nor all, never reads as either, whatever its rounding: judged by the text it would
    read as, 0.04% of the adults read "0.0%", and 99.6% "100%" where shares are whole (the area pages' tables)."""
    if value is None or not math.isfinite(value):
        return missing
    digits = 0 if whole and (value >= 0.1 or value == 0) else 1
    text = f"{100 * value:.{digits}f}"
    if 0 < value < 1 and float(text) in (0, 100):
        step = 10 ** -digits
        return f"<{step:g}%" if value < 0.5 else f">{100 - step:g}%"
    return f"{text}%"


def indicator_text(name: str, value: float | None, missing: str = "–", km_unit: str = "", whole_shares: bool = False,
                   thousands: bool = True) -> str:
    """Any indicator as a person reads it, by its unit: km to one decimal, a share as a percentage, a rate to
    two decimals, a count whole."""
    if value is None or not math.isfinite(value):
        return missing
    unit = UNITS[name]
    if unit == "share":
        return share_text(value, missing, whole_shares)
    if unit == "km":
        return km_text(value, missing, km_unit)
    if unit == "rate":  # England's 1 level 1 unit per 46 million adults read "0.00" per 100k, as if none
        text = f"{value:.2f}"
        return "<0.01" if value > 0 and float(text) == 0 else text
    return f"{value:,.0f}" if thousands else f"{value:.0f}"
