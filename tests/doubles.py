"""The doubles beside a value: where a shortcut for a float format or a rounding could differ from the
library's own, so the tests of `round_km` and `miles_and_km` check each value with its neighbours."""

from __future__ import annotations

import math


def around(value: float, steps: int = 3) -> list[float]:
    """The value and the doubles up to `steps` apart on each side."""
    below, above, found = value, value, [value]
    for _ in range(steps):
        below, above = math.nextafter(below, -math.inf), math.nextafter(above, math.inf)
        found += [below, above]
    return found
