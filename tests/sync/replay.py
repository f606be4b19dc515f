"""A replay of the live sources for the sync tests: a real HTTP server on 127.0.0.1 (a free port) serving
the real recorded responses in ../shared/data/feeds/ and behaving like each source.

What it serves (each under its own prefix of `base_url`):
* `/cqc` — the CQC API over the 103 real location records (`locations_detail_2021.json`): `/locations`
  paged (`page`, `perPage`) and filtered (`gacServiceTypeDescription`, `careHome`, `localAuthority`,
  `inspectionDirectorate`, `registrationStatus`), `/locations/{id}`, and `/changes/location` (`startTimestamp`
  inclusive, `endTimestamp` exclusive) in CQC's paging shape (`total`, `page`, `perPage`, `totalPages`,
  `nextPageUri`). The list shape is CQC's; the recorded file holds only the list items, so pages are cut from
  them. The key header `Ocp-Apim-Subscription-Key` is required (401 with CQC's API Management body without
  it). `cqc.deregister`, `cqc.alter` and `cqc.add` change records between two runs and log the change, so the
  next window reports it.
* `/oruk/<feed>` — ORUK feeds: `bristol` (the 819 real list items, Placecube v2 = ORUK v1 paging:
  `content`, `totalElements`, `totalPages`, `number`, `first`, `last`) and `hsds3` (the HSDS 3 example list,
  `contents`, `total_pages`, …). The recording holds no council detail pages, so `/services/{id}` is BUILT in
  the published ORUK v1 shape from the recorded list item, joined by service id or name to the real
  service-at-location extract (`bristol_services_at_locations.csv`: lat/lon, taxonomy terms, ages,
  schedules); a list item with no row there gets a detail page with no location, as the list item had none.
* `/nhs` — NHS website Service Search v3 over the 50 real organisations (`organisations_v3.json`): GET `/`
  with `api-version=3` (404 with the recorded body without it), `$top`, `$skip`, `$count`, and the one
  `$filter` form a sync uses, `Services/any(s: s/ServiceCode eq 'SRVnnnn')`; key header `apikey`.
* `/files/<name>` — any bytes a test registers (`serve_file`): monthly files, extracts, bulk reports, with
  ETag and Last-Modified, and 304 to a matching If-None-Match / If-Modified-Since.

Faults are scripted per test (`fail`, `drop`, `slow`, `alter`): a status with headers (429 + Retry-After, 5xx), a
connection closed without an answer, an answer held back, or the replay's own answer changed (a page that
contradicts its own paging). Every request is logged (`requests`) with its time, so a test can check what the
client really did (that it waited, that it sent the key) — never the key itself.
"""

from __future__ import annotations

import csv
import copy
import email.utils
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CQC_KEY_HEADER = "Ocp-Apim-Subscription-Key"
NHS_KEY_HEADER = "apikey"
_CQC_TIME = "%Y-%m-%dT%H:%M:%SZ"
_SERVICE_CODE_FILTER = re.compile(r"Services/any\(\s*(\w+)\s*:\s*\1/ServiceCode\s+eq\s+'(SRV\d+)'\s*\)")


@dataclass
class Seen:
    """One request as the server saw it: the key's presence is logged, never its value."""

    method: str
    path: str
    query: dict[str, list[str]]
    had_key: bool
    at: float            # time.monotonic() when the request arrived
    status: int | None   # None: the connection was dropped without an answer
    headers: dict[str, str] = field(default_factory=dict)  # conditional-request headers only


@dataclass
class Fault:
    path: str                   # a prefix of the request path (`alter`: the whole path)
    action: str                 # "status", "drop", "slow" or "alter"
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    after: int = 0              # let this many matching requests through first
    times: int | None = 1       # then act on this many (None: on every one from then on)
    matched: int = 0
    change: Callable[[dict[str, list[str]], Any], Any] | None = None  # `alter`: (query, answer) -> answer

    def applies(self, path: str) -> bool:
        if not path.startswith(self.path) or (self.change is not None and path.rstrip("/") != self.path):
            return False
        self.matched += 1
        if self.matched <= self.after:
            return False
        return self.times is None or self.matched - self.after <= self.times


