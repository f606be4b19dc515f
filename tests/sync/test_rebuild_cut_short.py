"""A rebuild cut short before its index went live, judged by the next look at its home (`app.pending_rebuild`): its
uploaded table and its curated tables' coverage claims are kept only where the live index is its own build's. Run in
this process against the real search server (osmem, or the cluster at ELASTICSEARCH_URL) through the fault-injecting
proxy, and a real PostgreSQL store, as two hosts with homes of their own share them (docs/deploy.md)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.parts import open_backend
from app.pending_rebuild import INCOMING, PENDING_FILE, begin, finish_interrupted, unfinished
from app.main import create_app
from app.rebuild import rebuild_index
from rehabmap.config import Backend, Settings
from rehabmap import errors
from rehabmap.errors import DomainError, IndexRefused, IndexUnavailable, SwitchNotKnown, SwitchUnsettled
from rehabmap.maintain.migrations import LATEST
from rehabmap.maintain.store import Directory, open_database
from search.elastic import ElasticIndex, alias_of
from search.embedded import process_started
from tests.es_server import drop_indices
from tests.index.cluster_proxy import ClusterProxy
from tests.sync.store_fixtures import make_home, rehabmap_here, table_rows
from tests.sync.test_killed_sync import IPS_TABLE, WEST_YORKSHIRE

SAMPLE = Path(__file__).resolve().parents[2] / "sample"
CURATED_CLAIMS = "SELECT area_code FROM coverage_claims WHERE basis LIKE 'curated:%'"


def ips_table(folder: Path) -> Path:
    """West Yorkshire's IPS table, as a maintainer uploads it."""
    table = folder / "ips_services.csv"
    table.write_text(IPS_TABLE)
    return table


def served_sample(home: Path, data_dir: Path, proxy: ClusterProxy, base: str) -> Settings:
    """A home whose index, on the cluster behind `proxy`, is built from sample/ (60 services) and its synced records."""
    settings = Settings(home=home, data_dir=data_dir, backend=Backend.elasticsearch, elasticsearch_url=proxy.url,
                        elasticsearch_index=base)
    assert rebuild_index(settings, [SAMPLE], actor="test").report.indexed >= 60
    return settings


def test_a_rebuild_cut_short_before_its_swap_is_forgotten_though_another_hosts_rebuild_went_live_since(
        tmp_path, geodata_dir, data_dir, es_server, es_client, postgres):
    """Host A's rebuild with an IPS table is cut short at its alias switch (the cluster does not answer it), so its
    index never serves; then host B, a home of its own on the same cluster and store, rebuilds from sample/, live.
    Before, A's next look took B's index, built after A's rebuild began, for A's own: it kept A's table as uploaded
    (every later rebuild of A's would add its services) and claimed West Yorkshire's IPS coverage for a table no
    index served. Now the live index bears B's build's token, not A's: A's rebuild is forgotten, its table with it."""
    base = f"rehabmap-two-homes-{uuid.uuid4().hex[:10]}"
    url = postgres.new_database()
    table = ips_table(tmp_path)
    try:
        with ClusterProxy(es_server.url) as proxy:
            a, b = (Settings(home=make_home(tmp_path / name, geodata_dir), data_dir=data_dir, database_url=url,
                             backend=Backend.elasticsearch, elasticsearch_url=proxy.url, elasticsearch_index=base)
                    for name in ("host-a", "host-b"))
            assert rebuild_index(b, [SAMPLE], actor="test").report.indexed == 60
            proxy.fail(r"^/_aliases", None)  # and the index read no more, so A cannot judge it then: cut short
            proxy.before(r"^/_aliases", lambda: proxy.fail(r"/_mapping", None))
            with pytest.raises(IndexUnavailable):
                rebuild_index(a, [SAMPLE], actor="test", table=table)
            assert (a.home / PENDING_FILE).is_file() and (a.home / "curated" / (table.name + INCOMING)).is_file()
            proxy.heal()
            assert rebuild_index(b, [SAMPLE], actor="test").report.indexed == 60
            settled(a.home)  # A's switch, unanswered, no longer to apply

            finish_interrupted(a)

            live = ElasticIndex(es_client, alias_of(base)).info()
            assert live.count == 60 and live.build is not None, "B's index serves, without A's table"
            assert not (a.home / PENDING_FILE).exists() and not (a.home / "curated").exists(), "A's table forgotten"
            assert WEST_YORKSHIRE not in [code for (code,) in table_rows(a, CURATED_CLAIMS)]
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_whose_build_failed_while_another_index_serves_is_forgotten_at_once(
        tmp_path, geodata_dir, data_dir, es_server, es_client):
    """A rebuild with an IPS table whose bulk write the cluster refuses (400) before any switch, the index it would
    replace still answering: its index never serves, so its note and table are forgotten there and then. Before,
    only a refusal of its checks (`ImportRefused`) forgot them: the file stayed, and `sync-status` said "rebuild
    under way … it finishes itself" of it while the process that failed (a server's upload) ran on."""
    base = f"rehabmap-unbuilt-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(make_home(tmp_path / "home", geodata_dir), data_dir, proxy, base)
            proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test proxy"))
            with pytest.raises(IndexRefused):
                rebuild_index(settings, [SAMPLE], actor="test", table=table)

            assert not (settings.home / PENDING_FILE).exists() and not (settings.home / "curated").exists()
            assert unfinished(settings) is None
    finally:
        drop_indices(es_client, base)


