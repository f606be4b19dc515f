"""The JSON API as one FastAPI application: its OpenAPI document, its error replies, its routes, and the Open
Referral UK feed mounted at /oruk with a document of its own. The composition root (`app.main`) adds the
pages and, around it all, the request log, the limits and the catch-all (`api.request_layer`); nothing here
knows of the pages."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors, security
from api.body_route import serve_first
from api.head import HeadAsGet
from api.logging import FRAMEWORK_TELEMETRY
from api.metrics import Metrics
from api.routes import areas, gaps, health, maintain, match, metrics, services
from api.routes.oruk import create_oruk_app
from rehabmap import __version__
from rehabmap.state import AppState

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


def create_api(state: AppState) -> FastAPI:
    """The API over the parts in `state`, which its routes read through `api.deps.State`."""
    app = FastAPI(title="rehabmap", version=__version__, description=DESCRIPTION, openapi_tags=TAGS,
                  telemetry=FRAMEWORK_TELEMETRY)
    app.state.rehabmap = state
    app.state.metrics = Metrics(state)
    errors.install(app, catch_all=False)  # app.main's request layer catches, around the pages too
    app.add_middleware(HeadAsGet)  # around the pages too, which app.main adds to this app's routes
    for routes in (health, metrics, match, services, areas, gaps, maintain):
        app.include_router(routes.router)
    serve_first(app, match.router)  # POST /match: tried first, its usual requests above FastAPI's exception layer
    oruk_app = create_oruk_app(state)
    security.document(oruk_app)
    app.mount("/oruk", oruk_app)
    return app
