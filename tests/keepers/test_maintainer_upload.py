"""Uploading a curated table, in-process: the report names each bad row by line with the import's own reason
and lists the good ones, before anything is written; the file is held by a random id; a wrong kind, an
oversized or empty file, a missing CSRF token and a provider are refused with nothing held."""

from __future__ import annotations

import csv
import html
import json
import logging
import re
import uuid
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import unquote_plus

from rehabmap.coverage import CoverageStore
from web.keepers.words import long_moment

from tests.es_server import drop_indices
from tests.keepers.conftest import csrf_of, make_keepers
from tests.maintain.conftest import make_site
from tests.sync.store_fixtures import HELD_BACK_SAID, mistyped_supersedes
from tests.keepers.upload_tables import (LANCASHIRE_NONE, LEEDS_IPS, MANCHESTER_IPS, bad_table, ips_table, team_name,
                                        teams_table, trusts)

KIND = "curated-crt"
SAMPLE = Path(__file__).resolve().parents[2] / "sample"


def upload(keepers, client, text: str, kind: str = KIND, csrf: str | None = None, name: str = "teams.csv"):
    form = client.get("/keepers/upload")
    token = csrf_of(form.text) if csrf is None else csrf
    return client.post("/keepers/upload", data={"csrf": token, "kind": kind},
                       files={"table": (name, text.encode("utf-8"), "text/csv")})


def held(keepers) -> list:
    root = keepers.site.home / "uploads"
    return sorted(p.relative_to(root) for p in root.rglob("*.csv")) if root.is_dir() else []


def test_the_report_names_bad_rows_by_line_and_lists_the_good_before_anything_is_written(keepers, data_dir):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    before = keepers.app.state.rehabmap.backend.ids()
    answer = upload(keepers, client, teams_table(data_dir))
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "2 rows make services, 0 rows record an area with no such service, and 1 row is rejected" in text
    rejected = re.search(r'<table class="nhsuk-table rm-table" id="rejected">(.*?)</table>', text, re.S).group(1)
    assert re.search(r"<td[^>]*>4</td>\s*<td[^>]*>column serves: &#39;E99999999&#39; is not an ONS code", rejected)
    for name, _ in trusts(data_dir).values():
        assert team_name(name) in text
    # each area named beside its code, so a mistyped code that is another real area shows
    good = re.search(r'<table class="nhsuk-table rm-table" id="good">(.*?)</table>', text, re.S).group(1)
    assert re.findall(r"<td[^>]*>([^<]*\(E\d{8}\))</td>", good) == ["Leeds (E08000035)", "Birmingham (E08000025)"]
    [path] = held(keepers)
    assert path.name == "community_rehab_teams.csv" and re.fullmatch(r"[A-Za-z0-9_-]{22}", path.parent.name)
    assert f'name="upload" value="{path.parent.name}"' in text
    assert keepers.app.state.rehabmap.backend.ids() == before  # nothing written


def test_the_report_names_the_areas_recorded_as_having_none(keepers):
    """A county council is named too (the boundaries hold no counties): before, the report listed codes alone."""
    table = ("utla_code,kind,service_name,organisation,address,postcode,phone,email,website,referral_route,"
             "description,verified_by,verified_on,notes\n"
             "E10000003,imha,none,,,,,,,,,Bob Curator,2026-11-02,no IMHA provider commissioned\n")
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    answer = upload(keepers, client, table, kind="curated-advocacy", name="statutory_advocacy.csv")
    assert answer.status_code == 200, answer.text
    assert "<li>Line 2: Cambridgeshire (E10000003), verified by Bob Curator on 2 November 2026</li>" in answer.text


def test_a_table_of_only_bad_rows_offers_nothing_to_add_and_holds_nothing(keepers):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    answer = upload(keepers, client, bad_table())
    assert answer.status_code == 200
    assert "0 rows make services, 0 rows record an area with no such service, and 2 rows are rejected" in answer.text
    assert "column postcode: empty; a service needs the full postcode of its base" in answer.text
    assert 'name="upload"' not in answer.text and held(keepers) == []


def test_a_wrong_kind_an_empty_or_oversized_file_is_named_in_the_error_summary(keepers, data_dir):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    wrong = upload(keepers, client, teams_table(data_dir), kind="curated-ips")
    assert wrong.status_code == 400
    assert "This is a community_rehab_teams.csv table, not ips_services.csv" in wrong.text
    assert "There is a problem" in wrong.text
    empty = upload(keepers, client, "")
    assert empty.status_code == 400 and "The file is empty" in empty.text
    large = upload(keepers, client, teams_table(data_dir) + "x" * 50_000)
    assert large.status_code == 400 and "The file is larger than 48 KB" in large.text
    assert "split it into smaller tables" not in large.text
    nothing = upload(keepers, client, teams_table(data_dir), kind="")
    assert nothing.status_code == 400 and "Choose the kind of table you are uploading" in nothing.text
    assert held(keepers) == []


def test_a_multipart_form_without_its_csrf_token_is_refused(keepers, data_dir):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    answer = upload(keepers, client, teams_table(data_dir), csrf="0" * 64)
    assert answer.status_code == 403 and "This form could not be sent" in answer.text
    assert held(keepers) == []


def test_the_page_offers_each_tables_blank_template_for_download(keepers):
    """Before, the page said to fill in "a copy of one of the templates in templates/curated/", a folder of the
    code that a maintainer using the pages may never have seen."""
    from indexer.sources.curated import TABLES, blank_template

    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    page = client.get("/keepers/upload").text
    assert "templates/curated" not in page
    links = re.findall(r'<a href="(/keepers/upload/templates/[^"]+)" download>([^<]+)</a>', page)
    assert [href.rsplit("/", 1)[1] for href, _ in links] == [t.file_name for t in TABLES]
    assert links[0][1] == "IPS services, per ICB (ips_services.csv)"
    for (href, _), spec in zip(links, TABLES):
        blank = client.get(href)
        assert blank.status_code == 200 and blank.headers["content-type"] == "text/csv; charset=utf-8"
        assert blank.headers["content-disposition"] == f'attachment; filename="{spec.file_name}"'
        assert blank.text == blank_template(spec)
    unknown = client.get("/keepers/upload/templates/passwords.csv")
    assert unknown.status_code == 404 and "There is no curated table of that name" in unknown.text
    assert client.get("/keepers/upload/templates/..%2F..%2Fdirectory.sqlite").status_code == 404
    signed_out = keepers.client().get(links[0][0])
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/keepers/sign-in?next=")


def test_the_page_says_what_each_column_of_each_table_holds_from_the_tables_own_guide(keepers):
    """The data dictionary was only in templates/curated/README.md, which a maintainer using the pages may never
    have seen: the page shows each table's columns in the template's order, when a row needs each, and what it
    holds (`TableSpec.dictionary`, which the README repeats), with the backticked parts as code."""
    from indexer.sources.curated import TABLES

    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    page = client.get("/keepers/upload").text
    for spec in TABLES:
        guide = page.split(f'id="columns-{spec.file_name.removesuffix(".csv")}"', 1)[1].split("</details>", 1)[0]
        assert f"The columns of {spec.file_name}" in guide
        rows = re.findall(r'aria-hidden="true">Column </span><code>([^<]+)</code></th>\s*'
                          r'<td [^>]+><span [^>]+>Needed </span><span>(.*?)</span></td>', guide)
        assert [name for name, _ in rows] == list(spec.columns)
        assert dict(rows)["notes"] == "no" and dict(rows)[spec.area_column] == "yes"
        assert dict(rows)["verified_on"] == "with <code>verified_by</code>"
    advocacy = page.split('id="columns-statutory_advocacy"', 1)[1].split("</details>", 1)[0]
    assert ("<code>imha</code> (Independent Mental Health Advocacy), <code>imca</code> (Independent Mental "
            "Capacity Advocacy) or <code>care_act</code> (Care Act advocacy)") in advocacy
    assert "&#34;self-referral or through the community mental health team&#34;" in advocacy


def test_a_provider_gets_403(keepers, data_dir):
    client = keepers.client()
    keepers.sign_in(client, "provider_a")
    assert client.get("/keepers/upload").status_code == 403
    assert client.get("/keepers/upload/templates/ips_services.csv").status_code == 403
    answer = client.post("/keepers/upload", data={"csrf": "x", "kind": KIND},
                         files={"table": ("t.csv", teams_table(data_dir).encode(), "text/csv")})
    assert answer.status_code == 403 and held(keepers) == []


