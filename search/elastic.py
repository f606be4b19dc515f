"""The search engine backend, on Elasticsearch 8 or OpenSearch 2: one versioned index per build, served
through an alias (DESIGN.md §7). It speaks to the cluster through `search.engine.SearchClient`, which each
engine's own client answers; everything here is the REST API the two share.

The alias carries the schema (`alias_of`: `<name>-schema<N>`, the name from `REHABMAP_ELASTICSEARCH_INDEX`), so a
release that reads another schema builds its own beside the alias the release before it serves from, which serves
on until no process of that release runs (docs/deploy.md, "Upgrades"). A rebuild writes a complete new index
`<alias>-<UTC timestamp>`, refreshes it, then moves the alias to it in one `_aliases` call, so readers see
either the old generation or the new one, never a half-built one; a build that fails leaves the alias where it
was. The generation it replaces is kept for a grace period (`elasticsearch_grace_seconds`), so a scan still
reading it (an export, the gap analysis) finishes on it; a later build deletes it, and whatever a crashed build
left behind.

Reads that go past one page (exports, `all`, nearest beyond a page) follow `search_after` over the concrete
index the alias pointed to when they began: no result window, nothing held open in the cluster. (A
point-in-time would also freeze edits made during the scan, but osmem, the server the tests run on, has
only OpenSearch's point-in-time API, not Elasticsearch's `_pit`; a scan sees an edit made while it runs if
it reaches that record afterwards, as the embedded backend's does.)

A cluster that does not answer, or answers that it is overloaded (429, 502-504), raises `IndexUnavailable`
(503 with Retry-After in the API, one line from the CLI). Bulk writes (a build's, an edit's) retry such answers
with exponential backoff, a bounded number of times (`SearchClient.bulk`). A fault of its own (another 5xx) is
`IndexUnavailable` too, and a request it refuses (a 4xx) `RequestRefused`, the operator's to mend (`_amiss`).

Filters mirror `ServiceColumns.mask` (the embedded backend's semantics) clause for clause. Distances are
not taken from Elasticsearch: candidates come back in its `_geo_distance` order, and the exact
great-circle distance is recomputed from the stored point with `geodata.distance.haversine_km`, the
function the embedded backend uses, so both backends give the same k nearest to the metre.
"""

from __future__ import annotations

import functools
import heapq
import inspect
import itertools
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any, NamedTuple, ParamSpec, TypeVar, cast

import numpy as np
from pydantic import ValidationError

from geodata.distance import haversine_km
from rehabmap import errors
from rehabmap.config import Settings
from rehabmap.errors import DomainError, IndexNotBuilt, IndexRefused, IndexUnavailable
from rehabmap.index.base import (Around, Coverage, Hit, IndexInfo, Page, Previous, ServiceQuery, around_in_parts,
                                 best_fit_key, nearest_of_types_in_parts, overlay_record)
from rehabmap.record import Service
from rehabmap.taxonomy import NEED_LABELS, ServiceType, types_narrowed_by
from search.elastic_fit import FitScore
from search.engine import (OVERLOADED, REFUSED_CREDENTIALS, ClusterError, Document, DocumentUnread, Resends,
                           SearchClient, Unreachable, connect, document_source)

log = logging.getLogger(__name__)

# Schema 2: needs read from a record's words are kept apart from its stated needs (`Service.needs_read_from_text`);
# a schema 1 index holds them merged, as if stated, and is refused (rebuilt), never misread. Schema 3: so is a
# gender read from its words (`Service.gender_read_from_text`, in the record only; `gender` is the stated one,
# filtered on); a schema 2 index holds it as `gender`, which left a person out on a guess. Schema 4: a record
# read from a dated file carries the file (`Provenance.edition`); a schema 3 index's records lack it, and would
# read as listed by a live source, "last confirmed" on the day of their import. Schema 5: the facts "best fit first"
# weighs are fields (`referrals` as said, `capacity` and `capacity_as_of`), so the cluster ranks by fit
# (`search.elastic_fit`); a schema 4 index keeps only whether a service takes referrals.
SCHEMA_VERSION = "5"
_FIRST_NAMED_SCHEMA = 5  # the first schema whose alias said it (`alias_of`); the ones before were the bare name
_TEXT_FIELDS = ["name", "description", "organisation"]
_BULK_CHUNK = 1000
_BULK_TIMEOUT_S = 120
# Answers that mean "not now": a bulk request (or a document in it) answered so is sent again after
# _BULK_BACKOFF_S, doubling up to _BULK_MAX_BACKOFF_S, at most _BULK_RETRIES times (~1 min in all), on either
# engine (`search.engine._resending`).
_BULK_RETRIES = 6
# An edit's bulk request holds the index lock (every other edit, sync and swap waits), and a maintainer waits behind a
# gateway that gives up long before a build's bound (7 requests of 120 s and 61 s of backoff: ~15 min, where nginx's
# proxy_read_timeout is 120 s): it waits _EDIT_TIMEOUT_S for an answer and is sent again _EDIT_RETRIES times, at most
# 4 × 12 s + 1 + 2 + 4 s = 55 s in all; those resends are all an edit's, however many chunks it writes.
_EDIT_TIMEOUT_S = 12
_EDIT_RETRIES = 3
_BULK_BACKOFF_S = 1.0
_BULK_MAX_BACKOFF_S = 30.0
_SCAN_PAGE = 1000
_NEAREST_PAGE_MAX = 1000  # well under the default index.max_result_window (10,000)
# Elasticsearch's own distances (sort and geo_distance filter) use a slightly different earth radius and
# quantised coordinates; a candidate whose server distance is beyond the exact answer by more than this
# cannot belong to it. Generous on purpose: it only costs a few more candidates.
_SLACK_RELATIVE = 1e-4
_SLACK_KM = 0.01
# A count within a radius trusts the server's geo_distance filter only inside this much narrower circle and
# checks the services between it and the wider one by their exact distance. Wider than _SLACK_RELATIVE:
# osmem's filter admits points up to ~0.1% beyond its circle (Elasticsearch's is exact to about a cm), and
# here an admitted point would be counted, not just fetched and dropped.
_RING_RELATIVE = 1e-2

