"""The polite HTTP client against the replay server (tests/sync/replay.py): a real server on 127.0.0.1.

Tests about a decision (how long to wait, whether to retry) record the client's sleeps instead of sleeping;
the test about the server really waits, and checks on the server's own clock that it did."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from indexer.sync.http import (
    HttpPolicy,
    SourceClient,
    SourceError,
    SourceKeyRefused,
    SourceNotFound,
    SourceUnavailable,
    Validators,
    backoff_seconds,
    retry_after_seconds,
)
from tests.sync.replay import CQC_KEY_HEADER, Replay


class FakeTime:
    """A clock that moves only when the client sleeps: sleeps are recorded, not spent."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def cqc_client(replay: Replay, fake: FakeTime | None = None, *, key: str | None = "replay-cqc-key",
               **policy: float) -> SourceClient:
    timing = {"sleep": fake.sleep, "clock": fake.clock} if fake else {}
    return SourceClient("CQC API", replay.cqc_url, key=SecretStr(key) if key is not None else None,
                        key_header=CQC_KEY_HEADER, key_setting="REHABMAP_CQC_API_KEY",
                        policy=HttpPolicy(**{"rate": 1000, "timeout": 5, "retries": 3, **policy}),
                        rng=random.Random(7), **timing)


def test_429_retry_after_seconds_is_obeyed_exactly(replay):
    replay.fail("/cqc/locations/1-112845365", 429, headers={"Retry-After": "7"})
    fake = FakeTime()
    with cqc_client(replay, fake) as http:
        assert http.get_record("locations/1-112845365", "locationId")["name"] == "Field House"
    assert fake.sleeps == [7.0]
    assert [s.status for s in replay.seen("/cqc/locations/")] == [429, 200]