def test_a_held_upload_is_forgotten_after_its_time_and_ids_are_never_paths(tmp_path):
    import os
    import time

    from indexer.sources.curated import TABLES
    from indexer.upload import HOLD_MINUTES, HeldUploads

    uploads = HeldUploads(tmp_path / "uploads")
    kept, old = uploads.hold(b"a", TABLES[0]), uploads.hold(b"b", TABLES[1])
    past = time.time() - HOLD_MINUTES * 60 - 1
    os.utime(tmp_path / "uploads" / old, (past, past))
    assert uploads.path(old) is None  # too old to confirm, even before a sweep
    uploads.hold(b"c", TABLES[2])  # each new upload sweeps
    assert not (tmp_path / "uploads" / old).exists()
    assert uploads.path(kept) == tmp_path / "uploads" / kept / TABLES[0].file_name
    assert uploads.path("../../etc") is None and uploads.path("x" * 22 + "/..") is None
    uploads.discard(kept)
    assert uploads.path(kept) is None


def held_id(text: str) -> str:
    return re.search(r'name="upload" value="([A-Za-z0-9_-]{22})"', text).group(1)


def confirm_form(text: str, **more: str) -> dict[str, str]:
    """The confirm form of a report page, as a browser sends it: its hidden fields, and `more`."""
    replaces = re.search(r'name="replaces" value="([0-9a-f]+)"', text).group(1)
    return {"csrf": csrf_of(text), "upload": held_id(text), "replaces": replaces, **more}


def test_a_refused_rebuild_leaves_the_index_its_coverage_and_the_tables_as_they_were(keepers, data_dir):
    """The last rebuild's source has gone (moved, say): the import is refused, and nothing changes."""
    from app.rebuild import SOURCES_FILE

    (keepers.site.home / SOURCES_FILE).write_text(json.dumps([str(keepers.site.home / "gone.csv")]))
    state = keepers.app.state.rehabmap
    before, coverage = state.backend.ids(), CoverageStore(keepers.site.settings.directory_path).claims()
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    answer = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert answer.status_code == 409, answer.text
    assert "The table was not added" in answer.text and "the live index is unchanged" in answer.text
    assert state.backend.ids() == before
    assert CoverageStore(keepers.site.settings.directory_path).claims() == coverage
    assert not (keepers.site.home / "curated").exists() and held(keepers) == []
    again = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert again.status_code == 410 and "This upload has ended" in again.text


def test_confirming_without_the_csrf_token_or_as_a_provider_is_refused(keepers, data_dir):
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    answer = client.post("/keepers/upload/confirm", data={"csrf": "0" * 64, "upload": held_id(report.text)})
    assert answer.status_code == 403 and len(held(keepers)) == 1  # the route never ran
    provider = keepers.client()
    keepers.sign_in(provider, "provider_a")
    answer = provider.post("/keepers/upload/confirm", data={"csrf": "x", "upload": held_id(report.text)})
    assert answer.status_code == 403 and len(held(keepers)) == 1
    assert not (keepers.site.home / "curated").exists()


def test_a_confirm_while_another_rebuild_runs_is_refused_and_can_be_sent_again(keepers, data_dir):
    """Two rebuilds at once would each go live without the other's new table: the second is refused, with
    nothing changed, and the upload stays held so the same confirm works once the first has finished."""
    from app.rebuild import REBUILD_LOCK
    from rehabmap.maintain.store import open_database

    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    before = state.backend.ids()
    report = upload(keepers, client, teams_table(data_dir))
    confirm = confirm_form(report.text)
    with open_database(keepers.site.settings).named_lock(REBUILD_LOCK) as ours:  # another rebuild, running
        assert ours
        refused = client.post("/keepers/upload/confirm", data=confirm)
    assert refused.status_code == 409, refused.text
    assert "Another rebuild of the index is running" in refused.text and 'id="rebuild-running"' in refused.text
    assert held_id(refused.text) == confirm["upload"] and len(held(keepers)) == 1
    assert state.backend.ids() == before and not (keepers.site.home / "curated").exists()
    assert keepers.site.directory.audit.entries(resource_type="curated_table")[1] == 0
    added = client.post("/keepers/upload/confirm", data=confirm, follow_redirects=False)
    assert added.status_code == 303, added.text
    assert (keepers.site.home / "curated" / "community_rehab_teams.csv").is_file() and held(keepers) == []
    assert len(state.backend.ids()) > len(before)


def test_a_refused_confirm_is_audited_and_listed_on_the_upload_page(keepers, data_dir):
    """Who tried to add which table, and why it was refused: in the audit log and on the upload page."""
    from app.rebuild import SOURCES_FILE

    (keepers.site.home / SOURCES_FILE).write_text(json.dumps([str(keepers.site.home / "gone.csv")]))
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    answer = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert answer.status_code == 409
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    fields = {e.field: e.new for e in entries}
    assert {(e.action, e.resource_id) for e in entries} == {("upload_refused", "community_rehab_teams.csv")}
    assert all("maintainer of the tests" in e.actor for e in entries)
    assert "nothing could be imported from" in fields["reason"] and "the live index is unchanged" in fields["reason"]
    assert (fields["services"], fields["rejected"]) == (2, 1)
    page = client.get("/keepers/upload").text
    uploads = re.search(r'<table class="nhsuk-table rm-table" id="uploads">(.*?)</table>', page, re.S).group(1)
    assert "maintainer of the tests" in uploads and "community_rehab_teams.csv" in uploads
    assert "Refused" in uploads and "the live index is unchanged" in uploads


def test_an_added_table_records_its_file_name_never_a_server_path(keepers, data_dir):
    """The services an upload adds name the table they came from, as a person knows it, not the folder the
    server held it in (a random id, deleted once used) nor any other server path; so does the audit."""
    from app.rebuild import rebuild_index

    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    before = set(state.backend.ids())
    report = upload(keepers, client, teams_table(data_dir))
    added = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert added.status_code == 303, added.text
    new = [state.backend.get(i) for i in set(state.backend.ids()) - before]
    assert len(new) == 2
    assert {p.file for s in new for p in s.provenance} == {"community_rehab_teams.csv"}
    again = rebuild_index(keepers.site.settings, [SAMPLE], actor="test")  # a later rebuild reads the kept table
    assert {p.file for i in set(state.backend.ids()) - before for p in state.backend.get(i).provenance} \
        == {"community_rehab_teams.csv"}
    assert not any(str(keepers.site.home) in str(r) for r in again.report.rejected + again.report.warnings)
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    assert entries and not any(str(keepers.site.home) in json.dumps([e.resource_id, e.new]) for e in entries)


def test_a_held_table_that_no_longer_reads_is_refused_at_confirm_and_audited(keepers, data_dir):
    """Changed on the server's disk while held (it was checked before), a blank line above a header that is no
    curated table's: refused with the reason, which calls the header the file's header, as its first line is blank
    (before, "the file's first line"), audited."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    [path] = held(keepers)
    (keepers.site.home / "uploads" / path).write_text("\nnot,a,curated,header\n", encoding="utf-8")
    answer = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert answer.status_code == 400 and "The table was not added" in answer.text
    assert ("The file&#39;s header (its first line that is not blank) is not the header of a curated table"
            in answer.text) and held(keepers) == []
    assert ("Start from the blank template community_rehab_teams.csv, which the upload page offers for download"
            in answer.text)
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    assert [(e.action, e.field) for e in entries] == [("upload_refused", "reason")]
    assert "is not the header of a curated table" in entries[0].new


def test_the_admins_audit_api_lists_uploads_added_and_refused(keepers, data_dir):
    """GET /maintain/audit answers with the uploads' records (their resource type is curated_table), not a 500."""
    test_a_refused_confirm_is_audited_and_listed_on_the_upload_page(keepers, data_dir)
    answer = keepers.client().get("/maintain/audit", headers=keepers.site.auth("admin"))
    assert answer.status_code == 200, answer.text
    entries = [e for e in answer.json()["entries"] if e["resource_type"] == "curated_table"]
    assert {(e["action"], e["resource_id"]) for e in entries} == {("upload_refused", "community_rehab_teams.csv")}