_MAX_SOURCES = 10_000  # buckets of the count by source: far more sources than any directory reads

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
        "referrals": {"type": "boolean"},  # accepting_referrals as said (missing when not said)
        "capacity": {"type": "keyword"},
        "capacity_as_of": {"type": "date", "format": "strict_date"},
        "min_age": {"type": "integer"},
        "max_age": {"type": "integer"},
        "record": {"type": "object", "enabled": False},  # the whole Service, kept in _source only
    },
}


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class DocumentRefused(IndexRefused):
    """The cluster refused a document the record accepts (a mapping it does not fit, a shape it finds invalid). Of a
    build: the build fails and the index being served stays as it was. Of an edit: the edit stops unmarked, what the
    cluster took of it stored (`ElasticWriter.upsert`). A domain error, not a `ClusterError`: nothing the person
    asking can change about the request, and the cluster's answer is no fault of rehabmap's code either, so the API
    answers a 503 saying so and the command line its message (before, a 500 and a traceback). `answered`: the
    cluster's status for the document."""


class RequestRefused(IndexRefused):
    """The cluster refused a whole request with a 4xx that is neither overload nor a refusal of rehabmap's
    credentials (a request it will not parse, 400; one larger than it takes, 413): as a refused document, it stops
    the build or the edit, and is nothing the person asking can change; a 503 naming the status, and of a bulk
    request the records it carried. The cluster's own words go to the log, for the operator (`ElasticWriter._bulk`,
    `_amiss`). Before, a raw `ClusterError`: a 500 from the API, a traceback from the command line."""

    code = "index_refused_request"


def _refused_whole(error: ClusterError) -> bool:
    """Whether a request's error is the cluster refusing it as a request (`RequestRefused`): a 4xx that is not "not
    now" (`OVERLOADED`, which `_reachable_or_unavailable` makes unavailable), nor a refusal of the deployment's key
    (`REFUSED_CREDENTIALS`, the same), nor an index the request named missing (`_gone`): the caller that named it says
    what is missing (`ElasticIndex._found`: no index built; `_deleted`: a generation deleted), else `_amiss`; nor a
    conflict (`_CONFLICT`). Before, an edit's read of an alias gone answered "The search index refused this service's
    request (it answered 404)"."""
    return (400 <= error.status < 500 and not _gone(error) and error.status not in OVERLOADED
            and error.status not in REFUSED_CREDENTIALS and error.status != _CONFLICT)


# A whole request answered 409: the cluster answers 200 to any bulk it parsed (its conflicts are its documents', and
# rehabmap's own writes index, never conflict) and has none for an mget, so such an answer is a gateway's or a proxy's
# before it, for a cause this service cannot know. Said as what was seen, to be tried again, and if it persists the
# operator's (`_amiss`); before, a request refused, "the people who run this service have to fix the search index",
# then a conflict "with a change made to it meanwhile", a cause claimed.
_CONFLICT = 409
# Who mends a fault or a refusal of the cluster's whose words are logged (`_amiss`, `RequestRefused`).
_FIX_THE_INDEX = ("The people who run this service have to fix the search index: what it answered is in this "
                  "service's log.")


def _gone(error: ClusterError) -> bool:
    """Whether the cluster answered that an index the request named is not there (a 404 of another kind, a route it
    does not know, is a refused request)."""
    return error.status == 404 and error.error == "index_not_found_exception"


def _refused_switch(error: BaseException) -> bool:
    """Whether the alias switch was refused for certain, so its new index will never be served: the cluster or a
    gateway answered a 4xx other than 408 (a request that timed out). A 5xx, or no answer, may come of a call the
    cluster applied or has queued: before, the build deleted its new index when the alias read after it still named
    the old one, and a queued switch that then applied left no index served."""
    return isinstance(error, ClusterError) and 400 <= error.status < 500 and error.status != 408


@contextmanager
def _reachable_or_unavailable(client: SearchClient, note: str = "", *, reads: bool = False) -> Iterator[None]:
    """A cluster out of reach, one that says it is overloaded, or one that refuses the deployment's own
    credentials becomes `IndexUnavailable`: nothing is wrong with the request, and it can be sent again later.
    (The client has already retried.) The cluster's address goes to the log (INFO, which the server keeps) for
    the operator, not into the message, which the API sends out: once a minute at most for each line, with a count
    (`rehabmap.errors.OperatorLog`), where it was a line a request, so an outage logged at the rate of the searches.
    Any other error answer the call did not take for an answer of its own (a missing index) is `_amiss`'s; `reads`:
    the calls are a reader's, whose answers' words are not logged."""
    try:
        yield
    except Unreachable as exc:
        errors.operator_log.tell(f"{client.where()} did not answer: {exc.kind}", logging.INFO)
        raise IndexUnavailable(f"The search index did not answer ({exc.kind}).{note}") from exc
    except ClusterError as exc:
        if exc.status in REFUSED_CREDENTIALS:
            # The deployment's key is wrong, expired or lacks a privilege: the operator must act, the person
            # asking cannot; the API answers 503 (not 401, which would say *their* credentials were wrong). Told once a
            # minute at most (`OperatorLog`), as every request meets it.
            errors.operator_log.tell(f"{client.where()} refused rehabmap's credentials ({exc.status} {exc.error}): "
                                     "check REHABMAP_ELASTICSEARCH_API_KEY and the key's privileges")
            raise IndexUnavailable(f"The search index refused this service's credentials (it answered "
                                   f"{exc.status}).{note}", passes=False,
                                   who_mends="The people who run this service have to fix its settings.") from exc
        if exc.status not in OVERLOADED:
            raise _amiss(client, exc, note, reads=reads) from exc
        errors.operator_log.tell(f"{client.where()} answered {exc.status}", logging.INFO)
        raise IndexUnavailable(f"The search index is overloaded or unavailable (it answered {exc.status})."
                               f"{note}") from exc


