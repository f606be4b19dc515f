"""The one-time key of the form that made a token (the keepers' tokens page) is kept only while a session that
could send that form again lives, on either store: then it stops a second token; once every such session has
ended (swept when a session starts), the key is cleared, and the token stays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rehabmap.config import Settings
from rehabmap.errors import TokenAlreadyMade
from rehabmap.maintain.database import utcnow
from rehabmap.maintain.sessions import SessionPolicy, Sessions
from rehabmap.maintain.store import Directory
from tests.conftest import database_url

KEY = "k" * 22  # as `secrets.token_urlsafe(16)` makes the form's key


@pytest.fixture
def directory(request, store_kind, tmp_path, data_dir) -> Directory:
    settings = Settings(home=tmp_path / "home", data_dir=data_dir, database_url=database_url(request, store_kind))
    return Directory.from_settings(settings)


def form_keys(directory: Directory) -> dict[str, str | None]:
    with directory.database.connect() as conn:
        return dict(conn.execute("SELECT name, form_key FROM tokens").fetchall())


def test_a_forms_key_is_cleared_once_no_session_that_could_send_it_again_lives(directory):
    policy = SessionPolicy()
    _, secret = directory.tokens.create("admin", "the admin", actor="test")
    admin = directory.tokens.authenticate(f"Bearer {secret}")
    began = utcnow() - timedelta(minutes=1)
    Sessions(directory.database, policy=policy, clock=lambda: began).start(admin)  # shows the form
    directory.tokens.create("maintainer", "made by the form", actor="the admin", form_key=KEY)

    later = began + timedelta(minutes=2)
    Sessions(directory.database, policy=policy, clock=lambda: later).start(admin)  # the first session lives on
    assert form_keys(directory)["made by the form"] == KEY
    with pytest.raises(TokenAlreadyMade):
        directory.tokens.create("maintainer", "made by the form", actor="the admin", form_key=KEY)

    ended = began + policy.absolute + timedelta(seconds=1)
    Sessions(directory.database, policy=policy, clock=lambda: ended).start(admin)  # every earlier one has ended
    assert form_keys(directory) == {"the admin": None, "made by the form": None}
    assert sorted(t.name for t in directory.tokens.all()) == ["made by the form", "the admin"]
