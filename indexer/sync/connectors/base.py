"""What every connector shares: its HTTP client built from the settings, the time it calls "now", and the
origin a fetched record carries."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import SecretStr

from indexer.rows import Origin
from indexer.sync.http import HttpPolicy, Page, SourceClient, SourceContradiction
from indexer.sync.items import SyncState
from rehabmap.config import Settings


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


# Why a connector read every record again (`BaseConnector.read_all`) where what changed is rehabmap's reading, not
# the source: a record it then refuses as off the pathway is said to be so by rehabmap, not by its source (before,
# a feed file's mapping taken out said "Bristol City Council service directory no longer describes it as …").
MAPPING_CHANGED = "the feed file's mapping changed"
READER_CHANGED = "this release of rehabmap reads ORUK services differently, so what it refused before is read again"
OUR_READING_CHANGED = frozenset({MAPPING_CHANGED, READER_CHANGED})


class BaseConnector:
    """The part of `Connector` every connector shares: its client, and whether its last run listed everything."""

    name: str
    licence: str
    attribution: str
    # The name people know it by, where its configuration gives one (`Connector.title`): of the connectors built on
    # this, an ORUK feed alone sets it, to its file's `label`; the others are named by `TITLES` (an import's held
    # rows, `FileCandidates`, are no connector of these and give their list's title themselves)
    title: str | None = None

    def __init__(self, http: SourceClient) -> None:
        self.http = http
        self._complete = False
        # Why the last fetch read again every record its source lists, where the connector can skip those listed
        # as unchanged (ORUK's detail pages): the run's report says it, else a slow run looked like a fault.
        self.read_all: str | None = None
        # How the last fetch's listing fell short of a count its configuration says is not to be trusted (an ORUK
        # feed file's `trust_count`), in the run report's words: read as whole, it applied, and the report says so.
        self.short_of_count: str | None = None
        # What its configuration says that it does not read, or its fetch's listing missed, a line each for the run's
        # report (`Connector.warnings`)
        self.warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self._complete


def _listed_short(at: dict[str, Any], listing: Page, last: bool, key: str) -> int | None:
    """Counts a page's items in `at["listed"]`, the listing's place in the saved state, so the count outlives a
    killed run (a place saved by a release that did not count has none, and is not counted); at the listing's
    last page, its `key` count when it held fewer items in all (`Page.short_of`), else None."""
    if "listed" not in at:
        return None
    at["listed"] += len(listing.items)
    return listing.short_of(key, at["listed"]) if last else None


def counted(at: dict[str, Any], listing: Page, last: bool, key: str, noun: str, where: str, *,
            restart: tuple[str, int], remedy: str = "") -> SourceContradiction | None:
    """Counts a page's items (`_listed_short`); at the listing's last page, the error when the listing held fewer
    items in all than its `key` counts, else None. With the error, the place (`restart`: its key and the first
    page) goes back to the listing's start, its count to 0, for the caller to save before it raises, so that the
    next run lists it afresh rather than count the same short pages again (read as the end, a short crawl retired
    the rest, and a short changes window moved the cursor past changes never fetched). `remedy` ends the error:
    what a person can do besides asking the source to mend its count."""
    if _listed_short(at, listing, last, key) is None:
        return None
    short = listing.shortfall(key, at["listed"], noun, where, remedy)
    at.update({restart[0]: restart[1], "listed": 0})
    return short


class Crawl:
    """A full crawl's place in the state, saved after each page, so a killed run resumes where it stopped;
    `crawl_started` stays until the crawl is done, `last_complete` says when the last whole one began."""

    def __init__(self, state: SyncState, name: str, key: str, first: int) -> None:
        self.state, self.name, self.key, self.first = state, name, key, first
        self.saved = dict(state.load(name))
        if key not in self.saved:
            self.saved.update({key: first, "crawl_started": iso(utc_now()), "listed": 0})

    @property
    def at(self) -> int:
        return int(self.saved[self.key])

    def next(self, position: int) -> None:
        self.saved[self.key] = position
        self.state.save(self.name, self.saved)

    def tally(self, listing: Page, last: bool, key: str, noun: str, where: str, *, trusted: bool = True,
              remedy: str = "") -> str | None:
        """Counts the page (`counted`); a listing that ends short of its own count fails the run (the error ending
        with `remedy`), and the crawl starts again at its first page, afresh: what it staged is superseded (a full
        crawl lists everything again). A count its configuration says is not to be `trusted` (a publisher's that
        takes in services it has deleted or hidden, which failed every run) is no failure: the listing, read to
        where it proves its end (`Page.ends` without its counts), is whole, and how it fell short comes back in
        words for the run's report."""
        if trusted:
            if short := counted(self.saved, listing, last, key, noun, where, restart=(self.key, self.first),
                                remedy=remedy):
                self.state.save(self.name, self.saved, afresh=True)
                raise short
            return None
        total = _listed_short(self.saved, listing, last, key)
        return None if total is None else f"listed {self.saved['listed']} of the {total} {noun} its '{key}' counts"

    def done(self) -> None:
        self.saved.pop(self.key, None)
        self.saved.pop("listed", None)
        self.saved["last_complete"] = self.saved["crawl_started"]
        self.state.save(self.name, self.saved)