def _amiss(client: SearchClient, error: ClusterError, note: str, *, reads: bool) -> DomainError:
    """An error answer that is neither overload nor a refusal of the key, as the error to raise. Every request is
    rehabmap's own making (a page beyond the window is refused before it is asked: `rehabmap.browse`), so none is the
    person's to mend. A fault of the cluster (a 5xx: 500, 501, 505; an `mget`'s document it could not read,
    `DocumentUnread`, said by its error type, not as an answer of 500, and its words logged even for a reader's, as
    they quote no search) is `IndexUnavailable`, as it may pass, and so is an index the request named gone (`_gone`)
    where the caller did not say what that means (an edit's write or refresh after its read found the index: a
    reader's generation deleted between two requests is `ElasticIndex._found`'s, routine, not logged); a request it
    refuses (a 4xx: one it will not parse, a media type it does not take, a route it does not know) is
    `RequestRefused`, the operator's to mend. Before, either escaped as a raw `ClusterError`, a 500 from the API, but
    for a bulk write's refusal (`ElasticWriter._bulk`). The cluster's words go to the log (ERROR), not the message,
    and only a writer's: a reader's may quote a search (its place, its needs), which no log keeps. Logged once a
    minute at most for each node, status and error type, the words beside them (`rehabmap.errors.OperatorLog`): a
    cluster refusing every search logged a line a request, and a shard outage a line a read, its words naming each
    read's document."""
    unread = isinstance(error, DocumentUnread)
    words = "its words are not logged: they may quote a search" if reads and not unread else str(error)
    said = "could not read a document of an mget:" if unread else f"answered {error.status}"
    # `_reason`'s words begin with the type, which the line says.
    errors.operator_log.tell(f"{client.where()} {said} {error.error}", words=words.removeprefix(f"{error.error}: "))
    if _refused_whole(error):
        return RequestRefused(error.status, f"The search index refused this service's request (it answered "
                              f"{error.status}).{note}", _FIX_THE_INDEX)
    if _gone(error):
        return IndexUnavailable(f"The search index no longer has an index this service's request named (it answered "
                                f"404).{note}")
    if error.status == _CONFLICT:
        return IndexUnavailable(f"The search index answered that this service's request conflicts (it answered "
                                f"409).{note}", who_mends=_FIX_THE_INDEX)
    failed = f"could not read a record ({error.error})" if unread else f"failed (it answered {error.status})"
    return IndexUnavailable(f"The search index {failed}.{note}", who_mends=_FIX_THE_INDEX)


def _reachable(method: Callable[P, R]) -> Callable[P, R]:
    """`_reachable_or_unavailable` around a method of an object with a `client`, generators included; a reader's
    (an `ElasticIndex`'s) calls as `reads`."""
    if inspect.isgeneratorfunction(method):
        @functools.wraps(method)
        def generator(*args: P.args, **kwargs: P.kwargs) -> Iterator[Any]:
            with _reachable_or_unavailable(getattr(args[0], "client"), reads=isinstance(args[0], ElasticIndex)):
                yield from cast(Iterator[Any], method(*args, **kwargs))
        return cast(Callable[P, R], generator)

    @functools.wraps(method)
    def function(*args: P.args, **kwargs: P.kwargs) -> R:
        with _reachable_or_unavailable(getattr(args[0], "client"), reads=isinstance(args[0], ElasticIndex)):
            return method(*args, **kwargs)
    return function


def alias_of(name: str) -> str:
    """The alias this version reads and writes, for the index name the settings give (see the module's docstring)."""
    return f"{name}-schema{SCHEMA_VERSION}"


def _name_of(alias: str) -> str:
    """The index name `alias_of` made this alias of (an alias named otherwise, by a library user, is its own)."""
    return alias.removesuffix(f"-schema{SCHEMA_VERSION}")


def previous_index(client: SearchClient, name: str) -> Previous | None:
    """The alias of the newest older schema the cluster has for this index name: the one a release before this one
    serves from until this version's alias is built and every process runs this release. Before aliases carried
    their schema (session 37, schema 5), it was the name itself. Its records are read only for a rebuild's guard
    (`ElasticIndex.ids`, `get`: neither asks the schema)."""
    named = range(int(SCHEMA_VERSION) - 1, _FIRST_NAMED_SCHEMA - 1, -1)  # empty until a schema after the first named
    with _reachable_or_unavailable(client):
        for alias in [*(f"{name}-schema{n}" for n in named), name]:
            if client.aliased(alias):
                return Previous(ElasticIndex(client, alias), f"the search index '{alias}'")
    return None


def _version_name(base: str, when: datetime) -> str:
    return f"{base}-{when.strftime('%Y%m%d%H%M%S%f')}"


def _is_version_of(base: str, name: str) -> bool:
    return re.fullmatch(re.escape(base) + r"-\d{20}", name) is not None


def _meta(client: SearchClient, index: str) -> tuple[str, dict[str, Any]]:
    """The concrete index behind a name (an alias or the index itself) and its mapping's `_meta`."""
    (concrete, body), = client.mappings(index).items()
    return concrete, dict(body.get("mappings", {}).get("_meta", {}))


def _sources_in(client: SearchClient, index: str) -> Counter[str]:
    """The index's services by source, as the engine counts what its last refresh shows: one terms aggregation
    (exact: the index has one shard, and every service has a source)."""
    body = {"size": 0, "aggs": {"sources": {"terms": {"field": "source", "size": _MAX_SOURCES}}}}
    buckets = client.search(index, body)["aggregations"]["sources"]["buckets"]
    return Counter({str(b["key"]): int(b["doc_count"]) for b in buckets})


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
        "referrals": service.accepting_referrals,
        "capacity": service.capacity,
        "capacity_as_of": service.capacity_as_of.isoformat() if service.capacity_as_of else None,
        "min_age": service.min_age,
        "max_age": service.max_age,
        "record": service.model_dump(mode="json"),
    }
    if service.service_area.polygon:
        doc["service_area"] = service.service_area.polygon
    return {k: v for k, v in doc.items() if v is not None}


