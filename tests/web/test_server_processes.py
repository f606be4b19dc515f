"""rehabmap serve as it runs for real: separate server processes on one REHABMAP_HOME (as `serve --workers N`
or a restart has them), and the warm-up at start.

Each server is `python -m cli serve` in its own interpreter on a loopback port, waited for until it answers
or stops."""

from __future__ import annotations

import http.client
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from app.warmup import warm_up
from cli.workers import _reply_at_once
from tests.listening import ANSWER_TIMEOUT_S, listening_socket, url_of, wait_until_up
from tests.web.site import ROOT, make_app
from web.compiled import CompiledPages
from web.render import environment
from web.resultsmap import boundaries

pytestmark = pytest.mark.slow

FORM = {"home": "LS9 7TF", "needs": ["autism"], "types": ["inpatient_rehab_level1"], "limit": "3"}


@contextmanager
def server_processes(home: Path, data_dir: Path, logs: Path, count: int, **env_vars: str) -> Iterator[list[str]]:
    """`count` servers on one home, started together (each start, with its warm-up, takes seconds of CPU: on
    two cores the starts overlap), each on a port this test holds until the server has it, each waited for
    until it answers or stops. Each one's stderr goes to a file in `logs`, never to a pipe nobody reads: a
    server that logs more than the pipe holds (64 KiB) would stop at its next write."""
    env = {**os.environ, "REHABMAP_HOME": str(home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT), **env_vars}
    started: list[tuple[str, subprocess.Popen, Path]] = []
    try:
        for n in range(count):
            log = logs / f"server-{n}.log"
            with listening_socket() as sock, log.open("wb") as stderr:  # the port, held until the server has it
                started.append((url_of(sock), subprocess.Popen(
                    [sys.executable, "-m", "cli", "serve", "--fd", str(sock.fileno())], cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL, stderr=stderr, pass_fds=(sock.fileno(),)), log))
        for url, process, log in started:
            wait_until_up(url, process, log)
        yield [url for url, _, _ in started]
    finally:
        for _, process, _ in started:
            process.terminate()
        for _, process, _ in started:
            process.wait(timeout=30)


def keep_page(cache_dir: Path, name: str, words: str, *, source: str | None = None,
              code_digest: str | None = None) -> Path:
    """Put in `cache_dir` the template `name` as a server would have kept it, compiling it from `source` (by
    default its present source) with code of `code_digest` (by default the present code), but saying only
    `words`; the file kept."""
    cache = CompiledPages(cache_dir, environment)
    cache.code_digest = code_digest or cache.code_digest
    present, filename, _ = environment.loader.get_source(environment, name)
    bucket = cache.get_bucket(environment, name, filename, present if source is None else source)
    bucket.code = environment.compile(words, name, filename)
    cache.set_bucket(bucket)
    return Path(cache.directory) / (cache.pattern % bucket.key)


def test_a_search_held_by_one_server_process_is_read_back_by_another(web_home: Path, data_dir: Path,
                                                                        tmp_path: Path):
    """Also the pages' compiled templates, kept in one folder by both servers as they start together: a page
    kept from its template's present source by the present code is served as kept (the folder is read); one
    kept from an older source, or by older code (an upgrade that changed a filter), is compiled again, served
    new and kept again."""
    cache_dir = tmp_path / "cache"
    keep_page(cache_dir, "pages/privacy.html", "A page kept")
    results = environment.loader.get_source(environment, "match/results.html")[0]
    stale = [keep_page(cache_dir, "match/results.html", "A page kept from an older source",
                       source=results.replace("Local alternatives", "Old words")),
             keep_page(cache_dir, "pages/accessibility.html", "A page kept by older code", code_digest="older")]
    stale_bytes = [path.read_bytes() for path in stale]
    with server_processes(web_home, data_dir, tmp_path, 2, REHABMAP_CACHE_DIR=str(cache_dir)) as (first, second):
        held = httpx.post(first + "/alternatives", data=FORM, follow_redirects=False, timeout=60)
        assert held.status_code == 303
        where = held.headers["location"]
        # A key only, nothing typed: a random key spells "LS9" about once in 5,000.
        assert re.fullmatch(r"/alternatives/results/[\w=-]{44}", where), where
        page = httpx.get(second + where, timeout=60)
        assert page.status_code == 200
        assert "<h1>Local alternatives near LS9 7TF</h1>" in page.text
        assert "Aire Valley Rehabilitation Unit" in page.text
        assert httpx.get(first + "/privacy", timeout=60).text == "A page kept"
        assert "<h1>Accessibility statement</h1>" in httpx.get(second + "/accessibility", timeout=60).text
    assert all(path.read_bytes() != old for path, old in zip(stale, stale_bytes))  # compiled again, and kept
    assert len(list((cache_dir / "pages").glob("*.jinja"))) == len(environment.list_templates(["html"]))