def test_the_upload_list_shows_only_whole_uploads_when_the_audit_holds_more_than_it_reads(keepers):
    """The page reads the latest audit rows only: an upload whose rows straddle that limit is left out, never
    shown without its reason or counts. Fifty-one uploads, recorded as a confirm records them, the oldest one's
    reason just past the limit."""
    from rehabmap.maintain.audit import Change
    from rehabmap.maintain.uploads import ADDED, LIMIT, REFUSED, TABLE

    audit = keepers.site.directory.audit
    counts = [Change("services", None, 2), Change("areas_with_none", None, 0), Change("rejected", None, 1)]
    audit.record("maintainer 0", REFUSED, TABLE, "ips_services.csv", [Change("reason", None, "the oldest"), *counts])
    added = (LIMIT - 4) // 4
    for n in range(1, added + 1):
        audit.record(f"maintainer {n}", ADDED, TABLE, "community_rehab_teams.csv",
                     [*counts, Change("indexed", None, 100 + n)])
    audit.record(f"maintainer {added + 1}", REFUSED, TABLE, "statutory_advocacy.csv",
                 [Change("reason", None, "the newest")])
    assert audit.entries(resource_type=TABLE)[1] == LIMIT + 1
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    page = client.get("/keepers/upload").text
    uploads = re.search(r'<table class="nhsuk-table rm-table" id="uploads">(.*?)</table>', page, re.S).group(1)
    outcomes = [re.sub(r"\s+", " ", o).strip() for o in re.findall(r"(Added:.*?|Refused:.*?)</td>", uploads, re.S)]
    assert outcomes[0] == "Refused: the newest"
    assert outcomes[1:] == [f"Added: 2 services, 1 rows rejected; the index then held {100 + n} services"
                            for n in range(added, 0, -1)]
    assert "maintainer 0<" not in uploads and "the oldest" not in uploads


def test_a_refused_rebuild_names_its_sources_never_a_server_path(keepers, data_dir):
    """The last rebuild's sources are remembered by their server paths; an upload that rebuilds from them and
    is refused names the source that failed by its name (its folder as given, its file) and the reason, and no
    folder of the server reaches the page, the audit log, the upload list or the services' provenance."""
    from app.rebuild import SOURCES_FILE, rebuild_index

    feeds = keepers.site.home / "feeds"
    (feeds / "nested.json").mkdir(parents=True)  # read as a feed, it cannot be: a folder, not a file
    rebuild_index(keepers.site.settings, [SAMPLE], actor="test setup")  # as `rehabmap index sample/`
    sources = json.loads((keepers.site.home / SOURCES_FILE).read_text())
    (keepers.site.home / SOURCES_FILE).write_text(json.dumps([*sources, str(feeds)]))
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    answer = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert answer.status_code == 409, answer.text
    reason = "nothing could be imported from feeds/nested.json: cannot read the file: Is a directory"
    assert reason in answer.text
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    assert reason in {e.field: e.new for e in entries}["reason"]
    assert reason in client.get("/keepers/upload").text
    audit_api = keepers.client().get("/maintain/audit", headers=keepers.site.auth("admin")).text
    state = keepers.app.state.rehabmap
    provenance = {p.file for i in state.backend.ids() for p in state.backend.get(i).provenance}
    assert provenance == {"sample/rehabmap-sample.oruk.json"}
    server = (str(keepers.site.home), str(SAMPLE.parent))
    for shown in (answer.text, json.dumps([[e.resource_id, e.new] for e in entries]),
                  client.get("/keepers/upload").text, audit_api, json.dumps(sorted(provenance))):
        assert not any(folder in shown for folder in server)


def signed_in_on_sample(keepers):
    """A signed-in maintainer's client, on a site whose last rebuild read the sample feed (an upload rebuilds
    from it)."""
    from app.rebuild import rebuild_index

    rebuild_index(keepers.site.settings, [SAMPLE], actor="test setup")  # as `rehabmap index sample/`
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    return client


def add_ips(keepers, client, table: str, **more: str):
    report = upload(keepers, client, table, kind="curated-ips", name="ips_services.csv")
    assert report.status_code == 200, report.text
    return report, client.post("/keepers/upload/confirm", data=confirm_form(report.text, **more))


def test_a_geodata_folder_gone_from_under_the_server_is_a_503_whose_folder_the_log_names(keepers, tmp_path, caplog):
    """The geodata folder a volume that is no longer mounted: the rebuild a confirm starts cannot place the table's
    rows, and the reply is a 503 that names no folder of the server. Before, the log said nothing either (only the
    domain's errors were told to the operator), so no one learnt which folder to mount, and the keeper was answered
    with the API's JSON (`geodata_not_built`); now the reply logs the folder, and is a page that says what to do."""
    import logging

    client = signed_in_on_sample(keepers)
    report = upload(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE), kind="curated-ips", name="ips.csv")
    geodata = keepers.site.home / "geodata"
    geodata.unlink()
    geodata.symlink_to(tmp_path / "unmounted", target_is_directory=True)
    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        answer = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert answer.status_code == 503 and answer.headers["content-type"].startswith("text/html"), answer.text
    assert "rehabmap is not available right now" in answer.text and "rehabmap geodata build" in answer.text
    assert str(tmp_path) not in answer.text and str(keepers.site.home) not in answer.text
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert logged == ["The geodata folder is a link to a folder that is not there: create or mount that folder, or "
                      f"remove the link, then run `rehabmap geodata build`. ({geodata} -> {tmp_path / 'unmounted'})"]


def ips_claims(keepers) -> list[str]:
    claims = CoverageStore(keepers.site.settings.directory_path).claims()
    return sorted(c.area_code for c in claims if c.basis == "curated:ips_services.csv")


def test_an_upload_that_leaves_out_what_the_kept_table_holds_lists_it_and_takes_it_out_only_when_told(keepers):
    """Each upload replaces the kept table of its kind whole. Before, a file holding only a new Manchester row
    was reported as "Services it adds (1)" and nothing else; confirmed, it took the Leeds service (its page then
    404) and Lancashire's verified 'none' out of the directory unannounced. Now the report lists what it takes
    out, and the confirm needs a yes to it (without one, the page comes back and nothing is written)."""
    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    first, added = add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))
    assert "No ips_services.csv table has been added here yet, so this one takes nothing out" in first.text
    assert added.status_code == 303, added.text
    leeds = "curated-ips:e54000054-leeds-ips-employment-service-invented"
    assert state.backend.get(leeds) is not None and ips_claims(keepers) == ["E54000048", "E54000054"]

    report = upload(keepers, client, ips_table(MANCHESTER_IPS), kind="curated-ips", name="ips_services.csv")
    text = report.text
    assert "A table is added whole: it replaces the whole ips_services.csv table" in text
    assert "Services it removes (1)" in text
    removed = re.search(r'id="removed-services">(.*?)</table>', text, re.S).group(1)
    assert "Leeds IPS Employment Service (invented)" in removed
    assert "NHS West Yorkshire Integrated Care Board (E54000054)" in removed
    assert "Areas whose coverage it drops (2)" in text
    dropped = re.findall(r"<li>([^<]*)</li>", re.search(r'id="dropped-coverage">(.*?)</ul>', text, re.S).group(1))
    assert dropped[0] == ("NHS Lancashire and South Cumbria Integrated Care Board (E54000048): Individual "
                          "Placement and Support (employment), verified by Ann Lead as of 1 May 2026")
    assert dropped[1].startswith("NHS West Yorkshire Integrated Care Board (E54000054)")
    assert "Yes, take out the 1 service and the coverage of 2 areas listed above" in text

    unsaid = client.post("/keepers/upload/confirm", data=confirm_form(text))
    assert unsaid.status_code == 400 and "There is a problem" in unsaid.text
    assert "Say that you mean to take these out of the directory" in unsaid.text
    assert state.backend.get(leeds) is not None and ips_claims(keepers) == ["E54000048", "E54000054"]
    assert len(held(keepers)) == 1 and held_id(unsaid.text) == held_id(text)

    said = client.post("/keepers/upload/confirm", data=confirm_form(unsaid.text, removes="yes"))
    assert said.status_code == 303, said.text
    assert "took out 1 services and the coverage of 2 areas" in said.headers["location"].replace("+", " ")
    assert state.backend.get(leeds) is None and ips_claims(keepers) == ["E54000057"]
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    last = {e.field: e.new for e in entries if e.change_id == entries[-1].change_id}
    assert (last["services"], last["services_removed"], last["areas_uncovered"]) == (1, 1, 2)
    page = client.get("/keepers/upload").text
    assert "took out 1 services and the coverage of 2 areas" in page
    assert "A table is added whole, never row by row" in page