_UNCHANGED = errors.SERVED_UNCHANGED
# How long the cluster may hold the alias switch queued before it gives it up (sent with it: `SearchClient.
# update_aliases`), and within how long of a switch left unanswered it has applied or never will: that, and 30 s more
# for a gateway that held the request before passing it on, and for the clocks of the hosts that share a home.
_SWITCH_QUEUED_S = 30
_SWITCH_SETTLES_S = _SWITCH_QUEUED_S + 30
# The switch failed without a definite refusal and the alias does not name the new index, or could not be read: the
# new index is kept, as it is or may become the one served.
_UNKNOWN = (" Whether the new index is the one served is not known: the cluster may apply the alias switch it did "
            f"not answer; the next rebuild, server start or sync from {_SWITCH_SETTLES_S} seconds on finds out.")


class ElasticWriter:
    """Builds a complete new index generation, then moves the alias to it; edits records of the live one."""

    def __init__(self, client: SearchClient, base: str, *, grace_s: float = 900,
                 bulk_retries: int = _BULK_RETRIES, edit_retries: int = _EDIT_RETRIES,
                 backoff_s: float = _BULK_BACKOFF_S) -> None:
        self.client = client
        self.base = base
        self.grace_s = grace_s
        self.bulk_retries = bulk_retries
        self.edit_retries = edit_retries
        self.backoff_s = backoff_s

    @classmethod
    def from_settings(cls, settings: Settings, *, client: SearchClient | None = None) -> ElasticWriter:
        return cls(client or connect(settings), alias_of(settings.elasticsearch_index),
                   grace_s=settings.elasticsearch_grace_seconds)

    def replace_all(self, services: Iterable[Service], *, build: str | None = None) -> int:
        started = datetime.now(timezone.utc)
        name = _version_name(self.base, started)
        build = build or uuid.uuid4().hex
        with _reachable_or_unavailable(self.client, _UNCHANGED):
            self.client.create_index(name, _SETTINGS, {**_MAPPINGS, "_meta": {**_MAPPINGS["_meta"], "build": build}})
            try:
                count, sources = self._write(name, services)
                self.client.refresh(name)
                self._check_written(name, build, count)
                self.client.put_meta(name, {
                    "schema_version": SCHEMA_VERSION, "built_at": datetime.now(timezone.utc).isoformat(),
                    "count": count, "sources": dict(sources), "build": build})
                replaced = self.client.aliased(self.base)
            except BaseException:
                self._abandon(name)
                raise
        try:
            self._switch_alias(name, replaced)
        except BaseException as exc:
            if _refused_switch(exc):
                self._abandon(name)
                with _reachable_or_unavailable(self.client, _UNCHANGED):
                    raise
            if not self._serving(name):
                self._retire_if_replaced(replaced)
                try:
                    with _reachable_or_unavailable(self.client, _UNKNOWN):
                        raise
                except IndexUnavailable as unknown:  # (every answer but a definite refusal: `_refused_switch`)
                    raise unknown.switch_not_known(_SWITCH_SETTLES_S) from exc
            log.warning("the cluster answered the alias switch to %s with an error (%s), but applied it: the new "
                        "index is live", name, type(exc).__name__)
        try:
            self._retire(replaced)
            self._delete_expired(name)
        except Exception as exc:  # the new generation is live; what is left over goes with the next build
            log.warning("old index generations not cleaned up (%s); the next build will", type(exc).__name__)
        return count

    @_reachable
    def upsert(self, changes: Mapping[str, Mapping[str, Any]], *,
               before_commit: Callable[[], None] | None = None, settle: bool = False) -> list[Service]:
        """Edit records of the index behind the alias (see `RecordWriter.upsert`): they are read an `mget` per
        chunk of _BULK_CHUNK and laid over, the changed ones are indexed again a bulk request per chunk (a request
        per record made a sync's write of N records cost the cluster 2N round trips), and the index is refreshed
        once for them all (a refresh is costly on a cluster: one per record made a sync's write of N records cost
        N), so a search right after sees them; then the generation is marked edited, so every process's caches see
        the change, and its services are counted by source afresh, by the engine itself (one terms aggregation
        after the refresh), never by adding this call's new ones to the old counts, which a retry would leave short.

        Stopped part-way (a record refused, the cluster gone): the chunks written before it are stored, and of the
        chunk it stopped in, whatever the cluster took (a bulk request stores every document it can: after a
        refused one as well as before it); they show in searches at the index's next refresh (its own, or the
        next write's); the mark is not set, so no cache learns of them, as when each was refreshed. The call
        raises, so a sync's next live write passes them again: those already indexed read as unchanged (`mget`
        reads them unrefreshed) and are skipped, the rest are indexed, and the index is refreshed, counted and
        marked. Where there is nothing left to write (all were indexed, or refreshed too, before it stopped), the
        index is refreshed and counted all the same, and marked if its counts by source differ from the mark's
        (it stopped after indexing a new service), or `settle` says the changes are sent again after such a stop
        (a maintainer's edit after a 503: `Editor._laid_again`); else an edit of services already there that
        stopped after the last write waits for the next edit's mark.

        No index behind the alias when the records are read (never built, or the alias removed: the cluster answers
        404 `index_not_found_exception`) is `IndexNotBuilt`, as to a reader, and nothing is written. An index gone
        after that (a write or the refresh answered 404) is `_amiss`'s `IndexUnavailable`: what was written before
        it may be stored (before, any 404 of the edit read "No search index … Run 'rehabmap index SOURCE...' first",
        and "nothing is written", though a 404 of the refresh came after the write)."""
        with ElasticIndex(self.client, self.base)._found():
            docs = self._overlaid(changes)
        if before_commit is not None:
            before_commit()
        self._bulk(self.base, ((service.id, to_document(service)) for service in docs), alias=True)
        if changes:
            # The mark after the refresh: a reader that sees the new mark reads the edit too, and the counts
            # read after it are of every record indexed, this call's or a call's cut off before it.
            self.client.refresh(self.base)
            concrete, meta = _meta(self.client, self.base)
            sources = _sources_in(self.client, concrete)
            if docs or settle or sources != Counter(meta.get("sources", {})):
                self.client.put_meta(concrete, {**meta, "count": sum(sources.values()), "sources": dict(sources),
                                                "edited": uuid.uuid4().hex})
        return docs

    def _overlaid(self, changes: Mapping[str, Mapping[str, Any]]) -> list[Service]:
        """The records the changes make that differ from the live index's, which are read an `mget` per chunk.
        A change the record refuses is skipped and logged."""
        docs: list[Service] = []
        items = list(changes.items())
        for start in range(0, len(items), _BULK_CHUNK):
            chunk = items[start:start + _BULK_CHUNK]
            answers = self.client.mget(self.base, [service_id for service_id, _ in chunk], ["record"])
            for (service_id, fields), answer in zip(chunk, answers, strict=True):
                found = document_source(answer)
                current = Service.stored(found["record"]) if found is not None else None
                try:
                    service = overlay_record(current, fields)
                except (ValidationError, DomainError, ValueError) as exc:
                    log.warning("edit to %s not applied: %s", service_id, type(exc).__name__)
                    continue
                if service != current:
                    docs.append(service)
        return docs

    def _write(self, name: str, services: Iterable[Service]) -> tuple[int, Counter[str]]:
        seen: set[str] = set()
        sources = Counter[str]()

        def documents() -> Iterator[Document]:
            for service in services:
                if service.id in seen:  # the embedded store refuses these too (UNIQUE id)
                    raise ValueError(f"Service id '{service.id}' appears twice in one build.")
                seen.add(service.id)
                sources[service.source] += 1
                yield service.id, to_document(service)

        self._bulk(name, documents(), _UNCHANGED)
        return len(seen), sources

    def _bulk(self, index: str, documents: Iterable[Document], note: str = "", *, alias: bool = False) -> None:
        """Write the documents a bulk request per chunk (`SearchClient.bulk`). A document the cluster still refuses
        as overloaded after the retries raises `IndexUnavailable` (`note` says what that leaves), one it refuses
        otherwise (a mapping it does not fit) `DocumentRefused` naming the record, and a request it refuses whole
        `RequestRefused` naming its records: each stops the writing, the chunks after it unsent, though the cluster
        has stored what it took of the chunk it was in. `alias`: `index` is the alias, which the cluster is told
        must be one (`require_alias`): with none there (its index deleted since the edit's read), a cluster that
        makes the indices a write names made one named like the alias, mapped from the documents, and the edit
        "succeeded" into it; each document is now answered 404, and the write is `_amiss`'s index gone. An edit's
        requests (to the alias) are waited for and sent again less than a build's: they hold the index lock
        (`_EDIT_TIMEOUT_S`, `edit_retries`, one count for all of an edit's chunks where a build's each has its own).

        The chunks are cut here, a call of the client each, so a request refused whole is known to carry its chunk's
        documents not yet answered, which are dropped by the answer's id: the client answers the documents the
        cluster took first, and sends those refused as overloaded again as a smaller request."""
        timeout_s, retries = (_EDIT_TIMEOUT_S, self.edit_retries) if alias else (_BULK_TIMEOUT_S, self.bulk_retries)
        edits = Resends(retries) if alias else None
        unsent = iter(documents)
        for chunk in iter(lambda: list(itertools.islice(unsent, _BULK_CHUNK)), []):
            unanswered = dict.fromkeys(doc_id for doc_id, _ in chunk)  # in the order sent
            resends = edits or Resends(retries)
            try:
                for ok, result in self.client.bulk(index, chunk, require_alias=alias, timeout_s=timeout_s,
                                                   resends=resends, backoff_s=self.backoff_s,
                                                   max_backoff_s=_BULK_MAX_BACKOFF_S):
                    unanswered.pop(str(result.get("_id")), None)
                    if not ok:
                        raise self._refused_document(result, retries, note)
            except ClusterError as exc:
                if not _refused_whole(exc):
                    raise
                raise self._refused_request(exc, list(unanswered), note) from exc

    def _refused_document(self, result: Mapping[str, Any], retries: int, note: str) -> DomainError:
        """A document's refusal (the bulk answer's `result` of it) as the error to raise: its index gone (of a write
        to the alias, `require_alias`) as a whole request's is (`_amiss`)."""
        status = int(result.get("status") or 0)
        error = result.get("error")
        kind = str(error.get("type", "")) if isinstance(error, dict) else str(error)
        if status in OVERLOADED:
            errors.operator_log.tell(f"{self.client.where()} refused documents: {status}", logging.INFO)
            return IndexUnavailable(f"The search index kept refusing documents as overloaded ({status}) after "
                                    f"{retries} retries.{note}")
        reason = str(error.get("reason", kind)) if isinstance(error, dict) else kind
        gone = ClusterError(status, kind, reason)
        if _gone(gone):
            return _amiss(self.client, gone, note, reads=False)
        return DocumentRefused(status, f"The search index refused the record '{result.get('_id')}': {reason}.{note}",
                               "The people who run this service have to fix the search index or the record.")

    def _refused_request(self, error: ClusterError, ids: list[str], note: str) -> RequestRefused:
        """A whole request's refusal as the error to raise, the cluster's own words logged for the operator (its
        reason may quote the request: the message, which the API sends out, names the records and the status)."""
        records = f"the record '{ids[0]}'" if len(ids) == 1 else f"{len(ids)} records, the first '{ids[0]}'"
        log.error("%s refused the whole bulk request writing %s (%s %s): %s", self.client.where(), records,
                  error.status, error.error, error)
        return RequestRefused(error.status, f"The search index refused the whole request writing {records} (it "
                              f"answered {error.status}).{note}", _FIX_THE_INDEX)

    def _check_written(self, name: str, build: str, count: int) -> None:
        """Refuse to serve a new index that is not the one this build made, or lacks documents it wrote: an index
        deleted while the build writes to it is made again by the next bulk request (the cluster creates an index a
        write names, osmem, Elasticsearch and OpenSearch alike), mapped from the documents, without this build's
        `_meta` and with only what was written after. Before, the build answered every record written and moved the
        alias to it (1500 written, 500 served, `location` mapped as numbers). The alias stays where it was."""
        _, meta = _meta(self.client, name)
        held = self.client.count(name)
        if meta.get("build") != build or held != count:
            raise IndexUnavailable(f"The new index {name} is not the one this build made: it holds {held} of the "
                                   f"{count} records written (it was deleted, or replaced, while they were written). "
                                   "The index being served is unchanged.", again="Run the build again.")

    def _switch_alias(self, name: str, replaced: list[str]) -> None:
        """One `_aliases` call: remove the alias from `replaced` (every index that has it), add it to the new one.
        The new index deleted since `_check_written` counted it, the cluster answers the call 404
        `index_not_found_exception` and applies none of its actions: the build fails (`_amiss`: the index gone), the
        alias where it was."""
        actions: list[dict[str, Any]] = [{"remove": {"index": index, "alias": self.base}} for index in replaced]
        actions.append({"add": {"index": name, "alias": self.base}})
        self.client.update_aliases(actions, queued_s=_SWITCH_QUEUED_S)

    def _serving(self, name: str) -> bool:
        """After the alias switch failed, whether the new index is live all the same (False too where the cluster
        cannot say).
        A gateway that gave up waiting (504) may answer a call the cluster applied: the build deleted its new index,
        which the alias then named, so no index served, and said "The index being served is unchanged."."""
        try:
            return name in self.client.aliased(self.base)
        except Exception:
            return False

    def _retire_if_replaced(self, indices: list[str]) -> None:
        """After a switch that may yet apply (`_UNKNOWN`), the generations it would take out of service marked as the
        switch marks them: before, one it did take out had no mark, and the next build deleted it at once, with no
        grace period for the readers still on it. A mark on one still served is harmless: `_delete_expired` leaves
        every index the alias names, and the build that replaces it marks it again."""
        try:
            self._retire(indices)
        except Exception as exc:  # the build's own error is the one to raise
            log.info("could not mark the generations the alias switch replaces (%s)", type(exc).__name__)

    def _abandon(self, name: str) -> None:
        """Delete the build's new index, never live; the build's own error is the one to raise."""
        try:
            self.client.delete_indices([name])
        except Exception as exc:  # the next build removes it
            log.info("could not delete the abandoned index %s (%s)", name, type(exc).__name__)

    def _retire(self, indices: list[str]) -> None:
        """Mark generations just taken out of service with the time, which starts their grace period."""
        now = datetime.now(timezone.utc).isoformat()
        for index in indices:
            _, meta = _meta(self.client, index)
            self.client.put_meta(index, {**meta, "retired_at": now})

    def _delete_expired(self, live: str) -> None:
        """Delete generations out of service for longer than the grace period, and the ones never marked:
        builds a crash abandoned, or generations a crash took out of service before marking them. A
        generation newer than the live one (a build still running) is left."""
        found = self.client.indices(f"{self.base}-*")
        now = datetime.now(timezone.utc)
        expired = []
        for index, body in found.items():
            if not _is_version_of(self.base, index) or index == live or self.base in body.get("aliases", {}):
                continue
            retired_at = body.get("mappings", {}).get("_meta", {}).get("retired_at")
            if retired_at is None:
                if index < live:
                    expired.append(index)
            elif (now - datetime.fromisoformat(retired_at)).total_seconds() >= self.grace_s:
                expired.append(index)
        if expired:
            self.client.delete_indices(sorted(expired))


