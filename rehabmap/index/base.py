"""The one interface every index backend implements (embedded SQLite+NumPy, Elasticsearch).

Backends evaluate hard filters and distance; ranking and explanation live in `rehabmap.match`. Where an index
ranks in its own pass (`around` with a margin, `best_fit`), it ranks by the same rule, and the shared behaviour and
brute-force suites prove both backends give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from rehabmap.explanation import cqc_registration
from rehabmap.fit import Fit
from rehabmap.index.names import OVERLAY_SOURCE
from rehabmap.record import Service, edit_context
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
    demands an explicit yes. Services with a stated 'not met' never pass. `subtypes` narrow only the
    types they belong to (`types_narrowed_by`): {imha} keeps IMHA among advocacy services and leaves
    every other type as it is."""

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


class Hit(NamedTuple):
    """A service an index found, and its distance from the point asked about. A named tuple: as immutable
    as a frozen dataclass, and a third of the cost to make (a match makes ~10-20)."""

    service: Service
    distance_km: float


class Around(NamedTuple):
    """What one match asks about the services within a radius of a home, answered together (`around`). A named
    tuple, as `Hit` is: as immutable as a frozen dataclass, and made once a match for ~2k instructions instead of
    ~8k (six `object.__setattr__` calls; bench/RESULTS.md, "outside the index pass", session 26)."""

    nearest: list[Hit]  # the k nearest passing the query, as `nearest` gives them
    nearest_within: list[Hit]  # the k nearest of those located in the areas asked for (empty if none asked)
    total: int  # how many pass the query within the radius, as `count_near` counts them
    # Per type, how many pass the query in the areas asked for, anywhere (not only within the radius), as
    # `count_by_type` counts them; only when asked (`count_within`), else None.
    within_by_type: dict[ServiceType, int] | None = None
    # Asked with `each_type`: per type of the query that none of `nearest` is of, its nearest passing the
    # query within the radius (by distance, then id), where it has one; None when not asked, or where the
    # index does not answer it from its pass (the caller then asks `nearest` of the type).
    nearest_of_types: dict[ServiceType, Hit] | None = None
    # Asked with `margin_km`: the k passing within the radius by effective distance (the distance, plus the
    # margin for a service outside the areas of `within`), then distance, then id, where the index ranks them
    # in its pass, and `nearest_within` is then left empty; else None (the caller ranks `nearest` and
    # `nearest_within` together, which hold them).
    ranked: list[Hit] | None = None
    # Per type of `nearest_of_types`, how many pass the query within the radius (its part of `total`), where the
    # index counts them in the same pass; else None (the caller asks `count_near` of the type).
    totals_of_types: dict[ServiceType, int] | None = None


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
    # How long the last edits this process took in had waited to be seen by it (None: edits are seen at once).
    edit_lag_s: float | None = None
    # The token of the build that made it (`IndexWriter.replace_all`'s `build`): None for an index built before
    # builds had one.
    build: str | None = None


class Replaced(Protocol):
    """What a rebuild's guard reads of the index it replaces (`indexer.pipeline.build_index`): every
    `IndexBackend`, and an index of the release before this one (`Previous`)."""

    def ids(self) -> list[str]: ...

    def get(self, service_id: str) -> Service | None: ...


@dataclass(frozen=True)
class Previous:
    """The index a release before this one serves from, under another name than this version's because it has
    another schema or was named before names carried one (docs/deploy.md, "Upgrades"). Until this version's index
    is built it is what a rebuild replaces; after, it is left for that release's processes, to delete once none
    runs."""

    index: Replaced
    where: str  # what it is, for a person to find and delete

    def unread(self) -> str:
        """Said where this version finds no index of its own beside it (a process upgraded before the rebuild)."""
        return (f"{self._where()} is an earlier release's: this version reads an index of its own, which "
                "'rehabmap index SOURCE...' builds beside it (docs/deploy.md, \"Upgrades\").")

    def left(self) -> str:
        """Said after a rebuild while it is still there."""
        return (f"{self._where()}, of an earlier release, is still there for its processes: delete it once none "
                "runs (docs/deploy.md, \"Upgrades\").")

    def _where(self) -> str:
        return self.where[:1].upper() + self.where[1:]