def test_503_retry_after_http_date_form_is_obeyed(replay):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    replay.fail("/cqc/locations/1-112845365", 503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    fake = FakeTime()
    with cqc_client(replay, fake) as http:
        http.get_record("locations/1-112845365", "locationId")
    assert len(fake.sleeps) == 1 and 25 <= fake.sleeps[0] <= 30


def test_retry_after_longer_than_the_cap_ends_the_run_without_retrying(replay):
    replay.fail("/cqc/locations/1-112845365", 429, headers={"Retry-After": "3600"})
    fake = FakeTime()
    with cqc_client(replay, fake, retry_after_max=120) as http, pytest.raises(SourceUnavailable) as caught:
        http.get_record("locations/1-112845365", "locationId")
    assert "asked to wait 3600 s" in caught.value.message and "Retry-After: 3600" in caught.value.message
    assert "run the sync again later" in caught.value.message
    assert fake.sleeps == [] and len(replay.seen("/cqc/locations/")) == 1


def test_5xx_is_retried_with_growing_jittered_backoff(replay):
    replay.fail("/cqc/locations/1-112845365", 502, times=3)
    fake = FakeTime()
    with cqc_client(replay, fake, backoff_base=1, backoff_max=60) as http:
        http.get_record("locations/1-112845365", "locationId")
    # Equal jitter: the n-th wait lies in [2^n / 2, 2^n].
    assert len(fake.sleeps) == 3
    for n, wait in enumerate(fake.sleeps):
        assert 2 ** n / 2 <= wait <= 2 ** n


def test_a_source_down_after_the_retries_says_which_url_and_status(replay):
    replay.fail("/cqc/locations/1-112845365", 500, times=None)
    fake = FakeTime()
    with cqc_client(replay, fake, retries=2) as http, pytest.raises(SourceUnavailable) as caught:
        http.get_record("locations/1-112845365", "locationId")
    assert caught.value.message == (f"CQC API is unavailable: {replay.cqc_url}/locations/1-112845365 still failed "
                                    "after 3 tries (status 500)")
    assert len(replay.seen("/cqc/locations/")) == 3


def test_a_dropped_connection_is_retried(replay):
    replay.drop("/cqc/locations/1-112845365")
    fake = FakeTime()
    with cqc_client(replay, fake) as http:
        assert http.get_record("locations/1-112845365", "locationId")["locationId"] == "1-112845365"
    assert [s.status for s in replay.seen("/cqc/locations/")] == [None, 200]
    assert len(fake.sleeps) == 1


def test_a_slow_answer_times_out_and_is_retried(replay):
    replay.slow("/cqc/locations/1-112845365", 2.0)
    fake = FakeTime()
    with cqc_client(replay, fake, timeout=0.3) as http:
        assert http.get_record("locations/1-112845365", "locationId")["name"] == "Field House"
    assert len(replay.seen("/cqc/locations/")) == 2 and len(fake.sleeps) == 1


def test_no_key_and_a_wrong_key_are_told_apart_and_the_key_never_shows(replay, caplog):
    caplog.set_level(logging.DEBUG)
    with cqc_client(replay, key=None) as http, pytest.raises(SourceKeyRefused) as caught:
        http.get_record("locations/1-112845365", "locationId")
    assert caught.value.message == "CQC API needs a key (401): set REHABMAP_CQC_API_KEY"
    secret = "not-the-key-0123456789"
    with cqc_client(replay, key=secret) as http, pytest.raises(SourceKeyRefused) as caught:
        http.get_record("locations/1-112845365", "locationId")
    assert caught.value.message == "CQC API refused the key (401): check REHABMAP_CQC_API_KEY"
    assert secret not in caplog.text and secret not in repr(http.__dict__)
    assert [s.had_key for s in replay.seen("/cqc/")] == [False, True]


def test_the_key_is_redacted_from_an_error_that_echoes_it(replay):
    """A source that quotes the request back (some gateways do) must not put the key into our message."""
    with cqc_client(replay, key="replay-cqc-key") as http:
        assert http.redact("bad request for key replay-cqc-key") == "bad request for key [redacted]"


def test_404_and_other_4xx_are_errors_a_person_can_read(replay):
    with cqc_client(replay) as http:
        with pytest.raises(SourceNotFound, match="has nothing at .*/locations/1-0 \\(404\\)"):
            http.get_record("locations/1-0", "locationId")
        with pytest.raises(SourceError, match="answered 400 for .*startTimestamp and endTimestamp are required"):
            http.get_page("changes/location", {}, "changes")


def test_requests_are_paced_to_the_rate(replay):
    fake = FakeTime()
    with cqc_client(replay, fake, rate=4) as http:
        for _ in range(3):
            http.get_record("locations/1-112845365", "locationId")
    assert fake.sleeps == pytest.approx([0.25, 0.25])


def test_conditional_get_etag_then_last_modified(replay, tmp_path):
    replay.serve_file("ratings.csv", b"a,b\n1,2\n")
    with SourceClient("CQC files", replay.base_url, policy=HttpPolicy(rate=1000)) as http:
        first = http.get("files/ratings.csv", into=tmp_path / "ratings.csv")
        assert first.status == 200 and (tmp_path / "ratings.csv").read_bytes() == b"a,b\n1,2\n"
        again = http.get("files/ratings.csv", validators=first.validators)
        assert again.not_modified
        by_date = http.get("files/ratings.csv", validators=Validators(last_modified=first.validators.last_modified))
        assert by_date.not_modified
        replay.serve_file("ratings.csv", b"a,b\n1,3\n")
        changed = http.get("files/ratings.csv", validators=first.validators, into=tmp_path / "ratings.csv")
        assert changed.status == 200 and (tmp_path / "ratings.csv").read_bytes() == b"a,b\n1,3\n"
    sent = [s.headers for s in replay.seen("/files/")]
    assert sent[0] == {} and sent[1]["If-None-Match"] == first.validators.etag
    assert sent[2] == {"If-Modified-Since": first.validators.last_modified}


def test_the_client_really_waits_for_retry_after(replay):
    """The server's clock, not the client's, shows the wait: the retry arrives at least a second later."""
    replay.fail("/cqc/locations/1-112845365", 429, headers={"Retry-After": "1"})
    with cqc_client(replay) as http:
        http.get_record("locations/1-112845365", "locationId")
    first, second = replay.seen("/cqc/locations/")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None


def test_backoff_is_capped():
    policy = HttpPolicy(backoff_base=1, backoff_max=10)
    assert all(5 <= backoff_seconds(n, policy, random.Random(n)) <= 10 for n in range(4, 12))