class ElasticIndex:
    """Reader over the alias; every answer comes from one generation."""

    def __init__(self, client: SearchClient, alias: str) -> None:
        self.client = client
        self.alias = alias

    @classmethod
    def from_settings(cls, settings: Settings, *, client: SearchClient | None = None) -> ElasticIndex:
        return cls(client or connect(settings), alias_of(settings.elasticsearch_index))

    def _not_built(self) -> IndexNotBuilt:
        earlier = previous_index(self.client, _name_of(self.alias))
        return IndexNotBuilt(f"No search index '{self.alias}'. "
                             + (earlier.unread() if earlier else "Run 'rehabmap index SOURCE...' first."))

    @contextmanager
    def _found(self, index: str | None = None) -> Iterator[None]:
        """The cluster's answer that the index a call named is not there (`index_not_found_exception`, a whole
        request's or a document's of an `mget`) as what that means: of the alias (`index` None), no index built
        (`IndexNotBuilt`); of a generation a reader read before (`index`), deleted since (`_deleted`), as a rebuild
        does after the grace period, which is routine and logs nothing. Any other error, a 404 of another kind
        included (a shard not available, the index closed), is left to `_amiss`: before, every 404 read "No search
        index", telling the operator to build one."""
        try:
            yield
        except ClusterError as exc:
            if not _gone(exc):
                raise
            raise (self._not_built() if index is None else _deleted(index)) from None

    def _search(self, index: str | None = None, **body: Any) -> dict[str, Any]:
        """One search request; its body's fields as keywords, `from_` for `from` (a Python keyword)."""
        if "from_" in body:
            body["from"] = body.pop("from_")
        with self._found(index):
            return self.client.search(index or self.alias, body)

    def _meta(self) -> tuple[str, dict[str, Any]]:
        """The concrete index and its `_meta`: of an index this version can read (every answer asks, through
        `generation`), else IndexNotBuilt saying how to rebuild it."""
        with self._found():
            concrete, meta = _meta(self.client, self.alias)
        found = meta.get("schema_version", "unknown")
        if found != SCHEMA_VERSION:
            raise IndexNotBuilt(f"The search index '{self.alias}' ({concrete}) was built by another version of "
                                f"rehabmap (schema {found}; this version reads schema {SCHEMA_VERSION}). "
                                "Run 'rehabmap index SOURCE...' again to rebuild it.")
        return concrete, meta

    @_reachable
    def info(self) -> IndexInfo:
        concrete, meta = self._meta()
        with self._found(concrete):
            count = self.client.count(concrete)
        built_at = datetime.fromisoformat(meta["built_at"]) if meta.get("built_at") else None
        engine, _, address = self.client.where().partition(" at ")
        location = f"{address or engine}/{concrete}"
        return IndexInfo(engine.lower(), count, built_at, location, dict(meta.get("sources", {})),
                         build=meta.get("build"))

    @_reachable
    def built(self) -> bool:
        try:
            self._meta()
        except IndexNotBuilt:
            return False
        return True

    @_reachable
    def generation(self) -> str:
        """The concrete index (a rebuild is a new one) and the mark the writer leaves on it at every edit."""
        concrete, meta = self._meta()
        return f"{self.client.where()}/{concrete}#{meta.get('edited', '')}"

    @_reachable
    def get(self, service_id: str) -> Service | None:
        with self._found():
            found = self.client.get(self.alias, service_id, ["record"])
        return Service.stored(found["record"]) if found is not None else None

    @_reachable
    def find(self, query: ServiceQuery, *, limit: int = 20, offset: int = 0) -> Page:
        bool_query, sort = _ordered(query)
        response = self._search(query={"bool": bool_query}, sort=sort, from_=offset, size=limit,
                                track_total_hits=True, _source=["record"])
        hits = response["hits"]
        return Page([_service(h) for h in hits["hits"]], int(hits["total"]["value"]))

    @_reachable
    def scan(self, query: ServiceQuery) -> Iterator[Service]:
        """Name order: `search_after` on (name, id). Text relevance: `search_after` cannot follow a score in
        osmem (it skips the rest of a tie), so the matches' scores are read first in id order
        (`track_scores`), ranked as `find` ranks them, then the records fetched in that order."""
        bool_query, sort = _ordered(query)
        if not query.text:
            hits = itertools.chain.from_iterable(self._pages(
                _SCAN_PAGE, query={"bool": bool_query}, sort=sort, _source=["record"]))
            return (_service(h) for h in _eager(hits))
        matches = itertools.chain.from_iterable(self._pages(
            _SCAN_PAGE, query={"bool": bool_query}, sort=[{"id": "asc"}], track_scores=True,
            _source=["name_sort"]))
        ranked = sorted((-h["_score"], h["_source"]["name_sort"], h["_id"], h["_index"]) for h in matches)
        return self._records([(index, service_id) for _, _, service_id, index in ranked])

    @_reachable
    def _records(self, keys: list[tuple[str, str]]) -> Iterator[Service]:
        """The records of these (index, id) pairs, in this order, fetched a page at a time."""
        for start in range(0, len(keys), _SCAN_PAGE):
            chunk = keys[start:start + _SCAN_PAGE]
            index = chunk[0][0]
            with self._found(index):
                found = [document_source(d) for d in self.client.mget(index, [i for _, i in chunk], ["record"])]
            if not all(found):  # no document of a generation goes missing
                raise _deleted(index)
            yield from (Service.stored(d["record"]) for d in found if d is not None)

    @_reachable
    def count_by_type(self, query: ServiceQuery) -> dict[ServiceType, int]:
        """Per type, how many services pass the query, in one terms aggregation."""
        text = {"must": text_clauses(query.text)} if query.text else {}
        response = self._search(query={"bool": {**text, "filter": filter_clauses(query)}}, size=0,
                                aggs={"types": {"terms": {"field": "service_type", "size": len(ServiceType)}}})
        counts = {b["key"]: int(b["doc_count"]) for b in response["aggregations"]["types"]["buckets"]}
        return {t: counts.get(t.value, 0) for t in ServiceType}

    @_reachable
    def count_near(self, lat: float, lon: float, query: ServiceQuery, *, radius_km: float) -> int:
        """The cluster counts within a circle a little wider than asked (its distances are not the exact
        ones); only the few services in the thin ring between the narrower and the wider circle are read,
        to take away those whose exact distance is beyond the radius."""
        filters = _filters_with_text(query)
        outer = _within(lat, lon, radius_km * (1 + _SLACK_RELATIVE) + _SLACK_KM)
        inner_km = radius_km * (1 - _RING_RELATIVE) - _SLACK_KM
        ring_query = {"filter": [*filters, outer], "must_not": [_within(lat, lon, inner_km)] if inner_km > 0 else []}
        ring = list(itertools.chain.from_iterable(self._pages(
            _SCAN_PAGE, query={"bool": ring_query}, sort=[{"id": "asc"}], _source=["location"])))
        points = np.array([(h["_source"]["location"]["lat"], h["_source"]["location"]["lon"]) for h in ring],
                          dtype=np.float64).reshape(-1, 2)
        beyond = int(np.count_nonzero(haversine_km(lat, lon, points[:, 0], points[:, 1]) > radius_km))
        index = ring[0]["_index"] if ring else None
        with self._found(index):
            counted = self.client.count(index or self.alias, {"bool": {"filter": [*filters, outer]}})
        return counted - beyond

    @_reachable
    def nearest(self, lat: float, lon: float, query: ServiceQuery, *, k: int,
                radius_km: float | None = None) -> list[Hit]:
        if k <= 0:
            return []
        return list(itertools.islice(self._in_order(lat, lon, query, radius_km, _page_for(k)), k))

    def nearest_of_types(self, lat: float, lon: float, query: ServiceQuery, *, k: int) -> dict[ServiceType, list[Hit]]:
        """One request to the cluster a type: each is one search there, with nothing to share between them."""
        return nearest_of_types_in_parts(self, lat, lon, query, k=k)

    def around(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float,
               within: frozenset[str] | None = None, count_within: bool = False,
               each_type: bool = False, margin_km: float | None = None) -> Around:
        """Three or four requests to the cluster: each is one search there, with nothing to share between them."""
        return around_in_parts(self, lat, lon, query, k=k, radius_km=radius_km, within=within,
                               count_within=count_within)

    @_reachable
    def scan_nearest(self, lat: float, lon: float, query: ServiceQuery, *,
                     radius_km: float | None = None) -> Iterator[Hit]:
        return _eager(self._in_order(lat, lon, query, radius_km, _SCAN_PAGE))

    @_reachable
    def best_fit(self, lat: float, lon: float, query: ServiceQuery, *, k: int, radius_km: float | None,
                 within: str | None, margin_km: float, since: date) -> list[Hit]:
        """The cluster sorts by fit, then distance (`search.elastic_fit`): a page of records is read. Read nearest
        first until the rest could not do better, the clinicians' request at 10k services read 4,698 records, as
        few report a vacancy, and this process spent 460 ms of CPU on them; now 217 and 37 ms (bench_elastic)."""
        if k <= 0:
            return []
        fit = _FitOrder(FitScore(query.needs, since), best_fit_key(query.needs, within, margin_km, since))
        return list(itertools.islice(self._in_order(lat, lon, query, radius_km, _page_for(k), fit), k))

    def _in_order(self, lat: float, lon: float, query: ServiceQuery, radius_km: float | None,
                  page: int, fit: _FitOrder | None = None) -> Iterator[Hit]:
        """Passing services (within the radius), nearest first by exact distance, ties by id; or, given `fit`,
        best fit first (`best_fit_key`). Candidates come in the cluster's order (its score, then its distance) a
        page at a time; each is given as soon as nothing still to come can be before it."""
        filters = _filters_with_text(query)
        if radius_km is not None:
            # Widened by the slack: the exact cut is made below on the recomputed distance.
            filters.append(_within(lat, lon, radius_km * (1 + _SLACK_RELATIVE) + _SLACK_KM))
        sort: list[Any] = [{"_geo_distance": {"location": {"lat": lat, "lon": lon}, "order": "asc", "unit": "km",
                                              "distance_type": "arc"}},
                           {"id": "asc"}]
        search = {"bool": {"filter": filters}}
        if fit is not None:
            search, sort = fit.score.query(filters), [{"_score": "desc"}, *sort]
        waiting: list[tuple[tuple[Any, ...], Hit]] = []  # each key ends on the id: no two equal
        for hits in self._pages(page, query=search, sort=sort, _source=["record"]):
            services = [_service(h) for h in hits]
            for service, distance in zip(services, _distances(lat, lon, services).tolist()):
                if radius_km is None or distance <= radius_km:
                    hit = Hit(service, distance)
                    heapq.heappush(waiting, (fit.key(hit) if fit else (distance, service.id), hit))
            # What is not fetched yet is at least this far by the server's reckoning, so at least `nearer` by the
            # exact distance (and by the effective distance, never less); in best fit, it fits no better either.
            last = hits[-1]["sort"]
            nearer = float(last[-2]) * (1 - _SLACK_RELATIVE) - _SLACK_KM
            before: tuple[Any, ...] = (*fit.score.level(last[0]), nearer) if fit else (nearer,)
            while waiting and waiting[0][0] < before:
                yield heapq.heappop(waiting)[1]
        while waiting:
            yield heapq.heappop(waiting)[1]

    @_reachable
    def all(self) -> Iterator[Service]:
        """Every service, in id order, read from the generation current when iteration starts."""
        for hits in self._pages(_SCAN_PAGE, query={"match_all": {}}, sort=[{"id": "asc"}],
                                _source=["record"]):
            yield from (_service(h) for h in hits)

    @_reachable
    def ids(self) -> list[str]:
        return [h["_source"]["id"] for hits in self._pages(_SCAN_PAGE, query={"match_all": {}}, sort=[{"id": "asc"}],
                                                           _source=["id"]) for h in hits]

    @_reachable
    def _pages(self, size: int, **body: Any) -> Iterator[list[dict[str, Any]]]:
        """The hits of one search, a page at a time, following `search_after` (the sort must end on a
        unique field). The first page is read through the alias; the rest from the concrete index it
        answered from, even if the alias moves meanwhile."""
        index: str | None = None
        search_after: list[Any] | None = None
        while True:
            extra = {"search_after": search_after} if search_after is not None else {}
            hits = self._search(index, size=size, track_total_hits=False, **body, **extra)["hits"]["hits"]
            if hits:
                yield hits
            if len(hits) < size:
                return
            index = hits[0]["_index"]
            search_after = hits[-1]["sort"]


