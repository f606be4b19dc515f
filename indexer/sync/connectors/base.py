"""What every connector shares: its HTTP client built from the settings, the time it calls "now", and the
origin a fetched record carries."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr

from indexer.rows import Origin
from indexer.sync.http import HttpPolicy, SourceClient
from rehabmap.config import Settings

ENGLAND = "E92000001"  # ONS code for England: what a national source covers


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def client(settings: Settings, label: str, base_url: str, rate: float, *, key: SecretStr | None = None,
           key_header: str | None = None, key_setting: str | None = None, **overrides: Any) -> SourceClient:
    """A polite client for one source, with the timeouts and retries the settings give."""
    policy = HttpPolicy(rate=rate, timeout=settings.sync_timeout, retries=settings.sync_retries,
                        backoff_max=settings.sync_backoff_max, retry_after_max=settings.sync_retry_after_max)
    return SourceClient(label, base_url, policy=policy, key=key, key_header=key_header, key_setting=key_setting,
                        **overrides)


def origin(source: str, url: str, number: int, source_id: str | None, licence: str, fetched_at: datetime) -> Origin:
    """`file` is the URL the record was fetched from; `line` its place in that response (1 for a detail)."""
    return Origin(source, url, number, source_id=source_id, licence=licence, fetched_at=fetched_at)
