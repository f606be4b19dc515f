"""The GET /gaps… router on a FastAPI app with the project's error handlers, the real geography and an embedded
index holding the known services (as the composition root, app/main.py, wires it): the fixtures the API and
column tests share.

A module imports `writer`, `backend` and `client` to have them as its own (module scope: each importing module
builds its own index and app, as when test_columns.py imported them from test_api.py); this is not a test
module, so importing it brings no tests along."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.routes import gaps as gaps_routes
from rehabmap.config import Settings
from rehabmap.state import AppState
from search.embedded import EmbeddedIndex, EmbeddedWriter


@pytest.fixture(scope="module")
def writer(known_services, tmp_path_factory) -> EmbeddedWriter:
    writer = EmbeddedWriter(tmp_path_factory.mktemp("gaps-index") / "index.sqlite")
    writer.replace_all(known_services)
    return writer


@pytest.fixture(scope="module")
def backend(writer) -> EmbeddedIndex:
    return EmbeddedIndex(writer.path)


@pytest.fixture(scope="module")
def client(data_dir: Path, geography, backend, tmp_path_factory) -> TestClient:
    app = FastAPI()
    errors.install(app)
    settings = Settings(home=tmp_path_factory.mktemp("gaps-home"), data_dir=data_dir)
    app.state.rehabmap = AppState(settings, geography, backend)
    app.include_router(gaps_routes.router)
    return TestClient(app)
