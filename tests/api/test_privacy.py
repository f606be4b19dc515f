"""Request logs never hold what a person searched for: no postcode, no coordinates, no needs.

The server under test is `rehabmap serve` (uvicorn, its access log off) at DEBUG level, and the whole of
its output is read, so a leak from any logger — rehabmap's, uvicorn's, a library's — fails the test.
"""

from __future__ import annotations

import re
import time

SECRETS = ("LS9 7TF", "TR1 3BT", "E3 2AN")
NEEDS = ("restricted_s37_41", "personality_disorder_diagnosis", "language:pl")
POINT = (53.79648, -1.54785)


def forms(postcode: str) -> list[str]:
    """A postcode as it could appear in a log: spaced, compact, URL-encoded either way, any case."""
    compact = postcode.replace(" ", "")
    return [postcode, compact, postcode.replace(" ", "+"), postcode.replace(" ", "%20")]


def test_request_logs_hold_no_postcode_point_or_need(client, live_server):
    start = len(live_server.log_text())
    requests = [
        client.get("/services", params={"postcode": "LS9 7TF", "need": list(NEEDS), "radius_km": 30}),
        client.get("/services.csv", params={"postcode": "TR1 3BT"}),
        client.get("/services.geojson", params={"postcode": "E3 2AN", "need": "restricted_s37_41"}),
        client.get("/oruk/service_at_locations", params={"postcode": "LS9 7TF", "proximity": 5000}),
        client.post("/match", json={"home": {"postcode": "LS9 7TF"}, "needs": list(NEEDS),
                                    "current_placement": {"postcode": "TR1 3BT"}}),
        client.post("/match", json={"home": {"lat": POINT[0], "lon": POINT[1]}, "needs": ["restricted_s37_41"]}),
        # errors echo the input to the person who sent it, never to the log
        client.post("/match", json={"home": {"postcode": "LS9 7TFX"}, "needs": ["restricted_s37_41"]}),
        client.post("/match", json={"home": {"postcode": "E3 2AN"}, "needs": ["flying"]}),
        client.post("/match", json={"home": {"postcode": "TR1 3BT"}, "limit": 0}),
        client.get("/services", params={"postcode": "E3 2AN", "type": "hospital"}),
    ]
    assert [r.status_code for r in requests] == [200, 200, 200, 200, 200, 200, 400, 400, 422, 400]
    # Wait for the server's line for every request to reach the file (a bound, not a guess at how long).
    deadline = time.monotonic() + 60
    while len(re.findall(r"rehabmap\.access (GET|POST) ", log := live_server.log_text()[start:])) < len(requests):
        assert time.monotonic() < deadline, "the server did not log every request"
        time.sleep(0.05)

    # The log is being written: one line per request, with the route template only.
    assert "POST /match 200" in log and "GET /services 200" in log and "GET /oruk/service_at_locations 200" in log
    assert len(re.findall(r"rehabmap\.access (GET|POST) ", log)) == len(requests)

    lowered = log.lower()
    for postcode in SECRETS + ("LS9 7TFX",):
        for form in forms(postcode):
            assert form.lower() not in lowered, f"{form!r} is in the server log"
    for need in (*NEEDS, "flying"):
        assert need not in log, f"{need!r} is in the server log"
    for number in POINT:
        assert f"{number}" not in log and f"{number:.3f}" not in log
    assert "?" not in log  # no query string at all


def test_an_unexpected_error_is_a_json_500_and_its_message_is_not_logged(caplog):
    """In-process: the catch-all answers in JSON and logs the exception's type and place only."""
    import asyncio

    import httpx
    from fastapi import FastAPI

    from api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom() -> None:
        raise ValueError("could not read 'LS9 7TF'")

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # re-raises anything the app lets escape
        async with httpx.AsyncClient(transport=transport, base_url="http://rehabmap.test") as test_client:
            return await test_client.get("/boom")

    with caplog.at_level("DEBUG"):
        reply = asyncio.run(call())
    assert reply.status_code == 500
    assert reply.json() == {"error": {"code": "internal_error",
                                      "message": "Something went wrong on our side. Please try again."}}
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any("unexpected error: ValueError at" in m and "boom" in m for m in server_side)
    assert not any("LS9" in m for m in server_side)