def test_a_verified_row_the_import_rejects_is_counted_as_covering_nothing_in_the_report(keepers):
    """The report compares coverage by the rule the rebuild claims it by: a verified row whose postcode places
    nothing makes no service and covers nothing. Before, the report counted West Yorkshire as still covered by the
    new file's Leeds row (its checks pass), so it did not list the coverage the confirm would take out."""
    client = signed_in_on_sample(keepers)
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    report = upload(keepers, client, ips_table(LEEDS_IPS.replace("LS9 7TF", "ZZ99 9ZZ"), LANCASHIRE_NONE),
                    kind="curated-ips", name="ips_services.csv")
    assert "Services it removes (1)" in report.text and "Areas whose coverage it drops (1)" in report.text
    dropped = re.search(r'id="dropped-coverage">(.*?)</ul>', report.text, re.S).group(1)
    assert "NHS West Yorkshire Integrated Care Board (E54000054)" in dropped


def test_a_file_holding_all_the_kept_table_holds_takes_nothing_out_and_needs_no_yes(keepers):
    """The yes is asked for only when something would be taken out: a file that adds a row to the kept table's
    rows is added as before."""
    client = signed_in_on_sample(keepers)
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    report, added = add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE, MANCHESTER_IPS))
    assert "holds every service of that table and covers every area it covers, so it takes nothing out" in report.text
    assert 'name="removes"' not in report.text
    assert added.status_code == 303, added.text
    assert ips_claims(keepers) == ["E54000048", "E54000054", "E54000057"]


def test_a_confirm_after_the_kept_table_changed_shows_what_it_takes_out_now(keepers):
    """Checked while nothing was kept, a file would take nothing out; meanwhile another maintainer added a
    table. Confirming the first as shown would have removed the other's rows unseen: it is shown again."""
    client = signed_in_on_sample(keepers)
    first = upload(keepers, client, ips_table(MANCHESTER_IPS), kind="curated-ips", name="ips_services.csv")
    assert 'name="removes"' not in first.text
    assert add_ips(keepers, client, ips_table(LEEDS_IPS))[1].status_code == 303
    again = client.post("/keepers/upload/confirm", data=confirm_form(first.text))
    assert again.status_code == 409 and 'id="replaced-changed"' in again.text
    assert "Services it removes (1)" in again.text and held_id(again.text) == held_id(first.text)
    assert ips_claims(keepers) == ["E54000054"]
    added = client.post("/keepers/upload/confirm", data=confirm_form(again.text, removes="yes"))
    assert added.status_code == 303 and ips_claims(keepers) == ["E54000057"]


def test_a_table_over_the_size_limit_is_not_advised_to_be_split(keepers):
    """Before, a file over 48 KB was told to "split it into smaller tables": followed, each part's upload
    replaced the one before, and only the last part stayed in the directory. Now the message says the table is
    added whole, in one file, and names the way that has no limit: `rehabmap index` on the server."""
    rows = [LEEDS_IPS.replace("Leeds IPS Employment Service", f"Leeds IPS Employment Service {n}") for n in range(700)]
    table = ips_table(*rows)
    assert len(table.encode()) > 48 * 1024
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    answer = upload(keepers, client, table, kind="curated-ips", name="ips_services.csv")
    assert answer.status_code == 400 and "There is a problem" in answer.text
    error = re.search(r'id="table-error">\s*<span[^>]*>Error: </span>(.*?)\s*</span>', answer.text, re.S)
    assert html.unescape(error.group(1)) == (
        "The file is larger than 48 KB, the most this page takes. A table is added whole, in one file: each "
        "upload replaces the whole table of its kind, so do not split it into parts. Ask whoever runs the server to "
        "index it with rehabmap index, which has no such limit")
    assert "split it into smaller" not in answer.text and held(keepers) == []


def test_a_table_with_a_header_and_no_rows_is_refused_as_having_no_rows(keepers):
    """Before, a file holding only the template's header was reported as "0 rows are rejected" and "Nothing in
    this file can be imported: every row is rejected", when it has no row at all. Now it is refused (400, nothing
    held) as having none, as an empty file is."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    answer = upload(keepers, client, ips_table(), kind="curated-ips", name="ips_services.csv")
    assert answer.status_code == 400 and "There is a problem" in answer.text
    assert ("The file has the header of ips_services.csv and no rows under it: add a row for each service (or "
            "none for an area that has none), then upload it again.") in answer.text
    assert "every row is rejected" not in answer.text and held(keepers) == []
    blank_lines = upload(keepers, client, ips_table("", ",,,,,,,,,,,,,"), kind="curated-ips", name="ips_services.csv")
    assert blank_lines.status_code == 400 and "no rows under it" in blank_lines.text


def test_a_rows_postcode_that_places_nothing_is_named_by_its_column_in_the_tables_own_words(keepers):
    """Before, a row with an unknown postcode was rejected with the public search's message, "Postcode 'ZZ99
    9ZZ' was not found in the ONS Postcode Directory for England. Check it, or try the first half of it (for
    example 'LS9')": it named no column, as the table's other reasons do, and advised a half postcode, which a
    service cannot have. Now the reason is the table's own: the column, and that a full current postcode is needed."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    rows = [LEEDS_IPS.replace("LS9 7TF", postcode).replace("Leeds IPS", f"Leeds IPS {n}")
            for n, postcode in enumerate(("ZZ99 9ZZ", "LS9", "not a postcode"))]
    answer = upload(keepers, client, ips_table(LEEDS_IPS, *rows), kind="curated-ips", name="ips_services.csv")
    assert answer.status_code == 200, answer.text
    rejected = re.search(r'id="rejected">(.*?)</table>', answer.text, re.S).group(1)
    reasons = [html.unescape(r) for r in re.findall(r"<td[^>]*>\d+</td>\s*<td[^>]*>([^<]*)</td>", rejected)]
    assert reasons == [
        "column postcode: 'ZZ99 9ZZ' is not a current postcode: the ONS Postcode Directory for England does not "
        "hold it. Check it; a service needs the full postcode of its base",
        "column postcode: 'LS9' is only a district; a service needs the full postcode of its base",
        "column postcode: 'not a postcode' is not a UK postcode"]  # (the row's own check, as before)
    assert "first half" not in answer.text


def kept_links(page: str) -> list[str]:
    return re.findall(r'<a href="(/keepers/upload/kept/[^"]+)" download>', page)


def as_read(service) -> dict:
    """A service as its source gives it: every field but when the rebuild read it (`fetched_at`)."""
    record = service.model_dump()
    record["provenance"] = [{k: v for k, v in p.items() if k != "fetched_at"} for p in record["provenance"]]
    return record


def test_the_kept_table_downloads_as_it_was_added_and_uploaded_again_unchanged_changes_nothing(keepers):
    """Each upload replaces the kept table whole, so a new file must hold every row that stays; before, a
    maintainer could not get the table the directory held. Now the upload page links it, byte for byte as it was
    added (here in Windows-1252, as a spreadsheet may save it, and said so), and the file sent back unchanged
    takes nothing out: the same services, the same coverage, the same kept bytes."""
    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    table = ips_table(LEEDS_IPS.replace("Leeds IPS", "Leeds Café IPS"), LANCASHIRE_NONE).encode("cp1252")
    report = client.post("/keepers/upload", data={"csrf": csrf_of(client.get("/keepers/upload").text),
                                                  "kind": "curated-ips"},
                         files={"table": ("mine.csv", table, "text/csv")})
    assert client.post("/keepers/upload/confirm", data=confirm_form(report.text)).status_code == 303
    ids, claims = sorted(state.backend.ids()), CoverageStore(keepers.site.settings.directory_path).claims()
    services = [as_read(state.backend.get(i)) for i in ids]

    assert kept_links(client.get("/keepers/upload").text) == ["/keepers/upload/kept/ips_services.csv"]
    download = client.get("/keepers/upload/kept/ips_services.csv")
    assert download.status_code == 200 and download.content == table
    assert download.headers["content-type"] == "text/csv; charset=windows-1252"
    assert download.headers["content-disposition"] == 'attachment; filename="ips_services.csv"'

    again = client.post("/keepers/upload", data={"csrf": csrf_of(client.get("/keepers/upload").text),
                                                 "kind": "curated-ips"},
                        files={"table": ("ips_services.csv", download.content, "text/csv")})
    assert "so it takes nothing out" in again.text and 'name="removes"' not in again.text
    assert client.post("/keepers/upload/confirm", data=confirm_form(again.text)).status_code == 303
    assert sorted(state.backend.ids()) == ids and [as_read(state.backend.get(i)) for i in ids] == services
    assert CoverageStore(keepers.site.settings.directory_path).claims() == claims
    assert (keepers.site.home / "curated" / "ips_services.csv").read_bytes() == table


