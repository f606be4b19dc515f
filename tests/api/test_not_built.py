"""Before an index is built every endpoint answers 503 with what to do, not 500."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.main import create_app
from rehabmap.config import Settings


@pytest.fixture(scope="module")
def unbuilt_app(geodata_dir, data_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("api-unbuilt")
    (home / "geodata").symlink_to(geodata_dir, target_is_directory=True)
    return create_app(Settings(home=home, data_dir=data_dir))


@pytest.mark.parametrize("method,path", [
    ("GET", "/health"), ("GET", "/services"), ("GET", "/services.csv"), ("GET", "/services/sample:x"),
    ("GET", "/areas/E08000035"), ("GET", "/oruk/services"), ("GET", "/oruk/services/sample:x"),
    ("POST", "/match"),
])
def test_every_endpoint_says_the_index_is_not_built(unbuilt_app, method, path):
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=unbuilt_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
            return await client.request(method, path, json={"home": {"postcode": "LS9 7TF"}} if method == "POST"
                                        else None)

    reply = asyncio.run(call())
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["code"] == "index_not_built" and "rehabmap index" in error["message"]
