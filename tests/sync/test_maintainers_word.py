"""The maintainers' word and the sources' word, over time: a directory filled by `rehabmap sync cqc` (a real
process, against the replay of the 103 real recorded CQC locations), kept by a maintainer through the real
maintainers' API (the app `rehabmap serve` runs, `create_app`, under a real uvicorn server on 127.0.0.1 in the
test's own process: `serving`), then synced again after CQC changed its record. The newer word wins, and a
conflict between the two is never silent. The syncs, rebuilds, review decisions and tokens are real `rehabmap`
processes, which a running server sees as it sees any other process's writes: the store on each request, the
index's file again once it changed (one test rejects a record while the server runs, and asks it)."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest

from rehabmap.oruk import service_uuid
from tests.api import hsds
from tests.built_home import BuiltHome
from tests.cqc_records import DOVETAIL, DOVETAIL_ID, FIELD_HOUSE_ID
from tests.keepers.conftest import csrf_of
from tests.maintain.conftest import with_version
from tests.sync.replay import running
from tests.sync.store_fixtures import (MAINTAINER, first_line, index_record, maintainer_token, make_home, rehabmap,
                                       table_rows)
from tests.web.site import serving_here

TODAY = datetime.now(timezone.utc).date().isoformat()  # the day the audit log stamps the restore


MISTAKE = {"reason": "retired by mistake"}


def valid_then_rebuilt(feed: dict, home, data_dir) -> None:
    """Every item of the ORUK feed valid against HSDS 3.0 and the UK profile, then the index rebuilt from the
    sample, as a command would: the maintainers' edits laid over the file's records again."""
    for service in feed.values():
        for validator in (hsds.compiled("service"), hsds.entity("service", profile=True)):
            hsds.assert_valid(validator, service)
    rebuilt = rehabmap(home, data_dir, None, "index", "sample/", "--no-progress")
    assert rebuilt.returncode == 0, rebuilt.stderr


def retire(url: str, auth: dict[str, str]) -> httpx.Response:
    """Dovetail House retired through the maintainers' API, the maintainer saying why."""
    return httpx.post(f"{url}/maintain/services/{DOVETAIL_ID}/retire", json=MISTAKE, headers=auth, timeout=30)


@dataclass(frozen=True)
class Kept:
    """A home that real `rehabmap` commands made once per module, and a maintainer's token for it (`kept`). Never
    changed once made: each test writes to a copy of its own (`copy`), where the same token signs in."""

    built: BuiltHome
    auth: dict[str, str]

    def copy(self, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, dict[str, str]]:
        """This test's own copy of the home (`BuiltHome.copy`), and the maintainer's token."""
        return self.built.copy(tmp_path / "home", request).home, dict(self.auth)


def kept(home: Path, data_dir: Path) -> Kept:
    """The home with a maintainer's token made for it by `rehabmap tokens create`."""
    return Kept(BuiltHome(home), {"Authorization": f"Bearer {maintainer_token(home, data_dir)}"})


@pytest.fixture(scope="module")
def synced_kept(tmp_path_factory: pytest.TempPathFactory, cqc_synced_home: Path, data_dir: Path) -> Kept:
    """A home after `rehabmap sync cqc` of the recorded API (a copy of the session's, `cqc_synced_home`) with a
    maintainer's token: the start of most tests here, made once, not a token process for each."""
    home = tmp_path_factory.mktemp("synced-kept") / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    return kept(home, data_dir)


@pytest.fixture(scope="module")
def sample_kept(tmp_path_factory: pytest.TempPathFactory, synced_kept: Kept, data_dir: Path,
                request: pytest.FixtureRequest) -> Kept:
    """The CQC-synced home with the sample directory's file imported over it by `rehabmap index sample/`, as the
    gender tests start, once."""
    home = synced_kept.built.copy(tmp_path_factory.mktemp("sample-kept") / "home", request).home
    indexed = rehabmap(home, data_dir, None, "index", "sample/", "--no-progress")
    assert indexed.returncode == 0, indexed.stderr
    return Kept(BuiltHome(home), synced_kept.auth)


def _audit(home: Path, service_id: str) -> list[tuple[str, str, str, object, object]]:
    rows = table_rows(home / "directory.sqlite", "SELECT actor, action, field, old, new FROM audit "
                      "WHERE resource_id = ? ORDER BY id", service_id)
    return [(actor, action, field, json.loads(old), json.loads(new)) for actor, action, field, old, new in rows]


def details(service: dict) -> dict[str, str]:
    """An ORUK service's `rehabmap` details, by term code: their values."""
    return {a["taxonomy_term"]["code"]: a.get("value") for a in service["attributes"]
            if a["taxonomy_term"]["taxonomy"] == "rehabmap"}


def exported(url: str) -> tuple[list[dict[str, str]], dict[str, dict]]:
    """The CSV export's rows and the GeoJSON export's properties by id, as a consumer reads them."""
    sheet = list(csv.DictReader(io.StringIO(httpx.get(f"{url}/services.csv", timeout=60).content.decode("utf-8-sig"))))
    features = httpx.get(f"{url}/services.geojson", timeout=60).json()["features"]
    return sheet, {f["id"]: f["properties"] for f in features}


def test_a_deregistration_after_a_maintainers_restore_retires_the_service(tmp_path, synced_kept, request, data_dir,
                                                                         replay):
    """A maintainer retired Dovetail House by mistake and restored it; CQC later deregistered it. Before, the
    overlay's `status: active` won over the sync for good: the sync reported it retired, yet `/services`, `/match`
    and every rebuild (`rehabmap index`) went on showing a home CQC no longer registers. Now the deregistration,
    news the maintainer did not have, retires it; the sync report and the audit log say a maintainer had restored
    it (who, when); and the maintainer may restore it again, their newer word."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        assert retire(url, auth).status_code == 200
        restored = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json={"status": "active"}, headers=auth,
                               timeout=30)
        assert restored.status_code == 200 and restored.json()["service"]["status"] == "active"
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert synced.returncode == 0, synced.stderr
    assert first_line(synced)["retired"] == 1
    retired = next(line for line in synced.stdout.splitlines() if line.startswith(f"retired {DOVETAIL_ID}"))
    assert "deregistered by CQC on 2026-11-30 (registrationStatus 'Deregistered') (on 2026-11-30)" in retired
    assert f"; a maintainer ({MAINTAINER} (token " in retired and retired.endswith(f") had restored it on {TODAY}")
    assert index_record(home, DOVETAIL_ID)["status"] == "inactive"
    restore = next(row for row in _audit(home, DOVETAIL_ID) if row[1:] == ("update", "status", "inactive", "active"))
    superseded = [row for row in _audit(home, DOVETAIL_ID) if row[2] == "maintainer_restore_superseded"]
    assert restore[0].startswith(MAINTAINER) and len(superseded) == 1
    assert superseded[0][0].startswith("rehabmap sync cqc") and superseded[0][3] == {"by": restore[0], "on": TODAY}
    with serving_here(home, data_dir, warm=False) as url:
        shown = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()
        assert shown["status"] == "inactive" and shown["retired_reason"] == ("deregistered by the Care Quality "
                                                                            "Commission (CQC) on 30 November 2026")
        listed = httpx.get(f"{url}/services", params={"q": "Dovetail"}, timeout=30).json()
        assert DOVETAIL_ID not in [s["id"] for s in listed["results"]]

    rebuilt = rehabmap(home, data_dir, None, "index", "sample/", "--no-progress")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert index_record(home, DOVETAIL_ID)["status"] == "inactive", "a rebuild does not bring it back"

    with serving_here(home, data_dir, warm=False) as url:
        again = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json={"status": "active"}, headers=auth,
                            timeout=30)
        assert again.status_code == 200 and again.json()["service"]["status"] == "active"
    quiet = rehabmap(home, data_dir, replay, "sync", "cqc")
    assert quiet.returncode == 0 and first_line(quiet)["retired"] == 0
    assert index_record(home, DOVETAIL_ID)["status"] == "active", "the maintainer's newer word stands"


def test_the_answer_to_a_retirement_says_when(tmp_path, synced_kept, request, data_dir):
    """Before, `POST /maintain/services/{id}/retire` answered the record without `retired_on` and `retired_reason`,
    which `GET /services/{id}` gives for the same record: the maintainer's client could not tell when."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        retired = retire(url, auth).json()
        public = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()
        restored = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json={"status": "active"}, headers=auth,
                               timeout=30).json()
    assert retired["changed"] == ["status"] and retired["service"]["retired_on"] == TODAY
    assert public["retired_on"] == TODAY and public["retired_reason"] == "retired by mistake"
    assert {k: retired["service"][k] for k in ("status", "retired_on", "retired_reason")} == {
        k: public[k] for k in ("status", "retired_on", "retired_reason")}
    assert restored["service"]["retired_on"] is None and restored["service"]["status"] == "active"