def settled(home: Path) -> None:
    """The time passed by which the cluster has applied or given up a switch a rebuild's note says it did not answer
    (`settles_at`, a minute after it failed), as a look a minute later finds it: the note's clock, not the test's."""
    pending = json.loads((home / PENDING_FILE).read_text())
    pending["failed"]["settles_at"] = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    (home / PENDING_FILE).write_text(json.dumps(pending))


def test_a_rebuild_whose_switch_a_gateway_answered_503_is_kept_and_finished_once_the_cluster_applies_it(
        tmp_path, geodata_dir, data_dir, es_server, es_client):
    """A rebuild with an IPS table whose alias switch a gateway answers 503, the cluster not having applied it yet
    (it may still, queued): the alias read at once names the old index. Before, the rebuild read the live index
    there and then, took the switch for refused and forgot itself, its table with it; the cluster then applied the
    switch, and the index served the IPS services while no rebuild kept their table or claimed their coverage. Now
    a switch not answered is not judged at once: the note is kept, saying the rebuild failed and that whether its
    index went live is not known, and the next look, the switch applied, finishes it.

    Nor by the first look after it (a server's, every 30 s; a sync's; a start): the switch is sent with the time the
    cluster may hold it queued (`master_timeout`, 30 s), and the note is not judged until that and 30 s more have
    passed (`settles_at`); a rebuild asked meanwhile is refused, saying until when. Before, a look made before the
    queued switch applied found the old index and forgot the rebuild, its table with it; the switch then applied,
    and the index served the IPS services with no table kept."""
    base = f"rehabmap-queued-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(make_home(tmp_path / "home", geodata_dir), data_dir, proxy, base)
            alias = alias_of(base)
            (old,) = es_client.aliased(alias)
            proxy.fail(r"^/_aliases", 503)
            with pytest.raises(SwitchNotKnown):
                rebuild_index(settings, [SAMPLE], actor="test", table=table)
            proxy.heal()
            failed_at = datetime.now(timezone.utc)

            assert {path for _, path in proxy.seen(r"^/_aliases")} == {"/_aliases?master_timeout=30s"}
            assert es_client.aliased(alias) == [old], "the switch not applied when the rebuild ended"
            assert (settings.home / "curated" / (table.name + INCOMING)).read_text() == IPS_TABLE
            said = unfinished(settings)
            assert said is not None and (said.state, said.went_live) == ("failed", None)
            assert said.settles_at is not None
            settles = datetime.fromisoformat(said.settles_at) - datetime.fromisoformat(said.failed_at)
            assert settles == timedelta(seconds=60) and datetime.fromisoformat(said.settles_at) > failed_at
            assert said.error == ("The search index is overloaded or unavailable (it answered 503). Whether the new "
                                  "index is the one served is not known: the cluster may apply the alias switch it "
                                  "did not answer; the next rebuild, server start or sync from 60 seconds on finds "
                                  "out.")
            assert said.said.startswith(f"warning: unfinished rebuild: a rebuild began at {said.began_at} (process "
                                        f"{os.getpid()} on {socket.gethostname()}) and failed at {said.failed_at} "
                                        f"({said.error}); whether its index went live is not known, nor judged before "
                                        f"{said.settles_at}, when the search index has applied its switch or given it "
                                        "up: it is finished by the next rebuild, server start, sync or review "
                                        "decision"), said.said

            finish_interrupted(settings)  # a look before the cluster applies the queued switch

            assert (settings.home / "curated" / (table.name + INCOMING)).read_text() == IPS_TABLE
            assert unfinished(settings) == said, "left as it was"
            with pytest.raises(SwitchUnsettled) as refused:
                rebuild_index(settings, [SAMPLE], actor="test")
            assert refused.value.message == (
                "The last rebuild of the index ended without an answer from the search index to its switch to the "
                f"new index, which the search index may apply until {said.settles_at}: until then whether that index "
                "is the one served is not known. Nothing was changed: try again after then.")
            assert unfinished(settings) == said and es_client.aliased(alias) == [old]
            (new,) = [name for name in es_client.indices(f"{alias}-*") if name != old]
            es_client.update_aliases([{"remove": {"index": old, "alias": alias}},
                                      {"add": {"index": new, "alias": alias}}], queued_s=30)  # it applies, later
            settled(settings.home)

            finish_interrupted(settings)

            assert not (settings.home / PENDING_FILE).exists() and unfinished(settings) is None
            assert (settings.home / "curated" / table.name).read_text() == IPS_TABLE
            assert WEST_YORKSHIRE in [code for (code,) in table_rows(settings, CURATED_CLAIMS)]
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_whose_switch_the_cluster_gave_up_is_forgotten_once_it_has_settled(
        tmp_path, geodata_dir, data_dir, es_server, es_client):
    """A rebuild with an IPS table whose alias switch a gateway answers 503, the cluster never applying it: left
    while it may (a look then changes nothing), it is judged by the first look after, which finds the old index
    served and forgets it, its table with it."""
    base = f"rehabmap-given-up-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(make_home(tmp_path / "home", geodata_dir), data_dir, proxy, base)
            proxy.fail(r"^/_aliases", 503)
            with pytest.raises(SwitchNotKnown):
                rebuild_index(settings, [SAMPLE], actor="test", table=table)
            proxy.heal()
            finish_interrupted(settings)
            assert (settings.home / PENDING_FILE).is_file()
            settled(settings.home)

            finish_interrupted(settings)

            assert not (settings.home / PENDING_FILE).exists() and not (settings.home / "curated").exists()
            assert rebuild_index(settings, [SAMPLE], actor="test").report.indexed == 60, "without the IPS table"
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_whose_note_cannot_say_it_failed_raises_its_own_error_and_tells_the_operator(
        tmp_path, geodata_dir, data_dir, es_server, es_client, monkeypatch, caplog):
    """A rebuild whose alias switch a gateway answers 503, in a home where its note can no longer be written (a full
    disk, a read-only home: here the note's temporary file a folder, made as the switch is sent). Before, the OSError
    of writing `failed` replaced the rebuild's own error (a 500 from the upload, a traceback from the command). Now
    the rebuild raises its own error, and the operator's log says the note could not say it failed."""
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog())
    base = f"rehabmap-unwritable-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)
    try:
        with ClusterProxy(es_server.url) as proxy:
            home = make_home(tmp_path / "home", geodata_dir)
            settings = served_sample(home, data_dir, proxy, base)
            proxy.fail(r"^/_aliases", 503)
            proxy.before(r"^/_aliases", lambda: (home / (PENDING_FILE + ".tmp")).mkdir())
            with caplog.at_level(logging.ERROR), pytest.raises(SwitchNotKnown):
                rebuild_index(settings, [SAMPLE], actor="test", table=table)
            proxy.heal()
    finally:
        drop_indices(es_client, base)
    assert (f"a rebuild failed, and its note {PENDING_FILE} could not say so ([Errno 21] Is a directory: "
            f"'{home / (PENDING_FILE + '.tmp')}'): sync-status may say it under way until the next rebuild, server "
            "start, sync or look judges it") in caplog.text
    assert "failed" not in json.loads((home / PENDING_FILE).read_text()), "left as it was"
    assert (home / "curated" / (table.name + INCOMING)).read_text() == IPS_TABLE


