"""The one polite HTTP client every connector uses: it paces, retries, honours Retry-After, asks
conditionally, and never lets an API key out of the request that carries it.

Why each rule:
* pacing (`rate` requests per second per source): the national APIs publish no limit or a generous one; a
  sync is a background job and must never be the reason a source slows for anyone else;
* retries with exponential backoff and jitter on connection errors, timeouts, 5xx and 429: a crawl of
  thousands of requests meets transient faults, and many clients retrying in step make them worse;
* `Retry-After` (seconds or an HTTP date) is obeyed on 429 and 503, up to `retry_after_max`: a source that
  asks for longer than that is treated as down for this run, which ends with an error saying so, rather
  than retrying early (impolite) or hanging for hours;
* conditional requests (ETag / Last-Modified, 304 = unchanged): monthly files and feeds are mostly
  unchanged, and a 304 costs the source nothing;
* the key travels only in its header; every message that leaves this module is passed through `redact`,
  and the errors say which setting to check (`key_setting`), never the key.

Waiting goes through `sleep` and `clock` (injectable), so a test about a decision (how long, whether to retry)
needs no real time, while a test against the replay server waits for real.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from pydantic import SecretStr

from rehabmap.errors import DomainError, shorten

if TYPE_CHECKING:  # httpx (~60 ms of CPU) is imported where a request is made: each server start reads the
    import httpx  # feeds' titles through the connectors, and never fetches

log = logging.getLogger("rehabmap.sync.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
_EXCERPT = 200  # characters of an error body quoted in a message


class SourceError(DomainError):
    """A source could not give what a sync asked for; the message says which source, URL and what to do."""

    status = 502
    code = "source_error"


class SourceKeyRefused(SourceError):
    code = "source_key_refused"


class SourceUnavailable(SourceError):
    """Down, or still failing after the retries (the last status or connection error is in the message)."""

    code = "source_unavailable"


class SourceNotFound(SourceError):
    """404: connectors decide what it means (a record its source lists, yet cannot give, keeps its last version)."""

    status = 404
    code = "source_not_found"


@dataclass(frozen=True)
class HttpPolicy:
    """How politely one source is asked; the settings give one per source (rehabmap/config.py)."""

    rate: float = 5.0               # requests per second, at most
    timeout: float = 30.0           # seconds for connect, read and write each
    retries: int = 5                # further tries after the first
    backoff_base: float = 1.0       # seconds before the first retry; doubles each time
    backoff_max: float = 60.0       # a single backoff never waits longer
    retry_after_max: float = 120.0  # a source asking to wait longer is treated as down for this run


@dataclass(frozen=True)
class Validators:
    """What a conditional request sends back: the ETag and Last-Modified of the copy already held."""

    etag: str | None = None
    last_modified: str | None = None

    def headers(self) -> dict[str, str]:
        found = {"If-None-Match": self.etag, "If-Modified-Since": self.last_modified}
        return {k: v for k, v in found.items() if v}

    def to_state(self) -> dict[str, str]:
        return {k: v for k, v in (("etag", self.etag), ("last_modified", self.last_modified)) if v}

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> Validators:
        state = state or {}
        return cls(state.get("etag"), state.get("last_modified"))


@dataclass(frozen=True)
class Fetched:
    """A response that arrived (2xx or 304). `path` is set when the body was streamed to a file."""

    url: str
    status: int
    content: bytes
    headers: httpx.Headers
    path: Path | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("ETag"), self.headers.get("Last-Modified"))

    def json(self) -> Any:
        import httpx  # here: see the imports

        return httpx.Response(self.status, content=self.content, headers=self.headers).json()


def _excerpt(fetched: Fetched) -> str:
    return fetched.content[:_EXCERPT].decode(errors="replace")


def parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds to wait: a number of seconds, or an HTTP date (a date in the past is 0).
    None when absent or unreadable (the caller then backs off as for any other fault)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = parse_http_date(text)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(attempt: int, policy: HttpPolicy, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half of the doubled delay is fixed, half random, so retries of
    many clients spread out but none retries at once."""
    ceiling = min(policy.backoff_max, policy.backoff_base * (2 ** attempt))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class SourceContradiction(SourceError):
    """A page of a listing that contradicts what the listing says of itself (an empty page before the last page
    it announces, fewer records in all than it counts): read as the end, it would retire what the rest held."""

    code = "source_contradiction"