def test_a_rejected_records_changes_are_not_counted_as_changed(tmp_path, synced_kept, request, data_dir, replay):
    """A maintainer rejected Field House (an acute ward, say); CQC then changed its phone number. Before, the sync
    reported "changed 1" for a record nobody is shown; now a rejected record's changes are not counted (it stays
    out of every search, and no change is written to the live index)."""
    home, _ = synced_kept.copy(tmp_path, request)
    rejected = rehabmap(home, data_dir, None, "review", "reject", FIELD_HOUSE_ID, "--reason", "acute ward")
    assert rejected.returncode == 0, rejected.stderr
    replay.cqc.alter(FIELD_HOUSE_ID.split(":", 1)[1], mainPhoneNumber="01773838151")

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert synced.returncode == 0, synced.stderr
    assert first_line(synced)["changed"] == 0 and first_line(synced)["fetched"] == 1
    assert index_record(home, FIELD_HOUSE_ID) is None
    dry = rehabmap(home, data_dir, replay, "sync", "cqc", "--dry-run")
    assert f"changed {FIELD_HOUSE_ID}" not in dry.stdout


def test_a_source_change_to_an_edited_field_keeps_the_edit_and_says_so(tmp_path, synced_kept, request, data_dir,
                                                                        replay):
    """A maintainer set Dovetail House's phone to its referral line; a month later CQC changed the home's main
    number. Before, the edit hid the source's new number for good, in silence: the sync said "changed phone" and
    nothing else. The edit may be a correction the source never had, so it stays shown; but the source's news is
    said: in the sync report, in the audit log (a `questioned` row, which is no HSDS change) and on the service's
    keepers' page, until a maintainer edits the field again."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        edited = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json={"phone": "01623 420691"}, headers=auth,
                             timeout=30)
        assert edited.status_code == 200 and edited.json()["changed"] == ["phone"]
    replay.cqc.alter(DOVETAIL, mainPhoneNumber="01623420000")

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert synced.returncode == 0, synced.stderr
    assert first_line(synced)["changed"] == 1
    assert (f'edited here, changed by the source {DOVETAIL_ID} Dovetail House: phone: the source now gives '
            '"01623420000"; a maintainer\'s edit keeps "01623 420691"') in synced.stdout.splitlines()
    assert index_record(home, DOVETAIL_ID)["phone"] == "01623 420691"
    questioned = [row for row in _audit(home, DOVETAIL_ID) if row[1] == "questioned"]
    assert len(questioned) == 1 and questioned[0][0].startswith("rehabmap sync cqc")
    assert questioned[0][2:] == ("phone", "01623 420691", "01623420000")
    hsds = rehabmap(home, data_dir, None, "audit", "--service", DOVETAIL_ID, "--hsds").stdout.splitlines()
    assert "null" not in hsds  # before, the questioned row, which is no HSDS change, was a line 'null'
    assert [(r["last_action_type"], r["field_name"]) for r in map(json.loads, hsds)] == [("update", "phone")]


def _owed(home) -> list[str]:
    """The writes to the live index the directory's store notes as owed (`Overlay.owe_write`)."""
    return [key for (key,) in table_rows(home / "directory.sqlite", "SELECT key FROM meta WHERE key LIKE ?",
                                         "index_write_owed:%")]


def _edited_while_the_index_is_busy(home, data_dir, auth, monkeypatch, fields: dict) -> None:
    """A maintainer's edit of Dovetail House that the index was too busy to take (another connection held the file
    past the write's wait): kept, and its write owed."""
    from search import embedded
    from search.embedded import index_file

    monkeypatch.setattr(embedded, "_WRITE_TIMEOUT_S", 0.1)
    with serving_here(home, data_dir, warm=False) as url:
        holder = sqlite3.connect(index_file(home))
        holder.execute("BEGIN IMMEDIATE")
        try:
            edited = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json=fields, headers=auth, timeout=30)
        finally:
            holder.rollback()
            holder.close()
    assert (edited.status_code, edited.json()["error"]["code"]) == (503, "index_unavailable"), edited.text
    assert _owed(home) == [f"index_write_owed:{DOVETAIL_ID}"]


def test_an_edit_owed_its_write_is_owed_no_more_once_a_sync_writes_its_record(tmp_path, synced_kept, request, data_dir,
                                                                              replay, monkeypatch):
    """A maintainer's edit of Dovetail House's phone is kept and its write owed (`Overlay.owe_write`); CQC then
    changed the home's number and `rehabmap sync cqc` wrote its record whole, the edit laid on it. Only an edit's own
    write paid what was owed, so the row stayed and the next edit that changed nothing wrote the record again. The
    sync's write pays it."""
    home, auth = synced_kept.copy(tmp_path, request)
    _edited_while_the_index_is_busy(home, data_dir, auth, monkeypatch, {"phone": "01623 420691"})
    replay.cqc.alter(DOVETAIL, mainPhoneNumber="01623420000")

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert synced.returncode == 0, synced.stderr
    assert index_record(home, DOVETAIL_ID)["phone"] == "01623 420691"
    assert _owed(home) == []  # before, still owed