def test_a_rebuild_whose_finishing_fails_once_live_is_said_failed_and_live_not_running(
        tmp_path, geodata_dir, data_dir, es_server, es_client):
    """A rebuild with an IPS table whose index went live, in a home whose maintainers' store another host's newer
    rehabmap migrated while it built (as its switch was sent), so the store cannot learn that the index is live and
    the rebuild fails in its finishing. Before, it wrote nothing of it: `sync-status` said "rebuild under way: … is
    running; it finishes itself" while the process that gave up (a server's upload) ran on. Now its note says it
    failed, when and why, and that its index went live; once this host runs the rehabmap that store needs (the
    migration taken back), the next look finishes it."""
    base = f"rehabmap-unfinished-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)

    def migrated(version: int, query: str) -> None:
        with open_database(settings).connect() as conn:
            conn.execute(query, (version,))

    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(make_home(tmp_path / "home", geodata_dir), data_dir, proxy, base)
            Directory.from_settings(settings)  # the maintainers' store, as the keepers' pages made it
            proxy.before(r"^/_aliases", lambda: migrated(
                LATEST + 1, "INSERT INTO schema_migrations VALUES (?, 'from the future', '2027-01-01')"))
            with pytest.raises(DomainError) as raised:
                rebuild_index(settings, [SAMPLE], actor="test", table=table)
            said = unfinished(settings)
            assert said is not None and (said.state, said.went_live, said.settles_at) == ("failed", True, None)
            assert said.error == errors.for_operator(raised.value) and said.error.startswith(
                f"The maintainers' store was migrated by a newer rehabmap (to migration {LATEST + 1}; ")
            assert said.said.startswith(f"warning: unfinished rebuild: a rebuild began at {said.began_at} (process "
                                        f"{os.getpid()} on {socket.gethostname()}) and failed at {said.failed_at} "
                                        f"({said.error}); its index went live: it is finished by the next rebuild, "
                                        "server start, sync or review decision"), said.said
            assert open_backend(settings).info().count > 60, "its index, with the IPS services, serves"
            migrated(LATEST + 1, "DELETE FROM schema_migrations WHERE version = ?")

            finish_interrupted(settings)

            assert unfinished(settings) is None
            assert (settings.home / "curated" / table.name).read_text() == IPS_TABLE
            assert WEST_YORKSHIRE in [code for (code,) in table_rows(settings, CURATED_CLAIMS)]
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_that_failed_where_the_live_index_cannot_be_read_is_said_failed_not_under_way(
        cqc_synced_home, tmp_path, data_dir, es_server, es_client):
    """A rebuild, in a process that runs on (a server's upload; here the test's own), whose bulk write the cluster
    refuses, the live index then unreadable (503), so whether its index went live cannot be told and its note is
    left. Before, `sync-status` said "rebuild under way: … is running; it finishes itself" of it, the process being
    alive, until someone looked, and `--json` said nothing of it. Now the note says the rebuild failed, when and why,
    and `sync-status` says so, in `--json` too (`rebuild`, in each source's entry)."""
    base = f"rehabmap-failed-{uuid.uuid4().hex[:10]}"
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(home, data_dir, proxy, base)
            proxy.fail(r"/_bulk", 400, error=("illegal_argument_exception", "refused by the test proxy"))
            proxy.before(r"/_bulk", lambda: proxy.fail(r"/_mapping", 503))  # and the index read no more
            with pytest.raises(IndexRefused) as refused:
                rebuild_index(settings, [SAMPLE], actor="test")
            proxy.heal()

        said = rehabmap_here(home, data_dir, None, "sync-status")
        as_json = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    finally:
        drop_indices(es_client, base)
    pending = json.loads((home / PENDING_FILE).read_text())
    assert pending["failed"]["error"] == refused.value.message and pending["failed"]["live"] is None
    line = (f"warning: unfinished rebuild: a rebuild began at {pending['at']} (process {os.getpid()} on "
            f"{socket.gethostname()}) and failed at {pending['failed']['at']} ({refused.value.message}); whether its "
            "index went live is not known: it is finished by the next rebuild, server start, sync or review "
            "decision, or a running server's next look")
    assert said.stdout.splitlines()[-1].startswith(line) and "under way" not in said.stdout, said.stdout
    [cqc] = json.loads(as_json.stdout)
    assert cqc["rebuild"] == {"state": "failed", "began_at": pending["at"], "pid": os.getpid(),
                              "host": socket.gethostname(), "failed_at": pending["failed"]["at"],
                              "error": refused.value.message, "went_live": None, "settles_at": None,
                              "said": said.stdout.splitlines()[-1]}
    assert as_json.stderr.splitlines()[-1] == said.stdout.splitlines()[-1]


