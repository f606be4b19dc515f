"""Column arrays over a list of services, so filters are NumPy masks and k-nearest is one scan.

Kept apart from the SQLite store: the arrays are the query engine, the file is the store of record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.geometry import shape

from rehabmap.index.base import Coverage, ServiceQuery
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, ServiceType

_NEED_BITS = {need: np.uint32(1 << i) for i, need in enumerate(NEED_LABELS)}
_TYPES = list(ServiceType)
_UNKNOWN_AGE_MIN, _UNKNOWN_AGE_MAX = -1, 999


def _index_lists(keys: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    lists: dict[str, list[int]] = defaultdict(list)
    for i, values in enumerate(keys):
        for value in values:
            lists[value].append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in lists.items()}


class ServiceColumns:
    """Immutable column view of one index generation."""

    def __init__(self, services: Sequence[Service]) -> None:
        n = len(services)
        self.services = list(services)
        self.ids = np.array([s.id for s in services], dtype=object)
        self.lat = np.array([s.lat for s in services], dtype=np.float64)
        self.lon = np.array([s.lon for s in services], dtype=np.float64)
        self.type = np.array([_TYPES.index(s.service_type) for s in services], dtype=np.int8)
        self.subtype = np.array([s.subtype or "" for s in services], dtype=object)
        self.met = np.zeros(n, dtype=np.uint32)
        self.not_met = np.zeros(n, dtype=np.uint32)
        for i, s in enumerate(services):
            self.met[i] = _bits(s.needs_met)
            self.not_met[i] = _bits(s.needs_not_met)
        self.lang_met = _index_lists([[x for x in s.needs_met if x.startswith("language:")] for s in services])
        self.lang_not = _index_lists([[x for x in s.needs_not_met if x.startswith("language:")]
                                      for s in services])
        self.min_age = np.array([_UNKNOWN_AGE_MIN if s.min_age is None else s.min_age for s in services])
        self.max_age = np.array([_UNKNOWN_AGE_MAX if s.max_age is None else s.max_age for s in services])
        self.gender = np.array([s.gender or "" for s in services], dtype=object)
        self.accepting = np.array([s.accepting_referrals is True for s in services], dtype=bool)
        self.active = np.array([s.status == "active" for s in services], dtype=bool)
        self.located_in = _index_lists([s.areas.codes() for s in services])
        self.restricted = np.array([s.service_area.restricted for s in services], dtype=bool)
        self.serves = _index_lists([s.service_area.codes for s in services])
        self.polygon_rows = np.array([i for i, s in enumerate(services) if s.service_area.polygon],
                                     dtype=np.int64)
        self.polygons = [shape(services[i].service_area.polygon) for i in self.polygon_rows]
        self._polygon_tree = shapely.STRtree(self.polygons) if self.polygons else None
        self.by_id = {s.id: i for i, s in enumerate(services)}
        order = sorted(range(n), key=lambda i: (services[i].name.casefold(), services[i].id))
        self.name_rank = np.empty(n, dtype=np.int64)
        self.name_rank[order] = np.arange(n)

    def __len__(self) -> int:
        return len(self.services)

    def _rows(self, table: dict[str, np.ndarray], keys: frozenset[str] | Sequence[str]) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        for key in keys:
            rows = table.get(key)
            if rows is not None:
                mask[rows] = True
        return mask

    def covered(self, home: Coverage) -> np.ndarray:
        """Services whose catchment includes the home: unrestricted, or a code or polygon that holds it."""
        mask = ~self.restricted | self._rows(self.serves, home.codes)
        if self._polygon_tree is not None:
            hits = self._polygon_tree.query(shapely.Point(home.lon, home.lat), predicate="intersects")
            mask[self.polygon_rows[hits]] = True
        return mask

    def mask(self, query: ServiceQuery) -> np.ndarray:
        n = len(self)
        mask = np.ones(n, dtype=bool) if query.include_inactive else self.active.copy()
        if query.types is not None:
            mask &= np.isin(self.type, [_TYPES.index(t) for t in query.types])
        if query.subtypes is not None:
            mask &= np.isin(self.subtype, list(query.subtypes))
        fixed = [x for x in query.needs if not x.startswith("language:")]
        wanted = _bits(fixed)
        if wanted:
            mask &= (self.not_met & wanted) == 0
            if query.needs_confirmed:
                mask &= (self.met & wanted) == wanted
        for language in (x for x in query.needs if x.startswith("language:")):
            mask &= ~self._rows(self.lang_not, [language])
            if query.needs_confirmed:
                mask &= self._rows(self.lang_met, [language])
        if query.age is not None:
            mask &= (self.min_age <= query.age) & (self.max_age >= query.age)
        if query.gender is not None:
            other = "male_only" if query.gender == "female" else "female_only"
            mask &= self.gender != other
        if query.area_codes is not None:
            mask &= self._rows(self.located_in, query.area_codes)
        if query.exclude_area_codes is not None:
            mask &= ~self._rows(self.located_in, query.exclude_area_codes)
        if query.covers is not None:
            mask &= self.covered(query.covers)
        if query.accepting_only:
            mask &= self.accepting
        return mask


def _bits(needs: Sequence[str]) -> np.uint32:
    value = np.uint32(0)
    for need in needs:
        bit = _NEED_BITS.get(need)
        if bit is not None:
            value |= bit
    return value
