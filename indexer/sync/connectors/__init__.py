"""One connector per live source, each yielding `SourceItem | Gone | Refused | Enrichment` (indexer/sync/items.py).

`connectors_for(source, settings)` builds what `rehabmap sync SOURCE` runs: one connector, except `oruk` (one per
feed file that reads, named `oruk-<feed>`; `runs_for` gives each that does not too) and `cqc-ratings` (one per
file whose URL is set: `cqc-ratings`, `cqc-directory`, `cqc-hsca`). A source missing what it needs (a URL, a key)
raises `SourceNotConfigured` naming the setting, before anything is asked of the network; a key the source
refuses, or a source still down after the retries, raises `indexer.sync.http.SourceError` (a `DomainError`, so the
CLI prints one `error:` line). Every connector asks through `indexer.sync.http.SourceClient`: timeouts
(`REHABMAP_SYNC_TIMEOUT`, 30 s), retries with backoff (`REHABMAP_SYNC_RETRIES`, 5), `Retry-After` obeyed up to
`REHABMAP_SYNC_RETRY_AFTER_MAX` (120 s), and a polite rate per source. Keys are `SecretStr` settings, sent
only in their header, never logged.

Per source: what it reads; its key; its URL setting (default); its rate (requests a second); its licence and
attribution.
* `cqc` — CQC API: `/locations` per pathway service type, `/locations/{id}`, then `/changes/location` windows. Key:
  `REHABMAP_CQC_API_KEY` (header `Ocp-Apim-Subscription-Key`; free "Syndication" subscription at the CQC API portal).
  URL: `REHABMAP_CQC_API_URL` (https://api.service.cqc.org.uk/public/v1). Rate: `REHABMAP_CQC_RATE` 5. Licence: OGL
  v3: "Contains CQC information".
* `cqc-ratings` — CQC monthly files: "Latest ratings" (rehab-ward ratings), the care directory CSV, "HSCA Active
  Locations" (.ods); conditional GET. Key: none. URL: `REHABMAP_CQC_RATINGS_URL`, `REHABMAP_CQC_DIRECTORY_URL`,
  `REHABMAP_CQC_HSCA_URL` (CQC renames the files monthly: set this month's links from cqc.org.uk "Using CQC data").
  Rate: `REHABMAP_CQC_FILES_RATE` 1. Licence: OGL v3: "Contains CQC information".
* `ods` — NHS ODS bulk reports `ets` (trust sites) and `ephpsite` (independent provider sites), headerless CSV in
  zips; conditional GET. Key: none. URL: `REHABMAP_ODS_URL` (https://files.digital.nhs.uk/assets/ods/current),
  `REHABMAP_ODS_REPORTS`. Rate: `REHABMAP_ODS_RATE` 1. Licence: OGL v3: "Contains information from NHS England
  (Organisation Data Service)".
* `oruk` — each ORUK feed in `REHABMAP_ORUK_FEEDS_DIR` (mappings/feeds/<feed>.toml: URL, paging v1 or HSDS 3, taxonomy
  mapping); `/services` paged, `/services/{id}` for items without a location. Key: none. URL: the feed file's `url`,
  or `REHABMAP_ORUK_FEED_URLS` (JSON by feed name). Rate: `REHABMAP_ORUK_RATE` 2. Licence: the feed file's `licence`
  and `attribution`.
* `charity` — Charity Commission register daily extract: `publicextract.charity.zip`,
  `publicextract.charity_classification.zip`, `publicextract.charity_area_of_operation.zip` (JSON); conditional GET.
  Key: none. URL: `REHABMAP_CHARITY_URL` (https://ccewuksprdoneregsadata1.blob.core.windows.net/data/json). Rate:
  `REHABMAP_CHARITY_RATE` 1. Licence: OGL v3: "Contains information from the Charity Commission for England and
  Wales".
* `nhs-service-search` — NHS website Service Search API v3: organisations offering `SRV0020` "Community mental health
  services". Key: `REHABMAP_NHS_SERVICE_SEARCH_KEY` (header `apikey`; application-restricted, apply through NHS
  England's API catalogue). URL: `REHABMAP_NHS_SERVICE_SEARCH_URL` (https://api.service.nhs.uk/service-search-api).
  Rate: `REHABMAP_NHS_SERVICE_SEARCH_RATE` 10 (the API allows 6,000/min). Licence: OGL v3: "Contains information from
  NHS England (NHS website)".

What each makes of a record:
* `cqc` — supported accommodation (confirmed) from care homes and supported living registered for mental health;
  inpatient candidates from mental health hospitals (confirmed only when a rehab ward — the name, or CQC's
  "Long stay or rehabilitation" inspection area — and the level are both stated, else inferred with level 1
  proposed); hospitals named for acute, PICU or assessment wards are refused; deregistered → Gone with the date;
  dormant (registered, providing no care) → refused, so a record made before is retired; a location whose record
  answers 404, or has no name, is refused and its record made before kept (only a complete listing without it
  retires it). Needs from the service user bands and regulated activities: `detained_mha` only from "Assessment
  or medical treatment for persons detained under the Mental Health Act 1983", never from the band for people
  whose rights are restricted.
  A first run crawls `/locations` (≈ 1 request per location; at 5 req/s some hours for England), later runs
  fetch only `/changes/location` since the last window: schedule it daily.
* `cqc-ratings` — a location rated for "Long stay or rehabilitation mental health wards for working age adults"
  is evidence of an inpatient rehab unit there, a provider so rated evidence for its hospitals (Enrichments);
  `cqc-directory` / `cqc-hsca` give the same records as `cqc` (ids `cqc:<location id>`) without a key: run them
  instead of `cqc`, not beside it. Monthly.
* `ods` — site names and addresses (Enrichments on records with the same ODS code, never a type); a closed site
  is evidence against a record. Monthly.
* `oruk` — each feed's own terms mapped by its file (confirmed), else mental-health words (inferred); a VCFSE
  reading says nothing of an NHS or council service (held with no type); no location, no record. Every page is
  listed each run, and a service's detail page fetched only when its list item says it changed since it was read
  (every page weekly, and with `--full`), so a daily run is cheap.
* `charity` — VCFSE and advocacy candidates by name and activities (always inferred); removed charities Gone.
  The other charities are counted in `CharityConnector.skipped`, not reported one by one. Weekly.
* `nhs-service-search` — community rehab team candidates (inferred unless the name says rehabilitation), with the
  clinic's other services as evidence, its own email, and its usual week's opening times (the service's own, else the
  clinic's). Weekly.

Coverage (`Connector.covers()`): `cqc`, `cqc-directory` and `cqc-hsca` cover care homes
(`supported_accommodation:residential_24h`, not floating support or supported housing, which CQC does not list
completely) and both inpatient levels for England (E92000001) after a complete run; an ORUK feed covers what its file's
`[feed.covers]` says; the others cover nothing (candidates and enrichments only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.sync.connectors.titles import CQC, CQC_LOCATION_FILES, CQC_RATINGS, TITLES
from rehabmap.errors import DomainError, InvalidValue

if TYPE_CHECKING:  # not at run time: `rehabmap --help` lists SOURCES without loading the settings
    from pydantic import SecretStr

    from indexer.sync.connectors.oruk import FeedError
    from indexer.sync.items import Connector
    from rehabmap.config import Settings

SOURCES = (CQC, CQC_RATINGS, "ods", "oruk", "charity", "nhs-service-search")


def command_source(connector: str) -> str:
    """The SOURCE of `rehabmap sync SOURCE` that runs the connector of this name: one ORUK feed ('oruk-bristol') is
    run by `sync oruk`, CQC's directory and HSCA files by `sync cqc-ratings`. Before, a failed run told the operator
    to run 'rehabmap sync oruk-bristol', which is no command."""
    if connector.startswith("oruk-"):
        return "oruk"
    return CQC_RATINGS if connector in CQC_LOCATION_FILES else connector


def run_again(source: str, files: Sequence[str] = ()) -> str:
    """How a person runs again what last ran under `source` (by the name its runs are recorded under), once they have
    fixed what its failed run's error names: a connector's `rehabmap sync` (`command_source`), or, for an import's
    held rows (`indexer.sync.file_candidates`, recorded under the file's source name: the NHS hospital lists'),
    `rehabmap index` with the file (`files`: those its last applied run read, where known) among the directory's
    usual sources, since an import builds the whole index from the sources it is given. Before, a failed run of
    held rows named 'rehabmap sync nhs-hospitals-2018', which is no command. A name is a connector's where
    `rehabmap sync` records runs under it: never `oruk` alone, the source an ORUK file's import is named by."""
    if source.startswith("oruk-") or (source != "oruk" and command_source(source) in SOURCES):
        return f"run 'rehabmap sync {command_source(source)}' again"
    return (f"run 'rehabmap index' again with {', '.join(files) if files else 'its file'} among the directory's "
            "usual sources")