def test_a_rebuild_whose_check_of_the_live_index_is_refused_says_the_index_served_is_unchanged(
        tmp_path, geodata_dir, data_dir, es_server, es_client):
    """The cluster (or a gateway before it) refuses the read that asks the live index when it was built, the check
    made before the rebuild begins anything, with a 400. Before, the refusal ended the rebuild without the words
    every other refusal before the switch carries ("The index being served is unchanged."): an operator could not
    tell whether the index served had changed. Now it says so, and nothing is left for `sync-status`."""
    base = f"rehabmap-check-refused-{uuid.uuid4().hex[:10]}"
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = served_sample(make_home(tmp_path / "home", geodata_dir), data_dir, proxy, base)
            check = proxy.fail(r"/_mapping", 400, error=("illegal_argument_exception", "refused by the test proxy"))
            with pytest.raises(IndexRefused) as refused:
                rebuild_index(settings, [SAMPLE], actor="test")

            assert check.hits, "asked, and refused"
            assert refused.value.message == (
                "The search index refused this service's request (it answered 400). The index being served is "
                "unchanged. The people who run this service have to fix the search index: what it answered is in "
                "this service's log.")
            assert not (settings.home / PENDING_FILE).exists() and unfinished(settings) is None
            proxy.heal()
            assert open_backend(settings).info().count == 60
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_cut_short_after_its_swap_waits_while_the_index_does_not_answer_then_is_finished(
        tmp_path, geodata_dir, data_dir, es_server, es_client, monkeypatch, caplog):
    """A rebuild with an IPS table cut short once its index went live (its pending file, as `begin` wrote it, names
    the live index's token), then a look while the cluster answers 503 for a moment: before, the look took the index
    that did not answer for none of the rebuild's and forgot it, its table with it, though the index served it. Now
    the file and the table wait, the operator is told, and the next look, the cluster back, keeps the table and
    claims its coverage."""
    base = f"rehabmap-unanswered-{uuid.uuid4().hex[:10]}"
    table = ips_table(tmp_path)
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog())
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir,
                                backend=Backend.elasticsearch, elasticsearch_url=proxy.url, elasticsearch_index=base)
            rebuild_index(settings, [SAMPLE], actor="test")
            begin(settings.home, [SAMPLE], table, ElasticIndex(es_client, alias_of(base)).info().build or "")
            proxy.fail(r"", 503)
            with caplog.at_level(logging.WARNING):
                finish_interrupted(settings)
            assert "a rebuild cut short could not be judged (The search index is overloaded or unavailable (it " \
                   "answered 503).)" in caplog.text
            assert (settings.home / PENDING_FILE).is_file()
            assert (settings.home / "curated" / (table.name + INCOMING)).read_text() == IPS_TABLE
            proxy.heal()

            finish_interrupted(settings)

            assert not (settings.home / PENDING_FILE).exists()
            assert (settings.home / "curated" / table.name).read_text() == IPS_TABLE
            assert WEST_YORKSHIRE in [code for (code,) in table_rows(settings, CURATED_CLAIMS)]
    finally:
        drop_indices(es_client, base)


