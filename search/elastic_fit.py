""""Best fit first" asked of the cluster: `rehabmap.fit`'s rule as a score the cluster sorts by, before distance.

A service's fit (`Fit.key`: stated needs it says it meets, taking referrals, the capacity reported within the
window) is a few small whole numbers, so it is written as one: a sum of weights of filters (`function_score`),
with no script. Elasticsearch and OpenSearch compute it the same way, and so does osmem, the server the tests run on,
which runs only a small part of Painless. Each part's weight is larger than the most all the parts after it can add,
so the sum sorts as the key does, and reads back as it (`FitScore.level`): what the search has yet to give is no
better than the last score it gave.

The cluster's score only orders the reading: the rank given is `rehabmap.index.base.best_fit_key` of each record read,
as the embedded index's columns give it, and the brute-force suites hold both to the rule written out plainly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rehabmap.fit import CAPACITY_RANK, REFERRALS_RANK

_WORST_REFERRALS = max(REFERRALS_RANK.values())
_WORST_CAPACITY = max(CAPACITY_RANK.values())
# The weight of one unit of each part: the capacity's, the referrals' and a stated need's.
_CAPACITY_UNIT = 1
_REFERRALS_UNIT = _WORST_CAPACITY + 1
_NEED_UNIT = (_WORST_REFERRALS + 1) * _REFERRALS_UNIT
# Every service matches the first filter: no sum is empty (a `function_score` no function matches scores 1, not 0).
_BASE = 1


@dataclass(frozen=True)
class FitScore:
    """The score of the stated `needs`, with capacities reported on `since` or later counting."""

    needs: tuple[str, ...]
    since: date

    def query(self, filters: list[dict[str, Any]]) -> dict[str, Any]:
        """The services passing `filters`, each scored by its fit: sort by `_score` descending."""
        return {"function_score": {"query": {"bool": {"filter": filters}}, "functions": self._weights(),
                                   "score_mode": "sum", "boost_mode": "replace"}}

    def _weights(self) -> list[dict[str, Any]]:
        within = {"range": {"capacity_as_of": {"gte": self.since.isoformat()}}}
        said: dict[bool | None, dict[str, Any]] = {
            value: {"term": {"referrals": value}} for value in REFERRALS_RANK if value is not None}
        said[None] = {"bool": {"must_not": [{"exists": {"field": "referrals"}}]}}
        reported: dict[str | None, dict[str, Any]] = {
            value: {"bool": {"filter": [{"term": {"capacity": value}}, within]}}
            for value in CAPACITY_RANK if value is not None}
        reported[None] = {"bool": {"must_not": [within]}}  # none reported, or not within the window
        weighted: list[tuple[dict[str, Any], int]] = [({"match_all": {}}, _BASE)]
        weighted += [({"term": {"needs_met": need}}, _NEED_UNIT) for need in self.needs]
        weighted += [(said[value], (_WORST_REFERRALS - rank) * _REFERRALS_UNIT)
                     for value, rank in REFERRALS_RANK.items()]
        weighted += [(reported[value], (_WORST_CAPACITY - rank) * _CAPACITY_UNIT)
                     for value, rank in CAPACITY_RANK.items()]
        return [{"filter": clause, "weight": weight} for clause, weight in weighted if weight]

    @staticmethod
    def level(score: float) -> tuple[int, int, int]:
        """The `Fit.key` a score stands for."""
        needs, rest = divmod(round(score) - _BASE, _NEED_UNIT)
        referrals, capacity = divmod(rest, _REFERRALS_UNIT)
        return (-needs, _WORST_REFERRALS - referrals, _WORST_CAPACITY - capacity // _CAPACITY_UNIT)
