"""Prometheus metrics of one server process: what an operator watches, and nothing of any search.

Requests are counted and timed by method, route template (`/services/{service_id}`, never the path itself)
and status, as the request log sees them (`api.logging`); the rest is read when the metrics are scraped:
the index's size, build time and generation (hashed), how long the last edits waited to be seen by this
process (edit lag), and per sync source the time since its last successful run. A query string, a body, a
postcode, a place, coordinates or needs never reach a label.

Each process keeps its own counters: scrape every API process (one uvicorn worker per container, as
docker-compose runs them), and sum in Prometheus.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime, timezone
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from prometheus_client.registry import Collector

from indexer.sync.status import sync_status
from indexer.sync.store import SyncStore
from rehabmap.errors import DomainError
from rehabmap.maintain.store import store_of
from rehabmap.state import AppState

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a match answers in milliseconds; an export or the gap analysis can take seconds.
_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
_LE = [floatToGoString(bound) for bound in _BOUNDS]


class Metrics:
    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = _Requests()
        self.observe = self._requests.observe
        self.registry.register(self._requests)
        self.registry.register(_StateCollector(state))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Requests(Collector):
    """Requests counted and timed by method, route template and status, under one lock a request: what
    prometheus_client's `Counter` and `Histogram` expose, byte for byte, and exact under threads, without their
    three locks, checks and bucket loop a request (about half the metrics' CPU a request; bench/RESULTS.md,
    "POST /match, ninth pass, the framework"). Route templates and statuses are few."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], list[float]] = {}  # (method, route, status): count, created
        self._times: dict[tuple[str, str], tuple[list[float], list[float]]] = {}  # per bucket; sum, created

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        bucket = bisect_left(_BOUNDS, seconds)  # the first bucket whose bound holds it, as `Histogram` counts
        with self._lock:
            counted = self._counts.get((method, route, status))
            if counted is None:
                counted = self._counts[method, route, status] = [0.0, time.time()]
            counted[0] += 1
            timed = self._times.get((method, route))
            if timed is None:
                timed = self._times[method, route] = ([0.0] * len(_BOUNDS), [0.0, time.time()])
            timed[0][bucket] += 1
            timed[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts = [(key, list(counted)) for key, counted in self._counts.items()]
            times = [(key, list(buckets), list(total)) for key, (buckets, total) in self._times.items()]
        created = prometheus_metrics._use_created  # PROMETHEUS_DISABLE_CREATED_SERIES, as its own metrics read it
        requests = CounterMetricFamily("rehabmap_http_requests", "HTTP requests answered, by route template and "
                                       "status.", labels=["method", "route", "status"])
        for (method, route, status), (count, since) in counts:
            requests.add_metric([method, route, str(status)], count, created=since if created else None)
        yield requests
        name = "rehabmap_http_request_duration_seconds"
        latency = HistogramMetricFamily(name, "Time to the start of the reply, by route template.",
                                        labels=["method", "route"])
        for (method, route), buckets, (seconds, since) in times:
            latency.add_metric([method, route], list(zip(_LE, accumulate(buckets))), seconds)
            if created:
                latency.add_sample(name + "_created", {"method": method, "route": route}, since)
        yield latency


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
        store = SyncStore.existing(store_of(self.state.settings))
        if store is None:
            return
        family = GaugeMetricFamily("rehabmap_sync_last_success_age_seconds",
                                   "Seconds since each source's last successful sync.", labels=["source"])
        now = time.time()
        for report in sync_status(store):
            if report.last_success_at:
                when = datetime.fromisoformat(report.last_success_at)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=timezone.utc)
                family.add_metric([report.source], now - when.timestamp())
        yield family