class CqcReplay:
    """The CQC API's records, as a mutable copy of the recording, with a log of changes."""

    def __init__(self, records: list[dict[str, Any]], key: str) -> None:
        self.key = key
        self.records: dict[str, dict[str, Any]] = {r["locationId"]: copy.deepcopy(r) for r in records}
        self.order = [r["locationId"] for r in records]
        self.changes: list[tuple[datetime, str]] = []
        self._next_start: datetime | None = None   # the earliest start of the client's next changes window

    def _stamp(self, at: datetime | None) -> datetime:
        """When a change happened: by default the second before now, but never before the start of the window
        the client will ask for next (a second before its last crawl began, or the end of its last window), so
        the next run reports it whatever second it starts in."""
        if at is not None:
            return at
        now = _now_second() - timedelta(seconds=1)
        return max(now, self._next_start) if self._next_start else now

    def deregister(self, location_id: str, on: date, *, at: datetime | None = None) -> None:
        record = self.records[location_id]
        record["registrationStatus"] = "Deregistered"
        record["deregistrationDate"] = on.isoformat()
        self.changes.append((self._stamp(at), location_id))

    def alter(self, location_id: str, *, at: datetime | None = None, **fields: Any) -> None:
        self.records[location_id].update(fields)
        self.changes.append((self._stamp(at), location_id))

    def add(self, record: dict[str, Any], *, at: datetime | None = None) -> None:
        self.records[record["locationId"]] = copy.deepcopy(record)
        self.order.append(record["locationId"])
        self.changes.append((self._stamp(at), record["locationId"]))

    def list_ids(self, query: dict[str, list[str]]) -> list[str]:
        if query.get("page", ["1"])[0] == "1" and self._next_start is None:
            self._next_start = _now_second() - timedelta(seconds=1)  # a first crawl: the window after it
        filters = {k: v[0] for k, v in query.items() if k not in ("page", "perPage", "partnerCode")}
        return [i for i in self.order if _cqc_matches(self.records[i], filters)]

    def changed_ids(self, start: datetime, end: datetime) -> list[str]:
        self._next_start = end
        return list(dict.fromkeys(i for at, i in self.changes if start <= at < end))


def _now_second() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _cqc_matches(record: dict[str, Any], filters: dict[str, str]) -> bool:
    for key, value in filters.items():
        if key == "gacServiceTypeDescription":
            if not any(value.lower() == str(t.get("description", "")).lower()
                       for t in record.get("gacServiceTypes") or []):
                return False
        elif str(record.get(key, "")).lower() != value.lower():
            return False
    return True


@dataclass
class OrukFeed:
    """One ORUK feed: its list items, in order, and detail pages by id."""

    paging: str                                  # "v1" or "hsds3"
    items: list[dict[str, Any]]
    details: dict[str, dict[str, Any]]


@dataclass
class ServedFile:
    content: bytes
    etag: str
    last_modified: str