class IndexBackend(Protocol):
    def info(self) -> IndexInfo: ...

    def built(self) -> bool:
        """Whether there is an index this version reads (`info` raises IndexNotBuilt where there is none),
        asked without loading it: a sync that finds nothing to write learns it without reading every service."""
        ...

    def generation(self) -> str:
        """A cheap token for what the index holds now: it changes on every rebuild and on every edit, and
        every process reading the same index sees the change. What is computed from the index is cached
        under it (`rehabmap.index.generation_cache`); ask for it before reading what you cache, so a value
        is never filed under a newer generation than the data it came from."""
        ...

    def get(self, service_id: str) -> Service | None: ...

    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        """Services passing the filters: by text relevance when `query.text`, else by name then id."""
        ...

    def count_by_type(self, query: ServiceQuery) -> dict[ServiceType, int]:
        """Per service type, how many services pass the filters: one pass instead of one count a type."""
        ...

    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        """The k services nearest the point by great-circle distance, ties broken by id: exact."""
        ...

    def nearest_of_types(self, lat: float, lon: float, query: ServiceQuery, *, k: int) -> dict[ServiceType, list[Hit]]:
        """For each of the query's types (it must name them), `nearest(k)` of the query narrowed to that type, at
        any distance: a match naming no type asks it of all seven, and an index that reads them in one pass
        answers for the cost of about one (`nearest_of_types_in_parts` asks them one by one)."""
        ...

    def count_near(self, lat: float, lon: float, query: ServiceQuery, *, radius_km: float) -> int:
        """How many services pass the filters within `radius_km` of the point, cut exactly as `nearest`
        cuts, without reading them."""
        ...

    def around(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float,
               within: frozenset[str] | None = None, count_within: bool = False,
               each_type: bool = False, margin_km: float | None = None) -> Around:
        """`nearest(k, radius_km)`, the same for the query with `area_codes=within` (when given), and
        `count_near(radius_km)`, in one call: a match asks all three of the same circle, and an index that
        reads the circle's candidates once answers them for the cost of one. With `count_within` (and
        `within`), also `count_by_type` of the query with `area_codes=within`: the home ICB's per-type
        counts of a match's summary, which that pass holds whenever the areas lie inside the circle's box.
        With `each_type`, where the index can tell from its pass, each type's nearest within the radius
        that `nearest` does not show (`Around.nearest_of_types`): a summary's nearest of that type; and how many
        of each such type pass within the radius (`Around.totals_of_types`): what a shared list that shows none
        of it left out (`rehabmap.match.left_out`). With
        `margin_km` (and `within`), where the index can rank them in its pass, the k by effective distance
        (`Around.ranked`) instead of `nearest_within`: a match's ranking, without merging two lists in Python."""
        ...

    def scan(self, query: ServiceQuery) -> Iterator[Service]:
        """Every service passing the filters, in `find`'s order, for exports of any size: read a batch at a
        time (never the whole answer in memory, no result window) from the generation current when the
        call is made. The first request is made before this returns, so an index that is missing or out of
        reach raises here, not half way through the caller's output."""
        ...

    def scan_nearest(self, lat: float, lon: float, query: ServiceQuery, *,
                     radius_km: float | None = None) -> Iterator[Hit]:
        """Every service passing the filters (within `radius_km`), in `nearest`'s order, read as `scan`
        reads."""
        ...

    def best_fit(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float | None,
                 within: str | None, margin_km: float, since: date) -> list[Hit]:
        """The k passing (within `radius_km`) that fit best (`rehabmap.fit.Fit`: the query's needs the service says
        it meets, taking referrals, the capacity reported on `since` or later), then by effective distance (the
        distance, plus `margin_km` for a service not located in the area `within`), distance and id: exact, in
        `best_fit_key`'s order."""
        ...

    def all(self) -> Iterator[Service]: ...

    def ids(self) -> list[str]:
        """Every service's id, without reading the records: for what needs the ids alone (the ORUK id map)."""
        ...


def around_in_parts(backend: IndexBackend, lat: float, lon: float, query: ServiceQuery, *, k: int,
                    radius_km: float, within: frozenset[str] | None = None, count_within: bool = False,
                    each_type: bool = False, margin_km: float | None = None) -> Around:
    """`IndexBackend.around` asked as its separate questions, for an index with no pass to share between them
    (`each_type` and `margin_km` are not answered: no pass holds them)."""
    inside = [] if within is None else backend.nearest(lat, lon, replace(query, area_codes=within), k=k,
                                                       radius_km=radius_km)
    by_type = (backend.count_by_type(replace(query, area_codes=within))
               if count_within and within is not None else None)
    return Around(backend.nearest(lat, lon, query, k=k, radius_km=radius_km), inside,
                  backend.count_near(lat, lon, query, radius_km=radius_km), by_type)


