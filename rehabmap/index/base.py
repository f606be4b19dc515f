"""The one interface every index backend implements (embedded SQLite+NumPy, Elasticsearch).

Backends evaluate hard filters and distance; ranking and explanation live in `rehabmap.matching`, so both
backends give the same answers by construction and the shared behaviour suite proves it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from rehabmap.record import Service
from rehabmap.taxonomy import ServiceType

PersonGender = Literal["female", "male"]


@dataclass(frozen=True)
class Coverage:
    """A home, as far as catchment goes: the ONS codes it lies in and its point (for polygons)."""

    codes: frozenset[str]
    lat: float
    lon: float


@dataclass(frozen=True)
class ServiceQuery:
    """Hard filters. A need passes when the service meets it or has not said; `needs_confirmed`
    demands an explicit yes. Services with a stated 'not met' never pass."""

    types: frozenset[ServiceType] | None = None
    subtypes: frozenset[str] | None = None
    needs: tuple[str, ...] = ()
    needs_confirmed: bool = False
    age: int | None = None
    gender: PersonGender | None = None
    area_codes: frozenset[str] | None = None
    exclude_area_codes: frozenset[str] | None = None
    covers: Coverage | None = None
    accepting_only: bool = False
    include_inactive: bool = False
    text: str | None = None


@dataclass(frozen=True)
class Hit:
    service: Service
    distance_km: float


@dataclass(frozen=True)
class Page:
    items: list[Service]
    total: int


@dataclass(frozen=True)
class IndexInfo:
    backend: str
    count: int
    built_at: datetime | None
    location: str
    sources: dict[str, int] = field(default_factory=dict)


class IndexBackend(Protocol):
    def info(self) -> IndexInfo: ...

    def get(self, service_id: str) -> Service | None: ...

    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        """Services passing the filters: by text relevance when `query.text`, else by name then id."""
        ...

    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        """The k services nearest the point by great-circle distance, ties broken by id: exact."""
        ...

    def all(self) -> Iterator[Service]: ...


class IndexWriter(Protocol):
    def replace_all(self, services: Iterable[Service]) -> int:
        """Build a complete new index and switch to it atomically; the old one serves until then."""
        ...