def _deleted(index: str) -> IndexUnavailable:
    return IndexUnavailable(f"The index generation this answer was reading ({index}) has been deleted: a rebuild "
                            "replaced it more than its grace period ago.", again="Ask again.")


def _page_for(k: int) -> int:
    """The page a search for the first k reads at a time: a few more than k, as the exact distances may reorder
    those near the page's end."""
    return min(k + max(10, k // 4), _NEAREST_PAGE_MAX)


class _FitOrder(NamedTuple):
    """How `_in_order` reads best fit first: the cluster's score, and the exact key of each record read."""

    score: FitScore
    key: Callable[[Hit], tuple[Any, ...]]


def _service(hit: dict[str, Any]) -> Service:
    return Service.stored(hit["_source"]["record"])


def _eager(items: Iterator[T]) -> Iterator[T]:
    """The same items, the first of them fetched now: a scan whose index is missing or out of reach fails
    before the caller starts its output, not half way through it."""
    first = list(itertools.islice(items, 1))
    return itertools.chain(first, items)


def _ordered(query: ServiceQuery) -> tuple[dict[str, Any], list[Any]]:
    """The bool query and the sort of `find`: by text relevance when there is text, else by name; then id."""
    filters = filter_clauses(query)
    if query.text:
        return {"must": text_clauses(query.text), "filter": filters}, ["_score", {"name_sort": "asc"}, {"id": "asc"}]
    return {"filter": filters}, [{"name_sort": "asc"}, {"id": "asc"}]


def _filters_with_text(query: ServiceQuery) -> list[dict[str, Any]]:
    """The filters, and the text as filters too (for answers not ordered by relevance)."""
    return filter_clauses(query) + (text_clauses(query.text) if query.text else [])


def _within(lat: float, lon: float, km: float) -> dict[str, Any]:
    return {"geo_distance": {"distance": f"{km}km", "location": {"lat": lat, "lon": lon}}}


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
        narrowed_types = sorted(t.value for t in narrowed)
        clauses.append(_either({"terms": {"subtype": sorted(query.subtypes or ())}},
                               {"bool": {"must_not": [{"terms": {"service_type": narrowed_types}}]}}))
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