def test_a_cache_folder_that_cannot_be_written_still_serves(web_home: Path, data_dir: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture):
    """A read-only install: the pages are compiled in memory, as before. (A folder whose path runs through a
    file: this test runs as root, which may write to a read-only folder, but never below a file.)"""
    (tmp_path / "file").write_text("not a folder")
    caplog.set_level(logging.INFO, logger="rehabmap.api")
    kept = environment.bytecode_cache
    try:
        app = make_app(web_home, data_dir, warm_up=False, cache_dir=tmp_path / "file" / "cache")
        environment.cache.clear()
        with TestClient(app) as client:
            page = client.get("/privacy")
        assert page.status_code == 200
        assert "<h1>Privacy: what we keep</h1>" in page.text
        assert "compiled pages not kept" in caplog.text
    finally:
        environment.bytecode_cache = kept


def test_the_warm_up_loads_what_the_first_request_would(web_home: Path, data_dir: Path):
    """The parts the first search would load are loaded by create_app (the bench table in bench/RESULTS.md
    gives the first request's time before and after)."""
    app = make_app(web_home, data_dir, warm_up=False)
    state = app.state.rehabmap
    boundaries.cache_clear()
    environment.cache.clear()
    warm_up(state)
    assert boundaries.cache_info().currsize == 1
    assert any(key[1] == "find/category.html" for key in environment.cache.keys())
    with TestClient(app) as client:
        assert client.get("/find/rehabilitation", params={"where": "LS9 7TF"}).status_code == 200
    assert boundaries.cache_info().hits >= 1 and boundaries.cache_info().misses == 1