def test_a_kind_never_uploaded_says_so_and_has_nothing_to_download(keepers):
    """No table of a kind uploaded: the page says so beside it, and its address says why there is nothing."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    page = client.get("/keepers/upload").text
    assert kept_links(page) == []
    kept = re.search(r'id="kept-tables">(.*?)</ul>', page, re.S).group(1)
    assert ("IPS services, per ICB (ips_services.csv): none has been uploaded here yet, so there is none to "
            "download; start from its blank template below") in kept
    none = client.get("/keepers/upload/kept/ips_services.csv")
    assert none.status_code == 404 and "No table to download" in none.text
    assert "No ips_services.csv table has been uploaded here yet, so there is none to download" in none.text
    unknown = client.get("/keepers/upload/kept/directory.sqlite")
    assert unknown.status_code == 404 and "There is no curated table named &#39;directory.sqlite&#39;" in unknown.text
    assert client.get("/keepers/upload/kept/..%2F..%2Fdirectory.sqlite").status_code == 404
    provider = keepers.client()
    keepers.sign_in(provider, "provider_a")
    assert provider.get("/keepers/upload/kept/ips_services.csv").status_code == 403


def test_the_maintainers_api_gives_the_kept_table_to_maintainers_and_admins(keepers):
    """GET /maintain/curated-tables/{file_name}: the same bytes, for a maintainer's or an admin's token; a
    provider's is refused (403), a kind never uploaded or a name no table has is a 404 saying so."""
    client = signed_in_on_sample(keepers)
    api = keepers.client()
    none = api.get("/maintain/curated-tables/ips_services.csv", headers=keepers.site.auth("maintainer"))
    assert none.status_code == 404 and none.json()["error"]["code"] == "table_not_kept"
    assert none.json()["error"]["message"].startswith("No ips_services.csv table has been uploaded here yet")
    unknown = api.get("/maintain/curated-tables/passwords.csv", headers=keepers.site.auth("maintainer"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_table"
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    for role in ("maintainer", "admin"):
        answer = api.get("/maintain/curated-tables/ips_services.csv", headers=keepers.site.auth(role))
        assert answer.status_code == 200 and answer.text == ips_table(LEEDS_IPS, LANCASHIRE_NONE)
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        assert answer.headers["content-disposition"] == 'attachment; filename="ips_services.csv"'
    refused = api.get("/maintain/curated-tables/ips_services.csv", headers=keepers.site.auth("provider_a"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.get("/maintain/curated-tables/ips_services.csv").status_code == 401


def test_the_audit_names_what_an_added_table_took_out(keepers):
    """Before, the audit counted what an upload took out ("services_removed": 1, "areas_uncovered": 2) and no one
    could see later which service and areas went. Now it records each service's id and name and each area's code,
    name and coverage, which the admins' audit API gives and the upload page lists under the upload."""
    client = signed_in_on_sample(keepers)
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    assert add_ips(keepers, client, ips_table(MANCHESTER_IPS), removes="yes")[1].status_code == 303
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    first = {e.field: e.new for e in entries if e.change_id == entries[0].change_id}
    assert (first["removed_services"], first["uncovered_areas"]) == ([], [])
    last = {e.field: e.new for e in entries if e.change_id == entries[-1].change_id}
    leeds = {"id": "curated-ips:e54000054-leeds-ips-employment-service-invented",
             "name": "Leeds IPS Employment Service (invented)"}
    areas = [{"code": "E54000048", "name": "NHS Lancashire and South Cumbria Integrated Care Board",
              "category": "ips_employment"},
             {"code": "E54000054", "name": "NHS West Yorkshire Integrated Care Board", "category": "ips_employment"}]
    assert (last["removed_services"], last["uncovered_areas"]) == ([leeds], areas)
    assert (last["services_removed"], last["areas_uncovered"]) == (1, 2)
    audit_api = keepers.client().get("/maintain/audit", headers=keepers.site.auth("admin")).json()["entries"]
    assert {e["field"]: e["new"] for e in audit_api if e["change_id"] == entries[-1].change_id}["removed_services"] \
        == [leeds]
    page = client.get("/keepers/upload").text
    uploads = re.search(r'<table class="nhsuk-table rm-table" id="uploads">(.*?)</table>', page, re.S).group(1)
    taken = [html.unescape(re.sub(r"<[^>]+>", "", li)) for li in re.findall(r"<li>(.*?)</li>", uploads, re.S)]
    assert taken == ["Leeds IPS Employment Service (invented) (curated-ips:e54000054-leeds-ips-employment-service-"
                     "invented)",
                     "NHS Lancashire and South Cumbria Integrated Care Board (E54000048): Individual Placement and "
                     "Support (employment)",
                     "NHS West Yorkshire Integrated Care Board (E54000054): Individual Placement and Support "
                     "(employment)"]


def test_a_service_an_upload_took_out_has_its_history_say_which_when_and_by_whom(keepers):
    """The audit names each service an upload took out (`removed_services`), but before, the service's own history
    page said nothing of it: taken out of the index, its history was a 404 "No such service", as if the directory
    had never held it. Now the history lists the upload that took it out, with when and who, among its changes."""
    client = signed_in_on_sample(keepers)
    leeds = "curated-ips:e54000054-leeds-ips-employment-service-invented"
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    assert add_ips(keepers, client, ips_table(MANCHESTER_IPS), removes="yes")[1].status_code == 303
    assert keepers.app.state.rehabmap.backend.get(leeds) is None
    [upload] = [e for e in keepers.site.directory.audit.entries(resource_type="curated_table")[0]
                if e.field == "removed_services" and e.new]
    page = client.get(f"/keepers/history/{leeds}")
    assert page.status_code == 200, page.text
    rows = [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                                         re.S)]
            for row in re.findall(r"<tr class=\"nhsuk-table__row\">(.*?)</tr>", page.text, re.S)]
    who = f"maintainer of the tests (token {keepers.site.token_ids['maintainer']})"  # its label and id, no secret
    assert rows == [[long_moment(upload.at, seconds=True), who, "upload", "curated table", "ips_services.csv lists it",
                     "taken out: the ips_services.csv added in its place does not list it"]]
    assert 'href="/keepers/upload"' in page.text  # where the upload is listed, with all it took out
    assert re.search(r'<a class="nhsuk-back-link[^"]*" href="/keepers/services">', page.text)  # not its own: gone
    assert "No change has been made to it here" not in page.text
    assert client.get("/keepers/history/curated-ips:e54000048-none").status_code == 404  # an id never listed


def test_a_service_taken_out_keeps_that_upload_in_its_history_however_many_uploads_follow(keepers):
    """Before, a service's history read only the latest 400 upload rows naming services taken out, so the upload
    that took Leeds' service out fell out of its history (its page a 404 "No such service", the API's total 0)
    once 400 more had been added. Now the rows are found by the service's id, exactly, however old."""
    from rehabmap.maintain.audit import AuditLog, Change
    from rehabmap.maintain.uploads import ADDED, LIMIT, REMOVED_SERVICES, TABLE

    client = signed_in_on_sample(keepers)
    leeds = "curated-ips:e54000054-leeds-ips-employment-service-invented"
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    assert add_ips(keepers, client, ips_table(MANCHESTER_IPS), removes="yes")[1].status_code == 303
    [upload] = [e for e in keepers.site.directory.audit.entries(resource_type=TABLE)[0]
                if e.field == REMOVED_SERVICES and e.new]
    with keepers.site.directory.database.transaction() as conn:  # later uploads, each taking another service out
        for n in range(LIMIT):
            AuditLog.append(conn, f"maintainer {n}", ADDED, TABLE, "community_rehab_teams.csv",
                            [Change(REMOVED_SERVICES, None, [{"id": f"curated-crt:team-{n}", "name": f"Team {n}"}])],
                            upload.at)
    page = client.get(f"/keepers/history/{leeds}")
    assert page.status_code == 200 and "taken out: the ips_services.csv added in its place" in page.text
    answer = keepers.client().get("/maintain/audit", params={"service_id": leeds},
                                  headers=keepers.site.auth("admin")).json()
    assert (answer["total"], [e["id"] for e in answer["entries"]]) == (1, [upload.id])


def test_the_audit_api_and_command_line_give_a_service_taken_out_the_history_its_page_gives(keepers):
    """A service's history is one rule for every face. Before, `GET /maintain/audit?service_id=` and `rehabmap audit
    --service` gave only the rows filed under the service, so of Leeds' service, which an upload took out, they said
    nothing (total 0) where its history page lists that upload; and an id named rows of another kind's that shares
    it (an organisation's). Now both give the page's rows: the upload's among them, and only those."""
    from tests.maintain.conftest import cli_here

    client = signed_in_on_sample(keepers)
    leeds = "curated-ips:e54000054-leeds-ips-employment-service-invented"
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    assert add_ips(keepers, client, ips_table(MANCHESTER_IPS), removes="yes")[1].status_code == 303
    [upload] = [e for e in keepers.site.directory.audit.entries(resource_type="curated_table")[0]
                if e.field == "removed_services" and e.new]
    assert upload.new == [{"id": leeds, "name": "Leeds IPS Employment Service (invented)"}]
    admin = keepers.site.auth("admin")
    answer = keepers.client().get("/maintain/audit", params={"service_id": leeds}, headers=admin).json()
    assert (answer["total"], [e["id"] for e in answer["entries"]]) == (1, [upload.id])
    assert answer["entries"][0]["new"] == upload.new and answer["entries"][0]["resource_id"] == "ips_services.csv"
    after = keepers.client().get("/maintain/audit", params={"service_id": leeds, "after_id": upload.id}, headers=admin)
    assert (after.json()["total"], after.json()["entries"]) == (0, [])
    printed = cli_here(keepers.site, "audit", "--service", leeds)
    assert printed.returncode == 0, printed.stderr
    assert [json.loads(line)["id"] for line in printed.stdout.splitlines()] == [upload.id]
    assert cli_here(keepers.site, "audit", "--service", leeds, "--hsds").stdout == ""  # a table's row: no HSDS change

    organisation = keepers.client().post("/maintain/organisations", json={"name": "Harbourlight (fictional)"},
                                         headers=admin).json()["id"]
    named = keepers.client().get("/maintain/audit", params={"service_id": str(organisation)}, headers=admin).json()
    assert (named["total"], named["entries"]) == (0, [])


def test_a_kept_table_changed_on_the_servers_disk_into_no_text_is_told_not_a_500(keepers, caplog):
    """Each table is checked as text when it is added, so a kept table that reads as none (binary, UTF-16 cut
    short, or no file at all under its name) is only a change on the server's disk. Before, its download, on the
    page and from the API, was a 500 and nothing said why; now both say the file cannot be read and what can be
    done (the operator restores it, or a maintainer uploads the whole table again), and the log says which file."""
    kept = keepers.site.home / "curated" / "ips_services.csv"
    kept.parent.mkdir(parents=True)
    client, api = keepers.client(), keepers.client()
    keepers.sign_in(client, "maintainer")
    for content, why in ((b"PK\x03\x04\x00\x00binary", "the file is binary, not text (it holds NUL bytes)"),
                         (b"\xff\xfeu\x00t\x00i", "cannot read the file as UTF-16 text"),
                         (None, "cannot read the file: Is a directory")):
        if content is None:
            kept.unlink()
            kept.mkdir()
        else:
            kept.write_bytes(content)
        fact = f"The ips_services.csv table kept here cannot be read: {why}"
        with caplog.at_level("ERROR", logger="rehabmap.api"):
            caplog.clear()
            page = client.get("/keepers/upload/kept/ips_services.csv")
            answer = api.get("/maintain/curated-tables/ips_services.csv", headers=keepers.site.auth("maintainer"))
        assert page.status_code == 503 and "The table cannot be downloaded" in page.text
        said = html.unescape(re.search(r"</h1>\s*<p>(.*?)</p>", page.text, re.S).group(1))
        assert said.startswith(fact) and said.endswith(
            "Whoever runs rehabmap here must restore it from its backup; or upload the whole table again on the "
            "upload page, which replaces it.")
        assert 'href="/keepers/upload"' in page.text and str(kept) not in page.text
        error = answer.json()["error"]
        assert (answer.status_code, error["code"]) == (503, "table_unreadable")
        assert error["message"].startswith(fact) and error["message"].endswith(
            "Nothing is wrong with the request: the server's operator must restore the file from its backup, or "
            "a maintainer can upload the whole table again on the keepers' upload page, /keepers/upload, which "
            "replaces it.")
        assert str(kept) not in answer.text
        logged = [r.getMessage() for r in caplog.records]  # by the face that answers it, once a minute at most
        assert len(logged) == 1 and all(m.startswith(fact) and m.endswith(f"since. ({kept})") for m in logged)


def test_an_upload_replacing_a_kept_table_that_cannot_be_read_does_not_say_it_takes_nothing_out(keepers, caplog):
    """The kept table was changed on the server's disk into no text after the directory took Leeds' service and two
    areas' coverage from it. Before, the report of a Manchester-only file read it as empty and said "This file holds
    every service of that table and covers every area it covers, so it takes nothing out", and its confirm, asking
    no yes, took Leeds and the coverage out unannounced. Now the report says the kept table cannot be read and that
    what adding the file takes out cannot be told, the confirm needs the maintainer's yes, and the audit and the
    page say that what it took out is not known."""
    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    assert add_ips(keepers, client, ips_table(LEEDS_IPS, LANCASHIRE_NONE))[1].status_code == 303
    leeds = "curated-ips:e54000054-leeds-ips-employment-service-invented"
    (keepers.site.home / "curated" / "ips_services.csv").write_bytes(b"PK\x03\x04\x00\x00binary")

    with caplog.at_level("ERROR", logger="rehabmap.api"):
        report = upload(keepers, client, ips_table(MANCHESTER_IPS), kind="curated-ips", name="ips_services.csv")
    kept = keepers.site.home / "curated" / "ips_services.csv"  # the report names no file: the operator's log does
    assert [m for m in caplog.messages if m.startswith("The ips_services.csv table")] == [
        "The ips_services.csv table kept here cannot be read: the file is binary, not text (it holds NUL bytes). Every "
        f"table is read as text when it is added, so the file has been changed on the server since. ({kept})"]
    text = html.unescape(report.text)
    assert "so it takes nothing out" not in text and str(kept) not in text
    assert ("The ips_services.csv table kept here cannot be read: the file is binary, not text (it holds NUL bytes)."
            in text)
    assert "what adding this file takes out of the directory cannot be told" in text
    assert "Yes, replace the table the directory holds now, whatever it takes out" in text
    unsaid = client.post("/keepers/upload/confirm", data=confirm_form(report.text))
    assert unsaid.status_code == 400 and "Say that you mean to take these out of the directory" in unsaid.text
    assert state.backend.get(leeds) is not None and ips_claims(keepers) == ["E54000048", "E54000054"]

    said = client.post("/keepers/upload/confirm", data=confirm_form(unsaid.text, removes="yes"))
    assert said.status_code == 303, said.text
    done = unquote_plus(said.headers["location"])
    assert "the table it replaced could not be read, so what it took out is not known" in done
    assert "took out 0" not in done
    assert state.backend.get(leeds) is None and ips_claims(keepers) == ["E54000057"]
    entries, _ = keepers.site.directory.audit.entries(resource_type="curated_table")
    last = {e.field: e.new for e in entries if e.change_id == entries[-1].change_id}
    assert last["replaced_unread"].startswith("The ips_services.csv table kept here cannot be read")
    page = html.unescape(client.get("/keepers/upload").text)
    assert "the table it replaced could not be read, so what it took out is not known" in page


def accepted_then_changed(keepers, data_dir: Path, tmp_path: Path):
    """The site rebuilt from the sample feed and a copy of the real 2018 NHS hospital list (`rehabmap index` of both),
    its first held level 1 unit accepted by a maintainer (shown: its next change is the live index's to follow), and
    the copy then changed as the list's next edition would, giving that hospital a new phone, 0113 496 0000: the
    accepted record and the phone the live index shows for it."""
    from app.rebuild import rebuild_index

    hospitals = tmp_path / "nhs_website_hospitals_2018.csv"
    hospitals.write_bytes((data_dir / "services" / hospitals.name).read_bytes())
    rebuild_index(keepers.app.state.rehabmap.settings, [SAMPLE, hospitals], actor="test setup")
    queue = keepers.app.state.open_review()
    [held, *_] = queue.items(source="nhs-hospitals-2018", proposed_type="inpatient_rehab_level1")
    queue.accept([held.service_id], actor="test setup")
    phone = keepers.app.state.rehabmap.backend.get(held.service_id).phone
    with hospitals.open(encoding="utf-8", newline="") as read:
        rows = list(csv.DictReader(read))
    [row] = [r for r in rows if r["OrganisationCode"] == held.service_id.split(":", 1)[1]]
    row["Phone"] = "0113 496 0000"
    with hospitals.open("w", encoding="utf-8", newline="") as written:
        out = csv.DictWriter(written, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    return held, phone


def test_an_upload_whose_review_queue_run_a_mapping_refuses_says_the_table_is_in_and_what_is_not_yet_shown(
        keepers, data_dir, tmp_path, monkeypatch, caplog):
    """An upload rebuilds from the last rebuild's sources, here the real 2018 NHS hospital list, whose held rows go
    to the review queue as a run; that run's live write reads the mappings' `supersedes` again. One put wrong after
    the rebuild read them (an edit during the rebuild) refuses it: the table is in the new index, live, and the run's
    change to a hospital a maintainer accepted is stored, not yet shown. Before, the page said only that the table
    was in; now it says what is held back in the Sources page's words (the mapping and its key, never its folder),
    and the server's log names the mapping's file."""
    import app.rebuild
    from indexer.precedence import source_precedence
    from indexer.sources.csv_mapping import MAPPINGS_DIR

    held, phone = accepted_then_changed(keepers, data_dir, tmp_path)
    state = keepers.app.state.rehabmap
    monkeypatch.setattr(app.rebuild, "source_precedence", partial(source_precedence, MAPPINGS_DIR))  # read whole
    mapping = mistyped_supersedes(tmp_path, monkeypatch)  # and put wrong by the time the queue's run writes
    before = len(state.backend.ids())
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))

    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        added = client.post("/keepers/upload/confirm", data=confirm_form(report.text), follow_redirects=False)

    assert added.status_code == 303, added.text
    page = html.unescape(" ".join(client.get(added.headers["location"]).text.split()))
    assert re.search(r"community_rehab_teams\.csv is in the directory: 2 services added from it, 1 rows rejected\. "
                     r"The index now holds \d+ services\. " + HELD_BACK_SAID, page), page
    assert str(mapping.parent) not in page
    assert len(state.backend.ids()) == before + 2, "the table's services are in the live index"
    assert state.backend.get(held.service_id).phone == phone, "the queue's change is not yet shown"
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert len(logged) == 1 and logged[0].startswith(
        "the run of nhs-hospitals-2018 applied and its records are stored, but not yet shown in searches: mapping "
        "nhs_website_hospitals_2018.toml: ") and logged[0].endswith(f"({mapping})"), logged
    assert client.get("/keepers/upload").text.count("not yet shown in searches") == 0, "said after the upload alone"


def test_a_confirm_whose_rebuild_a_mapping_refuses_says_so_and_keeps_the_upload_to_be_sent_again(
        keepers, data_dir, tmp_path, monkeypatch, caplog):
    """A mapping's `supersedes` put wrong before the confirm refuses the rebuild before it begins (the merge's order
    cannot be read). Before, the confirm caught only another rebuild running or an import refused: the keeper got
    the generic error page and the held upload was thrown away. Now the report page comes back saying what is wrong
    in the keepers' words (the mapping and its key, never its folder; whoever runs the syncs must put it right), the
    file still held, and the same confirm adds it once the mapping is mended; the server's log names the mapping's
    file. Like a confirm sent while another rebuild runs, it is not audited: nothing was tried with the table."""
    from indexer.sources.csv_mapping import MAPPINGS_DIR
    from indexer.precedence import source_precedence

    client = signed_in_on_sample(keepers)
    state = keepers.app.state.rehabmap
    before = state.backend.ids()
    report = upload(keepers, client, teams_table(data_dir))
    confirm = confirm_form(report.text)
    mapping = mistyped_supersedes(tmp_path, monkeypatch)

    with caplog.at_level(logging.ERROR, logger="rehabmap.api"):
        refused = client.post("/keepers/upload/confirm", data=confirm)

    assert refused.status_code == 503, refused.text
    page = html.unescape(" ".join(refused.text.split()))
    assert re.search(r"mapping nhs_website_hospitals_2018\.toml: \[source\] supersedes names 'nhs-hospitals-2105', "
                     r"which no mapping in mappings/ gives; [^<]*\. Whoever runs the syncs must put the mapping "
                     r"right\. The file is held for you: add it again once that is put right\.", page), page
    assert str(mapping.parent) not in page
    assert held_id(refused.text) == confirm["upload"] and len(held(keepers)) == 1
    assert state.backend.ids() == before and not (keepers.site.home / "curated").exists()
    assert keepers.site.directory.audit.entries(resource_type="curated_table")[1] == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "rehabmap.api"]
    assert len(logged) == 1 and logged[0].endswith(f"({mapping})"), logged
    monkeypatch.setattr(source_precedence, "__defaults__", (MAPPINGS_DIR,))  # the mapping mended
    added = client.post("/keepers/upload/confirm", data=confirm, follow_redirects=False)
    assert added.status_code == 303, added.text
    assert (keepers.site.home / "curated" / "community_rehab_teams.csv").is_file() and held(keepers) == []