def test_an_edit_owed_its_write_that_no_longer_fits_the_synced_record_stays_owed(tmp_path, synced_kept, request,
                                                                                 data_dir, replay, monkeypatch):
    """A maintainer's edit of Dovetail House's youngest age (40, within CQC's adults under 65) is kept and its write
    owed; CQC then registers the home for children only (to 18), so the edit no longer fits the record
    `rehabmap sync cqc` writes, which it writes without it. The edit is not in the index: its write stays owed, so
    the same edit sent again writes it (and is refused there, saying why). Untested before: a sync that paid every
    record it wrote passed."""
    home, auth = synced_kept.copy(tmp_path, request)
    _edited_while_the_index_is_busy(home, data_dir, auth, monkeypatch, {"min_age": 40})
    replay.cqc.alter(DOVETAIL, specialisms=[{"name": "Caring for children (0 - 18yrs)"},
                                            {"name": "Mental health conditions"}])

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert synced.returncode == 0, synced.stderr
    record = index_record(home, DOVETAIL_ID) or {}
    assert (record.get("min_age"), record.get("max_age")) == (None, 18), record
    assert f"directory edits to {DOVETAIL_ID} no longer fit the synced record and were not laid" in synced.stderr
    assert _owed(home) == [f"index_write_owed:{DOVETAIL_ID}"]


def test_a_source_listing_again_what_a_maintainer_retired_keeps_it_retired_and_says_so(tmp_path, synced_kept, request,
                                                                                      data_dir, replay):
    """A maintainer retired Dovetail House (it stopped taking people with mental health needs, say); CQC then
    deregistered it, and later registered it again. Before, the sync reported it "listed again by the source" while
    the maintainer's retirement silently kept it out. The retirement stays (the source's registration says nothing
    of what the maintainer knew), and the news is said as for any edited field: a `questioned` status."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        assert retire(url, auth).status_code == 200
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))
    assert first_line(rehabmap(home, data_dir, replay, "sync", "cqc"))["retired"] == 1
    replay.cqc.alter(DOVETAIL, registrationStatus="Registered", deregistrationDate=None)

    relisted = rehabmap(home, data_dir, replay, "sync", "cqc")

    assert relisted.returncode == 0, relisted.stderr
    assert (f'edited here, changed by the source {DOVETAIL_ID} Dovetail House: status: the source now gives "active"; '
            'a maintainer\'s edit keeps "inactive"') in relisted.stdout.splitlines()
    assert index_record(home, DOVETAIL_ID)["status"] == "inactive"
    assert [row[2:] for row in _audit(home, DOVETAIL_ID) if row[1] == "questioned"] == [
        ("status", "inactive", "active")]


def test_changing_a_record_held_from_the_index_says_why_it_is_not_there(tmp_path, synced_kept, request, data_dir):
    """Field House is synced but held for review (a mental health hospital with no stated level). Before, a
    maintainer's PATCH, retire or verify of it answered "No service with id 'cqc:1-112845365'.", as for a mistyped
    id. Now the same 404 says it awaits review (held from the Care Quality Commission, in words: it said "held from
    cqc", the source's code), or was rejected (when, by whom, why), and where a maintainer decides it: the keepers'
    review queue, as the API has no route for it (it named a command, which an API client cannot run)."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        held = httpx.patch(f"{url}/maintain/services/{FIELD_HOUSE_ID}", json={"phone": "01773 000000"}, headers=auth,
                           timeout=30)
        assert held.status_code == 404 and held.json()["error"]["code"] == "service_not_found"
        assert held.json()["error"]["message"] == (
            f"'{FIELD_HOUSE_ID}' is held from Care Quality Commission (CQC) but not shown: it awaits review, as its "
            "source does not name its type; rehabmap infers Level 1 inpatient rehabilitation unit from what it says. "
            "The API has no route to decide it: a maintainer accepts or rejects it on its page in the keepers' "
            f"review queue, /keepers/review/{FIELD_HOUSE_ID}.")  # before, the literal '/keepers/review/{id}'
        assert rehabmap(home, data_dir, None, "review", "reject", FIELD_HOUSE_ID, "--reason",
                        "acute ward").returncode == 0
        rejected = httpx.post(f"{url}/maintain/services/{FIELD_HOUSE_ID}/verify", headers=auth, timeout=30).json()
        day = datetime.now(timezone.utc).date()  # in words, as a person writes a day: it said "on 2026-12-02"
        assert (f"but not shown: it was rejected in review on {day.day} {day:%B %Y} by command line ("
                in rejected["error"]["message"])
        assert rejected["error"]["message"].endswith("): acute ward. The API has no route to decide it: a "
                                                     "maintainer accepts or rejects it on its page in the keepers' "
                                                     f"review queue, /keepers/review/{FIELD_HOUSE_ID}.")
        unknown = httpx.post(f"{url}/maintain/services/cqc:1-000/retire", json=MISTAKE, headers=auth, timeout=30).json()
        assert unknown["error"]["message"] == "No service with id 'cqc:1-000'."