def descendants(pid: int) -> set[int]:
    """The processes started, directly or not, by `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def tcp_sockets(port: int) -> tuple[set[int], dict[int, int]]:
    """The loopback sockets on local `port` (/proc/net/tcp): the listening ones' inodes, and each established
    connection's inode by its peer's port."""
    listening, established = set(), {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, (_, remote_port), state, inode = (int(fields[1].split(":")[1], 16),
                                                      fields[2].split(":"), fields[3], int(fields[9]))
        if local_port == port and state == "0A":
            listening.add(inode)
        elif local_port == port and state == "01":
            established[int(remote_port, 16)] = inode
    return listening, established


def test_serve_with_two_workers_gives_each_a_socket_spreads_connections_and_counts_them_together(
        web_home: Path, data_dir: Path, tmp_path: Path):
    """`serve --workers 2`: each worker listens on a socket of its own (SO_REUSEPORT, as the inherited
    socket was bound), so the kernel, not whichever worker wakes first, picks the worker of a new connection
    (bench/RESULTS.md: with one shared socket, 16 connections fell 16/0 or 12/4, and served ~40% less).
    24 keep-alive connections, each answered once so that a worker holds it: the kernel hashes each to one
    of the two sockets, so all 24 on one worker would happen once in 2^23 runs. Each worker then answers a
    404 on its connections, and every scrape of the port, whichever worker takes it, counts all 24 (the
    workers count in prometheus_client's multiprocess mode). Nothing here is timed."""
    env = {**os.environ, "REHABMAP_HOME": str(web_home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "server.log"
    with listening_socket(reuse_port=True) as sock, log.open("wb") as stderr:
        url, port = url_of(sock), sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--fd", str(sock.fileno()), "--workers",
                                   "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                  pass_fds=(sock.fileno(),))
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_TIMEOUT_S) for _ in range(24)]
    try:
        wait_until_up(url, server, log)
        for connection in connections:
            connection.request("GET", "/health")
            reply = connection.getresponse()
            reply.read()
            assert reply.status == 200
        listening, established = tcp_sockets(port)
        held = {pid: sockets_of(pid) for pid in descendants(server.pid)}
        workers = {pid: inodes & listening for pid, inodes in held.items() if inodes & listening}
        assert len(workers) == 2, workers
        first, second = workers.values()
        assert len(first) == len(second) == 1 and first != second, workers  # a socket each, not one shared
        mine = [established[connection.sock.getsockname()[1]] for connection in connections]
        per_worker = [sum(inode in held[pid] for inode in mine) for pid in workers]
        assert sum(per_worker) == 24 and 0 not in per_worker, per_worker
        # Each worker answers some of these; a scrape, whichever worker takes it, counts them all.
        for connection in connections:
            connection.request("GET", "/services/none-such")
            reply = connection.getresponse()
            reply.read()
            assert reply.status == 404
        for _ in range(6):  # new connections: the kernel hands them to either worker
            scrape = httpx.get(url + "/metrics", timeout=ANSWER_TIMEOUT_S).text
            counted = re.search(r'^rehabmap_http_requests_total\{method="GET",route="/services/\{service_id\}",'
                                r'status="404"\} (\S+)$', scrape, re.MULTILINE)
            assert counted is not None and float(counted[1]) == 24, scrape
    finally:
        for connection in connections:
            connection.close()
        server.terminate()
        server.wait(timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_an_inherited_socket_replies_without_waiting_for_the_clients_ack(web_home: Path, data_dir: Path,
                                                                                 tmp_path: Path, workers: str):
    """`serve --fd` (a supervisor's socket activation, and every test's server): uvicorn wraps the inherited socket
    as a Unix one, so its connections never had TCP_NODELAY, and each reply on a kept-alive connection waited for
    the client's delayed ACK (Nagle): 44 ms a request, against 1.3 ms on --port. The server sets it on the listening
    socket, which Linux copies onto each connection it accepts; one worker, or two sharing the socket. This test
    keeps a copy of the socket to read it (so a server that failed to start is found by wait_until_up's timeout,
    not at once). Nothing here is timed."""
    env = {**os.environ, "REHABMAP_HOME": str(web_home), "REHABMAP_DATA_DIR": str(data_dir),
           "REHABMAP_RATE_LIMIT_PER_MINUTE": "0", "REHABMAP_WARM_UP": "false", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "server.log"
    with listening_socket() as sock, log.open("wb") as stderr:
        kept = socket.socket(fileno=os.dup(sock.fileno()))
        assert kept.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--fd", str(sock.fileno()), "--workers",
                                   workers], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                  pass_fds=(sock.fileno(),))
        url = url_of(sock)
    try:
        wait_until_up(url, server, log)
        assert kept.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        kept.close()
        server.terminate()
        server.wait(timeout=60)


def test_serve_on_an_fd_that_is_no_socket_is_one_error_naming_the_option(tmp_path: Path):
    """Before: `serve --fd 57` (an fd the process does not have) said "error: Bad file descriptor", not which of its
    options was wrong. Now the error names --fd, before the app loads, for an fd not inherited and for a file's."""
    env = {**os.environ, "REHABMAP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    with (tmp_path / "not-a-socket").open("wb") as file:
        for passed, said in (((), "Bad file descriptor"), ((file.fileno(),), "Socket operation on non-socket")):
            done = subprocess.run([sys.executable, "-m", "cli", "serve", "--fd", str(file.fileno())], cwd=ROOT,
                                  env=env, capture_output=True, text=True, pass_fds=passed, timeout=120)
            assert done.returncode == 2 and done.stderr == (
                f"error: --fd {file.fileno()}: {said}; give a listening socket this process inherits\n"), done.stderr


def test_a_socket_that_refuses_tcp_nodelay_is_served_with_a_warning(caplog):
    """Setting TCP_NODELAY on the inherited socket (`_reply_at_once`) is a speed-up: a socket of the internet's
    families that refuses it (here a UDP one: "Protocol not available") was served before it was set, slowly, and
    must not now stop the server from starting. It is a warning naming --fd and what a client will see."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as odd, caplog.at_level(logging.WARNING, "uvicorn.error"):
        _reply_at_once(odd.fileno())
        assert [r.getMessage() for r in caplog.records] == [
            f"--fd {odd.fileno()}: TCP_NODELAY not set (Protocol not available): each reply on a kept-alive "
            "connection may wait for the client's delayed ACK."]


def test_serve_with_two_workers_refuses_a_port_a_server_already_listens_on(tmp_path: Path):
    """SO_REUSEPORT would let a second `serve --workers 2` join the sockets of a server already running on its
    port, and the kernel would split new connections between the two (an old server left running after an
    upgrade answering part of the traffic). The second one stops at once with the reason, as a server
    without SO_REUSEPORT does. Before: it bound the port and served beside the first."""
    env = {**os.environ, "REHABMAP_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    with listening_socket(reuse_port=True) as running:  # a server's socket, bound as `serve --workers` binds
        port = running.getsockname()[1]
        second = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, stderr = second.communicate(timeout=120)  # it stops at once; a server that serves never does
        finally:
            if second.poll() is None:  # it served: stop it and its workers
                os.killpg(second.pid, signal.SIGKILL)
                second.wait()
    assert second.returncode != 0
    assert "address already in use" in stderr.lower(), stderr
    assert "Traceback" not in stderr, stderr
