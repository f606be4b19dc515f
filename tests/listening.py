"""A loopback port for a test's server, held from the moment it is chosen.

Choosing a free port by binding port 0, closing it and handing the number to a server that binds it later
leaves a window in which any other process or connection on the machine may take the port, and the server
then exits with "address already in use". Instead the test binds and listens itself, and the server serves
on that socket: `rehabmap serve --fd N` inherits it (`pass_fds`), an in-process uvicorn is given it. The
port is never free in between, and the test waits for the server by asking it once (`wait_until_up`).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def listening_socket(reuse_port: bool = False) -> socket.socket:
    """A TCP socket listening on 127.0.0.1 at a port the OS picks; inheritable by a child process. With
    `reuse_port`, bound with SO_REUSEPORT, so that a `serve --workers N` given it adds a socket a worker."""
    sock = socket.socket()
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port bound by this test and not listening, for as long as the block runs: a connection to
    it is refused (a node that is down), and no other process can start listening on it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# How long a test waits for a real server's answer. A server that is down refuses the connection at once
# (or, started on a socket this test handed it, resets it when it exits): this bound only ends a wait on a
# server that hangs, and a slow answer from a loaded shared machine is never taken for one (httpx's default,
# 5 s, was).
ANSWER_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 300.0  # a bound, not a wait: a start with warm-up took 14-25 s at load 7-10


def wait_until_up(url: str, process: subprocess.Popen, log: Path | None = None,
                  timeout_s: float = STARTUP_TIMEOUT_S, health: int = 200) -> None:
    """Wait until the server `process`, started on a socket from `listening_socket`, answers /health (with
    `health`: 200 unless a test starts a server that must say it cannot answer).

    No polling and no pause: the socket listens before the server does, so the one request waits in its
    backlog until the server has started and answers it. If the server exits instead, the kernel resets the
    waiting connection (this test closed its copy of the socket once the server had it) and the test fails
    at once, with the server's `log`."""
    try:
        reply = httpx.get(f"{url}/health", timeout=timeout_s)
    except httpx.TimeoutException:
        pytest.fail(f"the server at {url} did not answer within {timeout_s:.0f} s:\n{log_tail(log)}")
    except httpx.TransportError as exc:
        try:  # the connection was reset: the server is exiting, or has
            process.wait(timeout=ANSWER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server at {url} dropped a connection ({exc!r}) and did not exit:\n{log_tail(log)}")
        pytest.fail(f"the server at {url} exited with {process.returncode}:\n{log_tail(log)}")
    if reply.status_code != health:
        pytest.fail(f"the server at {url} is up but /health is not {health} "
                    f"({reply.status_code} {reply.text[:300]}):\n{log_tail(log)}")


def log_tail(log: Path | None, chars: int = 20_000) -> str:
    """The end of a server's log, for the message of a test that fails on the server."""
    if log is None or not log.exists():
        return "(no log)"
    return log.read_text(encoding="utf-8", errors="replace")[-chars:]