def test_linking_a_record_held_from_the_index_to_an_organisation_says_why_it_is_not_there(tmp_path, cqc_synced_home,
                                                                                          data_dir):
    """Field House awaits review. Before, linking it to an organisation was refused as "No service with id
    'cqc:1-112845365'", as for a mistyped id, by the command, the API and the admins' page alike; now each says it
    awaits review, in the words of the API's 404 for a change of it, and nothing is linked."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    made = rehabmap(home, data_dir, None, "tokens", "create", "--role", "admin", "--name", "Ann (directory lead)")
    auth = {"Authorization": f"Bearer {made.stdout.splitlines()[0].strip()}"}
    assert rehabmap(home, data_dir, None, "orgs", "add", "Field Trust (fictional)").returncode == 0
    held = (f"'{FIELD_HOUSE_ID}' is held from Care Quality Commission (CQC) but not shown: it awaits review, as its "
            "source does not name its type; rehabmap infers Level 1 inpatient rehabilitation unit from what it says")
    linked = rehabmap(home, data_dir, None, "orgs", "link", "Field Trust (fictional)", FIELD_HOUSE_ID)
    assert linked.returncode == 2
    assert linked.stderr.splitlines() == [f"error: {held}. Decide it first: 'rehabmap review show {FIELD_HOUSE_ID}'."]
    with serving_here(home, data_dir, warm=False) as url:
        reply = httpx.post(f"{url}/maintain/organisations/1/services", json={"service_ids": [FIELD_HOUSE_ID]},
                           headers=auth, timeout=30)
        assert reply.status_code == 404 and reply.json()["error"] == {
            "code": "service_not_found", "field": "service_ids",
            "message": f"{held}. The API has no route to decide it: a maintainer accepts or rejects it on its page "
                       f"in the keepers' review queue, /keepers/review/{FIELD_HOUSE_ID}."}
        with httpx.Client(base_url=url, timeout=30) as admin:
            form = admin.get("/keepers/sign-in")
            admin.post("/keepers/sign-in", data={"csrf": csrf_of(form.text), "token": auth["Authorization"][7:]})
            page = admin.post("/keepers/organisations/link", data={
                "csrf": csrf_of(admin.get("/keepers/organisations").text), "organisation": "Field Trust (fictional)",
                "service": FIELD_HOUSE_ID})
            service = admin.get(f"/keepers/services/{FIELD_HOUSE_ID}")  # its page: the fact and where it is decided
        assert page.status_code == 400 and f"{held}. Decide it first in the review queue." in html.unescape(page.text)
        assert service.status_code == 404 and f"<p>{held}. Decide it first in the review queue.</p>" in html.unescape(
            service.text)  # before, the fact alone: one home for the refusal, each face's words of the remedy
        assert f'<a href="/keepers/review/{FIELD_HOUSE_ID}">Decide it in the review queue</a>' in service.text
    assert table_rows(home / "directory.sqlite", "SELECT * FROM ownership") == []


def test_a_restore_the_source_came_to_agree_with_is_not_named_by_its_later_retirement(tmp_path, synced_kept, request,
                                                                                     data_dir, replay):
    """CQC deregistered Dovetail House; a maintainer restored it (knowing better); CQC then registered it again,
    and later deregistered it once more. The last retirement takes back no maintainer's word (the source had come
    to agree with the restore, and then changed its mind): its report line names no maintainer, and the overlay
    holds no status that a rebuild would lay."""
    home, auth = synced_kept.copy(tmp_path, request)
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 1))
    assert first_line(rehabmap(home, data_dir, replay, "sync", "cqc"))["retired"] == 1
    with serving_here(home, data_dir, warm=False) as url:
        assert httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", json={"status": "active"}, headers=auth,
                           timeout=30).status_code == 200
    replay.cqc.alter(DOVETAIL, registrationStatus="Registered", deregistrationDate=None)
    assert rehabmap(home, data_dir, replay, "sync", "cqc").returncode == 0
    assert table_rows(home / "directory.sqlite", "SELECT fields FROM overlay WHERE service_id = ?", DOVETAIL_ID) == []
    replay.cqc.deregister(DOVETAIL, date(2026, 11, 30))

    synced = rehabmap(home, data_dir, replay, "sync", "cqc")

    retired = next(line for line in synced.stdout.splitlines() if line.startswith(f"retired {DOVETAIL_ID}"))
    assert retired.endswith("(on 2026-11-30)") and "maintainer" not in retired
    assert index_record(home, DOVETAIL_ID)["status"] == "inactive"


def test_a_need_a_maintainer_adds_to_a_cqc_record_is_never_said_as_registered(tmp_path, synced_kept, request,
                                                                               data_dir):
    """Dovetail House states learning disabilities and substance misuse because CQC registered it for them. A
    maintainer adds autism: the lists are then the maintainers' word (`field_sources` says "directory"), so neither
    the record's `needs_registered` nor a match's explanation may say autism "as registered with CQC", a claim CQC
    never made. The PATCH's answer and the public record agree. A match meeting both says each on its own basis, in
    the same words in the API's explanation, the clinicians' card and plain-text summary, and the service page:
    learning disability as registered with CQC, autism as added by the rehabmap team (the maintainers)."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        versioned = with_version(httpx, DOVETAIL_ID, auth, url)
        edited = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", headers=versioned, timeout=30, json={
            "needs_met": ["autism", "learning_disability", "substance_misuse"]})
        assert edited.status_code == 200, edited.text
        record = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()
        answer = httpx.post(f"{url}/match", timeout=60, json={
            "home": {"postcode": "NG18 2AT"}, "types": ["supported_accommodation"], "max_distance_km": 10,
            "needs": ["autism", "learning_disability"]}).json()
        registered = httpx.post(f"{url}/match", timeout=60, json={
            "home": {"postcode": "NG18 2AT"}, "types": ["supported_accommodation"], "max_distance_km": 10,
            "needs": ["learning_disability"]}).json()
        page = httpx.get(f"{url}/service/{DOVETAIL_ID}", timeout=30).text
        options = httpx.post(f"{url}/alternatives", timeout=60, follow_redirects=True, data={
            "home": "NG18 2AT", "types": "supported_accommodation", "needs": ["autism", "learning_disability"]}).text
    assert edited.json()["service"]["needs_registered"] == record["needs_registered"]
    assert "autism" in record["needs_met"] and "autism" not in record["needs_registered"]
    [result] = [r for r in answer["results"] if r["id"] == DOVETAIL_ID]
    # Each need met on its own basis. Before, the one basis was said only when every need met had it, so this
    # mixed match said neither: "Meets: Autism, Learning disability." (CQC's registration lost, and the
    # maintainer's word said as the service's).
    meets = "Learning disability (as registered with CQC); Autism (added by the rehabmap team)"
    assert f"Meets: {meets}." in result["explanation"]
    assert f"\n   Meets: {meets}\n" in options  # the clinicians' plain-text summary
    assert f'<dd class="nhsuk-summary-list__value">{meets}</dd>' in options  # the option's card, its "Meets" row
    # What CQC registered stays said as such beside the maintainer's word. Before, the edit made the lists the
    # directory's (`field_sources`), so CQC's registration was said of nothing: `needs_registered` [] and the
    # explanation "Meets: Learning disability." (kept apart now: `Service.cqc_registered_needs`).
    assert record["needs_registered"] == ["learning_disability", "substance_misuse"]
    [result] = [r for r in registered["results"] if r["id"] == DOVETAIL_ID]
    assert "Meets: Learning disability (as registered with CQC)." in result["explanation"]
    heading = "Needs rehabmap reads from its Care Quality Commission (CQC) registration"
    registration = page[page.index(heading):].split("</dd>")[0]
    assert "Learning disability" in registration and "Autism" not in registration
    # The page says whose word it is in the explanation's words: before, a plain "Suitable for".
    added = page[page.index("Suitable for (added by the rehabmap team)"):].split("</dd>")[0]
    assert "Autism" in added and "Learning disability" not in added


