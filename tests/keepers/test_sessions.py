"""The keepers' sessions and one-time sign-in links in the real maintainers' store (the SQLite file, and
PostgreSQL: each test runs on both): kept as
hashes only, ended by idle time, by age, by sign-out, and at once by their token's revocation or expiry.
The clock is moved by the test, never waited for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from rehabmap.errors import UnknownToken
from rehabmap.maintain.sessions import SessionPolicy, Sessions
from tests.conftest import database_url
from tests.keepers.conftest import Clock
from tests.maintain.conftest import make_site, stored_bytes

POLICY = SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=8), link=timedelta(minutes=15))


@pytest.fixture
def site(request, store_kind, sample_index, geodata_dir, data_dir, tmp_path):
    return make_site(tmp_path / "home", sample_index, geodata_dir, data_dir,
                     database_url=database_url(request, store_kind))


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def sessions(site, clock) -> Sessions:
    return Sessions(site.directory.database, policy=POLICY, clock=clock)


def principal(site, who: str):
    return site.directory.tokens.authenticate(f"Bearer {site.tokens[who]}")


def count(site, table: str) -> int:
    with site.directory.database.connect() as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608 - our table names


def test_a_session_is_stored_as_a_hash_and_finds_its_token(site, sessions):
    session = sessions.start(principal(site, "provider_a"))
    found = sessions.check(session.secret)
    assert found is not None
    assert found.principal.token_id == site.token_ids["provider_a"]
    assert found.principal.organisation == "Aire Trust (fictional)" and found.principal.organisation_id is not None
    assert session.secret.encode() not in stored_bytes(site)
    assert sessions.check("not-a-session") is None and sessions.check("") is None


def test_a_session_ends_after_its_idle_time_and_each_request_restarts_it(site, sessions, clock):
    session = sessions.start(principal(site, "maintainer"))
    clock.advance(minutes=29)
    assert sessions.check(session.secret) is not None  # restarts the idle time
    clock.advance(minutes=29)
    assert sessions.check(session.secret) is not None
    clock.advance(minutes=30)
    assert sessions.check(session.secret) is None


def test_a_session_ends_at_its_absolute_limit_however_much_it_is_used(site, sessions, clock):
    session = sessions.start(principal(site, "maintainer"))
    for _ in range(16):  # a request every 29 minutes for 7 h 44 min
        clock.advance(minutes=29)
        assert sessions.check(session.secret) is not None
    clock.advance(minutes=16)  # 8 h after sign-in
    assert sessions.check(session.secret) is None


def test_revoking_the_token_ends_its_sessions_at_once_and_no_other(site, sessions):
    mine = sessions.start(principal(site, "provider_a"))
    other = sessions.start(principal(site, "provider_b"))
    assert sessions.live_for(site.token_ids["provider_a"]) == 1
    site.directory.tokens.revoke(site.token_ids["provider_a"], actor="test")
    assert sessions.check(mine.secret) is None
    assert sessions.live_for(site.token_ids["provider_a"]) == 0
    assert sessions.check(other.secret) is not None


def test_a_session_ends_when_its_token_expires(site, sessions, clock):
    info, token = site.directory.tokens.create("maintainer", "short", expires_at=clock.now + timedelta(hours=1),
                                               actor="test")
    session = sessions.start(site.directory.tokens.authenticate(f"Bearer {token}"))
    for _ in range(2):  # used every 29 minutes: only the token's expiry can end it
        clock.advance(minutes=29)
        assert sessions.check(session.secret) is not None
    clock.advance(minutes=2)  # the token's expiry
    assert sessions.check(session.secret) is None
    assert info.expires_at == (clock.now).isoformat()


def test_signing_out_ends_the_session(site, sessions):
    session = sessions.start(principal(site, "admin"))
    sessions.end(session.secret)
    assert sessions.check(session.secret) is None


def test_a_sign_in_link_works_once_is_stored_as_a_hash_and_expires(site, sessions, clock):
    code, expires = sessions.issue_link(site.token_ids["maintainer"])
    assert expires == clock.now + timedelta(minutes=15)
    assert code.encode() not in stored_bytes(site)
    session = sessions.redeem_link(code)
    assert session is not None and session.principal.token_id == site.token_ids["maintainer"]
    assert sessions.check(session.secret) is not None
    assert sessions.redeem_link(code) is None  # used up
    late, _ = sessions.issue_link(site.token_ids["maintainer"])
    clock.advance(minutes=15)
    assert sessions.redeem_link(late) is None
    assert sessions.redeem_link("made-up") is None


def test_a_sign_in_link_dies_with_its_token_and_none_is_made_for_a_dead_one(site, sessions):
    code, _ = sessions.issue_link(site.token_ids["provider_b"])
    site.directory.tokens.revoke(site.token_ids["provider_b"], actor="test")
    assert sessions.redeem_link(code) is None
    with pytest.raises(UnknownToken, match="No live token"):
        sessions.issue_link(site.token_ids["provider_b"])
    with pytest.raises(UnknownToken):
        sessions.issue_link("000000000000")


def test_ended_sessions_and_links_are_swept_from_the_store(site, sessions, clock):
    old = sessions.start(principal(site, "admin"))
    sessions.issue_link(site.token_ids["admin"])
    clock.advance(hours=9)
    sessions.start(principal(site, "admin"))
    assert count(site, "keeper_sessions") == 1 and count(site, "sign_in_links") == 0
    assert sessions.check(old.secret) is None
