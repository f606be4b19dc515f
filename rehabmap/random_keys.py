"""The random keys the server hands out and later reads back from a request it cannot trust (a held upload's id,
the token form's one-time key): made here and recognised by the one pattern that fits how they were made, so a
key read back that could not have been made (a path, an empty field) is refused before anything looks it up."""

from __future__ import annotations

import re
import secrets

_BYTES = 16
_KEY = re.compile(r"[A-Za-z0-9_-]{22}")  # `secrets.token_urlsafe(_BYTES)`: 16 bytes in URL-safe base64, unpadded


def new_key() -> str:
    return secrets.token_urlsafe(_BYTES)


def is_key(text: str) -> bool:
    return _KEY.fullmatch(text) is not None
