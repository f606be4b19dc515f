"""The Elasticsearch backend: one versioned index per build, served through an alias (DESIGN.md §7).

A rebuild writes a complete new index `<base>-<UTC timestamp>`, refreshes it, then moves the alias
`<base>` to it in one `_aliases` call, so readers see either the old generation or the new one, never a
half-built one; a build that fails leaves the alias where it was. Old generations are deleted last.

Filters mirror `ServiceColumns.mask` (the embedded backend's semantics) clause for clause. Distances are
not taken from Elasticsearch: candidates come back in its `_geo_distance` order, and the exact
great-circle distance is recomputed from the stored point with `geodata.distance.haversine_km`, the
function the embedded backend uses, so both backends give the same k nearest to the metre.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import streaming_bulk
from pydantic import ValidationError

from geodata.distance import haversine_km
from rehabmap.config import Settings
from rehabmap.errors import DomainError, IndexNotBuilt
from rehabmap.index.base import Coverage, Hit, IndexInfo, Page, ServiceQuery, overlay_record
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, ServiceType, types_narrowed_by

log = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
_TEXT_FIELDS = ["name", "description", "organisation"]
_BULK_CHUNK = 1000
_BULK_TIMEOUT_S = 120
_SCAN_PAGE = 1000
_NEAREST_PAGE_MAX = 1000  # well under the default index.max_result_window (10,000)
# Elasticsearch's own distances (sort and geo_distance filter) use a slightly different earth radius and
# quantised coordinates; a candidate whose server distance is beyond the exact answer by more than this
# cannot belong to it. Generous on purpose: it only costs a few more candidates.
_SLACK_RELATIVE = 1e-4
_SLACK_KM = 0.01

# Words are what SQLite FTS5 `unicode61` sees as tokens (runs of letters and digits, diacritics
# removed), then Porter-stemmed: the embedded backend's text search, so both match the same records.
_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "analysis": {
        "char_filter": {
            "non_word_to_space": {"type": "pattern_replace", "pattern": r"[^\p{L}\p{N}]", "replacement": " "},
        },
        "analyzer": {
            "rehab_text": {
                "type": "custom",
                "char_filter": ["non_word_to_space"],
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding", "porter_stem"],
            },
        },
    },
}

_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "_meta": {"schema_version": SCHEMA_VERSION},
    "properties": {
        "id": {"type": "keyword"},
        "name": {"type": "text", "analyzer": "rehab_text"},
        "name_sort": {"type": "keyword"},  # name.casefold(): the embedded backend's name order
        "description": {"type": "text", "analyzer": "rehab_text"},
        "organisation": {"type": "text", "analyzer": "rehab_text"},
        "source": {"type": "keyword"},
        "service_type": {"type": "keyword"},
        "subtype": {"type": "keyword"},
        "needs_met": {"type": "keyword"},
        "needs_not_met": {"type": "keyword"},
        "located_in": {"type": "keyword"},  # the ICB, sub-ICB, LAD and region codes of the point
        "serves": {"type": "keyword"},  # service_area.codes
        "restricted": {"type": "boolean"},  # has a service area (codes or polygon)
        "service_area": {"type": "geo_shape"},  # service_area.polygon
        "location": {"type": "geo_point"},
        "gender": {"type": "keyword"},
        "status": {"type": "keyword"},
        "accepting": {"type": "boolean"},  # accepting_referrals is True (unknown is not accepting)
        "min_age": {"type": "integer"},
        "max_age": {"type": "integer"},
        "record": {"type": "object", "enabled": False},  # the whole Service, kept in _source only
    },
}


def _client(settings: Settings) -> Elasticsearch:
    if not settings.elasticsearch_url:
        raise IndexNotBuilt("The Elasticsearch backend is selected but ELASTICSEARCH_URL is not set.")
    return Elasticsearch(settings.elasticsearch_url)


def _version_name(base: str, when: datetime) -> str:
    return f"{base}-{when.strftime('%Y%m%d%H%M%S%f')}"


def _is_version_of(base: str, name: str) -> bool:
    return re.fullmatch(re.escape(base) + r"-\d{20}", name) is not None


def to_document(service: Service) -> dict[str, Any]:
    """The indexed fields of one service, plus the record itself (not indexed) for `get`."""
    doc: dict[str, Any] = {
        "id": service.id,
        "name": service.name,
        "name_sort": service.name.casefold(),
        "description": service.description,
        "organisation": service.organisation,
        "source": service.source,
        "service_type": service.service_type.value,
        "subtype": service.subtype,
        "needs_met": service.needs_met,
        "needs_not_met": service.needs_not_met,
        "located_in": list(service.areas.codes()),
        "serves": service.service_area.codes,
        "restricted": service.service_area.restricted,
        "location": {"lat": service.lat, "lon": service.lon},
        "gender": service.gender,
        "status": service.status,
        "accepting": service.accepting_referrals is True,
        "min_age": service.min_age,
        "max_age": service.max_age,
        "record": service.model_dump(mode="json"),
    }
    if service.service_area.polygon:
        doc["service_area"] = service.service_area.polygon
    return {k: v for k, v in doc.items() if v is not None}


class ElasticWriter:
    """Builds a complete new index generation, then moves the alias to it."""

    def __init__(self, client: Elasticsearch, base: str) -> None:
        self.client = client
        self.base = base

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Elasticsearch | None = None) -> ElasticWriter:
        return cls(client or _client(settings), settings.elasticsearch_index)

    def replace_all(self, services: Iterable[Service]) -> int:
        started = datetime.now(timezone.utc)
        name = _version_name(self.base, started)
        self.client.indices.create(index=name, settings=_SETTINGS, mappings=_MAPPINGS)
        try:
            count, sources = self._write(name, services)
            self.client.indices.put_mapping(index=name, meta={
                "schema_version": SCHEMA_VERSION, "built_at": datetime.now(timezone.utc).isoformat(),
                "count": count, "sources": dict(sources)})
            self.client.indices.refresh(index=name)
            self._switch_alias(name)
        except BaseException:
            try:
                self.client.options(ignore_status=404).indices.delete(index=name)
            except Exception:  # the build's own error is the one to raise; the next build removes it
                log.warning("could not delete the abandoned index %s", name, exc_info=True)
            raise
        self._delete_older_than(name)
        return count

    def upsert(self, changes: Mapping[str, Mapping[str, Any]], *,
               before_commit: Callable[[], None] | None = None) -> list[Service]:
        """Edit records of the index behind the alias (see `RecordWriter.upsert`): each is read, laid over
        and indexed again with refresh, so a search right after sees it."""
        docs: list[Service] = []
        for service_id, fields in changes.items():
            found = self.client.options(ignore_status=404).get(index=self.base, id=service_id,
                                                               source_includes=["record"])
            current = Service.model_validate(found["_source"]["record"]) if found.get("found") else None
            try:
                service = overlay_record(current, fields)
            except (ValidationError, DomainError, ValueError) as exc:
                log.warning("edit to %s not applied: %s", service_id, type(exc).__name__)
                continue
            if service != current:
                docs.append(service)
        if before_commit is not None:
            before_commit()
        for service in docs:
            self.client.index(index=self.base, id=service.id, document=to_document(service), refresh=True)
        return docs

    def _write(self, name: str, services: Iterable[Service]) -> tuple[int, Counter[str]]:
        seen: set[str] = set()
        sources = Counter[str]()

        def actions() -> Iterator[dict[str, Any]]:
            for service in services:
                if service.id in seen:  # the embedded store refuses these too (UNIQUE id)
                    raise ValueError(f"Service id '{service.id}' appears twice in one build.")
                seen.add(service.id)
                sources[service.source] += 1
                yield {"_op_type": "create", "_index": name, "_id": service.id, "_source": to_document(service)}

        client = self.client.options(request_timeout=_BULK_TIMEOUT_S)
        for _ok, _item in streaming_bulk(client, actions(), chunk_size=_BULK_CHUNK):
            pass  # raises on the first chunk with a rejected document
        return len(seen), sources

    def _switch_alias(self, name: str) -> None:
        """One `_aliases` call: remove the alias from every index that has it, add it to the new one."""
        actions: list[dict[str, Any]] = []
        current = self.client.options(ignore_status=404).indices.get_alias(name=self.base)
        if current.meta.status == 200:
            actions += [{"remove": {"index": index, "alias": self.base}} for index in current.body]
        actions.append({"add": {"index": name, "alias": self.base}})
        self.client.indices.update_aliases(actions=actions)

    def _delete_older_than(self, name: str) -> None:
        """Earlier generations and builds abandoned half way; a build started after this one is left."""
        found = self.client.options(ignore_status=404).indices.get_alias(index=f"{self.base}-*")
        if found.meta.status != 200:
            return
        old = [index for index, info in found.body.items()
               if _is_version_of(self.base, index) and index < name and self.base not in info.get("aliases", {})]
        if old:
            self.client.options(ignore_status=404).indices.delete(index=",".join(old))


class ElasticIndex:
    """Reader over the alias; every answer comes from one generation."""

    def __init__(self, client: Elasticsearch, alias: str) -> None:
        self.client = client
        self.alias = alias

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Elasticsearch | None = None) -> ElasticIndex:
        return cls(client or _client(settings), settings.elasticsearch_index)

    def _not_built(self) -> IndexNotBuilt:
        return IndexNotBuilt(f"No Elasticsearch index '{self.alias}'. Run 'rehabmap index SOURCE...' first.")

    def _search(self, index: str | None = None, **body: Any) -> dict[str, Any]:
        try:
            return self.client.search(index=index or self.alias, **body).body
        except NotFoundError as exc:
            if exc.error == "index_not_found_exception":
                raise self._not_built() from None
            raise

    def info(self) -> IndexInfo:
        try:
            mapping = self.client.indices.get_mapping(index=self.alias).body
        except NotFoundError:
            raise self._not_built() from None
        (concrete, body), = mapping.items()
        meta = body.get("mappings", {}).get("_meta", {})
        count = self.client.count(index=concrete)["count"]
        built_at = datetime.fromisoformat(meta["built_at"]) if meta.get("built_at") else None
        node = self.client.transport.node_pool.get().config
        location = f"{node.scheme}://{node.host}:{node.port}{node.path_prefix}/{concrete}"
        return IndexInfo("elasticsearch", int(count), built_at, location, dict(meta.get("sources", {})))

    def get(self, service_id: str) -> Service | None:
        response = self.client.options(ignore_status=404).get(index=self.alias, id=service_id,
                                                              source_includes=["record"])
        if response.get("found"):
            return Service.model_validate(response["_source"]["record"])
        if "found" not in response:  # no document answer at all: the alias (or its index) is missing
            raise self._not_built()
        return None

    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        filters = filter_clauses(query)
        if query.text:
            bool_query = {"must": text_clauses(query.text), "filter": filters}
            sort: list[Any] = ["_score", {"name_sort": "asc"}, {"id": "asc"}]
        else:
            bool_query = {"filter": filters}
            sort = [{"name_sort": "asc"}, {"id": "asc"}]
        response = self._search(query={"bool": bool_query}, sort=sort, from_=offset, size=limit,
                                track_total_hits=True, source_includes=["record"])
        hits = response["hits"]
        return Page([_service(h) for h in hits["hits"]], int(hits["total"]["value"]))

    def count_by_type(self, query: ServiceQuery) -> dict[ServiceType, int]:
        """Per type, how many services pass the query, in one terms aggregation."""
        text = {"must": text_clauses(query.text)} if query.text else {}
        response = self._search(query={"bool": {**text, "filter": filter_clauses(query)}}, size=0,
                                aggs={"types": {"terms": {"field": "service_type", "size": len(ServiceType)}}})
        counts = {b["key"]: int(b["doc_count"]) for b in response["aggregations"]["types"]["buckets"]}
        return {t: counts.get(t.value, 0) for t in ServiceType}

    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        if k <= 0:
            return []
        filters = filter_clauses(query)
        if query.text:
            filters += text_clauses(query.text)
        if radius_km is not None:
            # Widened by the slack: the exact cut is made below on the recomputed distance.
            reach = radius_km * (1 + _SLACK_RELATIVE) + _SLACK_KM
            filters.append({"geo_distance": {"distance": f"{reach}km", "location": {"lat": lat, "lon": lon}}})
        sort = [{"_geo_distance": {"location": {"lat": lat, "lon": lon}, "order": "asc", "unit": "km",
                                   "distance_type": "arc"}},
                {"id": "asc"}]
        page = min(k + max(10, k // 4), _NEAREST_PAGE_MAX)
        services: list[Service] = []
        index: str | None = None
        search_after: list[Any] | None = None
        while True:
            extra = {"search_after": search_after} if search_after is not None else {}
            response = self._search(index, query={"bool": {"filter": filters}}, sort=sort, size=page,
                                    track_total_hits=False, source_includes=["record"], **extra)
            hits = response["hits"]["hits"]
            services += [_service(h) for h in hits]
            if len(hits) < page:
                break
            index = hits[0]["_index"]  # later pages read the same generation even if the alias moves
            search_after = hits[-1]["sort"]
            if len(services) >= k:
                kth = float(np.partition(_distances(lat, lon, services), k - 1)[k - 1])
                # Whatever is not fetched yet is at least this far by the server's reckoning, so further
                # than the k-th exact distance: the answer is complete.
                if float(search_after[0]) * (1 - _SLACK_RELATIVE) - _SLACK_KM > kth:
                    break
        if not services:
            return []
        distances = _distances(lat, lon, services)
        ids = np.array([s.id for s in services], dtype=object)
        rows = np.arange(len(services))
        if radius_km is not None:
            rows = rows[distances[rows] <= radius_km]
        order = rows[np.lexsort((ids[rows], distances[rows]))][:k]
        return [Hit(services[i], float(distances[i])) for i in order]

    def all(self) -> Iterator[Service]:
        """Every service, in id order, read from the generation current when iteration starts."""
        return (_service(h) for h in self._scan("record"))

    def ids(self) -> list[str]:
        return [h["_source"]["id"] for h in self._scan("id")]

    def _scan(self, field: str) -> Iterator[dict[str, Any]]:
        """Every document's hit with one source field, in id order, from the generation current at the start."""
        index: str | None = None
        search_after: list[Any] | None = None
        while True:
            extra = {"search_after": search_after} if search_after is not None else {}
            response = self._search(index, query={"match_all": {}}, sort=[{"id": "asc"}], size=_SCAN_PAGE,
                                    track_total_hits=False, source_includes=[field], **extra)
            hits = response["hits"]["hits"]
            if not hits:
                return
            index = hits[0]["_index"]
            yield from hits
            if len(hits) < _SCAN_PAGE:
                return
            search_after = hits[-1]["sort"]