def test_a_server_starts_though_the_cluster_refuses_the_read_that_judges_a_rebuild_cut_short(
        tmp_path, geodata_dir, data_dir, es_server, es_client, monkeypatch, caplog):
    """A rebuild cut short once its index went live, then a server's start while the cluster (or a gateway before it)
    refuses the index's mapping read with a 400. Before, the refusal (`RequestRefused`) went up through `create_app`:
    the server did not start. Now it is judged as one the cluster did not answer: the operator is told, the server
    starts and answers, and the file waits for the next look."""
    base = f"rehabmap-refused-{uuid.uuid4().hex[:10]}"
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog())
    try:
        with ClusterProxy(es_server.url) as proxy:
            settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir, warm_up=False,
                                backend=Backend.elasticsearch, elasticsearch_url=proxy.url, elasticsearch_index=base)
            rebuild_index(settings, [SAMPLE], actor="test")
            begin(settings.home, [SAMPLE], None, ElasticIndex(es_client, alias_of(base)).info().build or "")
            proxy.fail(r"/_mapping", 400, error=("illegal_argument_exception", "injected by the test proxy"))
            with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
                assert client.get("/health").status_code in (200, 503)
            assert "a rebuild cut short could not be judged (The search index refused this service's request (it " \
                   "answered 400)" in caplog.text
            assert (settings.home / PENDING_FILE).is_file()
    finally:
        drop_indices(es_client, base)