def test_whose_word_each_need_and_the_gender_is_in_the_record_the_exports_the_feed_and_the_page(tmp_path,
                                                                                              synced_kept, request,
                                                                                              data_dir):
    """A maintainer adds autism to Dovetail House and states that it takes men only. Before, the API's record, the
    CSV and GeoJSON exports and the ORUK feed listed what CQC registered (`needs_registered`) and nothing said
    which needs met were the maintainers' word: a reader took autism and men only as CQC's or the provider's. Now
    `needs_added_by_maintainers` lists them (the gender as its need), wherever `needs_registered` is; and the
    service page says whose word the gender is, in the words its row of such needs uses. Every record no
    maintainer edited gives what it gave before: an empty list, no ORUK term, a plain "Who it takes"."""
    home, auth = synced_kept.copy(tmp_path, request)
    with serving_here(home, data_dir, warm=False) as url:
        edited = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", headers=with_version(httpx, DOVETAIL_ID, auth,
                                                                                           url), timeout=30,
                             json={"needs_met": ["autism", "learning_disability", "substance_misuse"],
                                   "gender": "male_only"})
        assert edited.status_code == 200, edited.text
        record = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()
        sheet, features = exported(url)
        [other] = [row["id"] for row in sheet if row["id"] != DOVETAIL_ID and row["needs_registered"]][:1]
        feed = {sid: httpx.get(f"{url}/oruk/services/{service_uuid(sid)}", timeout=30).json()
                for sid in (DOVETAIL_ID, other)}
        pages = {sid: httpx.get(f"{url}/service/{sid}", timeout=30).text for sid in (DOVETAIL_ID, other)}

    added, registered = ["autism", "male_only"], ["learning_disability", "substance_misuse"]
    assert record["needs_met"] == ["autism", "learning_disability", "male_only", "substance_misuse"]
    assert (record["needs_added_by_maintainers"], record["needs_registered"]) == (added, registered)
    assert edited.json()["service"]["needs_added_by_maintainers"] == added
    rows = {row["id"]: row for row in sheet}
    assert (rows[DOVETAIL_ID]["needs_added_by_maintainers"], rows[DOVETAIL_ID]["needs_registered"]) == (
        "autism;male_only", "learning_disability;substance_misuse")
    assert list(rows[DOVETAIL_ID])[-4] == "needs_added_by_maintainers", "a new column goes at the end (26's after)"
    assert (features[DOVETAIL_ID]["needs_added_by_maintainers"], features[DOVETAIL_ID]["needs_registered"]) == (
        added, registered)
    assert {row["needs_added_by_maintainers"] for sid, row in rows.items() if sid != DOVETAIL_ID} == {""}
    assert all(f["needs_added_by_maintainers"] == [] for sid, f in features.items() if sid != DOVETAIL_ID)

    assert details(feed[DOVETAIL_ID])["needs_added_by_maintainers"] == "autism, male_only"
    assert details(feed[DOVETAIL_ID])["needs_registered"] == "learning_disability, substance_misuse"
    assert "needs_added_by_maintainers" not in details(feed[other]) and "needs_registered" in details(feed[other])
    for service in feed.values():
        for validator in (hsds.compiled("service"), hsds.entity("service", profile=True)):
            hsds.assert_valid(validator, service)

    # The gender a maintainer stated, said as theirs: before, a plain "Who it takes", as though CQC or the
    # provider said it.
    who = pages[DOVETAIL_ID][pages[DOVETAIL_ID].index("Who it takes"):].split("</dd>")[0]
    assert who.startswith("Who it takes (added by the rehabmap team)</dt>") and who.endswith(">Men only")
    assert "Who it takes" not in pages[other]  # CQC states no gender: no row, as before


def test_a_need_a_maintainer_adds_leaves_every_other_oruk_attribute_id_as_it_was(tmp_path, synced_kept, request,
                                                                                  data_dir):
    """HSDS ids are identifiers: a consumer syncing rehabmap's ORUK feed matches a service's attributes on them.
    Before, an attribute's id was its place in the service's list: autism, added to Dovetail House by a maintainer,
    took learning disability's place and id, learning disability took the next one's, and so on down the list,
    so the consumer saw every attribute after it deleted and inserted again though none had changed. Now each
    keeps its id, and the only new ids are the new need's and the detail saying the maintainers added it."""
    home, auth = synced_kept.copy(tmp_path, request)
    feed = f"/oruk/services/{service_uuid(DOVETAIL_ID)}"
    with serving_here(home, data_dir, warm=False) as url:
        before = httpx.get(url + feed, timeout=30).json()
        needs = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()["needs_met"]
        edited = httpx.patch(f"{url}/maintain/services/{DOVETAIL_ID}", headers=with_version(httpx, DOVETAIL_ID, auth,
                                                                                           url), timeout=30,
                             json={"needs_met": ["autism", *needs]})
        assert edited.status_code == 200, edited.text
        after = httpx.get(url + feed, timeout=30).json()

    def attributes(service: dict) -> dict[str, tuple[str, str | None]]:
        return {a["id"]: (a["taxonomy_term"]["code"], a.get("value")) for a in service["attributes"]}

    was, now = attributes(before), attributes(after)
    assert "autism" not in needs and "learning_disability" in needs  # autism comes first: the others move down
    assert was.items() <= now.items()
    assert sorted(now[i] for i in now.keys() - was.keys()) == [("autism", "yes"),
                                                                ("needs_added_by_maintainers", "autism")]