def _service(hit: dict[str, Any]) -> Service:
    return Service.model_validate(hit["_source"]["record"])


def _distances(lat: float, lon: float, services: list[Service]) -> np.ndarray:
    return haversine_km(lat, lon, np.array([s.lat for s in services], dtype=np.float64),
                        np.array([s.lon for s in services], dtype=np.float64))


def _either(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def _missing(field: str) -> dict[str, Any]:
    return {"bool": {"must_not": [{"exists": {"field": field}}]}}


_MATCH_NONE: dict[str, Any] = {"match_none": {}}


def filter_clauses(query: ServiceQuery) -> list[dict[str, Any]]:
    """The hard filters as Elasticsearch filter clauses: `ServiceColumns.mask`, one rule at a time."""
    clauses: list[dict[str, Any]] = []
    if not query.include_inactive:
        clauses.append({"term": {"status": "active"}})
    if query.types is not None:
        clauses.append({"terms": {"service_type": sorted(t.value for t in query.types)}} if query.types
                       else _MATCH_NONE)
    narrowed = types_narrowed_by(query.subtypes or frozenset())
    if narrowed:
        clauses.append(_either({"terms": {"subtype": sorted(query.subtypes or ())}},
                               {"bool": {"must_not": [{"terms": {"service_type": sorted(t.value for t in narrowed)}}]}}))
    # A need passes unless the service says it is not met; confirmed needs demand an explicit yes. Codes
    # outside the vocabulary are ignored, as the embedded backend's need bits ignore them.
    needs = sorted({n for n in query.needs if n in NEED_LABELS or n.startswith("language:")})
    if needs:
        clauses.append({"bool": {"must_not": [{"terms": {"needs_not_met": needs}}]}})
        if query.needs_confirmed:
            clauses += [{"term": {"needs_met": need}} for need in needs]
    if query.age is not None:
        clauses.append(_either({"range": {"min_age": {"lte": query.age}}}, _missing("min_age")))
        clauses.append(_either({"range": {"max_age": {"gte": query.age}}}, _missing("max_age")))
    if query.gender is not None:
        other = "male_only" if query.gender == "female" else "female_only"
        clauses.append({"bool": {"must_not": [{"term": {"gender": other}}]}})
    if query.area_codes is not None:
        clauses.append({"terms": {"located_in": sorted(query.area_codes)}} if query.area_codes else _MATCH_NONE)
    if query.exclude_area_codes:
        clauses.append({"bool": {"must_not": [{"terms": {"located_in": sorted(query.exclude_area_codes)}}]}})
    if query.covers is not None:
        clauses.append(coverage_clause(query.covers))
    if query.accepting_only:
        clauses.append({"term": {"accepting": True}})
    return clauses


def coverage_clause(home: Coverage) -> dict[str, Any]:
    """Unrestricted, or serving one of the home's codes, or a service-area polygon holding the home."""
    options: list[dict[str, Any]] = [{"bool": {"must_not": [{"term": {"restricted": True}}]}}]
    if home.codes:
        options.append({"terms": {"serves": sorted(home.codes)}})
    options.append({"geo_shape": {"service_area": {
        "shape": {"type": "point", "coordinates": [home.lon, home.lat]}, "relation": "intersects"}}})
    return _either(*options)


def text_clauses(text: str) -> list[dict[str, Any]]:
    """Every word must appear in name, description or organisation; the last may be a prefix.

    Words are cleaned exactly as the embedded backend cleans them for FTS5.
    """
    words = ["".join(ch for ch in w if ch.isalnum()) for w in text.split()]
    words = [w for w in words if w]
    if not words:
        return [_MATCH_NONE]
    clauses: list[dict[str, Any]] = [{"multi_match": {"query": w, "fields": _TEXT_FIELDS, "operator": "and"}}
                                      for w in words[:-1]]
    # bool_prefix: the final term becomes a prefix query, with no cap on how many terms it expands to
    # (phrase_prefix stops at max_expansions, so "rehab 1" would miss most names ending in 1xx).
    clauses.append({"multi_match": {"query": words[-1], "fields": _TEXT_FIELDS, "type": "bool_prefix"}})
    return clauses