def test_a_table_whose_header_names_a_column_twice_is_refused_naming_it(keepers):
    """The IPS table with its organisation column headed 'service_name' too. A row's cells are read by the header's
    names, so the last was read: the report listed the Leeds service under the organisation's column, empty, as a
    row rejected for having no name. Now the upload is refused (400, nothing held), naming the column, as an import
    of the table is."""
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    table = ips_table(LEEDS_IPS).replace(",organisation,", ",service_name,", 1)
    answer = upload(keepers, client, table, kind="curated-ips", name="ips_services.csv")
    assert answer.status_code == 400 and "There is a problem" in answer.text
    assert ("The ips_services.csv table reads column(s) ['service_name'], which the file's header names more than "
            "once, so which of them it means cannot be told: give each column of the header its own name."
            ) in html.unescape(answer.text)
    assert held(keepers) == []


def test_an_upload_whose_review_queue_runs_live_write_fails_says_the_server_catches_it_up(
        sample_index, geodata_dir, data_dir, tmp_path, es_server, es_client):
    """An upload on the search engine backend rebuilds from the last rebuild's sources, here the real 2018 NHS hospital
    list, whose held rows go to the review queue as a run; its next edition changes the phone of a hospital a
    maintainer accepted. The test's cluster proxy lets the build's one bulk request through and then answers no bulk
    request (a cluster gone), so the table goes live and only the run's live write after the swap fails. Before,
    nothing tested the page's words for this (they were checked by reading the code). The page says the table is in
    and that its held rows are stored, the index to follow them once it answers; the new index is live, the change
    not yet shown; once the cluster answers, the server's own catch-up writes it."""
    from app.sync import converge
    from web.keepers.maintainer_upload import UNWRITTEN_SAID

    with uploaded_on_a_cluster(sample_index, geodata_dir, data_dir, tmp_path, es_server, es_client) as upload_:
        proxy, keepers, client, report, held, phone = upload_
        state = keepers.app.state.rehabmap
        before = len(state.backend.ids())
        proxy.forget()
        proxy.fail(r"^/_bulk", None, after=1)

        added = client.post("/keepers/upload/confirm", data=confirm_form(report.text), follow_redirects=False)

        bulks = [i for i, request in enumerate(proxy.seen()) if request[1].partition("?")[0] == "/_bulk"]
        switch = proxy.seen().index(("POST", "/_aliases?master_timeout=30s"))
        assert len(bulks) > 1 and bulks[0] < switch < bulks[1], proxy.seen()
        said_of_the_hospitals(client, added, UNWRITTEN_SAID)
        assert UNWRITTEN_SAID == ("were stored, but the index could not yet follow them: the server catches it up on "
                                  "its own once the index answers.")
        assert len(state.backend.ids()) == before + 2, "the table's services are in the live index"
        assert state.backend.get(held.service_id).phone == phone, "the queue's change is not yet shown"

        proxy.heal()
        assert converge(state) == 1  # what the server's look does (`app.converge`), once the cluster answers
        assert state.backend.get(held.service_id).phone == "0113 496 0000"


