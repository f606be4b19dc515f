"""Application factory: wires settings, geography and backend into FastAPI once, at start-up."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from api import errors
from api.deps import AppState
from api.logging import PrivacyLogMiddleware
from api.routes import health, match
from rehabmap import __version__
from rehabmap.config import Settings, get_settings
from rehabmap.runtime import open_backend, open_geography


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(
        title="rehabmap", version=__version__,
        description="Local mental health rehabilitation resources in England, ranked near a person's home.")
    app.state.rehabmap = AppState(settings, open_geography(settings), open_backend(settings))
    errors.install(app)
    app.add_middleware(PrivacyLogMiddleware)
    app.include_router(health.router)
    app.include_router(match.router)
    return app