@dataclass(frozen=True)
class Page:
    """One page of a listing as `SourceClient.get_page` read it, with what it says of the listing (its counts,
    whether it is the last) read by one rule for every connector, and errors that name the page."""

    source: SourceClient
    url: str
    body: dict[str, Any]
    items: list[Any]

    def count(self, key: str) -> int | None:
        """A count the page gives of its listing (pages, records), None when it gives none. A value that is no
        count ("four", -1, 2.5) is an error naming the page: passed to int(), it ended the run with a traceback,
        and the run was not recorded as failed."""
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdecimal():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, float) and value.is_integer() and value >= 0:  # 4.0; never inf or NaN
            return int(value)
        raise self.error(f"its '{key}' is not a count: {_quoted(value)}")

    def flag(self, key: str) -> bool | None:
        """A yes or no the page says of itself ("last"), None when it says nothing. Anything else is an error
        naming the page: bool("false") is True, and ended the listing there."""
        value = self.body.get(key)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise self.error(f"its '{key}' is neither true nor false: {_quoted(value)}")

    def ends(self, number: int, noun: str, pages_key: str | None, says_last: bool | None, said: str,
             before: list[Any] | None = None) -> bool:
        """Whether page `number` (from 1) is the listing's last, read only where the listing proves it: a page that
        says it is the last (`says_last`, None when it says nothing, as `said` words it for an error), the last of
        the pages it announces (`pages_key`) when it does not say otherwise, or an empty page. A listing read as
        ended is complete, and retires what it no longer lists, so where it is not proven the crawl goes on:
        * a page that lists records and says it is not the last is not the end, even at the last page announced
          (a count may be stale where the flag is not): the next page settles it, an empty one proving the end, and
          one that lists records past the pages announced contradicting the listing (a feed that answers its last
          page for any page past it would otherwise be read for ever);
        * a listing that says neither where it ends nor how many pages it has is read to an empty page: before, its
          first page was read as its only one, and a sync retired every record after it. A page that lists what
          the page `before` it did (its records, when the crawl read it) says the feed ignores the page asked for.
        An empty page that says it is not the last, or comes before the last announced, or a page that says it is
        the last before then, contradicts the listing: an error, never its end (before, an empty page ended it,
        and a complete listing retired the rest). `pages_key` None: the listing's number of pages is not read, where
        its configuration says its counts are not to be trusted (an ORUK feed file's `trust_count`): it is read as
        one that gives none, to a page that says it is the last or an empty page."""
        pages = self.count(pages_key) if pages_key else None
        more = pages is not None and number < pages
        if not self.items and says_last is False:
            raise self.contradiction(f"page {number} lists no {noun}, yet says it is not the last ({said})")
        if more and (not self.items or says_last):
            what = f"lists no {noun}" if not self.items else f"says it is the last ({said})"
            raise self.contradiction(f"page {number} {what}, yet the listing has {pages} pages by its '{pages_key}'")
        if pages is not None and number > pages and self.items:
            raise self.contradiction(f"page {number} lists {noun}, yet the listing has {pages} pages by its "
                                     f"'{pages_key}'")
        if pages is None and says_last is None and self.items and self.items == before:
            announced = f", or its '{pages_key}'" if pages_key else ""
            raise self.contradiction(f"page {number} lists the same {noun} as page {number - 1}, and no page says "
                                     f"where the listing ends (that it is the last{announced}): the feed seems to "
                                     "ignore the page asked for")
        if not self.items or says_last:
            return True
        return says_last is None and pages is not None and not more

    def short_of(self, key: str, listed: int) -> int | None:
        """At the end of a listing: its count (`key`) when it listed fewer records in all (`listed`), else None.
        More is no contradiction: a listing may grow while it is read, and some list a record again (HSDS's
        published example counts 31 and lists 128)."""
        total = self.count(key)
        return total if total is not None and listed < total else None

    def shortfall(self, key: str, listed: int, noun: str, where: str,
                  remedy: str = "") -> SourceContradiction | None:
        """At the end of a listing: the error when it listed fewer records in all than it counts (`short_of`), else
        None; `remedy` is what a person can do besides asking the source to mend its count (a feed file's switch)."""
        total = self.short_of(key, listed)
        if total is None:
            return None
        return self.contradiction(f"the listing ends at {where}, having listed {listed} {noun} in all, yet it "
                                  f"holds {total} by its '{key}'", remedy)

    def contradiction(self, what: str, remedy: str = "") -> SourceContradiction:
        return SourceContradiction(self.source.redact(
            f"{self.source.label} answered {self.url} with a page that contradicts its own listing: {what}. Read as "
            "the end of the listing it would retire, or skip, what the rest holds, so nothing is applied."
            + (f" {remedy}" if remedy else "")))

    def error(self, what: str) -> SourceError:
        return SourceError(self.source.redact(f"{self.source.label} answered {self.url} with a page that cannot be "
                                              f"read: {what}; where the listing ends is not known, so nothing is "
                                              "applied."))