def said_of_the_hospitals(client, added, words: str) -> str:
    """The page the upload's redirect `added` leads to, which says the teams table is in, then `words` of the review
    queue's run of the hospital list's held rows (`accepted_then_changed`): the page, in one line."""
    assert added.status_code == 303, added.text
    page = html.unescape(" ".join(client.get(added.headers["location"]).text.split()))
    assert re.search(r"community_rehab_teams\.csv is in the directory: 2 services added from it, 1 rows rejected\. "
                     r"The index now holds \d+ services\. When it was uploaded, its rows held for review from "
                     r"nhs-hospitals-2018 " + re.escape(words), page), page
    return page


@contextmanager
def uploaded_on_a_cluster(sample_index, geodata_dir, data_dir, tmp_path, es_server, es_client):
    """A site on the search engine backend, through the test's cluster proxy, rebuilt from the sample and the 2018
    hospital list (`accepted_then_changed`), and a maintainer's upload of the teams table checked, not yet confirmed:
    the proxy, the keepers' app, the signed-in client, the report page, the accepted record and its phone."""
    from rehabmap.config import Backend
    from tests.index.cluster_proxy import ClusterProxy

    base = f"rehabmap-upload-{uuid.uuid4().hex[:10]}"
    try:
        with ClusterProxy(es_server.url) as proxy:
            keepers = make_keepers(make_site(tmp_path / "home", sample_index, geodata_dir, data_dir),
                                   backend=Backend.elasticsearch, elasticsearch_url=proxy.url,
                                   elasticsearch_index=base)
            held, phone = accepted_then_changed(keepers, data_dir, tmp_path)
            client = keepers.client()
            keepers.sign_in(client, "maintainer")
            yield proxy, keepers, client, upload(keepers, client, teams_table(data_dir)), held, phone
    finally:
        drop_indices(es_client, base)


