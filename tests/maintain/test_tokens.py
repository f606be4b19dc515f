"""API tokens: kept as keyed hashes under a key of their own; tokens made before that (Argon2id) still work
and are rehashed on their first right use; a store made before expiry is upgraded; every token expires,
within the configured default and maximum, and says so when it has; a lost or wrong key is an error that
says what to do, and `rehabmap tokens new-key` recovers."""

from __future__ import annotations

import sqlite3
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rehabmap.maintain.auth import keyed_hash, parse_token, secret_matches
from rehabmap.maintain.database import SqliteDatabase
from rehabmap.maintain.migrations import LATEST
from rehabmap.maintain.store import Directory
from rehabmap.errors import InvalidValue
from tests.maintain.conftest import (AppClient, cli, cli_here, make_app, make_home, make_site, make_v1_directory,
                                    stored_bytes)

UPGRADED_BY = "rehabmap upgrade (tokens now expire)"


def stored_hashes(store: Directory | Path) -> dict[str, str]:
    with (store.database if isinstance(store, Directory) else SqliteDatabase(store)).connect() as conn:
        return dict(conn.execute("SELECT id, hash FROM tokens").fetchall())


def me(api: AppClient, token: str):
    return api.get("/maintain/me", headers={"Authorization": f"Bearer {token}"})


def expires_after(when: str, started: datetime, days: int) -> bool:
    """An ISO timestamp `days` after a moment between `started` and now: the token was made in that window,
    however long a loaded machine took over it (a fixed tolerance of two minutes could be outrun). The second
    allowed below `started` is the timestamp's truncation to whole seconds."""
    made = datetime.fromisoformat(when) - timedelta(days=days)
    return started - timedelta(seconds=1) <= made <= datetime.now(timezone.utc)


def test_tokens_are_kept_as_keyed_hashes_under_a_key_of_their_own(site):
    key_file = site.home / "token.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    raw = stored_bytes(site)
    assert key not in raw and key.hex().encode() not in raw
    hashes = stored_hashes(site.directory)
    for token in site.tokens.values():
        token_id, secret = parse_token(token)
        assert secret.encode() not in raw and token.encode() not in raw
        assert hashes[token_id] == keyed_hash(key, token_id, secret)
        assert secret_matches(key, token_id, secret, hashes[token_id])
        assert not secret_matches(key, token_id, "x" * 43, hashes[token_id])
        assert not secret_matches(b"another key" * 3, token_id, secret, hashes[token_id])