def test_a_gender_a_maintainer_stated_is_said_as_theirs_in_a_match(tmp_path, synced_kept, request, data_dir):
    """A maintainer states that Dovetail House takes men only (CQC's record states no gender). Before, a match's
    explanation said a plain "Men only.", and the clinicians' card a plain "Men only" tag, as though CQC or the home
    said it, where the service page says whose word it is; their text for notes said no gender at all (the card's
    tag had no line there). Now each says "Men only (added by the rehabmap team)". A men-only house a maintainer made
    in the directory (all of its record theirs, with no source's word to tell it from) keeps a plain "Men only", as
    a gender a source states does.

    The machine-readable outputs say it too. Before, the PUT's answer, `GET /services/{id}`, the match's result, the
    CSV and GeoJSON exports and the ORUK feed gave `gender: male_only` with nothing saying whose word it was, so a
    clinical system or a commissioner's spreadsheet showed the team's word as CQC's or the home's. Now each gives
    `gender_stated_by_maintainers` (the CSV as its last column; the feed as a `rehabmap` term, only where true):
    true for Dovetail House, false for the house made in the directory and every record of CQC's word alone."""
    home, auth = synced_kept.copy(tmp_path, request)
    search = {"postcode": "NG18 2AT", "type": "supported_accommodation"}
    with serving_here(home, data_dir, warm=False) as url:
        stated = httpx.put(f"{url}/maintain/services/{DOVETAIL_ID}/gender", json={"gender": "male_only"},
                           headers=auth, timeout=30)
        assert stated.status_code == 200, stated.text
        made = httpx.post(f"{url}/maintain/services", headers=auth, timeout=30, json={
            "name": "Lantern Lodge", "service_type": search["type"], "postcode": search["postcode"],
            "gender": "male_only"})
        assert made.status_code == 201, made.text
        made_id = made.json()["service"]["id"]
        answer = httpx.post(f"{url}/match", timeout=60, json={
            "home": {"postcode": search["postcode"]}, "types": [search["type"]], "max_distance_km": 10}).json()
        options = httpx.post(f"{url}/alternatives", timeout=60, follow_redirects=True, data={
            "home": search["postcode"], "types": search["type"]}).text
        record = httpx.get(f"{url}/services/{DOVETAIL_ID}", timeout=30).json()
        sheet, features = exported(url)
        other = next(row["id"] for row in sheet if row["id"] not in (DOVETAIL_ID, made_id))  # CQC's word alone
        feed = {sid: httpx.get(f"{url}/oruk/services/{service_uuid(sid)}", timeout=30).json()
                for sid in (DOVETAIL_ID, made_id, other)}

    by_team = "gender_stated_by_maintainers"
    assert stated.json()["service"][by_team] is record[by_team] is True and record["gender"] == "male_only"
    assert made.json()["service"][by_team] is False
    # Whose word, which replaced none of CQC's: added (CQC states no gender); the made record's source is the team.
    assert (record["gender_basis"], record["gender_from_source"]) == ("added_by_maintainers", None)
    assert (made.json()["service"]["gender_basis"], made.json()["service"]["gender_from_source"]) == ("source", None)
    assert {row["id"]: row["gender_basis"] for row in sheet if row["id"] in (DOVETAIL_ID, made_id, other)} == {
        DOVETAIL_ID: "added_by_maintainers", made_id: "source", other: ""}
    assert details(feed[DOVETAIL_ID])["gender_basis"] == "added_by_maintainers"
    assert "gender_from_source" not in details(feed[DOVETAIL_ID]), "the source stated none"
    assert {r["id"]: r[by_team] for r in answer["results"]} == {r["id"]: r["id"] == DOVETAIL_ID
                                                                for r in answer["results"]}
    assert list(sheet[0])[-3] == by_team, "a new column goes at the end (session 26's two after it)"
    assert {row["id"]: row[by_team] for row in sheet} == {row["id"]: "true" if row["id"] == DOVETAIL_ID else "false"
                                                          for row in sheet}
    assert {sid: f[by_team] for sid, f in features.items()} == {sid: sid == DOVETAIL_ID for sid in features}
    assert details(feed[DOVETAIL_ID])[by_team] == "yes" and details(feed[DOVETAIL_ID])["gender"] == "male_only"
    assert by_team not in details(feed[made_id]) and by_team not in details(feed[other])
    for service in feed.values():
        for validator in (hsds.compiled("service"), hsds.entity("service", profile=True)):
            hsds.assert_valid(validator, service)

    explained = {r["id"]: r["explanation"] for r in answer["results"]}
    assert " Men only (added by the rehabmap team)." in explained[DOVETAIL_ID]
    assert " Men only." in explained[made_id] and "rehabmap team" not in explained[made_id]
    cards = {name: card for card in options.split('<div class="nhsuk-card rm-option"')[1:]
             for name in ("Dovetail House", "Lantern Lodge") if f". {name}</a>" in card}
    tag = '<strong class="nhsuk-tag nhsuk-tag--purple">{}</strong>'
    assert tag.format("Men only (added by the rehabmap team)") in cards["Dovetail House"]
    assert tag.format("Men only") in cards["Lantern Lodge"] and "rehabmap team" not in cards["Lantern Lodge"]
    notes = html.unescape(re.search(r'<textarea[^>]*id="plain-text"[^>]*>(.*?)</textarea>', options, re.S).group(1))
    blocks = re.split(r"\n(?=\d+\. )", notes)[1:]  # an option each, its number first
    said = {name: block for block in blocks for name in cards if re.match(rf"\d+\. {name}\b", block)}
    assert "\n   Who it takes: Men only (added by the rehabmap team)\n" in said["Dovetail House"]
    assert "\n   Who it takes: Men only\n" in said["Lantern Lodge"]
    others = [block for block in blocks if block not in said.values()]
    assert others and all("Who it takes" not in block for block in others), "CQC states no gender: no line"


KIRKSTALL = "sample:kirkstall-locked-rehabilitation-ward"  # the sample file's: states autism, detention, men only
GLEBELANDS = "nhs-service-search:RX2D7"  # the NHS website's Glebelands Centre: states no need


def indexed_and_synced_home(tmp_path: Path, geodata_dir: Path, data_dir: Path, replay) -> Path:
    """A home built as a deployment builds one from other sources than CQC: `rehabmap index sample/` (the sample
    file), `rehabmap sync nhs-service-search` (the NHS website replay) and Glebelands Centre, which the sync holds
    for review, accepted as a maintainer would."""
    home = make_home(tmp_path / "home", geodata_dir)
    env = {"REHABMAP_NHS_SERVICE_SEARCH_URL": replay.nhs_url, "REHABMAP_NHS_SERVICE_SEARCH_KEY": "replay-nhs-key",
           "REHABMAP_NHS_SERVICE_SEARCH_RATE": "1000"}
    for args in (("index", "sample/", "--no-progress"), ("sync", "nhs-service-search"),
                 ("review", "accept", GLEBELANDS)):
        done = rehabmap(home, data_dir, replay, *args, **env)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return home


@pytest.fixture(scope="module")
def other_sources_kept(tmp_path_factory: pytest.TempPathFactory, geodata_dir: Path, data_dir: Path) -> Kept:
    """`indexed_and_synced_home` (against a replay of its own) with a maintainer's token, once per module."""
    for replay in running(data_dir / "feeds"):
        home = indexed_and_synced_home(tmp_path_factory.mktemp("other-sources-kept"), geodata_dir, data_dir, replay)
    return kept(home, data_dir)