def test_an_upload_whose_review_queue_run_stopped_at_the_share_says_so_and_how_to_apply_it(keepers, data_dir, tmp_path):
    """The 2018 hospital list the site was rebuilt from (`accepted_then_changed`), every row then given a new phone,
    as a release reading the list otherwise changes most of its held records: the upload's rebuild re-reads it, and
    the review queue's run of its held rows stops at the share of changes a run may make, applying nothing. Before,
    the page said only that the table was in; now it names the stopped run and the command that applies it."""
    from web.keepers.maintainer_upload import STOPPED_SAID

    held, phone = accepted_then_changed(keepers, data_dir, tmp_path)
    hospitals = tmp_path / "nhs_website_hospitals_2018.csv"
    with hospitals.open(encoding="utf-8", newline="") as read:
        rows = [{**row, "Phone": f"0113 496 {n:04d}"} for n, row in enumerate(csv.DictReader(read))]
    with hospitals.open("w", encoding="utf-8", newline="") as written:
        out = csv.DictWriter(written, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))

    added = client.post("/keepers/upload/confirm", data=confirm_form(report.text), follow_redirects=False)

    said_of_the_hospitals(client, added, STOPPED_SAID)
    assert keepers.app.state.rehabmap.backend.get(held.service_id).phone == phone, "the stopped run applied nothing"


def test_an_upload_whose_review_queue_run_could_not_start_says_its_held_rows_wait_for_the_next_rebuild(
        sample_index, geodata_dir, data_dir, tmp_path, es_server, es_client):
    """As above, but the cluster answers no request at all from the moment the upload's new index goes live (the
    test's proxy fails every request after the `_aliases` switch), so the review queue's run of the hospital list's
    held rows cannot write the index at its start and does not start: nothing of it is applied. Before, the page
    said "Its rows held for review are stored", as for a run whose live write alone failed; now it says they are not,
    and that the next rebuild stores them, as the command's `error:` line says."""
    from web.keepers.maintainer_upload import UNSTARTED_SAID

    with uploaded_on_a_cluster(sample_index, geodata_dir, data_dir, tmp_path, es_server, es_client) as upload_:
        proxy, keepers, client, report, held, phone = upload_
        state = keepers.app.state.rehabmap
        before = len(state.backend.ids())
        proxy.before(r"^/_aliases", lambda: proxy.fail(r"", 503))

        added = client.post("/keepers/upload/confirm", data=confirm_form(report.text), follow_redirects=False)

        proxy.heal()
        page = said_of_the_hospitals(client, added, UNSTARTED_SAID)
        assert UNSTARTED_SAID == ("were not stored: the index could not be written when their run into the review "
                                  "queue began, so nothing of it was applied. The next rebuild stores them (the next "
                                  "upload, or 'rehabmap index'), once the index answers.")
        assert "are stored" not in page
        assert len(state.backend.ids()) == before + 2, "the table's services are in the live index"
        assert state.backend.get(held.service_id).phone == phone
        [item] = keepers.app.state.open_review().items(states=("accepted",), service_ids=[held.service_id])
        assert item.record.service["phone"] == phone, "the run applied nothing: the store holds the phone it held"


def test_an_upload_whose_held_rows_store_cannot_be_opened_after_the_swap_says_they_are_not_stored_and_logs_why(
        keepers, data_dir, tmp_path, monkeypatch, caplog):
    """The store the review queue's runs of the upload's held rows open, once the new index is live, cannot be opened
    (a real SQLite open of a path that is a folder: "unable to open database file", as a database gone since the
    swap). Before, the page said only "… is in the directory …", and nothing was logged or recorded (the run's
    failure was kept for the command, which the page does not print). Now the page names the source whose rows were
    not stored and says the next rebuild stores them, and the server's log says why, at ERROR, with the traceback."""
    import app.sync
    from indexer.sync.store import SyncStore
    from web.keepers.maintainer_upload import FAILED_SAID

    held, phone = accepted_then_changed(keepers, data_dir, tmp_path)
    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    report = upload(keepers, client, teams_table(data_dir))
    folder = tmp_path / "not-a-file"
    folder.mkdir()
    monkeypatch.setattr(app.sync, "open_store", lambda settings: SyncStore(folder))
    with caplog.at_level(logging.ERROR):
        added = client.post("/keepers/upload/confirm", data=confirm_form(report.text), follow_redirects=False)

    said_of_the_hospitals(client, added, FAILED_SAID)
    assert FAILED_SAID == ("were not stored: their run into the review queue failed, for a reason the server's log "
                           "gives. The next rebuild stores them (the next upload, or 'rehabmap index'), once that is "
                           "mended.")
    [logged] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert logged.getMessage() == ("the review queue's run of nhs-hospitals-2018, of the rows the upload of "
                                   "community_rehab_teams.csv held, failed: OperationalError: unable to open database "
                                   "file")
    assert logged.exc_info is not None
    assert keepers.app.state.rehabmap.backend.get(held.service_id).phone == phone


def test_the_upload_page_names_the_sources_of_each_review_queue_run_cut_short_as_of_the_upload(keepers):
    """The page the upload's redirect leads to, one source's held rows stored but not yet in the index and another's
    not stored (their run did not start). Before, it said "Its rows held for review are stored, …" and "Its rows held
    for review are not stored: …" one after the other, naming neither source, and in the present tense, though the
    address keeps them: shown again days later, it said so still. Now each sentence names its sources and says it
    was so when the table was uploaded."""
    from web.keepers.maintainer_upload import UNSTARTED_SAID, UNWRITTEN_SAID

    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    page = client.get("/keepers/upload", params={"done": "teams.csv is in the directory.",
                                                 "unwritten": "nhs-hospitals-2018", "unstarted": "sites,ods"})
    assert page.status_code == 200
    assert (f"teams.csv is in the directory. When it was uploaded, its rows held for review from nhs-hospitals-2018 "
            f"{UNWRITTEN_SAID} When it was uploaded, its rows held for review from sites and ods {UNSTARTED_SAID}"
            ) in html.unescape(" ".join(page.text.split()))


def test_the_upload_page_cuts_a_long_list_of_sources_at_a_comma(keepers):
    """The address says at most 300 characters of sources. Before, cut at the 300th character, the last source's
    name ended mid-word ("… and nhs-hosp"); now the list is cut at the last comma before it."""
    from web.keepers.maintainer_upload import UNSTARTED_SAID

    client = keepers.client()
    keepers.sign_in(client, "maintainer")
    sources = [f"nhs-hospitals-{year}" for year in range(2000, 2020)]  # 20 names of 18 characters: 379 in all
    page = client.get("/keepers/upload", params={"done": "teams.csv is in the directory.",
                                                 "unstarted": ",".join(sources)})
    said = html.unescape(" ".join(page.text.split()))
    assert f"from {', '.join(sources[:14])} and {sources[14]} {UNSTARTED_SAID}" in said, said