def effective_key(within: str | None, margin_km: float) -> Callable[[Hit], tuple[float, float, str]]:
    """A hit's place in the nearest order from a home in the area `within` (effective distance, distance, id):
    one call a hit, as a sort key."""
    def key(hit: Hit) -> tuple[float, float, str]:
        margin = 0.0 if within and hit.service.areas.icb_code == within else margin_km
        return (hit.distance_km + margin, hit.distance_km, hit.service.id)
    return key


def best_fit_key(needs: tuple[str, ...], within: str | None, margin_km: float,
                 since: date) -> Callable[[Hit], tuple[int, int, int, float, float, str]]:
    """A hit's place in "best fit first" (`IndexBackend.best_fit`): its fit (`rehabmap.fit.Fit` of the stated
    `needs`, the capacity reported on `since` or later), then its place in the nearest order from a home in the area
    `within`; one call a hit, as a sort key, for an index that ranks the records it reads."""
    effective = effective_key(within, margin_km)

    def key(hit: Hit) -> tuple[int, int, int, float, float, str]:
        service = hit.service
        fit = Fit.of(service, (n for n in needs if n in service.needs_met), service.capacity_since(since))
        return (*fit.key(), *effective(hit))
    return key


def nearest_of_types_in_parts(backend: IndexBackend, lat: float, lon: float, query: ServiceQuery, *,
                              k: int) -> dict[ServiceType, list[Hit]]:
    """`IndexBackend.nearest_of_types` asked as one `nearest` a type, for an index with no pass to share."""
    if query.types is None:
        raise ValueError("nearest_of_types needs the query's types")
    return {t: backend.nearest(lat, lon, replace(query, types=frozenset({t})), k=k) for t in query.types}


class IndexWriter(Protocol):
    def replace_all(self, services: Iterable[Service], *, build: str | None = None) -> int:
        """Build a complete new index and switch to it atomically; the old one serves until then. `build`: the
        token it bears (`IndexInfo.build`; None: one of its own), chosen by a rebuild before it begins, so that a
        rebuild cut short can tell whether the live index is its own (`app.pending_rebuild.recover`), not only
        whether one was built since it began, which may be another host's."""
        ...


class Stored(Protocol):
    """A record that a parallel import's worker process prepared and already wrote, in its writer's stored form,
    into its part file (`PartWriter.parts`), so nothing of it crosses between processes: what the import reads of
    a record before the write, its id and type, is at hand; the record itself (`service`) is read back from the
    part only where it is merged with another or a maintainer's edit is laid over it, which few are."""

    @property
    def id(self) -> str: ...

    @property
    def service_type(self) -> ServiceType: ...

    def service(self) -> Service: ...


class Revision(NamedTuple):
    """A record given again to a writer for the row it was first written at (0 for the first): a parallel import
    merges duplicates as its records come from its workers, and gives a record merged with a later one again, once
    every record is in (`indexer.merge.Merging`); None where a later record showed it to be one with an earlier row's,
    whose record it is then part of: the row is taken out (`search.embedded`: the rows after it move up)."""

    row: int
    service: Service | None


def as_service(record: Service | Stored) -> Service:
    return record if isinstance(record, Service) else record.service()


class Parts(Protocol):
    """The part files of one parallel import, made in the importing process before it forks its workers."""

    def write(self, services: list[Service]) -> Any:
        """In a worker: these records written into a part file of their own; what the importing process is told of
        it (pickled: its name, and whatever else the writer gathered of the records; its rows are numbered from 1,
        in their order)."""
        ...

    def stored(self, part: Any, ids: list[str], types: list[ServiceType]) -> list[Stored]:
        """In the importing process: the records a worker wrote into that part, in their order, given their ids and
        types."""
        ...

    def remove(self) -> None:
        """The part files deleted, once the import has written its index or stopped."""
        ...


