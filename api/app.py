"""Application factory: wires settings, geography and backend into FastAPI once, at start-up."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api import errors
from api.deps import AppState
from api.logging import PrivacyLogMiddleware
from api.routes import areas, gaps, health, match, services
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

Errors are JSON `{"error": {"code", "message", "field"}}` with a precise 4xx status. Nothing a person
searches for (postcode, place, needs) is logged.
"""

TAGS = [
    {"name": "match", "description": "Ranked options for one person, with why each matched."},
    {"name": "services", "description": "Browse, search and export the index."},
    {"name": "areas", "description": "ONS areas (ICB, sub-ICB, local authority, region)."},
    {"name": "gaps", "description": "Commissioners' pathway gaps: indicators, scorecards, maps, exports."},
    {"name": "health", "description": "Is the service up, and how big and fresh is its index."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(title="rehabmap", version=__version__, description=DESCRIPTION, openapi_tags=TAGS)
    state = AppState(settings, open_geography(settings), open_backend(settings))
    app.state.rehabmap = state
    errors.install(app)
    app.add_middleware(PrivacyLogMiddleware)
    app.include_router(health.router)
    app.include_router(match.router)
    app.include_router(services.router)
    app.include_router(areas.router)
    app.include_router(gaps.router)
    app.mount("/oruk", create_oruk_app(state))
    web.mount_static(app)
    app.include_router(web.routes.router)
    return app