def test_a_need_a_maintainer_adds_to_any_sources_record_is_said_as_theirs(tmp_path, other_sources_kept, request,
                                                                          data_dir):
    """Kirkstall's ward states, in the sample file, autism, detention under the Mental Health Act and men only; a
    maintainer takes autism out and adds substance misuse. Glebelands Centre, from the NHS website, states no
    need; a maintainer states that it takes people with autism. Before, only a CQC record's added needs were told
    apart: on these the edited lists held the source's needs and the maintainer's alike, so the match's explanation,
    the service page, the API's record, the CSV and GeoJSON exports and the ORUK feed said substance misuse and
    autism as the sources' word. Now each says them as the rehabmap team's, and the source's needs plainly; autism,
    taken out, is said nowhere as met; a rebuild, laying the edit over the file's record again, says the same. A
    service made in the directory (all of it the team's, with no source's word to tell it from) says its needs
    plainly, as before."""
    home, auth = other_sources_kept.copy(tmp_path, request)
    ward = {"home": {"postcode": "LS9 7TF"}, "types": ["inpatient_rehab_level2"], "max_distance_km": 20,
            "needs": ["detained_mha", "substance_misuse", "autism"]}
    with serving_here(home, data_dir, warm=False) as url:
        source_needs = httpx.get(f"{url}/services/{KIRKSTALL}", timeout=30).json()["needs_met"]
        edited = httpx.patch(f"{url}/maintain/services/{KIRKSTALL}", headers=with_version(httpx, KIRKSTALL, auth, url),
                             timeout=30, json={"needs_met": ["detained_mha", "male_only", "restricted_s37_41",
                                                             "substance_misuse"]})
        assert edited.status_code == 200, edited.text
        stated = httpx.put(f"{url}/maintain/services/{GLEBELANDS}/needs/autism", json={"takes": True}, headers=auth,
                           timeout=30)
        assert stated.status_code == 200, stated.text
        glebelands = httpx.get(f"{url}/services/{GLEBELANDS}", timeout=30).json()
        made = httpx.post(f"{url}/maintain/services", headers=auth, timeout=30, json={
            "name": "Lantern Lodge", "service_type": "inpatient_rehab_level2", "postcode": "LS9 7TF",
            "needs_met": ["substance_misuse"]})
        assert made.status_code == 201, made.text
        made_id = made.json()["service"]["id"]
        record = httpx.get(f"{url}/services/{KIRKSTALL}", timeout=30).json()
        answer = httpx.post(f"{url}/match", timeout=60, json=ward).json()
        near = httpx.post(f"{url}/match", timeout=60, json={
            "home": {"postcode": glebelands["postcode"]}, "types": ["community_rehab_team"], "max_distance_km": 10,
            "needs": ["autism"]}).json()
        page = httpx.get(f"{url}/service/{KIRKSTALL}", timeout=30).text
        sheet = {row["id"]: row for row in csv.DictReader(io.StringIO(httpx.get(
            f"{url}/services.csv", timeout=60).content.decode("utf-8-sig")))}
        features = {f["id"]: f["properties"] for f in httpx.get(f"{url}/services.geojson", timeout=60).json()[
            "features"]}
        feed = {sid: httpx.get(f"{url}/oruk/services/{service_uuid(sid)}", timeout=30).json()
                for sid in (KIRKSTALL, GLEBELANDS)}

    assert "autism" in source_needs and "substance_misuse" not in source_needs
    added = ["substance_misuse"]
    assert (record["needs_added_by_maintainers"], record["needs_registered"]) == (added, [])
    assert edited.json()["service"]["needs_added_by_maintainers"] == added
    assert (stated.json()["service"]["needs_added_by_maintainers"], glebelands["needs_added_by_maintainers"]) == (
        ["autism"], ["autism"])
    explained = {r["id"]: r["explanation"] for r in answer["results"]}
    assert ("Meets: Detained under the Mental Health Act; Substance misuse (added by the rehabmap team). "
            "Not known: Autism (ask the service).") in explained[KIRKSTALL]
    assert " Men only." in explained[KIRKSTALL], "the source's gender stays its own"
    assert "Meets: Substance misuse." in explained[made_id] and "rehabmap team" not in explained[made_id]
    [result] = [r for r in near["results"] if r["id"] == GLEBELANDS]
    assert "Meets: Autism (added by the rehabmap team)." in result["explanation"]

    # The page's rows: the file's needs plainly, the maintainer's in their own row, autism in neither.
    plain = page[page.index("Suitable for</dt>"):].split("</dd>")[0]
    team = page[page.index("Suitable for (added by the rehabmap team)"):].split("</dd>")[0]
    assert "Detained under the Mental Health Act" in plain and "Substance misuse" not in plain
    assert "Substance misuse" in team and "Detained" not in team
    assert "Autism" not in plain + team

    assert (sheet[KIRKSTALL]["needs_added_by_maintainers"], sheet[GLEBELANDS]["needs_added_by_maintainers"]) == (
        "substance_misuse", "autism")
    assert (features[KIRKSTALL]["needs_added_by_maintainers"], features[GLEBELANDS]["needs_added_by_maintainers"]) == (
        added, ["autism"])
    assert {row["needs_added_by_maintainers"] for sid, row in sheet.items() if sid not in (KIRKSTALL, GLEBELANDS)} == {
        ""}, "every other record, and the one made in the directory, as before"

    def details(service: dict) -> dict[str, str]:
        return {a["taxonomy_term"]["code"]: a.get("value") for a in service["attributes"]
                if a["taxonomy_term"]["taxonomy"] == "rehabmap"}

    assert details(feed[KIRKSTALL])["needs_added_by_maintainers"] == "substance_misuse"
    assert details(feed[GLEBELANDS])["needs_added_by_maintainers"] == "autism"
    valid_then_rebuilt(feed, home, data_dir)
    with serving_here(home, data_dir, warm=False) as url:
        again = httpx.get(f"{url}/services/{KIRKSTALL}", timeout=30).json()
    assert (again["needs_met"], again["needs_added_by_maintainers"]) == (record["needs_met"], added)


BEESTON = "sample:beeston-residential-recovery-home"  # the sample directory's file states it takes women and men


def test_a_gender_a_maintainer_stated_over_the_sources_is_said_as_changed_not_added(tmp_path, sample_kept, request,
                                                                                    data_dir):
    """The sample directory's file (imported by `rehabmap index`) states that Beeston Residential Recovery Home takes
    women and men; a maintainer states it takes men only. Before, its page and a match said
    "Men only (added by the rehabmap team)", as though the file stated no gender: the team replaced the source's
    word, not added to it. Now they say "changed by the rehabmap team": the record keeps the source's gender apart
    (`source_gender`), also through a rebuild, which lays the edit over the file's record again. A maintainer who
    states the source's own gender again gives no word of the team's: a plain "Who it takes", and
    `gender_stated_by_maintainers` false."""
    home, auth = sample_kept.copy(tmp_path, request)
    search = {"home": {"postcode": "LS11 8BN"}, "types": ["supported_accommodation"], "max_distance_km": 5}

    def who_it_takes(url: str) -> str:
        page = httpx.get(f"{url}/service/{BEESTON}", timeout=30).text
        return page[page.index("Who it takes"):].split("</dd>")[0]

    with serving_here(home, data_dir, warm=False) as url:
        assert who_it_takes(url).startswith("Who it takes</dt>") and who_it_takes(url).endswith(">Women and men")
        stated = httpx.put(f"{url}/maintain/services/{BEESTON}/gender", json={"gender": "male_only"}, headers=auth,
                           timeout=30)
        assert stated.status_code == 200, stated.text
        answer = httpx.post(f"{url}/match", timeout=60, json=search).json()
        changed = who_it_takes(url)
    [result] = [r for r in answer["results"] if r["id"] == BEESTON]
    assert " Men only (changed by the rehabmap team)." in result["explanation"]
    assert result["gender_stated_by_maintainers"] is stated.json()["service"]["gender_stated_by_maintainers"] is True
    assert changed.startswith("Who it takes (changed by the rehabmap team)</dt>") and changed.endswith(">Men only")

    rebuilt = rehabmap(home, data_dir, None, "index", "sample/", "--no-progress")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert {k: index_record(home, BEESTON)[k] for k in ("gender", "source_gender")} == {
        "gender": "male_only", "source_gender": "mixed_gender"}
    with serving_here(home, data_dir, warm=False) as url:
        assert who_it_takes(url) == changed, "a rebuild lays the edit over the file's record: still its word changed"
        again = httpx.put(f"{url}/maintain/services/{BEESTON}/gender", json={"gender": "mixed_gender"}, headers=auth,
                          timeout=30)
        assert again.status_code == 200, again.text
        agreed = who_it_takes(url)
    assert again.json()["service"]["gender_stated_by_maintainers"] is False
    assert agreed.startswith("Who it takes</dt>") and agreed.endswith(">Women and men")


