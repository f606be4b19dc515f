"""Open Referral UK feeds (council and VCFSE directories): every service, typed by the feed's own terms.

Each feed has a file in `mappings/feeds/` (format in its README): URL, paging (ORUK v1 or HSDS 3), licence,
and the map from the feed's own taxonomy onto ours. A run pages through `/services`, fetches
`/services/{id}` for a listed service without a location (council list items carry none), and says of each
service what it is: typed by a mapped term (confirmed), by mental-health words (inferred: the review queue),
or refused with the terms it had. Fields are read by `rehabmap.oruk.oruk_to_fields`, the one home of the
ORUK convention.

Every run lists every page (resumable by page): ORUK has no feed of removals, so only a complete listing can
retire what a feed dropped. The detail pages are what a run costs (817 of Bristol's 834 requests), and a list item
says when its service last changed (HSDS 3 `last_modified`; Placecube's `pc_metadata.date_modified`, a day), so a
service listed as unchanged since the day its page was read is not fetched again (`Readings`): `Unchanged`, the
record stays as that reading made it. Every page is read again at least every `FULL_READING_DAYS` days, when
the feed file's mapping or this release's reading (`READER_VERSION`) changed, and with `--full`, since a change
elsewhere (a location) may leave the date as it was; the run's report says why it read every page. HSDS 3's
`modified_after` filter would shorten the listing too, but a listing so filtered cannot say what the feed dropped,
and the 17 list pages cost little.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from indexer.rows import Candidate
from indexer.sources.common import os_reason, parse_postcode_text, provider_type_from_name
from indexer.sync.connectors.base import MAPPING_CHANGED, READER_CHANGED, BaseConnector, Crawl, origin, utc_now
from indexer.sync.http import SourceClient, SourceNotFound
from indexer.sync.items import Evidence, Gone, Outcome, Refused, SourceItem, SyncState, TypeStatus, Unchanged
from rehabmap.errors import DomainError, did_you_mean, shorten
from rehabmap.oruk import oruk_to_fields, places, v1_terms
from rehabmap.record import Provenance, Relay, one_line, relays
from rehabmap.taxonomy import STATUTORY_PROVIDERS, NotRehab, ServiceType, classify_label, validate_subtype

# Each paging shape's keys: the page's services, "this is the last page", the number of pages and of services.
PAGINGS = {"v1": ("content", "last", "totalPages", "totalElements"),
           "hsds3": ("contents", "last_page", "total_pages", "total_items")}
# The keys rehabmap reads of a feed file's top level and of its [feed] table. [terms], [audiences], [keywords] and
# [feed.covers] are keyed by the feed's own words or by our types, each checked as it is read.
FILE_KEYS = ("feed", "terms", "audiences", "keywords")
FEED_KEYS = ("label", "url", "paging", "per_page", "trust_count", "rehabmap", "licence", "attribution", "covers")
# Words that make a service a mental-health one when no mapped term says so (typed as inferred).
MENTAL_HEALTH_WORDS = re.compile(
    r"(?i:mental\s+(?:health|illness|distress|wellbeing)|psychosis|schizophreni|bipolar|personality\s+disorder|"
    r"recovery\s+college|hearing\s+voices|clubhouse)|\bMind\b")


class FeedError(DomainError):
    """A feed file that cannot be used; the message names the file (by its name in the feed folder, as the run's
    warnings do: a failed run's error is shown on the keepers' Sources page and in sync-status, which must not name
    the server's folders; its path is the `where`, which the command line adds), the line or entry, and what to
    fix. A `DomainError`, so the command says it in one line; `source` is the run its feed would have been
    (`oruk-<file's name>`), which `rehabmap sync oruk` records as failed while the other feeds run. `ignored`: the
    file's keys rehabmap does not read (`Feed.ignored`), where the file parsed, said with the error, since a required
    key misspelt is often its cause, and "did you mean" the remedy (`load_feed` gives them)."""

    code = "bad_feed_file"

    def __init__(self, path: Path, said: str) -> None:
        super().__init__(f"{path.name}: {said}", field="feed", where=str(path))
        self.source = _source(path.stem)
        self.ignored: tuple[str, ...] = ()


_PREFIX = "oruk-"


def is_feed(source: str) -> bool:
    """Whether records of this source come from an ORUK feed's connector (`_source`)."""
    return source.startswith(_PREFIX)


def _source(name: str) -> str:
    """The name a feed's runs and records go by: its file's stem, after 'oruk-'."""
    return f"{_PREFIX}{name}"


def feed_path(source: str, folder: Path) -> Path | None:
    """The file in `folder` a feed's runs (`oruk-<feed>`) are read from, there or not; None for another source."""
    return folder / f"{source.removeprefix(_PREFIX)}.toml" if source.startswith(_PREFIX) else None


@dataclass(frozen=True)
class Typing:
    service_type: ServiceType
    subtype: str | None


@dataclass(frozen=True)
class Feed:
    name: str                       # the file's stem: the record id prefix is "oruk-<name>"
    label: str
    url: str
    paging: str
    per_page: int
    licence: str
    attribution: str
    path: Path                      # the file it was read from, which an error names (by its name) to be mended
    terms: Mapping[str, Typing] = field(default_factory=dict)       # casefolded term -> typing
    audiences: Mapping[str, Typing] = field(default_factory=dict)
    keywords: tuple[tuple[re.Pattern[str], Typing], ...] = ()
    covers: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # False where the file says the feed's count is not to be trusted (`trust_count = false`): a publisher whose
    # count takes in services it has deleted or hidden failed every run on it, and its services went stale
    trust_count: bool = True
    # Each key of the file rehabmap does not read, in the run report's words (`_ignored`): an operator's file must
    # keep syncing, but a misspelt `trust_cout = false` did nothing, unsaid, and the feed went on failing
    ignored: tuple[str, ...] = ()
    # True where the file says the feed is another rehabmap's (`rehabmap = true`): only then are the relays its
    # provenance attribute publishes read (`_published`). Any feed may publish the attribute: a council's, with an
    # `edition`, read its own listing as a dated file's and hid itself as a source
    rehabmap: bool = False

    @property
    def source(self) -> str:
        return _source(self.name)


@dataclass(frozen=True)
class Feeds:
    """A folder's feed files: those that read, and the error of each that does not. One file's slip (an operator's
    typo, a term mapped to no type) must keep no other council's feed from running."""

    usable: list[Feed]
    unusable: list[FeedError]


def load_feeds(folder: Path, urls: Mapping[str, str] | None = None) -> Feeds:
    """Every `<feed>.toml` in the folder; `urls` overrides feeds' URLs by name."""
    feeds = Feeds([], [])
    for path in sorted(folder.glob("*.toml")):
        try:
            feeds.usable.append(load_feed(path, (urls or {}).get(path.stem)))
        except FeedError as exc:
            feeds.unusable.append(exc)
    return feeds


def load_feed(path: Path, url: str | None = None) -> Feed:
    """The feed file at `path`, its URL overridden by `url`. A file that parses yet cannot be used raises its
    `FeedError` with the keys it holds that rehabmap does not read (`_ignored`): before, they were said only once
    the file was mended, where a misspelt `lable` was why it failed."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # an OSError's own words name the path; its reason alone ("Permission denied") does not
        raise FeedError(path, f"cannot read the feed file: {os_reason(exc)}") from None
    try:
        return _feed(doc, path, url)
    except FeedError as exc:
        meta = doc.get("feed")  # a [feed] that is no table is the error, and has no keys of its own to name
        exc.ignored = _ignored(doc, meta if isinstance(meta, dict) else {}, path)
        raise


def _feed(doc: Mapping[str, Any], path: Path, url: str | None) -> Feed:
    """The feed the parsed file `doc` describes (`load_feed`)."""
    meta = _table(doc, "feed", path)
    missing = [k for k in ("label", "url", "paging", "licence", "attribution") if not meta.get(k)]
    if missing:
        raise FeedError(path, f"[feed] needs {', '.join(missing)}")
    if meta["paging"] not in PAGINGS:
        raise FeedError(path, f"[feed] paging '{meta['paging']}' is not one of {', '.join(PAGINGS)}")
    per_page = meta.get("per_page", 50)
    if not isinstance(per_page, int) or isinstance(per_page, bool) or per_page < 1:
        raise FeedError(path, f"[feed] per_page must be a whole number, 1 or more, not {per_page!r}")
    trust_count, rehabmap = (_flag(meta, key, default, path) for key, default in (("trust_count", True),
                                                                                   ("rehabmap", False)))
    covers = _table(meta, "covers", path, "feed.covers")
    unknown = [t for t in covers if t not in {s.value for s in ServiceType}]
    if unknown:
        raise FeedError(path, f"[feed.covers] names no type '{unknown[0]}': use one of "
                              f"{', '.join(t.value for t in ServiceType)}")
    return Feed(
        name=path.stem, label=meta["label"], url=url or meta["url"], paging=meta["paging"],
        per_page=per_page, licence=meta["licence"], attribution=meta["attribution"],
        terms=_typings(doc, "terms", path), audiences=_typings(doc, "audiences", path),
        keywords=tuple((_pattern(pattern, path), _typing(value, path, f"[keywords] '{pattern}'"))
                       for pattern, value in _table(doc, "keywords", path).items()),
        covers={t: frozenset(codes) for t, codes in covers.items()}, trust_count=trust_count, rehabmap=rehabmap,
        path=path, ignored=_ignored(doc, meta, path))


def _flag(meta: Mapping[str, Any], key: str, default: bool, path: Path) -> bool:
    """The [feed] table's true-or-false `key`, `default` where it is not given."""
    value = meta.get(key, default)
    if not isinstance(value, bool):
        raise FeedError(path, f"[feed] {key} must be true or false, written without quotes, not {value!r}")
    return value


def _ignored(doc: Mapping[str, Any], meta: Mapping[str, Any], path: Path) -> tuple[str, ...]:
    """A warning for each key of the file's top level and of its [feed] table that rehabmap does not read, naming
    the file (by its name in the feed folder, as the keepers' pages show it: never the server's folders) and the
    table, and the key it may have been meant for. Not an error: the file read before it was said,
    and a feed must not stop syncing for a word rehabmap leaves alone. A value given above the first table is the
    file's own in TOML, not [feed]'s, so it is offered the [feed] key nearest it."""
    unread = [f"[{key}] is not a table rehabmap reads: ignored{did_you_mean(key, FILE_KEYS)}"
              if isinstance(value, dict) else
              f"'{key}', above every table, is not a key rehabmap reads: ignored"
              f"{did_you_mean(key, FEED_KEYS, ' in [feed]')}"
              for key, value in doc.items() if key not in FILE_KEYS]
    unread += [f"[feed] '{key}' is not a key rehabmap reads: ignored{did_you_mean(key, FEED_KEYS)}"
               for key in meta if key not in FEED_KEYS]
    return tuple(f"{path.name}: {said}" for said in unread)


def _table(doc: Mapping[str, Any], key: str, path: Path, name: str | None = None) -> Mapping[str, Any]:
    """The file's table `key` (empty when left out): a value that is no table ('terms = "x"') is named, where it
    failed as an AttributeError's traceback."""
    table = doc.get(key) or {}
    if not isinstance(table, dict):
        raise FeedError(path, f"[{name or key}] must be a table of entries, not {shorten(repr(table), 60)}")
    return table


def _typings(doc: Mapping[str, Any], key: str, path: Path) -> dict[str, Typing]:
    """A table of the feed's own words (`terms`, `audiences`) to our types, by the word casefolded."""
    return {_norm(k): _typing(v, path, f"[{key}] '{k}'") for k, v in _table(doc, key, path).items()}


def _pattern(pattern: str, path: Path) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FeedError(path, f"[keywords] '{pattern}' is not a regular expression: {exc}") from None


def _typing(value: str, path: Path, entry: str) -> Typing:
    """The type an entry of the file names; `entry` ("[terms] 'Day services'") says which, for the one to mend."""
    code, _, sub = str(value).partition("/")
    try:
        service_type = ServiceType(code.strip())
        return Typing(service_type, validate_subtype(service_type, sub.strip() or None))
    except ValueError:
        raise FeedError(path, f"{entry}: '{value}' is not a type: use one of "
                              f"{', '.join(t.value for t in ServiceType)}, optionally with '/subtype'") from None
    except DomainError as exc:
        raise FeedError(path, f"{entry}: {exc.message}") from None


def _norm(term: str) -> str:
    return " ".join(term.split()).casefold()


class OrukConnector(BaseConnector):
    def __init__(self, feed: Feed, http: SourceClient) -> None:
        super().__init__(http)
        self.feed = feed
        self._listed: dict[str, tuple[str, str]] = {}  # this crawl's ids: where and under what name each was first
        self._repeats: Counter[str] = Counter()  # this crawl's ids listed again under the same name: how often
        self.name = feed.source
        self.title = feed.label
        self.licence = feed.licence
        self.attribution = feed.attribution
        self.warnings = feed.ignored

    def covers(self) -> Mapping[str, frozenset[str]]:
        return self.feed.covers

    def fetch(self, state: SyncState, *, full: bool = False) -> Iterator[Outcome]:
        """Every service, page by page; a killed run resumes at its page (each run is a full crawl)."""
        self._complete = False
        self._listed.clear()
        self._repeats.clear()
        crawl = Crawl(state, self.name, "page", 1)
        self._readings = Readings(crawl.saved, _mapping(self.feed), utc_now().date(), full=full)
        self.read_all = self._readings.why_all
        page = crawl.at
        url = self.http.url("services")
        items_key, last_key, pages_key, total_key = PAGINGS[self.feed.paging]
        before: list[Any] | None = None  # the page before's services, when this run read it
        self.short_of_count = None
        remedy = _count_remedy(self.feed)
        while True:
            listing = self.http.get_page("services", {"page": page, "per_page": self.feed.per_page}, items_key)
            says_last = listing.flag(last_key)
            last = listing.ends(page, "services", pages_key if self.feed.trust_count else None, says_last,
                                f"'{last_key}': {str(says_last).lower()}", before)
            before = listing.items
            short = crawl.tally(listing, last, total_key, "services", f"page {page}",
                                trusted=self.feed.trust_count, remedy=remedy)
            if short:
                self.short_of_count = (f"{short}: the feed file says its count is not to be trusted (trust_count "
                                       "= false), so the listing was read to the page that ends it")
            for number, item in enumerate(listing.items, start=(page - 1) * self.feed.per_page + 1):
                if (outcome := self._service(item, f"{url}?page={page}", number)) is not None:
                    yield outcome
            if last:
                break
            page += 1
            crawl.next(page)
        yield from self._repeated()
        self._readings.done()
        crawl.done()
        self._complete = True

    def _repeated(self) -> Iterator[Refused]:
        """One line per service the feed listed more than once: HSDS's published example lists one service 128
        times, and each was fetched and read again, unsaid. It is read once; the repeats are left out."""
        for sid, repeats in self._repeats.items():
            where, name = self._listed[sid]
            yield Refused(self.name, None, where, (
                f"'{name}' is listed {repeats + 1} times under one id, {sid}: it is read once and the {repeats} "
                "repeats are left out. Ask the feed's publisher to list each service once"))

    def _service(self, item: Any, where: str, number: int) -> Outcome | None:
        """What the item says, or None for a service this crawl already read (counted for `_repeated`)."""
        if not isinstance(item, dict):
            return Refused(self.name, None, f"{where} item {number}", (
                f"the listing's entry is {_json_kind(item)}, not a service: ask the feed's publisher to "
                + ("leave empty entries out of its pages" if item is None else "list only services on its pages")))
        sid = str(item.get("id") or "")
        if not sid:
            return Refused(self.name, None, f"{where} item {number}", "service has no id")
        if str(item.get("status") or "active").strip().lower() not in ("active", ""):
            return Gone(self.name, sid, f"the feed marks it '{item['status']}'", None)
        name = one_line(str(item.get("name") or ""))
        if not name:
            return Refused(self.name, sid, f"{where} item {number}", "service has no name", unreadable=True)
        if sid not in self._listed:
            self._listed[sid] = (f"{where} item {number}", name)
            return self._read(sid, item, where, number)
        first_where, first_name = self._listed[sid]
        if first_name.casefold() == name.casefold():
            self._repeats[sid] += 1
            return None
        # Bristol's feed gives one id to "Fishponds Yoga for Fitness & Wellbeing" (item 374) and to "Yoga for
        # Fitness & Relaxation" (item 811): one record per id, so one of them was lost without a word.
        return Refused(self.name, None, f"{where} item {number}", (
            f"'{name}' has the id of another service the feed lists, '{first_name}' ({first_where}): {sid}; "
            "one record per id, so only what the feed's page for that id says is read. Ask the feed's "
            "publisher to give each service its own id"))

    def _read(self, sid: str, item: dict[str, Any], where: str, number: int) -> Outcome:
        """The service, from its detail page when the list item does not place it (unless the list item says it
        is unchanged since that page was last read)."""
        url = where
        if not _has_place(item):
            stamp = _stamp(item)
            if self._readings.unchanged(sid, stamp):
                return Unchanged(self.name, sid)
            url = self.http.url(f"services/{sid}")
            try:
                item = self.http.get_record(f"services/{sid}", "id")
            except SourceNotFound:
                # The listing still names it: the feed is at odds with itself, which says nothing of the service.
                # Its last version stays, and its page, unread, is asked for again at the next run.
                return Refused(self.name, sid, url, "listed, but its detail page is missing (404)", unreadable=True)
            self._readings.read(sid, stamp)
        return map_service(self.feed, item, url, number, utc_now())


FULL_READING_DAYS = 7  # the schedule's weekly run reads every page again; a daily one reads what changed
# How this release reads an ORUK service (`map_service`, `rehabmap.oruk.oruk_to_fields`, the classifier's words,
# what places a service): bump it with any change there. A service refused by a reading is not stored, and one the
# feed lists as unchanged since is not fetched again, so without it a fixed reading reached such a service only at
# the next full reading, up to FULL_READING_DAYS later; a new value reads every page at the next run.
# A feed's state saved before it has none: its next run reads every page. 2: a council's `assured_date` is no
# person's check; 3: `last_verified` only from rehabmap's own term, whoever publishes it; 4: a provenance attribute
# that is not JSON (or no object) is left out, where it refused the service.
READER_VERSION = 4


class Readings:
    """Which detail pages a crawl fetches: each service's modification date as listed when its page was last
    read, and that day, kept in the feed's state (`read`) and committed with the run that read them, so a run
    discarded or never applied skips nothing on their account. A date is a day at best (Placecube's), so a
    service is skipped only when listed with the same date as then, and that date is at least two days before the
    day it was read (a feed's day may be a day behind UTC's): a change later on the day of the reading leaves the
    date within that margin, and the page is read again. A crawl decides at its start whether it reads every page
    (kept while it resumes: `reading_all`)."""

    def __init__(self, saved: dict[str, Any], mapping: str, today: date, *, full: bool) -> None:
        self.saved = saved
        self.before: dict[str, list[str]] = saved.get("read") or {}
        self.now: dict[str, list[str]] = {}
        self.today = today.isoformat()
        if full or "reading_all" not in saved:
            saved["reading_all"] = _why_all(saved, mapping, today, full) or False
        saved["mapping"], saved["reader"] = mapping, READER_VERSION

    @property
    def why_all(self) -> str | None:
        """Why this crawl reads every detail page, in the run report's words; None when it reads what changed."""
        why = self.saved.get("reading_all")
        return why if isinstance(why, str) else ("a crawl that reads every page, resumed" if why else None)

    def unchanged(self, sid: str, stamp: str | None) -> bool:
        then = self.before.get(sid)
        if self.saved["reading_all"] or not stamp or then is None or then[0] != stamp:
            return False
        if stamp[:10] >= (date.fromisoformat(then[1]) - timedelta(days=1)).isoformat():
            return False
        self.now[sid] = then
        return True

    def read(self, sid: str, stamp: str | None) -> None:
        if stamp:
            self.now[sid] = [stamp, self.today]

    def done(self) -> None:
        """A complete crawl: what it read (or kept) is what the next one compares with."""
        self.saved["read"] = self.now
        if self.saved.pop("reading_all"):
            self.saved["read_all"] = str(self.saved["crawl_started"])[:10]


def _why_all(saved: Mapping[str, Any], mapping: str, today: date, full: bool) -> str | None:
    """Why a crawl starting now must read every page (`Readings`), the first reason that holds; None if none."""
    last = saved.get("read_all")
    if full:
        return "asked for (--full)"
    if not last:
        return "the feed's first complete reading"
    if saved.get("reader") != READER_VERSION:
        return READER_CHANGED
    if saved.get("mapping") != mapping:
        return MAPPING_CHANGED
    days = (today - date.fromisoformat(last)).days
    return (f"{days} days since every page was last read (at least every {FULL_READING_DAYS} days)"
            if days >= FULL_READING_DAYS else None)


def _count_remedy(feed: Feed) -> str:
    """What the operator can do, besides asking the publisher, about a feed that lists fewer services than it counts:
    a publisher whose count takes in deleted or hidden services fails every run so, until it mends the count. The
    file is named by its name in the feed folder: the failed run's error is shown on the keepers' Sources page."""
    return (f"If its count is always more than it lists (counting services it has deleted or hidden), ask the feed's "
            f"publisher to mend its count; until then, 'trust_count = false' in the [feed] table of {feed.path.name} "
            "reads its listing to the page that ends it, as a feed that gives no count, and says in the run's report "
            "how many it listed of its count.")


def _stamp(item: dict[str, Any]) -> str | None:
    """When the feed says the service last changed: HSDS 3's `last_modified`, Placecube's `pc_metadata`."""
    stamp = item.get("last_modified") or (item.get("pc_metadata") or {}).get("date_modified")
    return str(stamp) if stamp else None


def _mapping(feed: Feed) -> str:
    """The feed file's reading of terms and words: a change reads every page again."""
    said = ([sorted((k, str(v)) for k, v in found.items()) for found in (feed.terms, feed.audiences)],
            [(p.pattern, str(t)) for p, t in feed.keywords])
    return hashlib.sha256(repr(said).encode()).hexdigest()[:16]


def _has_place(item: dict[str, Any]) -> bool:
    """Any location that places the service, by the rule the reader picks its place by (`places`)."""
    return any(places((sal or {}).get("location") or {}) for sal in item.get("service_at_locations") or [])


def map_service(feed: Feed, item: dict[str, Any], url: str, number: int, fetched_at: datetime) -> Outcome:
    """One service (list item or detail page) → a typed item, or a refusal naming what it had."""
    sid = str(item["id"])
    left_out: list[str] = []
    try:
        fields, label_text = oruk_to_fields(item, left_out)
    except (ValueError, TypeError, AttributeError) as exc:
        nulls = _null_entries(item)
        said = str(exc) if isinstance(exc, ValueError) or not nulls else (
            f"its {' and its '.join(nulls)} {'is' if len(nulls) == 1 else 'are'} null, where each entry should be "
            "an object: ask the feed's publisher to leave empty entries out")
        return Refused(feed.source, sid, url, f"cannot read the service: {said}", unreadable=True)
    published = _published(fields.pop("provenance", None), feed)
    name = fields.get("name", "")
    named_provider = not fields.get("provider_type") and provider_type_from_name(fields.get("organisation"))
    if named_provider:
        fields["provider_type"] = named_provider
    typed = _type(feed, item, fields, label_text)
    if isinstance(typed, str):
        return Refused(feed.source, sid, url, typed, off_pathway="reading")
    typing, status, evidence = typed
    if not (fields.get("lat") is not None and fields.get("lon") is not None) and not fields.get("postcode"):
        what = typing.service_type.value if typing else "of a type only a maintainer can say"
        return Refused(feed.source, sid, url, f"'{name}' is {what} ({evidence[-1 if typing is None else 0].means}), "
                                              f"but {_unplaced(fields.get('service_area'), fields.get('description'))}",
                       unplaced=True)
    if typing is not None:
        fields |= {"service_type": typing.service_type, "subtype": typing.subtype} if typing.subtype else {
            "service_type": typing.service_type}
    field_sources = {f: f"{feed.source}:{_ORUK_KEYS.get(f, f)}" for f in fields}
    if typing is not None:
        field_sources["service_type"] = f"{feed.source}:{evidence[0].field}"
    if named_provider:
        field_sources["provider_type"] = f"{feed.source}:organization.name"
    if published:
        fields["provenance"] = published
    candidate = Candidate(fields, origin(feed.source, url, number, sid, feed.licence, fetched_at), label_text, left_out)
    return SourceItem(candidate, status, evidence, raw=item, field_sources=field_sources)


def _json_kind(value: Any) -> str:
    """What a JSON value is, in a feed publisher's words (Python's type names meant nothing to them)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return "a list" if isinstance(value, list) else "a string" if isinstance(value, str) else "a number"


def _null_entries(value: Any, path: str = "") -> list[str]:
    """Where a service holds null in a list ("service_at_locations entry 1", "service_at_locations entry 2 location
    physical_addresses entry 1"), each entry counted from 1 as a person counts: the reader expects an object there,
    and Python's words for what it then met ('NoneType' object has no attribute 'get') named neither."""
    if isinstance(value, dict):
        return [found for key, inner in value.items()
                for found in _null_entries(inner, f"{path} {key}" if path else str(key))]
    if isinstance(value, list):
        return [found for n, inner in enumerate(value, start=1)
                for found in ([f"{path} entry {n}"] if inner is None else _null_entries(inner, f"{path} entry {n}"))]
    return []


def _published(provenance: list[Any] | None, feed: Feed) -> list[dict[str, Any]]:
    """Where the feed says its record came from (rehabmap's own feed, or one that republishes CQC's records,
    publishes each source's name, id, licence and fetch time): kept after the feed itself in the record's
    provenance (`indexer.pipeline`), so the service page and the API name the first source, the ORUK feed
    passes it on, and its licence's attribution travels with the record. It was dropped, so a CQC record read
    through a feed lost "Contains CQC information". An entry that is no provenance (no source, id or time) is
    left out: it says nothing of the service, which is read as the feed gives it. Each entry is said to be relayed
    by the feed (`Relay`, always this feed: a relay the feed names keeps only its title, as words), so the feed's
    listing is not the source's; an entry the feed's publisher itself read from a relay (whose source a relay the
    feed published names: the publisher's names, read only among its own entries) is a relay's too. Only for a feed
    its file says is another rehabmap's (`Feed.rehabmap`): any other is a live source, its relays not read."""
    read = []
    for entry in provenance or []:
        try:
            read.append(Provenance.model_validate(entry))
        except (ValueError, TypeError):
            continue
    if not feed.rehabmap:  # no relay: the feed is a live source of what it lists, whatever its attribute says
        return [p.model_dump(mode="json", exclude={"file", "line", "relayed_by"}) for p in read]
    relaying = relays(read)
    return [p.model_copy(update={"relayed_by": Relay(
        source=feed.source, title=(p.relayed_by and p.relayed_by.title) or feed.label,
        relaying=p.source in relaying or bool(p.relayed_by and p.relayed_by.relaying))}).model_dump(
            mode="json", exclude={"file", "line"}) for p in read]


def _unplaced(area: dict[str, Any] | None, description: str | None) -> str:
    """Why a typed service without a location or postcode is refused, and what would let it in. A service is
    placed at a point: distance, the home's ICB, coverage and gap analysis all start from it. A stated service
    area says whom it serves, not where it is, and its centre would be a made-up place: so the service waits
    for a location, whether or not it states an area. Postcodes its description names ("Location: Bluebell
    Place, 2 Quay St, Bristol, BS1 2JL") are prose, which may name a venue, an office or one of several places,
    so they place nothing; the reason quotes them, for the person who makes the service by hand."""
    area = area or {}
    stated = area.get("codes") or (["a polygon"] if area.get("polygon") else []) or [area.get("description") or ""]
    said = (f"the feed states only the area it serves ({', '.join(stated)[:120]}), no location or postcode"
            if any(stated) else "the feed gives no location, postcode or service area for it")
    named = _postcodes_in(description)
    hint = (f" (its description names {', '.join(named[:_POSTCODES_QUOTED])}"
            f"{' …' if len(named) > _POSTCODES_QUOTED else ''})" if named else "")
    return (f"{said}, so it cannot be placed. Ask the feed's publisher to add the location where it is delivered "
            "(its next sync adds it), or make the service in the directory at /keepers/services/new with its "
            f"postcode{hint}")


# A full UK postcode as a directory's prose writes one ("BS1 2JL", "BS159TR"); each is checked by the one postcode
# reader before it is quoted.
_POSTCODE_IN_TEXT = re.compile(r"\b[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\b")
_POSTCODES_QUOTED = 5


def _postcodes_in(text: str | None) -> list[str]:
    found: list[str] = []
    for match in _POSTCODE_IN_TEXT.finditer(text or ""):
        try:
            found.append(parse_postcode_text(match.group(0), "description"))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


# Where `oruk_to_fields` reads each field, for provenance.
_ORUK_KEYS = {"lat": "location.latitude", "lon": "location.longitude", "address": "location.addresses",
              "town": "location.addresses.city", "county": "location.addresses.state_province",
              "postcode": "location.addresses.postal_code", "website": "url", "min_age": "minimum_age",
              "max_age": "maximum_age", "organisation": "organization.name", "phone": "phones",
              "referral_route": "application_process",
              "service_area": "service_areas"}


# The start of a feed's service's refusal off the pathway (`_type`'s, the one `Refused.off_pathway` is "reading" for),
# the same words since the connector's first release: a run before session 51 staged it with no cause, read from them.
OFF_PATHWAY = "not on the rehab pathway: "


def _type(feed: Feed, item: dict[str, Any], fields: dict[str, Any],
          label_text: str) -> tuple[Typing | None, TypeStatus, tuple[Evidence, ...]] | str:
    """By the feed's mapped terms (confirmed), else by words (inferred), else the reason it is refused. A feed
    that reads as VCFSE ("Mental Health" → vcfse) says nothing of a service an NHS trust or a council runs, which no
    voluntary or community organisation runs (`rehabmap.taxonomy.said_of`, the importers' rule): such a service
    with nothing else to type it is held with no type (unknown), for a maintainer to say what it is."""
    if fields.get("service_type"):  # the feed speaks rehabmap's own taxonomy
        given = Typing(ServiceType(fields["service_type"]), fields.get("subtype"))
        return given, "confirmed", (Evidence(feed.source, "attributes", given.service_type.value,
                                             "typed with rehabmap's own taxonomy"),)
    statutory = fields.get("provider_type") in STATUTORY_PROVIDERS
    terms = [*v1_terms(item), *_hsds_terms(item)]
    audiences = [str(a.get("audienceType") or "") for a in item.get("pc_targetAudience") or [] if isinstance(a, dict)]
    mapped = [(t, feed.terms[_norm(t)], "taxonomy") for t in terms if _norm(t) in feed.terms]
    mapped += [(a, feed.audiences[_norm(a)], "pc_targetAudience") for a in audiences if _norm(a) in feed.audiences]
    evidence = tuple(Evidence(feed.source, where, term.strip(),
                              f"the feed's term, mapped to {typing.service_type.value}")
                     for term, typing, where in mapped)
    types = list(dict.fromkeys(typing for _, typing, _ in mapped if _said(typing, statutory)))
    if types:
        specific = [t for t in types if t.service_type is not ServiceType.vcfse] or types
        # Terms that disagree (beyond "also VCFSE") leave the choice to a maintainer.
        status: TypeStatus = "confirmed" if len({t.service_type for t in specific}) == 1 else "inferred"
        # The terms for the type chosen first: the first is what the refusal and the type's field source cite.
        chosen = f"mapped to {specific[0].service_type.value}"
        return specific[0], status, tuple(sorted(evidence, key=lambda e: not e.means.endswith(chosen)))
    text = " ".join(filter(None, (fields.get("name"), fields.get("description"))))
    for pattern, typing in feed.keywords:
        if (found := pattern.search(text)) and _said(typing, statutory):
            return typing, "inferred", (Evidence(feed.source, "name/description", found.group(0),
                                                 f"words the feed file maps to {typing.service_type.value}"),)
    words = MENTAL_HEALTH_WORDS.search(text)
    if words and _said(typing := _typing_from_words(label_text), statutory):
        return typing, "inferred", (Evidence(
            feed.source, "name/description", words.group(0),
            f"mentions mental health: typed {typing.service_type.value} by keyword, to be confirmed"),)
    if evidence or words:
        said = evidence or (Evidence(feed.source, "name/description", words.group(0) if words else "",
                                     "mentions mental health"),)
        return None, "unknown", (*said, Evidence(
            feed.source, "organization.name", str(fields.get("organisation") or ""),
            f"run by {'the NHS' if fields['provider_type'] == 'nhs' else 'a council'}: no voluntary or community "
            "organisation runs it, so reading it as VCFSE says nothing of its type"))
    had = "; ".join(dict.fromkeys(t.strip() for t in terms + audiences if t.strip())) or "none"
    return f"{OFF_PATHWAY}no term the feed file maps, and no words about mental health (its terms: {had})"


def _said(typing: Typing, statutory: bool) -> bool:
    """A reading as VCFSE says nothing of a service the NHS or a council runs."""
    return not (statutory and typing.service_type is ServiceType.vcfse)


def _typing_from_words(label_text: str) -> Typing:
    """The kind of service the words name (advocacy, supported housing, IPS …); a VCFSE service otherwise.
    Inpatient and team types are not guessed from a community directory's words."""
    try:
        found = classify_label(label_text)
    except NotRehab:
        found = None
    if found is None or found.service_type.is_inpatient or found.service_type is ServiceType.community_rehab_team:
        return Typing(ServiceType.vcfse, None)
    return Typing(found.service_type, found.subtype)


def _hsds_terms(item: dict[str, Any]) -> list[str]:
    """HSDS 3 terms: `taxonomy_terms`, and attributes' terms of taxonomies other than rehabmap's."""
    found = [str(t.get("name") or t.get("term") or "") for t in item.get("taxonomy_terms") or [] if isinstance(t, dict)]
    found += [str((a.get("taxonomy_term") or {}).get("name") or "") for a in item.get("attributes") or []
              if isinstance(a, dict)]
    return [t for t in found if t]
