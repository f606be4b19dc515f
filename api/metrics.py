"""Prometheus metrics of one server process: what an operator watches, and nothing of any search.

Requests are counted and timed by method, route template (`/services/{service_id}`, never the path itself)
and status, as the request log sees them (`api.logging`); the rest is read when the metrics are scraped:
the index's size, build time and generation (hashed), how long the last edits waited to be seen by this
process (edit lag), and per sync source the time since its last successful run (+Inf for one that has never
succeeded). A query string, a body, a postcode, a place, coordinates or needs never reach a label.

One process keeps its own counters. The workers of `rehabmap serve --workers N` share one port, so a scrape
reaches one of them at random: they count in prometheus_client's multiprocess mode (its
`PROMETHEUS_MULTIPROC_DIR`, which `cli.workers` sets for them), and each scrape sums every worker's counts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from indexer.sync.connectors import removed_feeds
from indexer.sync.store import SyncStore
from rehabmap.errors import DomainError
from rehabmap.state import AppState

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a match answers in milliseconds; an export or the gap analysis can take seconds.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch, read when it is imported
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("rehabmap_http_requests", "HTTP requests answered, by route template and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("rehabmap_http_request_duration_seconds",
                                 "Time to the start of the reply, by route template.", ["method", "route"],
                                 buckets=_BUCKETS, registry=self.registry)
        self._state = _StateCollector(state)
        self.registry.register(self._state)
        # Each (method, route, status)'s counter and histogram, looked up once: `labels` takes a lock and
        # builds the label key on every call. Route templates and statuses are few.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = self._children[method, route, status] = (self.requests.labels(method, route, str(status)),
                                                                self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        """In multiprocess mode the requests are read from every worker's files (prometheus_client writes each
        count there as it is made, whatever the registry), with this process's view of the index and syncs."""
        if not os.environ.get(MULTIPROCESS_DIR):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self._state)
        return generate_latest(registry)


class _StateCollector(Collector):
    """The index and the syncs, read at each scrape. A part that cannot be read (no index built yet, no
    directory store) is left out of the scrape, not an error: the scrape still shows the requests."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._index()
        yield from self._syncs()

    def _index(self) -> Iterator[Metric]:
        try:
            generation = self.state.backend.generation()
            info = self.state.backend.info()
        except DomainError as exc:  # not built, or the cluster out of reach
            log.info("index metrics left out: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("rehabmap_index_services", "Records in the index, active or not.", info.count)
        if info.built_at is not None:
            yield GaugeMetricFamily("rehabmap_index_built_timestamp_seconds", "When the index was built.",
                                    info.built_at.timestamp())
        family = GaugeMetricFamily("rehabmap_index_generation", "The generation this process reads (a hash of "
                                   "the backend's token, which changes on every rebuild and edit).",
                                   labels=["backend", "generation"])
        family.add_metric([info.backend, hashlib.sha256(generation.encode()).hexdigest()[:12]], 1)
        yield family
        if info.edit_lag_s is not None:
            yield GaugeMetricFamily("rehabmap_index_edit_lag_seconds", "How long the last edits this process "
                                    "took in had waited to be seen by it.", info.edit_lag_s)

    def _syncs(self) -> Iterator[Metric]:
        """One read of the store the server opened at its start (`SyncStore.served`): a scrape neither opens it
        again nor reads a record. Every source that has run, but an ORUK feed whose file has left the feed folder
        (`indexer.sync.connectors.removed_feed`: no run of it will come, so it would age, alerting, for ever); one
        that has never succeeded is +Inf seconds old, so that the alert on age (`> N`) sees it (before, it was in no
        series at all)."""
        try:
            store = SyncStore.served(self.state)
            if store is None:
                return
            successes = store.last_successes()
        except Exception as exc:  # noqa: BLE001 - any failure of the store's database: left out, never raised
            log.warning("sync metrics left out: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily("rehabmap_sync_last_success_age_seconds", "Seconds since each source's last "
                                   "successful sync; +Inf for one that has run and never succeeded.",
                                   labels=["source"])
        now, removed = time.time(), removed_feeds(self.state.settings)
        for source, at in successes.items():
            if removed(source) is None:
                family.add_metric([source], now - _timestamp(at) if at is not None else math.inf)
        yield family


def _timestamp(at: str) -> float:
    when = datetime.fromisoformat(at)
    return (when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)).timestamp()
