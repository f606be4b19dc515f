"""GET /metrics: a Prometheus scrape of a real server that has answered searches, holding requests by route
template and status, the index's size and generation, the edit lag and the syncs' age, and nothing of any
search (no postcode, place, coordinates, needs, nor the paths asked for)."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Metrics
from indexer.sync.store import StoredRecord, SyncStore
from rehabmap.config import Settings
from rehabmap.index.base import ServiceQuery
from rehabmap.maintain.store import store_of
from rehabmap.state import AppState
from tests.conftest import database_url

POSTCODE = "LS9 7TF"
NEEDS = ["restricted_s37_41", "personality_disorder_diagnosis"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float | None:
    return scrape.get((name, tuple(sorted(labels.items()))))


def test_a_scrape_counts_requests_by_route_and_says_nothing_of_a_search(client, backend):
    before = samples(client.get("/metrics").text)
    service_id = backend.find(ServiceQuery(), limit=1).items[0].id
    assert client.post("/match", json={"home": {"postcode": POSTCODE}, "needs": NEEDS}).status_code == 200
    assert client.get("/services", params={"postcode": POSTCODE, "radius_km": 10}).status_code == 200
    assert client.get(f"/services/{service_id}").status_code == 200
    assert client.get("/services/sample:no-such-service").status_code == 404

    reply = client.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    scrape = samples(reply.text)

    def grew(method: str, route: str, status: str) -> float:
        name = "rehabmap_http_requests_total"
        return (value(scrape, name, method=method, route=route, status=status) or 0) - \
            (value(before, name, method=method, route=route, status=status) or 0)

    assert grew("POST", "/match", "200") == 1
    assert grew("GET", "/services", "200") == 1
    assert grew("GET", "/services/{service_id}", "200") == 1
    assert grew("GET", "/services/{service_id}", "404") == 1
    assert value(scrape, "rehabmap_http_request_duration_seconds_count", method="POST", route="/match") >= 1
    info = backend.info()
    assert value(scrape, "rehabmap_index_services") == info.count
    assert value(scrape, "rehabmap_index_built_timestamp_seconds") == info.built_at.timestamp()
    assert [k for k in scrape if k[0] == "rehabmap_index_generation"]
    assert value(scrape, "rehabmap_index_edit_lag_seconds") is not None

    text = reply.text
    for secret in [POSTCODE, POSTCODE.replace(" ", ""), "LS9", *NEEDS, service_id, "no-such-service"]:
        assert secret not in text, secret


def test_the_age_of_each_sources_last_successful_sync(backend, geography, tmp_path):
    settings = Settings(home=tmp_path)
    started = datetime.now(timezone.utc).isoformat()
    SyncStore(settings.directory_path).apply_run("cqc", [], [], [], [], live_changed=set(), complete=True,
                                                 started_at=started, report={"fetched": 0})
    scrape = samples(Metrics(AppState(settings, geography, backend)).exposition().decode())
    age = value(scrape, "rehabmap_sync_last_success_age_seconds", source="cqc")
    since = (datetime.now(timezone.utc) - datetime.fromisoformat(started)).total_seconds()
    assert age is not None and 0 <= age <= since + 1  # + 1: the age may be rounded up to whole seconds
    # With no store at all, the scrape still answers, without the syncs.
    empty = samples(Metrics(AppState(Settings(home=tmp_path / "none"), geography, backend)).exposition().decode())
    assert not [k for k in empty if k[0] == "rehabmap_sync_last_success_age_seconds"]
    assert value(empty, "rehabmap_index_services") == backend.info().count


def test_a_source_that_never_succeeded_is_infinitely_old_and_a_feed_removed_is_left_out(backend, geography, tmp_path):
    """Before, the age listed only the sources that had once succeeded, so a feed whose every run failed was in no
    series an alert could see, and a feed whose file had been removed from the feed folder went on ageing,
    alerting for ever. Now a source with runs and no success is +Inf seconds old (`> N` alerts on it), and an
    ORUK feed whose file has left the folder is left out (it is no longer synced)."""
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "york.toml").write_text('[feed]\nlabel = "York\n')  # its runs fail: it cannot be read
    settings = Settings(home=tmp_path / "home", oruk_feeds_dir=feeds)
    store = SyncStore(settings.directory_path)
    started = datetime.now(timezone.utc).isoformat()
    store.apply_run("cqc", [], [], [], [], live_changed=set(), complete=True, started_at=started,
                    report={"fetched": 0})
    for feed in ("oruk-york", "oruk-leeds"):  # Leeds's file has since been removed
        store.record_run(feed, started, "failed", {"error": "cannot read the feed file"})

    scrape = samples(Metrics(AppState(settings, geography, backend)).exposition().decode())

    ages = {dict(k[1])["source"]: v for k, v in scrape.items() if k[0] == "rehabmap_sync_last_success_age_seconds"}
    assert ages.keys() == {"cqc", "oruk-york"} and ages["oruk-york"] == float("inf") and ages["cqc"] < 60


def test_a_scrape_finds_the_sources_that_ran_on_an_index_not_by_reading_every_run(request, store_kind, tmp_path):
    """Every scrape asks which sources have run (`SyncStore.last_successes`), and sync-status and the keepers' Sources
    page which sources the store knows (`SyncStore.names`). Before, each read every run ever recorded (one a night
    per feed, for years) for the distinct sources, no index holding `sync_runs` by source, and `names` every record's
    connector too. Now both read migration 25's index, a source at a time, and `names` the records' connectors from
    migration 20's index so: on the SQLite file no statement scans the runs or the records, and on both databases the
    sources are those that ran or gave a record, each once."""
    url = database_url(request, store_kind)
    settings = Settings(home=tmp_path, **({"database_url": url} if url else {}))
    store = SyncStore(store_of(settings))
    started = datetime.now(timezone.utc).isoformat()
    store.apply_run("cqc", [], [], [], [], live_changed=set(), complete=True, started_at=started, report={})
    for _night in range(3):
        for feed in ("oruk-york", "oruk-leeds", "cqc"):
            store.record_run(feed, started, "failed", {"error": "the feed is down"})
    store.write([StoredRecord("sample", f"s{n}", "oruk-bath", f"sample:s{n}", "active", "unknown", {}, None, None,
                              None, None, None, "d", "e", started, started, started, None, None) for n in range(3)],
                (), (), live_changed=set())  # records of a connector no run is recorded under (a test's, a fixture's)
    said: list[str] = []
    if store_kind == "sqlite":
        with store.database.connect() as conn:  # the connection this thread keeps for its next call
            conn.set_trace_callback(said.append)

    successes, names = store.last_successes(), store.names()

    assert list(successes) == ["cqc", "oruk-leeds", "oruk-york"]
    assert names == ["cqc", "oruk-bath", "oruk-leeds", "oruk-york"]
    assert successes["cqc"] is not None and successes["oruk-york"] is None
    if store_kind == "sqlite":
        with store.database.connect() as conn:
            conn.set_trace_callback(None)
            plans = [" ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                     for sql in said if "sync_runs" in sql]
            records = [" ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
                       for sql in said if "sync_records" in sql]
        assert len(plans) == 2 and all("SCAN sync_runs" not in plan and "sync_runs_by_source" in plan
                                       for plan in plans), plans
        assert len(records) == 1 and "SCAN sync_records" not in records[0] and (
            "SEARCH t USING COVERING INDEX sync_records_counted (connector>?)" in records[0]), records
