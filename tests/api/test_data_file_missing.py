"""A server whose data folder lacks the small-area file (or the small areas' polygons) says so (503, what to do)
on every face, never a 500, and answers again as soon as the file is in place, with no restart.

Every search needs the file (its coverage tells "none found" from "no data for this area"), as does every gap
figure: before, each of those answered a bare 500, the pages a JSON one, and /health said "ok"."""

from __future__ import annotations

import html
from pathlib import Path

import httpx
import pytest

from rehabmap.small_areas import SMALL_AREAS_FILE
from tests.api.conftest import serve
from tests.listening import ANSWER_TIMEOUT_S

WEST_YORKSHIRE = "E54000054"
SEARCH = {"home": {"postcode": "LS9 7TF"}, "needs": ["autism"]}
API = [("POST", "/match"), ("GET", f"/areas/{WEST_YORKSHIRE}"), ("GET", f"/gaps/{WEST_YORKSHIRE}"),
       ("GET", f"/gaps/{WEST_YORKSHIRE}/smallareas.csv"), ("GET", "/health")]
PAGES = ["/find/housing?where=LS9+7TF", "/find/everything?where=LS9+7TF", f"/pathway-gaps/{WEST_YORKSHIRE}",
         "/pathway-gaps"]


@pytest.fixture(scope="module")
def without_file(api_home: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`rehabmap serve` (warmed up, as in production) over a data folder with nothing in it yet, and that folder."""
    empty = tmp_path_factory.mktemp("data-without-small-areas")
    log = tmp_path_factory.mktemp("server-without-small-areas") / "server.log"
    with serve(api_home, empty, log, health=503) as server, \
            httpx.Client(base_url=server.url, timeout=ANSWER_TIMEOUT_S) as client:
        yield server, client, empty


def _said(reply: httpx.Response) -> str:
    assert reply.status_code == 503, (reply.request.url, reply.status_code, reply.text[:300])
    error = reply.json()["error"]
    assert error["code"] == "data_file_missing"
    return error["message"]


def test_every_face_says_what_is_missing_and_what_to_do(without_file):
    server, client, folder = without_file
    for method, path in API:
        message = _said(client.request(method, path, json=SEARCH if method == "POST" else None))
        assert str(SMALL_AREAS_FILE) in message and "REHABMAP_DATA_DIR" in message, path
        assert str(folder) not in message  # the server's folders are the operator's: its log says where
    for path in PAGES:
        reply = client.get(path)
        assert reply.status_code == 503 and reply.headers["content-type"].startswith("text/html"), path
        text = html.unescape(reply.text)
        assert "This part of rehabmap is not available" in text and "REHABMAP_DATA_DIR" in text, path
        assert reply.headers["cache-control"] == "no-store", path  # gone from every cache once the file is in
    # The clinicians' search: held, then shown on the results page.
    reply = client.post("/alternatives", data={"home": "LS9 7TF", "needs": ["autism"]}, follow_redirects=True)
    assert reply.status_code == 503 and "This part of rehabmap is not available" in html.unescape(reply.text)
    log = server.log_text()
    said = f"The data folder (REHABMAP_DATA_DIR) has no Census 2021 small-area file ({SMALL_AREAS_FILE})"
    assert f"warm-up stopped: {said}" in log and f"({folder / SMALL_AREAS_FILE})" in log
    assert "unexpected error" not in log and "Traceback" not in log and " 500 " not in log


def test_the_same_server_answers_once_the_file_is_in_place(without_file, data_dir: Path):
    _, client, folder = without_file
    (folder / SMALL_AREAS_FILE).parent.mkdir(parents=True)
    (folder / SMALL_AREAS_FILE).symlink_to(data_dir / SMALL_AREAS_FILE)
    assert client.get("/health").status_code == 200
    reply = client.post("/match", json=SEARCH)
    assert reply.status_code == 200 and reply.json()["results"], reply.text[:300]
    assert client.get(f"/gaps/{WEST_YORKSHIRE}").status_code == 200
    assert client.get("/find/housing?where=LS9+7TF").status_code == 200
    # Still without the small areas' polygons: the map alone needs them (the GeoJSON gives each area's point).
    assert "LSOA 2021 boundaries file" in _said(client.get(f"/gaps/{WEST_YORKSHIRE}/map.svg"))
    features = client.get(f"/gaps/{WEST_YORKSHIRE}/smallareas.geojson").json()["features"]
    assert features and {f["geometry"]["type"] for f in features} == {"Point"}
