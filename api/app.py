"""Application factory: wires settings, geography and backend into FastAPI once, at start-up."""

from __future__ import annotations

import logging
import sqlite3

from fastapi import FastAPI

from api import errors, security
from api.deps import AppState
from api.logging import PrivacyLogMiddleware, configure_logging
from api.routes import areas, gaps, health, maintain, match, services
from api.routes.oruk import create_oruk_app
import web
import web.routes
from rehabmap import __version__
from rehabmap.config import Settings, get_settings
from rehabmap.runtime import open_backend, open_geography

DESCRIPTION = """Local mental health rehabilitation resources in England, ranked near a person's home.

* **POST /match** — the clinicians' question: options nearest home that meet every stated need.
* **GET /services**, **/services/{id}**, **/services.csv**, **/services.geojson** — browse, search, export.
* **GET /areas/{code}** — an ICB, sub-ICB, local authority or region and the services in it.
* **GET /gaps**, **/gaps/{area_code}** — commissioners' pathway scorecard and access indicators per ICB or
  local authority, with CSV/GeoJSON exports and SVG maps.
* **/oruk/** — the same services as an open [Open Referral UK 3.0](/oruk/docs) feed, with its own
  [OpenAPI document](/oruk/openapi.json).
* **/maintain/** — for maintainers and providers, with a bearer token: change, add, retire and verify
  services, list what needs verifying, read the audit log.

Errors are JSON `{"error": {"code", "message", "field"}}` with a precise 4xx status. Nothing a person
searches for (postcode, place, needs) is logged. Each client address may make a limited number of
requests a minute (429 with Retry-After past it); request bodies are limited to 64 KiB (413).
"""

TAGS = [
    {"name": "match", "description": "Ranked options for one person, with why each matched."},
    {"name": "services", "description": "Browse, search and export the index."},
    {"name": "areas", "description": "ONS areas (ICB, sub-ICB, local authority, region)."},
    {"name": "gaps", "description": "Commissioners' pathway gaps: indicators, scorecards, maps, exports."},
    {"name": "health", "description": "Is the service up, and how big and fresh is its index."},
    {"name": "maintain", "description": "Keeping the directory true: edits, verification, audit (bearer token)."},
]
log = logging.getLogger("rehabmap.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="rehabmap", version=__version__, description=DESCRIPTION, openapi_tags=TAGS)
    state = AppState(settings, open_geography(settings), open_backend(settings))
    open_directory(state)
    app.state.rehabmap = state
    errors.install(app)
    app.add_middleware(PrivacyLogMiddleware)
    app.include_router(health.router)
    app.include_router(match.router)
    app.include_router(services.router)
    app.include_router(areas.router)
    app.include_router(gaps.router)
    app.include_router(maintain.router)
    oruk_app = create_oruk_app(state)
    security.document(oruk_app)
    app.mount("/oruk", oruk_app)
    web.mount_static(app)
    app.include_router(web.routes.router)
    security.install(app, per_minute=settings.rate_limit_per_minute, max_body_bytes=settings.max_body_bytes)
    return app


def open_directory(state: AppState) -> None:
    """The maintainers' store and editor; then any edit a crash kept from the live index is laid on it.
    Without a writable REHABMAP_HOME the server still answers searches, and /maintain says 503."""
    from rehabmap.directory import Directory
    from rehabmap.edits import Editor, pause_for_tests
    from rehabmap.errors import DomainError
    from rehabmap.runtime import open_writer

    settings = state.settings
    try:
        state.directory = Directory.from_settings(settings)
    except (OSError, sqlite3.Error) as exc:
        log.warning("directory store not opened (%s): /maintain is unavailable", type(exc).__name__)
        return
    pause = pause_for_tests(settings.test_pause_in_write, settings.home) if settings.test_pause_in_write else None
    state.editor = Editor(state.directory, state.backend, open_writer(settings), state.geography, pause=pause)
    try:
        state.editor.reconcile()
    except DomainError:
        pass  # no index yet: nothing to lay edits on
    except Exception as exc:  # a search cluster that is down must not stop the server starting
        log.warning("directory edits not checked against the index at start-up: %s", type(exc).__name__)
