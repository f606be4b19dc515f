"""A loopback port for a test's server, held from the moment it is chosen.

Choosing a free port by binding port 0, closing it and handing the number to a server that binds it later
leaves a window in which any other process or connection on the machine may take the port, and the server
then exits with "address already in use". Instead the test binds and listens itself, and the server serves
on that socket: `rehabmap serve --fd N` inherits it (`pass_fds`), an in-process uvicorn is given it. The
port is never free in between.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1 at a port the OS picks; inheritable by a child process."""
    sock = socket.socket()
    try:
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
