"""Abuse resistance: per-client rate limits (429 + Retry-After), body size limits (413), security headers on
every reply, CORS only on the open ORUK feed, and errors without stack traces."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api.rate_limits import MemoryBuckets
from api.security import API_CSP
from tests.maintain.conftest import AppClient, make_app, make_site

LIMIT = 5


@pytest.fixture(scope="module")
def throttled(sample_index, geodata_dir, data_dir, tmp_path_factory):
    """A dedicated app with a low limit: LIMIT requests a minute per client."""
    site = make_site(tmp_path_factory.mktemp("throttled") / "home", sample_index, geodata_dir, data_dir,
                     rate_limit_per_minute=LIMIT)
    return make_app(site.settings)


def test_a_client_over_its_limit_gets_429_with_retry_after(throttled):
    client = AppClient(throttled, "203.0.113.7")
    for _ in range(LIMIT):
        assert client.get("/services", params={"per_page": 1}).status_code == 200
    reply = client.post("/match", json={"home": {"postcode": "LS9 7TF"}})
    assert reply.status_code == 429
    assert reply.json()["error"]["code"] == "rate_limited"
    wait = int(reply.headers["Retry-After"])
    assert 1 <= wait <= 60 // LIMIT + 1
    assert f"{wait} s" in reply.json()["error"]["message"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"  # made outside the app, still with headers
    # Health checks and page assets are not counted; other clients have their own bucket.
    assert client.get("/health").status_code == 200
    assert client.get("/static/rehabmap.css").status_code in (200, 404)
    assert AppClient(throttled, "203.0.113.8").get("/services", params={"per_page": 1}).status_code == 200
    # Every public route is counted, the ORUK feed too (and its 429 stays readable cross-origin).
    oruk = client.get("/oruk/services")
    assert oruk.status_code == 429 and oruk.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/maintain/me").status_code == 429


def test_the_bucket_refills_at_the_configured_rate():
    now = [1000.0]
    limiter = MemoryBuckets(per_minute=60, clock=lambda: now[0])
    assert all(limiter.take("a") is None for _ in range(60))
    assert limiter.take("a") == 1
    now[0] += 0.5
    assert limiter.take("a") == 1  # half a token back: still a second's wait
    now[0] += 0.5
    assert limiter.take("a") is None
    assert limiter.take("a") == 1
    now[0] += 61
    assert "a" in limiter.buckets
    limiter.take("b")  # a full bucket is forgotten: the address is not kept longer than it matters
    assert "a" not in limiter.buckets


def test_rate_limiting_is_off_at_zero(api):
    assert all(api.get("/health").status_code == 200 for _ in range(3))
    assert all(api.get("/areas/E08000035", params={"per_page": 1}).status_code == 200 for _ in range(30))


def test_a_body_over_64_kib_is_413_before_the_app_reads_it(api, site):
    big = {"home": {"postcode": "LS9 7TF"}, "needs": ["x" * 70_000]}
    reply = api.post("/match", json=big)
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "request_too_large"
    assert "64 KiB" in reply.json()["error"]["message"]

    async def chunked() -> httpx.Response:
        async def body():
            for _ in range(20):
                yield b"x" * 4096

        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as client:
            return await client.patch("/maintain/services/sample:leeds-recovery-college", content=body(),
                                      headers={**site.auth("admin"), "Content-Type": "application/json"})

    assert asyncio.run(chunked()).status_code == 413
    # Under the limit, the app answers as usual (here: the body is not the documented shape).
    assert api.post("/match", json={"home": {"postcode": "LS9 7TF"}, "pad": "x" * 60_000}).status_code == 422


def test_every_reply_carries_the_security_headers(api, site):
    replies = {
        "json": api.get("/services", params={"per_page": 1}),
        "error": api.get("/services/sample:nope"),
        "unauthenticated": api.get("/maintain/me"),
        "maintain": api.get("/maintain/me", headers=site.auth("admin")),
        "csv": api.get("/services.csv", params={"type": "vcfse"}),
        "oruk": api.get("/oruk/services"),
        "openapi": api.get("/openapi.json"),
    }
    for name, reply in replies.items():
        assert reply.headers["X-Content-Type-Options"] == "nosniff", name
        assert reply.headers["X-Frame-Options"] == "DENY", name
        assert reply.headers["Referrer-Policy"] == "no-referrer", name
        assert reply.headers["Content-Security-Policy"] == API_CSP, name
    assert replies["maintain"].headers["Cache-Control"] == "no-store"
    assert replies["unauthenticated"].headers["Cache-Control"] == "no-store"
    # The web pages keep their own policy (scripts and styles from this site only).
    page = api.get("/find")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "same-origin"
    docs = api.get("/docs")
    assert "https://cdn.jsdelivr.net" in docs.headers["Content-Security-Policy"]


def test_cors_only_on_the_open_oruk_feed(api, site):
    origin = {"Origin": "https://elsewhere.example"}
    assert api.get("/oruk/services", headers=origin).headers["Access-Control-Allow-Origin"] == "*"
    for reply in [api.get("/maintain/me", headers={**origin, **site.auth("admin")}),
                  api.post("/match", json={"home": {"postcode": "LS9 7TF"}}, headers=origin),
                  api.get("/services", headers=origin),
                  api.request("OPTIONS", "/maintain/services", headers={
                      **origin, "Access-Control-Request-Method": "POST",
                      "Access-Control-Request-Headers": "authorization"})]:
        assert "Access-Control-Allow-Origin" not in reply.headers, reply.request.url


@pytest.mark.parametrize("content", [b"{", b"[1, 2]", b"\xff\xfe", b'{"capacity": "limited"' + b" " * 10])
def test_malformed_bodies_are_4xx_json_without_a_stack_trace(api, site, content):
    reply = api.patch("/maintain/services/sample:leeds-recovery-college", content=content,
                      headers={**site.auth("admin"), "Content-Type": "application/json"})
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid_request"
    assert "Traceback" not in reply.text and "File \"" not in reply.text


def test_the_openapi_documents_the_limits(api):
    document = api.get("/openapi.json").json()
    match = document["paths"]["/match"]["post"]["responses"]
    assert "Retry-After" in match["429"]["headers"] and "413" in match
    assert "429" not in document["paths"]["/health"]["get"]["responses"]
    maintain = document["paths"]["/maintain/services/{service_id}"]["patch"]
    assert maintain["security"] == [{"token": []}] and "401" in maintain["responses"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert "429" in api.get("/oruk/openapi.json").json()["paths"]["/services"]["get"]["responses"]