def test_a_rebuild_of_an_earlier_release_cut_short_after_its_swap_is_still_finished(tmp_path, geodata_dir, data_dir):
    """A pending file an earlier release wrote names no build token: the rebuild it tells of is judged as that release
    judged it, gone live where the live index was built since it began. Its table is kept and its coverage claimed,
    as before this release; not forgotten for lacking a token."""
    settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir)
    rebuild_index(settings, [SAMPLE], actor="test")
    (settings.home / "curated").mkdir()
    (settings.home / "curated" / ("ips_services.csv" + INCOMING)).write_text(IPS_TABLE)
    earlier = {"at": (datetime.now().astimezone() - timedelta(hours=1)).isoformat(), "sources": [str(SAMPLE)]}
    (settings.home / PENDING_FILE).write_text(json.dumps(earlier))

    finish_interrupted(settings)

    assert not (settings.home / PENDING_FILE).exists()
    assert (settings.home / "curated" / "ips_services.csv").read_text() == IPS_TABLE
    assert WEST_YORKSHIRE in [code for (code,) in table_rows(settings, CURATED_CLAIMS)]


def test_a_rebuild_cut_short_after_its_swap_that_cannot_be_finished_is_said_so_not_unjudged(
        tmp_path, geodata_dir, data_dir, monkeypatch, caplog):
    """A rebuild with an IPS table cut short once its index went live, then a look while the maintainers' store is one
    a newer rehabmap has migrated (another host upgraded first): the rebuild is judged its index's, and the store
    cannot learn it. Before, every error after the judgement was logged as the judgement's ("a rebuild cut short could
    not be judged (The maintainers' store was migrated by a newer rehabmap …)"), though it was judged. Now the log
    says it went live and could not be finished, and why; the file and the table wait, and once this host runs the
    rehabmap that store needs (here, the newer migration taken back), the next look finishes it."""
    monkeypatch.setattr(errors, "operator_log", errors.OperatorLog())
    settings = Settings(home=make_home(tmp_path / "home", geodata_dir), data_dir=data_dir)
    table = ips_table(tmp_path)
    Directory.from_settings(settings)  # the maintainers' store, as the keepers' pages made it
    rebuild_index(settings, [SAMPLE], actor="test")
    begin(settings.home, [SAMPLE], table, open_backend(settings).info().build or "")
    with open_database(settings).connect() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', '2027-01-01')", (LATEST + 1,))

    with caplog.at_level(logging.WARNING):
        finish_interrupted(settings)

    assert "could not be judged" not in caplog.text
    assert ("a rebuild cut short went live, and could not be finished (The maintainers' store was migrated by a "
            f"newer rehabmap (to migration {LATEST + 1}; this one knows up to {LATEST}). Upgrade rehabmap on this "
            "host.") in caplog.text
    assert (settings.home / PENDING_FILE).is_file()
    assert (settings.home / "curated" / (table.name + INCOMING)).read_text() == IPS_TABLE
    with open_database(settings).connect() as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (LATEST + 1,))

    finish_interrupted(settings)

    assert not (settings.home / PENDING_FILE).exists()
    assert (settings.home / "curated" / table.name).read_text() == IPS_TABLE
    assert WEST_YORKSHIRE in [code for (code,) in table_rows(settings, CURATED_CLAIMS)]