def source_titles(feeds_dir: Path, recorded: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """`TITLES`, each curated table's, each CSV mapping's and each ORUK feed's in `feeds_dir`, by source name. A
    feed file that cannot be read is left out rather than keep the server from starting: `rehabmap sync oruk` is what
    tells a keeper the file is wrong. Such a feed, and one whose file has left the folder, is named by the title its
    last applied run had (`recorded`: `SyncStore.titles`), else by its source name: before, a removed feed's records
    and its runs were named 'oruk-bristol' once its file was gone, where people knew it by its label."""
    from indexer.sources.csv_mapping import mapping_titles
    from indexer.sources.curated import TABLES
    from indexer.sync.connectors.oruk import load_feeds

    feeds = load_feeds(feeds_dir).usable if feeds_dir.is_dir() else []
    return (dict(TITLES) | dict(recorded or {}) | {table.source: table.title for table in TABLES} | mapping_titles()
            | {feed.source: feed.label for feed in feeds})


class UnknownSource(DomainError):
    code = "unknown_source"


class SourceNotConfigured(DomainError):
    """The settings lack what a source needs (a URL); the message names the setting."""

    code = "source_not_configured"


def _key(source: str, key: SecretStr | None, setting: str, how: str) -> SecretStr:
    """A keyed source's key. Without one the run used to reach the network and print the source's 401 ("needs
    a key (401)"), after the retries' wait and a request the source logs: the setting is named first instead."""
    if key is None or not key.get_secret_value():
        raise SourceNotConfigured(f"rehabmap sync {source} needs a key: set {setting} ({how})")
    return key


def connector_names(source: str, settings: Settings) -> list[str]:
    """The names `rehabmap sync SOURCE` records its runs under, read without a key, a URL or a client:
    `--discard` touches only the store, yet it demanded the CQC key (`connectors_for`) to drop a stopped run.
    Every file of `cqc-ratings` is named, set or not: one dropped from the settings may have left a run."""
    if source == "oruk":
        from indexer.sync.connectors import oruk

        feeds = oruk.load_feeds(settings.oruk_feeds_dir, settings.oruk_feed_urls)
        return [feed.source for feed in feeds.usable] + [error.source for error in feeds.unusable]
    if source == CQC_RATINGS:
        from indexer.sync.connectors import cqc_files

        return [kind.name for kind in (cqc_files.RatingsFile, cqc_files.DirectoryFile, cqc_files.HscaFile)]
    if source in SOURCES:
        return [source]
    raise _unknown(source)


def _unknown(source: str) -> UnknownSource:
    return UnknownSource(f"unknown source '{source}': use one of {', '.join(SOURCES)}", field="source")


def connectors_for(source: str, settings: Settings) -> list[Connector]:
    """The connectors `rehabmap sync SOURCE` runs, built from the settings (keys included)."""
    from indexer.sync.connectors import base

    if source == CQC:
        from indexer.sync.connectors import cqc

        key = _key(source, settings.cqc_api_key, cqc.KEY_SETTING, cqc.KEY_HOW)
        http = base.client(settings, "CQC API", settings.cqc_api_url, settings.cqc_rate, key=key,
                           key_header=cqc.KEY_HEADER, key_setting=cqc.KEY_SETTING)
        return [cqc.CqcConnector(http, page_size=settings.cqc_page_size)]
    if source == CQC_RATINGS:
        from indexer.sync.connectors import cqc_files

        files = ((cqc_files.RatingsFile, settings.cqc_ratings_url),
                 (cqc_files.DirectoryFile, settings.cqc_directory_url), (cqc_files.HscaFile, settings.cqc_hsca_url))
        chosen = [(kind, url) for kind, url in files if url]
        if not chosen:
            raise SourceNotConfigured(
                f"{CQC_RATINGS} has no file to read: set REHABMAP_CQC_RATINGS_URL (and, without a CQC API key, "
                "REHABMAP_CQC_DIRECTORY_URL or REHABMAP_CQC_HSCA_URL) to this month's links from CQC's "
                "'Using CQC data' page")
        return [kind(base.client(settings, kind.label, url, settings.cqc_files_rate), url) for kind, url in chosen]
    if source == "nhs-service-search":
        from indexer.sync.connectors import nhs_service_search as nhs

        key = _key(source, settings.nhs_service_search_key, nhs.KEY_SETTING, nhs.KEY_HOW)
        http = base.client(settings, "NHS Service Search API", settings.nhs_service_search_url,
                           settings.nhs_service_search_rate, key=key,
                           key_header=nhs.KEY_HEADER, key_setting=nhs.KEY_SETTING)
        return [nhs.NhsServiceSearchConnector(http)]
    if source == "ods":
        from indexer.sync.connectors import ods

        http = base.client(settings, "NHS ODS", settings.ods_url, settings.ods_rate)
        return [ods.OdsConnector(http, tuple(settings.ods_reports))]
    if source == "charity":
        from indexer.sync.connectors import charity

        return [charity.CharityConnector(base.client(settings, "Charity Commission register", settings.charity_url,
                                                     settings.charity_rate))]
    if source == "oruk":
        return _feed_runs(settings)[0]
    raise _unknown(source)


def runs_for(source: str, settings: Settings) -> tuple[list[Connector], list[FeedError]]:
    """What `rehabmap sync SOURCE` runs (`connectors_for`), and the runs of it that cannot start: each ORUK feed
    file that cannot be read, its error naming the file, the line or entry, and why (before, the first such file
    ended the command with a traceback before any feed ran). The feed folder is read once for both."""
    return _feed_runs(settings) if source == "oruk" else (connectors_for(source, settings), [])


def _feed_runs(settings: Settings) -> tuple[list[Connector], list[FeedError]]:
    from indexer.sync.connectors import base, oruk

    feeds = oruk.load_feeds(settings.oruk_feeds_dir, settings.oruk_feed_urls)
    return ([oruk.OrukConnector(feed, base.client(settings, feed.label, feed.url, settings.oruk_rate))
             for feed in feeds.usable], feeds.unusable)


def removed_feed(source: str, settings: Settings) -> Path | None:
    """The feed file an ORUK feed's runs were read from, where it has left the feed folder (`REHABMAP_ORUK_FEEDS_DIR`):
    the feed is no longer configured, so no run of it will come, and its last run needs no person (before, a failed
    one went on alerting until someone ran --discard). None for every other source, and for a feed whose file is
    there, whether it reads or not (one that cannot be read fails each run, and does need a person)."""
    path = _feed_file(source, settings)
    return path if path is not None and not path.is_file() else None


def discard_command(source: str) -> str:
    """The command that drops what an unfinished or stopped run of a connector fetched."""
    return f"rehabmap sync {command_source(source)} --discard"


def retire_command(source: str) -> str:
    """The command that retires every record of a feed no longer configured (`removed_feed`): what sync-status and
    the keepers' Sources page tell a person to run while its records are still shown."""
    return f"rehabmap sync {command_source(source)} --retire-removed {source}"


def feed_removed(source: str, settings: Settings) -> Path:
    """The feed file of `source`, an ORUK feed whose file has left the feed folder, whose records a person may
    retire (`retire_command`); refused, saying why, for any other source, and for a feed still configured, whose
    runs retire what it no longer lists."""
    path = removed_feed(source, settings)
    if path is not None:
        return path
    if command_source(source) != "oruk":
        raise InvalidValue(f"'{source}' is not an ORUK feed: --retire-removed retires the records of an ORUK feed "
                           "whose file has left the feed folder, named as 'rehabmap sync-status' names it "
                           "(oruk-<feed>)", field="retire_removed")
    raise InvalidValue(f"{source} is still configured: {_feed_file(source, settings)} is in the feed folder, so each "
                       "run of 'rehabmap sync oruk' retires what the feed no longer lists. To stop syncing it and "
                       "retire all its records, remove its file from the feed folder first.", field="retire_removed")


def _feed_file(source: str, settings: Settings) -> Path | None:
    from indexer.sync.connectors import oruk

    return oruk.feed_path(source, settings.oruk_feeds_dir)


def removed_feeds(settings: Settings) -> Callable[[str], Path | None]:
    """Per source, by the name its runs are recorded under, the feed file that has left the feed folder
    (`removed_feed`), or None: still configured. What `rehabmap sync-status` (which names the file), the keepers'
    Sources page and the metrics ask once a source: before, sync-status asked the folder again for the file's name."""
    return lambda source: removed_feed(source, settings)
