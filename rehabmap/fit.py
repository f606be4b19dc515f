"""How well a service fits a request, as "best fit first" weighs it (`rehabmap.match.RANKING_RULE`, step 4).

One home for the rule, read three ways: over records (`rehabmap.index.base.best_fit_key`), over the embedded index's
columns (`search.columns`), and as a score the search engine sorts by (`search.elastic_fit`), which must give the
same order: the brute-force suites hold all three to the rule written out plainly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rehabmap.record import Capacity, Service

# Fewer is better in each: taking referrals (yes, not said, no); the capacity reported within the capacity window
# (vacancy, limited, not known or too old, none).
REFERRALS_RANK: dict[bool | None, int] = {True: 0, None: 1, False: 2}
CAPACITY_RANK: dict[Capacity | None, int] = {"available": 0, "limited": 1, None: 2, "none": 3}


@dataclass(frozen=True)
class Fit:
    """How well a service fits a request; fewer is better in each part."""

    needs_not_confirmed: int  # minus how many of the stated needs the service says it meets
    referrals: int  # `REFERRALS_RANK`
    capacity: int  # `CAPACITY_RANK` of the capacity reported within the window

    @classmethod
    def of(cls, service: Service, confirmed: Iterable[str], capacity: Capacity | None) -> Fit:
        """`confirmed`: the stated needs the service says it meets; `capacity`: as `Service.capacity_since`
        reads it."""
        return cls(-len(list(confirmed)), REFERRALS_RANK[service.accepting_referrals], CAPACITY_RANK[capacity])

    def key(self) -> tuple[int, int, int]:
        return (self.needs_not_confirmed, self.referrals, self.capacity)