def test_a_rebuild_whose_pid_another_process_has_since_taken_is_said_cut_short_not_running(
        cqc_synced_home, tmp_path, data_dir):
    """A rebuild's note names its process by pid, machine and start time (`/proc/<pid>/stat`'s 22nd field). A
    container restarted gives its first processes the pids its last run had: here the note of a rebuild whose pid is
    now this test's process, which started later than the one that began it. Before, the pid alone said it "is
    running; it finishes itself", though its process was killed with the container. Now it is said cut short; the
    same note naming this process's own start is said running. Neither changes the exit status (0, as a run's
    warnings, and as a failed rebuild: the next look finishes or forgets it, no person needed); a script reads
    `rebuild` in `--json`, or the line on stderr where no source is synced yet."""
    home = tmp_path / "home"
    shutil.copytree(cqc_synced_home, home, symlinks=True)
    begin(home, [SAMPLE], None, "a-build")
    pending = json.loads((home / PENDING_FILE).read_text())
    assert pending["pid"] == os.getpid() and pending["started"] == process_started(os.getpid()) is not None
    by = f"a rebuild began at {pending['at']} (process {os.getpid()} on {socket.gethostname()})"

    running = rehabmap_here(home, data_dir, None, "sync-status", "--json")
    (home / PENDING_FILE).write_text(json.dumps({**pending, "started": pending["started"] - 1}))
    reused = rehabmap_here(home, data_dir, None, "sync-status", "--json")

    assert (running.returncode, running.stderr.splitlines()[-1]) == (
        0, f"rebuild under way: {by} and is running; it finishes itself")
    assert [entry["rebuild"]["state"] for entry in json.loads(running.stdout)] == ["running"]
    assert reused.returncode == 0 and reused.stderr.splitlines()[-1].startswith(
        f"warning: unfinished rebuild: {by} and was cut short: it is finished by the next rebuild"), reused.stderr
    assert [entry["rebuild"]["state"] for entry in json.loads(reused.stdout)] == ["cut_short"]
