"""One freshness rule for capacity, in every output: a report holds for REHABMAP_CAPACITY_MAX_AGE_DAYS
(default 14) days and then reads as unknown, with the report kept beside it.

A real `rehabmap serve` runs with the window at its default and at 7 days. A provider reports one unit's
capacity exactly as old as the window (it holds) and another's a day older (it does not), and every output
is read: the API's JSON (one service, the list, the match and its explanations), the CSV and GeoJSON
exports, the Open Referral feed, the pages, and the `rehabmap match` command.

The server and the command are given the test's date (REHABMAP_TODAY): a report exactly as old as the window
is one day older, and no longer holds, to a server that reads its own clock after a midnight the test's
reading came before."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest

from rehabmap.oruk import service_uuid
from rehabmap.record import Service
from tests.maintain.conftest import OWNED_A, TODAY, Server, Site, cli, make_site, start_server

FRESH = "sample:aire-valley-rehabilitation-unit"
STALE = "sample:seacroft-community-rehabilitation-unit"
LEVEL1 = "inpatient_rehab_level1"
NEAR = {"postcode": "LS9 7TF", "type": LEVEL1, "radius_km": 30, "per_page": 100}


@dataclass
class Window:
    site: Site
    server: Server
    days: int
    env: dict[str, str]
    today: date

    def get(self, path: str, **kwargs) -> httpx.Response:
        reply = httpx.get(self.server.url + path, timeout=30, **kwargs)
        assert reply.status_code == 200, (path, reply.text[:300])
        return reply


@pytest.fixture(scope="module", params=[None, 7], ids=["default", "7 days"])
def window(request, sample_index, geodata_dir, data_dir, tmp_path_factory):
    site = make_site(tmp_path_factory.mktemp("capacity-window") / "home", sample_index, geodata_dir, data_dir)
    today = TODAY
    env = {"REHABMAP_TODAY": today.isoformat(),
           **({} if request.param is None else {"REHABMAP_CAPACITY_MAX_AGE_DAYS": str(request.param)})}
    server = start_server(site, warm_up=True, **env)  # searched from its first request
    days = request.param or 14
    assert {FRESH, STALE} <= set(OWNED_A)
    for service_id, age, capacity in ((FRESH, days, "available"), (STALE, days + 1, "limited")):
        reply = httpx.patch(f"{server.url}/maintain/services/{service_id}", headers=site.auth("provider_a"),
                            json={"capacity": capacity, "capacity_as_of": (today - timedelta(days=age)).isoformat()},
                            timeout=30)
        assert reply.status_code == 200, reply.text
    yield Window(site, server, days, env, today)
    server.stop()


def test_the_api_says_unknown_past_the_window(window):
    for path in (f"/services/{FRESH}", f"/services/{STALE}"):
        body = window.get(path).json()
        expected = "available" if body["id"] == FRESH else "unknown"
        assert body["capacity"]["status"] == expected, path
    listed = {s["id"]: s["capacity"] for s in window.get("/services", params=NEAR).json()["results"]}
    assert listed[FRESH]["status"] == "available" and listed[STALE]["status"] == "unknown"
    assert listed[STALE]["reported"] == "limited"

    match = httpx.post(f"{window.server.url}/match", json={"home": {"postcode": "LS9 7TF"}, "types": [LEVEL1]},
                       timeout=30).json()
    results = {r["id"]: r for r in match["results"]}
    assert results[FRESH]["capacity"]["status"] == "available"
    assert f"Capacity available as of {(window.today - timedelta(days=window.days)).isoformat()}." in \
        results[FRESH]["explanation"]
    assert results[STALE]["capacity"]["status"] == "unknown"
    assert f"Capacity unknown: the last report is more than {window.days} days old." in results[STALE]["explanation"]


def test_the_exports_say_unknown_past_the_window(window):
    text = window.get("/services.csv", params=NEAR).content.decode("utf-8-sig")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows[FRESH]["capacity"], rows[FRESH]["capacity_reported"]) == ("available", "available")
    assert (rows[STALE]["capacity"], rows[STALE]["capacity_reported"]) == ("unknown", "limited")
    features = {f["id"]: f["properties"] for f in window.get("/services.geojson", params=NEAR).json()["features"]}
    assert features[FRESH]["capacity"] == "available"
    assert (features[STALE]["capacity"], features[STALE]["capacity_reported"]) == ("unknown", "limited")


def details(oruk_service: dict) -> dict[str, str]:
    return {a["taxonomy_term"]["code"]: a.get("value") for a in oruk_service["attributes"]
            if a["taxonomy_term"]["taxonomy"] == "rehabmap"}


def test_the_open_referral_feed_says_unknown_past_the_window(window):
    fresh = details(window.get(f"/oruk/services/{service_uuid(FRESH)}").json())
    stale = details(window.get(f"/oruk/services/{service_uuid(STALE)}").json())
    assert (fresh["capacity"], fresh["capacity_reported"]) == ("available", "available")
    assert (stale["capacity"], stale["capacity_reported"]) == ("unknown", "limited")
    assert stale["capacity_as_of"] == (window.today - timedelta(days=window.days + 1)).isoformat()
    listed = window.get("/oruk/services", params={"full": "true", "search": "Seacroft"}).json()["contents"]
    assert [details(s)["capacity"] for s in listed if s["id"] == service_uuid(STALE)] == ["unknown"]


def test_the_pages_say_unknown_past_the_window(window):
    stale = window.get(f"/service/{STALE}").text
    assert f"Unknown: the last report (limited vacancy, {window.days + 1} days ago" in stale
    assert f"is older than {window.days} days" in stale
    assert f"Vacancy, reported {window.days} days ago" in window.get(f"/service/{FRESH}").text
    assert f"A vacancy report older than {window.days} days is shown as unknown." in \
        window.get("/about-the-data").text
    summary = httpx.post(f"{window.server.url}/alternatives", timeout=30, follow_redirects=True,
                         data={"home": "LS9 7TF", "types": LEVEL1, "order": "nearest"}).text
    assert f"is older than {window.days} days" in summary and "Vacancy unknown" in summary


def test_the_match_command_says_unknown_past_the_window(window):
    done = cli(window.site, "match", "--postcode", "LS9 7TF", "--type", LEVEL1, **window.env)
    assert done.returncode == 0, done.stderr
    rows = {name: line.split()[-1] for line in done.stdout.splitlines()
            for name in ("Aire Valley Rehabilitation Unit", "Seacroft Community Rehabilitation Unit")
            if name in line and not re.match(r"^\d+\. ", line)}
    assert rows == {"Aire Valley Rehabilitation Unit": "available", "Seacroft Community Rehabilitation Unit": "unknown"}
    assert f"Capacity unknown: the last report is more than {window.days} days old." in " ".join(done.stdout.split())


def test_the_rule_itself(monkeypatch):
    """`capacity_now` reads the window from the one settings object unless told; the boundary holds."""
    from rehabmap.config import get_settings

    today = date(2026, 11, 23)
    service = Service(id="test:one", name="One unit", service_type=LEVEL1, lat=53.8, lon=-1.5, capacity="none",
                      capacity_as_of=today - timedelta(days=10), provenance=[{"source": "test", "source_id": "1",
                                                                              "fetched_at": "2026-11-01T00:00:00Z"}])
    assert service.capacity_now(today) == "none"  # the default, 14 days
    assert service.capacity_now(today, 10) == "none" and service.capacity_now(today, 9) is None
    monkeypatch.setenv("REHABMAP_CAPACITY_MAX_AGE_DAYS", "9")
    get_settings.cache_clear()
    try:
        assert service.capacity_now(today) is None
        assert service.model_copy(update={"capacity_as_of": today - timedelta(days=9)}).capacity_now(today) == "none"
        assert service.model_copy(update={"capacity_as_of": None, "capacity": None}).capacity_now(today) is None
    finally:
        monkeypatch.delenv("REHABMAP_CAPACITY_MAX_AGE_DAYS")
        get_settings.cache_clear()


@pytest.mark.parametrize("value", ["0", "abc"])
def test_a_bad_window_is_a_one_line_error(fresh_site, value):
    done = cli(fresh_site, "match", "--postcode", "LS9 7TF", REHABMAP_CAPACITY_MAX_AGE_DAYS=value)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Invalid settings: REHABMAP_CAPACITY_MAX_AGE_DAYS:")


def test_the_rule_once_per_match():
    """A match works out the oldest report date that holds once (`capacity_current_since`) and compares each
    result's report with it (`Service.capacity_since`): the same answer as `capacity_now` on every day around
    the window's edge, and as `capacity_is_current`, for windows of 1 to 365 days."""
    from rehabmap.record import capacity_current_since, capacity_is_current

    today = date(2026, 11, 23)
    base = Service(id="test:one", name="One unit", service_type=LEVEL1, lat=53.8, lon=-1.5, capacity="limited",
                   capacity_as_of=today, provenance=[{"source": "test", "source_id": "1",
                                                      "fetched_at": "2026-11-01T00:00:00Z"}])
    unreported = base.model_copy(update={"capacity_as_of": None, "capacity": None})
    undated = base.model_copy(update={"capacity_as_of": None})
    for window in (1, 7, 14, 365):
        since = capacity_current_since(today, window)
        assert since == today - timedelta(days=window)
        for age in range(window - 2, window + 3):
            service = base.model_copy(update={"capacity_as_of": today - timedelta(days=age)})
            expected = "limited" if age <= window else None  # a date after today holds too, as it always did
            assert service.capacity_since(since) == service.capacity_now(today, window) == expected
            assert capacity_is_current(service.capacity_as_of, today, window) is (expected is not None)
        assert unreported.capacity_since(since) is None and undated.capacity_since(since) is None