def test_a_wrong_secret_for_a_known_token_is_a_401(api, site):
    token_id = site.token_ids["admin"]
    reply = me(api, f"rmk_{token_id}_{'A' * 43}")
    assert reply.status_code == 401 and "not valid" in reply.json()["error"]["message"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def v1(sample_index, geodata_dir, data_dir, tmp_path):
    """A home whose directory store was written before schema 2, with its legacy tokens."""
    settings = make_home(tmp_path / "home", sample_index, geodata_dir, data_dir)
    return settings, make_v1_directory(settings.directory_path)


def test_a_store_made_before_expiry_is_upgraded_and_audited(v1):
    settings, _tokens = v1
    opened = datetime.now(timezone.utc)
    directory = Directory.from_settings(settings)
    by_label = {t.name: t for t in directory.tokens.all()}
    for label in ("old admin", "old maintainer", "old provider"):
        assert expires_after(by_label[label].expires_at, opened, settings.token_expiry_days), label
    assert by_label["old revoked"].expires_at is None  # revoked already: nothing to expire
    entries, _ = directory.audit.entries(resource_type="token", limit=100)
    upgraded = [e for e in entries if e.actor == UPGRADED_BY]
    assert sorted(e.resource_id for e in upgraded) == sorted(
        t.id for t in by_label.values() if t.revoked_at is None)
    assert all(e.field == "expires_at" and e.old is None for e in upgraded)
    # Opening it again changes nothing.
    Directory.from_settings(settings)
    assert Directory.from_settings(settings).audit.entries(resource_type="token", limit=100)[1] == len(entries)
    with sqlite3.connect(settings.directory_path) as conn:
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (LATEST,)


def test_a_legacy_argon2_token_works_and_is_rehashed_on_its_first_right_use(v1):
    settings, tokens = v1
    api = AppClient(make_app(settings))
    token_id, secret = parse_token(tokens["old admin"])
    assert stored_hashes(settings.directory_path)[token_id].startswith("$argon2id$")

    assert me(api, f"rmk_{token_id}_{'A' * 43}").status_code == 401
    assert stored_hashes(settings.directory_path)[token_id].startswith("$argon2id$")  # a wrong secret changes nothing

    assert me(api, tokens["old admin"]).json()["name"] == "old admin"
    key = bytes.fromhex(settings.token_key_path.read_text().strip())
    assert stored_hashes(settings.directory_path)[token_id] == keyed_hash(key, token_id, secret)
    assert me(api, tokens["old admin"]).status_code == 200
    assert me(api, f"rmk_{token_id}_{'A' * 43}").status_code == 401

    revoked = me(api, tokens["old revoked"])  # the right secret, but revoked: refused and left as it was
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    assert stored_hashes(settings.directory_path)[parse_token(tokens["old revoked"])[0]].startswith("$argon2id$")


LIMITS = {"REHABMAP_TOKEN_EXPIRY_DAYS": "30", "REHABMAP_TOKEN_MAX_EXPIRY_DAYS": "60"}


def test_every_token_expires_within_the_configured_default_and_maximum(fresh_site):
    site = fresh_site
    made_at = datetime.now(timezone.utc)
    default = cli_here(site, "tokens", "create", "--role", "maintainer", "--name", "thirty days", **LIMITS)
    assert default.returncode == 0, default.stderr
    longer = cli_here(site, "tokens", "create", "--role", "maintainer", "--name", "45 days", "--expires-in", "45",
                      **LIMITS)
    day = (made_at + timedelta(days=10)).date()
    dated = cli_here(site, "tokens", "create", "--role", "admin", "--name", "dated", "--expires", day.isoformat(),
                     **LIMITS)
    assert longer.returncode == 0 and dated.returncode == 0, longer.stderr + dated.stderr
    made = {t.name: t for t in site.directory.tokens.all()}
    assert expires_after(made["thirty days"].expires_at, made_at, 30)
    assert expires_after(made["45 days"].expires_at, made_at, 45)
    assert made["dated"].expires_at == f"{day.isoformat()}T00:00:00+00:00"
    assert f"expiring {made['thirty days'].expires_at}" in default.stderr

    listing = cli_here(site, "tokens", "list")
    assert "expires" in listing.stdout.splitlines()[0]
    assert made["dated"].expires_at in listing.stdout and made["45 days"].expires_at in listing.stdout

    too_long = cli_here(site, "tokens", "create", "--role", "admin", "--expires-in", "61", **LIMITS)
    assert too_long.returncode == 2 and "at most 60 days (REHABMAP_TOKEN_MAX_EXPIRY_DAYS)" in too_long.stderr
    past = cli_here(site, "tokens", "create", "--role", "admin", "--expires", "2020-01-01", **LIMITS)
    assert past.returncode == 2 and "must be in the future" in past.stderr
    both = cli_here(site, "tokens", "create", "--role", "admin", "--expires", day.isoformat(), "--expires-in", "3")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = cli(site, "tokens", "create", "--role", "admin", **{
        "REHABMAP_TOKEN_EXPIRY_DAYS": "90", "REHABMAP_TOKEN_MAX_EXPIRY_DAYS": "60"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: Invalid settings: REHABMAP_TOKEN_EXPIRY_DAYS (90) is more than")
    assert len(site.directory.tokens.all()) == len(made)  # nothing was made by the refused commands


def test_an_expired_token_gets_a_401_that_says_it_expired(fresh_site):
    site = fresh_site
    api = AppClient(make_app(site.settings))
    token, token_id = site.tokens["maintainer"], site.token_ids["maintainer"]
    alive = me(api, token)
    assert alive.status_code == 200
    # The holder can see when their token stops working, before it does.
    assert alive.json()["expires_at"] == next(t.expires_at for t in site.directory.tokens.all() if t.id == token_id)
    gone = "2026-01-31T00:00:00+00:00"
    with site.directory.database.connect() as conn:  # as if its time had passed
        conn.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (gone, token_id))
    reply = me(api, token)
    assert reply.status_code == 401
    assert reply.json()["error"]["message"] == f"The token expired on {gone}. Ask an admin for a new one."
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="rehabmap", error="invalid_token"'
    # Only the token's holder learns that: a wrong secret is just not valid.
    assert "not valid" in me(api, f"rmk_{token_id}_{'B' * 43}").json()["error"]["message"]
    listed = next(line for line in cli_here(site, "tokens", "list").stdout.splitlines() if line.startswith(token_id))
    assert f"{gone} (expired)" in listed


def test_a_lost_or_wrong_key_says_what_to_do_and_a_new_key_revokes_the_old_tokens(fresh_site, caplog):
    site = fresh_site
    key_file = site.home / "token.key"
    key_file.unlink()
    api = AppClient(make_app(site.settings))  # a new server: nothing of the key in memory
    with caplog.at_level("ERROR", logger="rehabmap.api"):
        lost = me(api, site.tokens["admin"])
    # the operator's log names the file, once (before, nothing was logged): the reply never does
    assert caplog.messages == ["The token key file token.key is missing, so no token made with it can be checked. "
                               f"({key_file})"]
    # Each face says what its own reader can do: the client, that the operator must act; the operator, how.
    assert lost.status_code == 503 and lost.json()["error"]["message"] == (
        "The token key file token.key is missing, so no token made with it can be checked. Nothing is wrong with the "
        "request or the token: the server's operator must restore the key file or make a new key.")
    assert str(site.home) not in lost.text  # a reply names no folder of the server; the operator's console does
    made = cli_here(site, "tokens", "create", "--role", "admin")
    assert made.returncode == 2 and made.stderr == (
        "error: The token key file token.key is missing, so no token made with it can be checked. Restore the right "
        "key file from its backup, or run 'rehabmap tokens new-key' to make a new key (every token made with the old "
        f"one is then revoked). ({key_file})\n")
    assert not key_file.exists()  # no silent new key under which no existing token would work

    key_file.write_text("ab" * 32 + "\n")
    wrong = me(AppClient(make_app(site.settings)), site.tokens["admin"])
    assert wrong.status_code == 503 and "is not the key this directory's tokens were made with" in wrong.text

    renewed = cli_here(site, "tokens", "new-key", "--yes")
    assert renewed.returncode == 0, renewed.stderr
    assert "revoked 4 tokens" in renewed.stdout and renewed.stdout.count(", ") == 3
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.read_text() != "ab" * 32 + "\n"
    api = AppClient(make_app(site.settings))
    assert me(api, site.tokens["admin"]).status_code == 401  # hashed with the old key, and revoked
    token = cli_here(site, "tokens", "create", "--role", "admin").stdout.strip()
    assert me(api, token).json()["role"] == "admin"
    entries, _ = site.directory.audit.entries(resource_type="token", limit=1000)
    revocations = [e for e in entries if e.action == "revoke"]
    assert sorted(e.resource_id for e in revocations) == sorted(site.token_ids.values())


def test_a_running_server_follows_a_new_key_made_by_the_command(fresh_site):
    site = fresh_site
    api = AppClient(make_app(site.settings))
    assert me(api, site.tokens["admin"]).status_code == 200  # the server has read the key and keeps it
    assert cli_here(site, "tokens", "new-key", "--yes").returncode == 0
    assert me(api, site.tokens["admin"]).status_code == 401
    token = cli_here(site, "tokens", "create", "--role", "maintainer").stdout.strip()
    assert me(api, token).json()["role"] == "maintainer"


def test_a_new_key_leaves_legacy_tokens_working(v1):
    settings, tokens = v1
    directory = Directory.from_settings(settings)
    assert directory.tokens.new_key(actor="test") == []  # every live token is an Argon2 one
    assert me(AppClient(make_app(settings)), tokens["old provider"]).json()["role"] == "provider"


def test_a_directory_without_settings_keeps_its_key_beside_it(tmp_path):
    directory = Directory(tmp_path / "directory.sqlite")
    _info, token = directory.tokens.create("admin", "plain", actor="test")
    assert (tmp_path / "token.key").is_file()
    assert directory.tokens.authenticate(f"Bearer {token}").name == "plain"
    assert Directory(tmp_path / "directory.sqlite").tokens.authenticate(f"Bearer {token}").role.value == "admin"


def test_the_settings_give_the_directory_its_limits(sample_index, geodata_dir, data_dir, tmp_path):
    site = make_site(tmp_path / "home", sample_index, geodata_dir, data_dir, token_expiry_days=7,
                     token_max_expiry_days=10)
    now = datetime.now(timezone.utc)
    info, _token = site.directory.tokens.create("admin", "week", actor="test")
    assert expires_after(info.expires_at, now, 7)
    with pytest.raises(InvalidValue, match="at most 10 days"):
        site.directory.tokens.create("admin", "too long", expires_at=now + timedelta(days=11), actor="test")
