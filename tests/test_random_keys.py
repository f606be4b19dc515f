"""The random keys the server hands out (a held upload's id, the token form's one-time key) are recognised when
they come back, and nothing else a request could carry in their place is."""

from __future__ import annotations

from rehabmap.random_keys import is_key, new_key


def test_every_key_made_is_recognised_and_no_two_are_alike():
    keys = [new_key() for _ in range(1000)]
    assert all(is_key(k) for k in keys) and len(set(keys)) == len(keys)


def test_what_could_not_have_been_made_is_not_a_key():
    key = new_key()
    for sent in ("", key[:-1], key + "A", f"../{key[3:]}", key[:-1] + "/", key[:-1] + "=", f" {key[1:]}", "A" * 21):
        assert not is_key(sent), sent