class Replay:
    def __init__(self, feeds_dir: Path, *, cqc_key: str = "replay-cqc-key", nhs_key: str = "replay-nhs-key") -> None:
        self.feeds_dir = feeds_dir
        self.cqc = CqcReplay(_load_json(feeds_dir / "cqc_api" / "locations_detail_2021.json"), cqc_key)
        self.nhs_key = nhs_key
        self.nhs_organisations = _load_json(feeds_dir / "nhs_service_search_v3" / "organisations_v3.json")["value"]
        self.oruk = {"bristol": bristol_feed(feeds_dir / "oruk"), "hsds3": hsds3_feed(feeds_dir / "oruk")}
        self.files: dict[str, ServedFile] = {}
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified at each request (and by `wake`)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="replay", daemon=True)

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> Replay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def cqc_url(self) -> str:
        return self.base_url + "/cqc"

    @property
    def nhs_url(self) -> str:
        return self.base_url + "/nhs"

    def oruk_url(self, feed: str) -> str:
        return f"{self.base_url}/oruk/{feed}"

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    # --- scripting -------------------------------------------------------------------------------

    def fail(self, path: str, status: int, *, headers: dict[str, str] | None = None, after: int = 0,
             times: int | None = 1) -> Fault:
        return self._add(Fault(path, "status", status=status, headers=headers or {}, after=after, times=times))

    def drop(self, path: str, *, after: int = 0, times: int | None = 1) -> Fault:
        return self._add(Fault(path, "drop", after=after, times=times))

    def slow(self, path: str, seconds: float, *, after: int = 0, times: int | None = 1) -> Fault:
        return self._add(Fault(path, "slow", seconds=seconds, after=after, times=times))

    def alter(self, path: str, change: Callable[[dict[str, list[str]], Any], Any], *,
              times: int | None = None) -> Fault:
        """Answer requests for exactly `path` with what `change(query, answer)` makes of the replay's own answer
        (return it unchanged for the pages left as they are; copy what is changed: the answer holds the feed's
        own items)."""
        return self._add(Fault(path, "alter", times=times, change=change))

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def serve_file(self, name: str, content: bytes, *, last_modified: datetime | None = None) -> None:
        when = last_modified or datetime.now(timezone.utc).replace(microsecond=0)
        self.files[name] = ServedFile(content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"',
                                      email.utils.format_datetime(when, usegmt=True))

    def seen(self, path_prefix: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if s.path.startswith(path_prefix)]

    def wait_for(self, done: Callable[[list[Seen]], bool], timeout_s: float) -> bool:
        """Wait until `done(the requests so far)` holds, asked again at each request and each `wake`;
        whether it came true within `timeout_s` (a bound on a wait that would never end)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: done(self.requests), timeout_s)

    def wake(self) -> None:
        """Ask the `wait_for` condition again (something besides a request changed, say a process exited)."""
        with self._arrived:
            self._arrived.notify_all()

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            return next((f for f in self.faults if f.applies(path)), None)


# --- building the feeds ------------------------------------------------------------------------------

def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def bristol_feed(oruk_dir: Path) -> OrukFeed:
    items = _load_json(oruk_dir / "bristol_council_services_2024-12.json")
    with (oruk_dir / "bristol_services_at_locations.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["sal_id"]: r for r in rows}
    by_name: dict[str, dict[str, str]] = {}
    for r in rows:
        by_name.setdefault(r["sal_name"].strip().casefold(), r)
    details = {}
    for item in items:
        row = by_id.get(item["id"]) or by_name.get(item["name"].strip().casefold())
        details[item["id"]] = bristol_detail(item, row)
    return OrukFeed("v1", items, details)


def bristol_detail(item: dict[str, Any], row: dict[str, str] | None) -> dict[str, Any]:
    """A council detail page in the ORUK v1 shape (Placecube v2), built from the list item and its row of the
    service-at-location extract: the location with its point, the terms as `service_taxonomys`, ages as
    `eligibilitys`, and the schedule as `regular_schedules`."""
    detail = {**copy.deepcopy(item), "service_at_locations": [], "service_taxonomys": [], "eligibilitys": [],
              "contacts": [], "languages": [], "service_areas": [], "regular_schedules": []}
    if row is None:
        return detail
    terms = [t.strip() for t in row["taxonomy_of_services"].split(";") if t.strip()]
    detail["service_taxonomys"] = [
        {"id": f"{item['id']}-t{n}", "taxonomy": {"id": _term_id(t), "name": t, "vocabulary": "openActive"}}
        for n, t in enumerate(dict.fromkeys(terms))]
    for n, (low, high) in enumerate(_ages(row["ages"])):
        detail["eligibilitys"].append({"id": f"{item['id']}-e{n}", "eligibility": "age",
                                       "minimum_age": low, "maximum_age": high})
    if row["latitude"] != "n/a" and row["longitude"] != "n/a":
        schedules = [] if row["schedule_by_day"] == "n/a" else [
            {"id": f"{row['sal_id']}-s0", "byday": row["schedule_by_day"], "freq": row["schedule_freq"],
             "interval": row["schedule_interval"], "opens_at": row["time_opens_at"]}]
        detail["service_at_locations"] = [{
            "id": row["sal_id"],
            "location": {"id": row["location_id"], "name": item["name"], "latitude": float(row["latitude"]),
                         "longitude": float(row["longitude"]), "physical_addresses": []},
            "regular_schedules": schedules}]
    return detail


def _term_id(term: str) -> str:
    return hashlib.sha1(term.encode()).hexdigest()[:12]


def _ages(text: str) -> list[tuple[int, int]]:
    pairs = re.findall(r"\[\s*([\d.]+)\s*,\s*([\d.]+)\s*\]", text)
    return [(int(float(a)), int(float(b))) for a, b in pairs]


def hsds3_feed(oruk_dir: Path) -> OrukFeed:
    listed = _load_json(oruk_dir / "v3_test_service_list.json")["contents"]
    full = _load_json(oruk_dir / "v3_service_full.json")
    return OrukFeed("hsds3", listed, {full["id"]: full})


# --- serving -----------------------------------------------------------------------------------------

def _handler(replay: Replay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def log_message(self, format: str, *args: Any) -> None:  # the test output stays readable
            pass

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            had_key = bool(self.headers.get(CQC_KEY_HEADER) or self.headers.get(NHS_KEY_HEADER))
            conditional = {h: v for h in ("If-None-Match", "If-Modified-Since") if (v := self.headers.get(h))}
            seen = Seen(method, parts.path, query, had_key, time.monotonic(), None, conditional)
            with replay._arrived:
                replay.requests.append(seen)
                replay._arrived.notify_all()
            if int(self.headers.get("Content-Length") or 0):
                self.rfile.read(int(self.headers["Content-Length"]))
            fault = replay._fault_for(parts.path)
            if fault is not None and fault.action == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.action == "slow":
                time.sleep(fault.seconds)
            if fault is not None and fault.action == "status":
                status, headers, body = fault.status, fault.headers, {"message": f"replayed fault {fault.status}"}
            else:
                status, headers, body = route(replay, parts.path, query, self.headers)
            if fault is not None and fault.change is not None:
                body = fault.change(query, body)
            seen.status = status
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if status == 304:
                data = b""
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Type" not in headers and status != 304:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                self.close_connection = True

    return Handler


Answer = tuple[int, dict[str, str], Any]


def route(replay: Replay, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
    if path.startswith("/cqc/"):
        if headers.get(CQC_KEY_HEADER) != replay.cqc.key:
            return 401, {}, {"statusCode": 401, "message": "Access denied due to invalid subscription key. Make "
                                                           "sure to provide a valid key for an active subscription."}
        return _cqc(replay.cqc, path.removeprefix("/cqc"), query)
    if path.startswith("/oruk/"):
        _, _, feed, rest = (path + "/").split("/", 3)
        if feed not in replay.oruk:
            return 404, {}, {"message": f"no feed {feed}"}
        return _oruk(replay.oruk[feed], "/" + rest.rstrip("/"), query)
    if path.startswith("/nhs"):
        if headers.get(NHS_KEY_HEADER) != replay.nhs_key:
            return 401, {}, {"statusCode": 401, "message": "Access denied due to invalid API key."}
        return _nhs(replay, query)
    if path.startswith("/files/"):
        served = replay.files.get(path.removeprefix("/files/"))
        if served is None:
            return 404, {}, {"message": "not found"}
        validators = {"ETag": served.etag, "Last-Modified": served.last_modified,
                      "Content-Type": "application/octet-stream"}
        if headers.get("If-None-Match") == served.etag or (
                not headers.get("If-None-Match") and headers.get("If-Modified-Since") == served.last_modified):
            return 304, validators, b""
        return 200, validators, served.content
    return 404, {}, {"message": "no such source"}


def _page_args(query: dict[str, list[str]], size_key: str, default: int) -> tuple[int, int]:
    page = int(query.get("page", ["1"])[0])
    size = int(query.get(size_key, [str(default)])[0])
    return page, size


def _cqc_page(path: str, query: dict[str, list[str]], ids: list[str], key: str) -> dict[str, Any]:
    page, per_page = _page_args(query, "perPage", 1000)
    total_pages = max(1, -(-len(ids) // per_page))

    def uri(n: int) -> str:
        return f"{path}?{urlencode({**{k: v[0] for k, v in query.items()}, 'page': n, 'perPage': per_page})}"

    body: dict[str, Any] = {"total": len(ids), "page": page, "perPage": per_page, "totalPages": total_pages,
                            "firstPageUri": uri(1), "lastPageUri": uri(total_pages),
                            "previousPageUri": uri(page - 1) if page > 1 else None,
                            "nextPageUri": uri(page + 1) if page < total_pages else None}
    body[key] = ids[(page - 1) * per_page: page * per_page]
    return body


def _cqc(cqc: CqcReplay, path: str, query: dict[str, list[str]]) -> Answer:
    date_header = {"Date": email.utils.format_datetime(datetime.now(timezone.utc), usegmt=True)}
    if path == "/locations":
        body = _cqc_page("/locations", query, cqc.list_ids(query), "locations")
        body["locations"] = [{"locationId": i, "locationName": cqc.records[i]["name"],
                              "postalCode": cqc.records[i].get("postalCode")} for i in body["locations"]]
        return 200, date_header, body
    if path.startswith("/locations/"):
        record = cqc.records.get(path.removeprefix("/locations/"))
        if record is None:
            return 404, date_header, {"statusCode": 404, "message": "Location not found"}
        return 200, date_header, record
    if path == "/changes/location":
        try:
            start, end = (datetime.strptime(query[k][0], _CQC_TIME).replace(tzinfo=timezone.utc)
                          for k in ("startTimestamp", "endTimestamp"))
        except (KeyError, ValueError):
            return 400, date_header, {"statusCode": 400, "message": "startTimestamp and endTimestamp are required"}
        return 200, date_header, _cqc_page("/changes/location", query, cqc.changed_ids(start, end), "changes")
    return 404, date_header, {"statusCode": 404, "message": "Resource not found"}


def _oruk(feed: OrukFeed, path: str, query: dict[str, list[str]]) -> Answer:
    if path == "/services":
        page, size = _page_args(query, "per_page", 50)
        total_pages = max(1, -(-len(feed.items) // size))
        chunk = feed.items[(page - 1) * size: page * size]
        if feed.paging == "v1":
            return 200, {}, {"totalElements": len(feed.items), "totalPages": total_pages, "number": page,
                             "size": size, "first": page == 1, "last": page >= total_pages, "content": chunk}
        return 200, {}, {"total_items": len(feed.items), "total_pages": total_pages, "page_number": page,
                         "size": size, "first_page": page == 1, "last_page": page >= total_pages,
                         "empty": not chunk, "contents": chunk}
    if path.startswith("/services/"):
        sid = path.removeprefix("/services/")
        detail = feed.details.get(sid) or next((i for i in feed.items if i.get("id") == sid), None)
        if detail is None:
            return 404, {}, {"message": f"service {sid} not found"}
        return 200, {}, detail
    return 404, {}, {"message": "not found"}


def _nhs(replay: Replay, query: dict[str, list[str]]) -> Answer:
    if query.get("api-version", [""])[0] != "3":
        return 404, {}, {"statusCode": 404, "message": "Resource not found"}
    organisations = replay.nhs_organisations
    flt = query.get("$filter", [""])[0]
    if flt:
        wanted = _SERVICE_CODE_FILTER.fullmatch(flt.strip())
        if wanted is None:
            return 400, {}, {"message": f"the replay understands only Services/any(...ServiceCode eq ...): {flt}"}
        organisations = [o for o in organisations
                         if any(s.get("ServiceCode") == wanted.group(2) for s in o.get("Services") or [])]
    top = int(query.get("$top", ["50"])[0])
    skip = int(query.get("$skip", ["0"])[0])
    body: dict[str, Any] = {"@odata.context": "replay", "value": organisations[skip: skip + top]}
    if query.get("$count", ["false"])[0] == "true":
        body["@odata.count"] = len(organisations)
    return 200, {}, body


def running(feeds_dir: Path) -> Iterator[Replay]:
    replay = Replay(feeds_dir).start()
    try:
        yield replay
    finally:
        replay.stop()



class MemoryState:
    """A `SyncState` held in memory, for connector tests: each save is a JSON copy (what a store would
    commit), and `saves` counts them, so a test can see the state move page by page."""

    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.saves = 0

    def load(self, source: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.states.get(source, {})))

    def save(self, source: str, state: Any, *, listing: str | None = None, afresh: bool = False) -> None:
        self.states[source] = json.loads(json.dumps(dict(state)))
        self.saves += 1