@runtime_checkable
class PartWriter(Protocol):
    """A writer whose index a parallel import's workers write in parts (`indexer.workers`), and which copies
    the records stored there (`Stored`) into the new index along with the records it is given."""

    def parts(self) -> Parts | None:
        """New, empty part files for one import, or None where this writer takes none."""
        ...

    def replace_all(self, services: Iterable[Service | Stored | Revision], *,
                    before_swap: Callable[[], None] | None = None, build: str | None = None) -> int:
        """`IndexWriter.replace_all`, of records stored in parts too, given again (`Revision`) where merged; the new
        index is swapped in only if `before_swap` returns (it may raise to refuse it)."""
        ...


class RecordWriter(Protocol):
    """Edits to single records of the live index, for the maintainers' API (both writers implement it)."""

    def upsert(self, changes: Mapping[str, Mapping[str, Any]], *,
               before_commit: Callable[[], None] | None = None, settle: bool = False) -> list[Service]:
        """Lay each service's fields over its record in the live index (`overlay_record`), or insert the
        fields as a whole record when there is none, in one transaction that readers see once it returns.
        A change the record refuses is skipped and logged. Returns the records written. `settle`: the changes may
        have been written by a call cut off after its write (an edit sent again after a 503): readers are told of
        them as if written now, though none differs."""
        ...


class LiveWriter(IndexWriter, RecordWriter, Protocol):
    """A writer of the live index that both builds whole new indexes and edits single records, as each
    backend's writer does."""


# Of a field a maintainer's edit lays over a source's record, where the source's own word is kept, at the first such
# edit, so that whose word each is stays known (`rehabmap.explanation.needs_by_basis`, `gender_basis`).
_SOURCES_WORD = {"needs_met": "source_needs_met", "gender": "source_gender"}
_NOT_OVERLAID = frozenset({"id", "provenance", "field_sources", "cqc_registered_needs", *_SOURCES_WORD.values()})


def overlay_record(current: Service | None, fields: Mapping[str, Any]) -> Service:
    """`current` with the fields (JSON values) laid over it, or the fields as a whole record when there is
    no current one. On an imported record, each laid field is marked as coming from the directory in
    `field_sources`, and the first edit of its needs lists or gender keeps what its source stated apart
    (`Service.source_needs_met`, `Service.source_gender`; a CQC record's registration too,
    `Service.cqc_registered_needs`): a rebuild or
    sync lays the edit over the source's record afresh, so they follow the source. Fields that carry `provenance`
    are a whole record (one a sync wrote, with its own provenance) and replace the current one. The same fields
    laid twice give the same record. A catchment polygon the fields leave as `current` has it is kept unchecked
    (`edit_context`), as `rehabmap.maintain.edits.validated` keeps it. Raises what `Service` validation raises."""
    if current is None or "provenance" in fields:
        return Service.model_validate(dict(fields))
    data = current.model_dump(mode="json")
    laid = {k: v for k, v in fields.items() if k not in _NOT_OVERLAID}
    data.update(laid)
    if current.source != OVERLAY_SOURCE:  # a service made in the directory comes from it whole
        data["field_sources"] = {**data.get("field_sources", {}), **{k: OVERLAY_SOURCE for k in laid}}
        if "needs_met" in laid:  # the needs CQC registered stay said as such, apart from the maintainer's
            data["cqc_registered_needs"] = cqc_registration(current)
        before = current.__dict__
        for name, kept in _SOURCES_WORD.items():  # later edits leave what the first kept (`data` holds it)
            if name in laid and before["field_sources"].get(name) != OVERLAY_SOURCE:
                data[kept] = before[name]
    return Service.model_validate(data, context=edit_context(current))


def with_sources_word(current: Service, said: Mapping[str, Any]) -> Service | None:
    """`current` keeping the source's word (`said`: JSON values by field, as the audit log kept them) on each field a
    maintainer's edit laid where it keeps none (`Service.source_gender`, `Service.source_needs_met`), as
    `overlay_record` keeps it at a first edit: a record an edit reached before that was kept (migration 21,
    `rehabmap.maintain.overlay.list_sources_word_due`). None where there is nothing to keep: every such field keeps its
    source's word already (a rebuild, a sync or a later edit laid it), or no edit laid it."""
    fields = current.__dict__
    kept = {_SOURCES_WORD[name]: value for name, value in said.items() if name in _SOURCES_WORD
            and fields["field_sources"].get(name) == OVERLAY_SOURCE and fields[_SOURCES_WORD[name]] is None}
    if not kept or current.source == OVERLAY_SOURCE:
        return None
    return Service.model_validate({**current.model_dump(mode="json"), **kept})