def _tries(count: int) -> str:
    return "1 try" if count == 1 else f"{count} tries"


def _quoted(value: Any) -> str:
    return shorten(json.dumps(value), 80)


class SourceClient:
    """HTTP for one source: `label` names it in messages ("CQC API"), `key` is sent as `key_header`, and
    `key_setting` is the environment variable a person sets to fix a refused key."""

    def __init__(self, label: str, base_url: str, *, policy: HttpPolicy | None = None,
                 key: SecretStr | None = None, key_header: str | None = None, key_setting: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.label = label
        self.base_url = base_url.rstrip("/") + "/"
        self.policy = policy or HttpPolicy()
        self._key = key if key is not None and key.get_secret_value() else None  # SecretStr: never in a repr
        self._key_header = key_header
        self.key_setting = key_setting
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._last_start: float | None = None
        import httpx  # here: see the imports

        default_headers = {"Accept": "application/json", "User-Agent": "rehabmap-sync (+https://github.com/rehabmap)"}
        self._http = httpx.Client(headers={**default_headers, **(headers or {})}, follow_redirects=True,
                                  timeout=httpx.Timeout(self.policy.timeout))

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        """A path relative to the base URL, or an absolute URL as it is (paging links often are)."""
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def redact(self, text: str) -> str:
        return text.replace(self._key.get_secret_value(), "[redacted]") if self._key else text

    def get_page(self, path: str, params: Mapping[str, Any], items: str) -> Page:
        """One page of a listing: a JSON object holding its records in a list under `items`. Anything else
        that arrives with a 2xx (an error message, a gateway's notice, another shape) is an error, not a page
        that lists nothing: read as empty, it would end a complete listing there, retiring every record the
        source gave after it, or move a changes cursor past changes never fetched."""
        fetched = self.get(path, params)
        body = self._json(fetched)
        if not isinstance(body, dict) or not isinstance(body.get(items), list):
            raise SourceError(self.redact(f"{self.label} answered {fetched.url} with something that is not a page "
                                          f"of its listing (no '{items}' list): '{_excerpt(fetched)}'"))
        return Page(self, fetched.url, body, body[items])

    def get_record(self, path: str, id_key: str) -> dict[str, Any]:
        """One record's page: a JSON object with its id under `id_key`. Anything else that arrives with a 2xx is
        an error, not a record: read as one without an id it was refused, and the change that named it was
        never asked for again (or, on a page without an id's key, the run failed with a traceback)."""
        fetched = self.get(path)
        body = self._json(fetched)
        if not isinstance(body, dict) or not body.get(id_key):
            raise SourceError(self.redact(f"{self.label} answered {fetched.url} with something that is not a "
                                          f"record (no '{id_key}'): '{_excerpt(fetched)}'"))
        return body

    def _json(self, fetched: Fetched) -> Any:
        try:
            return fetched.json()
        except ValueError:
            raise SourceError(self.redact(f"{self.label} answered {fetched.url} with something that is not "
                                          f"JSON: '{_excerpt(fetched)}'")) from None

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, validators: Validators | None = None,
            method: str = "GET", json_body: Any = None, into: Path | None = None) -> Fetched:
        """One request, retried as the policy says. With `validators`, 304 comes back as `not_modified`;
        with `into`, the body is streamed to that file (written whole, then renamed into place)."""
        url = self.url(path)
        headers = validators.headers() if validators else {}
        if self._key is not None and self._key_header:
            headers[self._key_header] = self._key.get_secret_value()  # per request: the client never holds it
        attempt = 0
        while True:
            outcome, reason = self._attempt(method, url, params, headers, json_body, into)
            if isinstance(outcome, Fetched):
                return outcome
            if attempt >= self.policy.retries:
                raise SourceUnavailable(self.redact(
                    f"{self.label} is unavailable: {url} still failed after {_tries(attempt + 1)} ({reason})"))
            delay = outcome if outcome is not None else backoff_seconds(attempt, self.policy, self._rng)
            log.warning("%s: %s for %s; retrying in %.1f s", self.label, self.redact(reason), url, delay)
            self._sleep(delay)
            attempt += 1

    def _attempt(self, method: str, url: str, params: Mapping[str, Any] | None, headers: dict[str, str],
                 json_body: Any, into: Path | None) -> tuple[Fetched | float | None, str]:
        """One try: (the response, "") or (seconds to wait or None for a backoff, why it failed)."""
        import httpx  # here: see the imports

        self._pace()
        try:
            with self._http.stream(method, url, params=params, headers=headers, json=json_body) as response:
                if response.status_code in RETRY_STATUSES:
                    response.read()
                    return self._retry_wait(response), f"status {response.status_code}"
                self._raise_for_status(response)
                if into is not None and response.status_code != 304:
                    return self._stream_to(response, into), ""
                return Fetched(str(response.url), response.status_code, response.read(), response.headers), ""
        except httpx.TimeoutException as exc:
            return None, f"no answer within {self.policy.timeout:g} s ({type(exc).__name__})"
        except httpx.TransportError as exc:
            return None, f"connection failed: {exc or type(exc).__name__}"

    def _retry_wait(self, response: httpx.Response) -> float | None:
        if response.status_code not in RETRY_AFTER_STATUSES:
            return None
        header = response.headers.get("Retry-After")
        seconds = retry_after_seconds(header, datetime.now(timezone.utc))
        if seconds is not None and seconds > self.policy.retry_after_max:
            raise SourceUnavailable(self.redact(
                f"{self.label} asked to wait {seconds:.0f} s before retrying {response.url} (status "
                f"{response.status_code}, Retry-After: {header}), longer than the {self.policy.retry_after_max:g} s "
                "a sync waits (REHABMAP_SYNC_RETRY_AFTER_MAX): run the sync again later"))
        return seconds

    def _raise_for_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        body = response.read()[:_EXCERPT].decode(errors="replace").strip()
        if status in (401, 403):
            if self._key is None and self.key_setting:
                message = f"{self.label} needs a key ({status}): set {self.key_setting}"
            elif self.key_setting:
                message = f"{self.label} refused the key ({status}): check {self.key_setting}"
            else:
                message = f"{self.label} refused the request ({status}) for {response.url}"
            raise SourceKeyRefused(self.redact(message))
        if status == 404:
            raise SourceNotFound(self.redact(f"{self.label} has nothing at {response.url} (404)"))
        raise SourceError(self.redact(f"{self.label} answered {status} for {response.url}: '{body}'"))

    def _stream_to(self, response: httpx.Response, into: Path) -> Fetched:
        into.parent.mkdir(parents=True, exist_ok=True)
        partial = into.with_name(into.name + ".partial")
        with partial.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
        partial.replace(into)
        return Fetched(str(response.url), response.status_code, b"", response.headers, path=into)

    def _pace(self) -> None:
        """Start requests at most `rate` per second apart."""
        if self.policy.rate > 0 and self._last_start is not None:
            wait = self._last_start + 1 / self.policy.rate - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_start = self._clock()
