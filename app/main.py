"""The composition root: the settings, the parts opened from them, and the one ASGI application that serves
the JSON API and the pages side by side. The faces never import each other; they meet here."""

from __future__ import annotations

import gc
from functools import partial

from fastapi import FastAPI

from api import request_layer
from api.application import create_api
from api.logging import configure_logging
from api.rate_limits import SharedBuckets
from app.parts import open_state
from app.pending_rebuild import finish_interrupted
from app.rebuild import rebuild_with_table
from app.converge import Converger
from app.sync import converge, open_review
from app.warmup import warm_up
from rehabmap.config import Settings, get_settings
from rehabmap.state import AppState
import web
import web.routes
from web.compiled import keep_compiled
from web.render import environment


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """The API and the pages over the settings' parts. `serving`: the process lives to serve (see
    `create_served_app`); tests and tools that build an app in a process of their own leave it off."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    finish_interrupted(settings)  # a rebuild killed after its index went live
    state = open_state(settings, serving=serving)
    converge(state)  # a sync or review decision killed before the live index followed it
    app = create_api(state)  # the JSON API and the ORUK feed, with their OpenAPI documents
    web.mount_static(app)  # the pages and their assets, outside the OpenAPI document
    keep_compiled(environment, settings.cache_dir)  # the pages' templates compiled once, not at each start
    app.include_router(web.routes.router)
    web.routes.answer_missing_pages(app)  # a browser's mistyped address: the pages' "Page not found"
    # the keepers' review queue, per request, over the server's open index (the pages cannot import app)
    app.state.open_review = partial(open_review, settings, state=state)
    app.state.rebuild_with_table = partial(rebuild_with_table, settings)  # the keepers' curated-table upload
    converger = Converger(state)  # and one killed while the server runs: it catches up on its own
    app.router.lifespan_context = converger.lifespan
    app.state.converge_soon = converger.soon
    # Around both faces: the limits, the security headers, a request log and metrics that keep nothing of a
    # search, and the catch-all, as one layer.
    request_layer.install(app, per_minute=settings.rate_limit_per_minute, max_body_bytes=settings.max_body_bytes,
                          observe=app.state.metrics.observe, buckets=shared_buckets(state))
    if settings.warm_up:  # each worker of `serve --workers N` calls this factory, so each warms itself
        warm_up(state)
    return app


# A serving worker's garbage collector walks its oldest generation after 100 walks of the middle one, not the
# interpreter's 10. What a worker keeps past a request (the record cache, each record's words and reply JSON: ~20
# objects a record, `rehabmap.per_record`) is what that walk visits, and it stalls the request that sets it off:
# at 100k services 120-190 ms a walk, and the request naming no type (~70 results) met one about every 80 requests
# (p99 153 ms in process, 140-214 ms over HTTP). At 100: 1 in 1,000 (p99 11.8 ms), and 26% less CPU over them
# (bench/RESULTS.md, session 31). The young generations keep the interpreter's thresholds. Reading records makes
# no reference cycle, so what the cache drops is freed at once either way; other cyclic garbage that outlives two
# young walks waits longer for the oldest.
SERVING_GC_THRESHOLDS = (700, 10, 100)


def create_served_app(settings: Settings | None = None) -> FastAPI:
    """What `rehabmap serve` runs in each worker: `create_app` for a process whose life is serving, so each
    load of the embedded index moves what is alive out of the garbage collector's walks (`EmbeddedIndex`), and
    the collector walks what stays alive past a request less often (`SERVING_GC_THRESHOLDS`)."""
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    return create_app(settings, serving=True)


def shared_buckets(state: AppState) -> SharedBuckets | None:
    """The rate limit's counters in the PostgreSQL store, so that every host counts a client once; None
    (each process counts alone) on one machine, or when the store is not open."""
    settings, directory = state.settings, state.directory
    if settings.database_url is None or directory is None or settings.rate_limit_per_minute <= 0:
        return None
    return SharedBuckets(settings.rate_limit_per_minute, directory.database,
                         directory.tokens.derived_key("rate limit client"))