def test_a_gender_a_maintainer_removed_is_said_as_removed_not_as_the_sources_silence(tmp_path, sample_kept, request,
                                                                                    data_dir):
    """The sample directory's file states that Kirkstall's ward takes men only; a maintainer clears its gender (the
    ward now takes women too, say, and nobody has said which). Before, every output then showed no gender, as though
    the file stated none: the team's edit passed for the source's silence, and nothing anywhere kept the source's
    word. Now the page says "Not stated (the source said men only; removed by the rehabmap team)", and the API's
    record (and the PUT's answer), each `/match` result, the CSV's and GeoJSON's new last columns and the ORUK feed
    say `gender_basis` "removed_by_maintainers" with `gender_from_source` "male_only", also after a rebuild. A match
    does not filter on the removed gender (the team's word wins): a woman's search lists the ward. A gender changed
    (Beeston: the file says women and men, a maintainer men only) says "changed_by_maintainers" with the file's."""
    home, auth = sample_kept.copy(tmp_path, request)
    search = {"home": {"postcode": "LS9 7TF"}, "types": ["inpatient_rehab_level2"], "max_distance_km": 20,
              "gender": "female"}

    def who_it_takes(url: str) -> str:
        page = httpx.get(f"{url}/service/{KIRKSTALL}", timeout=30).text
        return page[page.index("Who it takes"):].split("</dd>")[0]

    with serving_here(home, data_dir, warm=False) as url:
        assert who_it_takes(url).endswith(">Men only")
        before = httpx.post(f"{url}/match", timeout=60, json=search).json()
        cleared = httpx.put(f"{url}/maintain/services/{KIRKSTALL}/gender", json={"gender": None}, headers=auth,
                            timeout=30)
        assert cleared.status_code == 200, cleared.text
        changed = httpx.put(f"{url}/maintain/services/{BEESTON}/gender", json={"gender": "male_only"}, headers=auth,
                            timeout=30)
        assert changed.status_code == 200, changed.text
        record = httpx.get(f"{url}/services/{KIRKSTALL}", timeout=30).json()
        answer = httpx.post(f"{url}/match", timeout=60, json=search).json()
        removed = who_it_takes(url)
        sheet, features = exported(url)
        feed = {sid: httpx.get(f"{url}/oruk/services/{service_uuid(sid)}", timeout=30).json()
                for sid in (KIRKSTALL, BEESTON, DOVETAIL_ID)}

    said = {"gender": None, "gender_stated_by_maintainers": False, "gender_basis": "removed_by_maintainers",
            "gender_from_source": "male_only"}
    assert {k: record[k] for k in said} == {k: cleared.json()["service"][k] for k in said} == said
    assert {k: changed.json()["service"][k] for k in said} == {
        "gender": "male_only", "gender_stated_by_maintainers": True, "gender_basis": "changed_by_maintainers",
        "gender_from_source": "mixed_gender"}
    assert KIRKSTALL not in [r["id"] for r in before["results"]], "men only: not listed for a woman"
    [result] = [r for r in answer["results"] if r["id"] == KIRKSTALL]  # the team's word wins: no gender, no filter
    assert {k: result[k] for k in said} == said and "Men only" not in result["explanation"]
    assert removed.startswith("Who it takes</dt>")
    assert removed.endswith(">Not stated (the source said men only; removed by the rehabmap team)")

    assert list(sheet[0])[-2:] == ["gender_basis", "gender_from_source"], "new columns go at the end"
    rows = {row["id"]: row for row in sheet}
    assert {sid: (rows[sid]["gender_basis"], rows[sid]["gender_from_source"]) for sid in (KIRKSTALL, BEESTON,
                                                                                          DOVETAIL_ID)} == {
        KIRKSTALL: ("removed_by_maintainers", "male_only"), BEESTON: ("changed_by_maintainers", "mixed_gender"),
        DOVETAIL_ID: ("", "")}, "CQC states no gender, nor did a maintainer: none"
    assert {row["gender_basis"] for row in sheet if row["gender"]} - {"source", "changed_by_maintainers"} == set()
    assert {sid: (features[sid]["gender_basis"], features[sid]["gender_from_source"]) for sid in (
        KIRKSTALL, BEESTON, DOVETAIL_ID)} == {KIRKSTALL: ("removed_by_maintainers", "male_only"),
                                             BEESTON: ("changed_by_maintainers", "mixed_gender"),
                                             DOVETAIL_ID: (None, None)}
    assert {k: details(feed[KIRKSTALL]).get(k) for k in ("gender", "gender_basis", "gender_from_source")} == {
        "gender": None, "gender_basis": "removed_by_maintainers", "gender_from_source": "male_only"}
    assert {k: details(feed[BEESTON]).get(k) for k in ("gender", "gender_basis", "gender_from_source")} == {
        "gender": "male_only", "gender_basis": "changed_by_maintainers", "gender_from_source": "mixed_gender"}
    assert not {"gender_basis", "gender_from_source"} & set(details(feed[DOVETAIL_ID])), "no term: none to say"
    valid_then_rebuilt(feed, home, data_dir)
    with serving_here(home, data_dir, warm=False) as url:
        again = httpx.get(f"{url}/services/{KIRKSTALL}", timeout=30).json()
        assert who_it_takes(url) == removed, "a rebuild lays the edit over the file's record: still its word removed"
    assert {k: again[k] for k in said} == said


def test_a_synced_record_edited_before_its_sources_word_was_kept_is_laid_anew_on_upgrade(tmp_path, other_sources_kept,
                                                                                         request,
                                                                                         data_dir, replay, monkeypatch):
    """Glebelands Centre, from the NHS website, states no need; a maintainer stated that it takes people with autism
    with the old code path (before session 25 an edit kept none of the source's word apart), so the record said
    autism as its source's word until a sync brought a change of it. Migration 21 marks each edited synced record
    due to the live index: the first `rehabmap serve` after the upgrade lays the edit afresh over the record the
    store keeps of the source, and autism reads as the rehabmap team's, on the page and in the record."""
    from rehabmap.index import base
    from rehabmap.maintain.overlay import SOURCES_WORD_DUE
    from tests.maintain.conftest import AppClient, make_app
    from tests.sync.store_fixtures import settings_for

    home, auth = other_sources_kept.copy(tmp_path, request)
    with monkeypatch.context() as old_code:
        old_code.setattr(base, "_SOURCES_WORD", {})
        api = AppClient(make_app(settings_for(home, data_dir, replay)))
        stated = api.put(f"/maintain/services/{GLEBELANDS}/needs/autism", json={"takes": True}, headers=auth)
        assert stated.status_code == 200, stated.text
        assert api.get(f"/services/{GLEBELANDS}").json()["needs_added_by_maintainers"] == [], "the old state"
    store = home / "directory.sqlite"
    with sqlite3.connect(store) as conn:  # a store this rehabmap has not yet opened
        conn.execute("DELETE FROM schema_migrations WHERE version = 21")
    with serving_here(home, data_dir, warm=False) as url:
        record = httpx.get(f"{url}/services/{GLEBELANDS}", timeout=30).json()
        page = httpx.get(f"{url}/service/{GLEBELANDS}", timeout=30).text
    assert (record["needs_met"], record["needs_added_by_maintainers"]) == (["autism"], ["autism"])
    assert "Autism" in page[page.index("Suitable for (added by the rehabmap team)"):].split("</dd>")[0]
    assert index_record(home, GLEBELANDS)["source_needs_met"] == [], "the source's record's word: none"
    assert table_rows(store, "SELECT value FROM meta WHERE key = ?", SOURCES_WORD_DUE) == [], "a sync's: laid anew"
