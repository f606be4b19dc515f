"""uvicorn's worker processes, each on a listening socket of its own (SO_REUSEPORT), so the kernel spreads
new connections between the workers.

uvicorn's own supervisor hands every worker the one listening socket. Each worker then accepts for itself,
and uvloop accepts every connection waiting in the backlog at once: whichever worker wakes first takes a
burst of new connections (wrk's 16 at start, nginx's upstream keep-alive connections), and keeps them for
as long as they live. bench/RESULTS.md measured 16/0 and 12/4 spreads on 2 workers, and the one-sided
spread served ~40% fewer requests. With SO_REUSEPORT each worker listens on a socket of its own, bound to
the same address, and the kernel hashes each new connection (its addresses and ports) to one of them:
even on average, whoever is awake. The sockets are bound and listening before any worker starts, so a
connection that comes early waits in its worker's backlog, as it did in the shared one.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")
# How long SIGHUP's rolling restart waits for a new worker to be ready. uvicorn waits its worker health check's
# 5 s, but a worker's start takes ~4 s of CPU (imports ~1.5 s, the pages' templates compiled ~1.3 s, the
# geography; more with a large index), so on a busy machine every reload was aborted at 5 s, the old workers kept.
READY_S = 300.0


def reuse_port_sockets(config: Config, inherited: socket.socket | None) -> list[socket.socket] | None:
    """One listening socket a worker, all bound to one address with SO_REUSEPORT; the first is the inherited
    socket if there is one. None when an inherited socket was bound without SO_REUSEPORT: the kernel then
    refuses a second socket on its address, and the workers share it (uvicorn's way)."""
    if inherited is not None:
        if not inherited.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT):
            return None
        family, address = inherited.family, inherited.getsockname()
        sockets = [inherited]
    else:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        address, sockets = (config.host, config.port), []
        if config.port:
            _refuse_if_taken(family, address)
    try:
        while len(sockets) < config.workers:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            address = sock.getsockname()  # port 0 asks the OS for one; the others then take that one
            sock.listen(config.backlog)
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            if sock is not inherited:
                sock.close()
        raise
    return sockets


def _refuse_if_taken(family: socket.AddressFamily, address: tuple[str, int]) -> None:
    """Raise OSError (address in use) when a server already listens on the address. SO_REUSEPORT would let
    the new sockets join a running server's, and the kernel would then split new connections between the two
    (an old server left running after an upgrade would go on answering part of the traffic). A plain bind
    fails there, as a server without SO_REUSEPORT does; the probe is closed before the real sockets bind."""
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


class SocketPerWorker(Multiprocess):
    """uvicorn's supervisor (restarts, SIGHUP's rolling restart, signals), with worker i always on socket i:
    a worker that dies is replaced on its own socket, where the connections the kernel queued for it wait.
    The number of workers is fixed by the sockets: SIGTTIN and SIGTTOU are refused."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.worker_sockets = sockets

    def _start(self, slot: int) -> Process:
        process = Process(self.config, [self.worker_sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(slot) for slot in range(len(self.worker_sockets))]

    def restart_all(self) -> None:
        """Each worker's replacement serves before the worker is retired (uvicorn's order), on its socket."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            if not new.wait_until_ready(READY_S, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error("New worker [%s] was not ready in time; keeping [%s], restart aborted.",
                                 new.pid, old.pid)
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or dead already
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # the app or its home is broken: every restart would be
                logger.error("Worker [%s] failed to start, stopping.", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info("Worker [%s] died; starting another on its socket.", process.pid)
            self.processes[slot] = self._start(slot)

    def handle_ttin(self) -> None:
        logger.info("SIGTTIN ignored: one listening socket a worker, set at start (--workers).")

    def handle_ttou(self) -> None:
        logger.info("SIGTTOU ignored: one listening socket a worker, set at start (--workers).")


def run(app: str, host: str, port: int, fd: int | None, workers: int) -> None:
    """`app` (a factory's import path) under uvicorn as `rehabmap serve` runs it: one process, or `workers`
    processes with a listening socket each (`SocketPerWorker`)."""
    if fd is not None:
        _reply_at_once(fd)
    if workers == 1:
        uvicorn.run(app, factory=True, host=host, port=port, fd=fd, access_log=False)
        return
    config = Config(app, factory=True, host=host, port=port, fd=fd, workers=workers, access_log=False)
    inherited = None if fd is None else socket.socket(fileno=fd)
    try:
        sockets = reuse_port_sockets(config, inherited)
    except OSError as error:  # as uvicorn reports a bind that fails: the reason, no traceback
        logger.error(error)
        sys.exit(STARTUP_FAILURE)
    try:
        with counted_together():
            if sockets is None:
                logger.info("The inherited socket has no SO_REUSEPORT: the %d workers share it.", workers)
                Multiprocess(config, sockets=[config.bind_socket()]).run()
            else:
                logger.info("Serving on %s with %d workers, a listening socket each.", _where(sockets[0]), workers)
                SocketPerWorker(config, sockets).run()
    except KeyboardInterrupt:
        pass


def _reply_at_once(fd: int) -> None:
    """TCP_NODELAY on an inherited listening TCP socket, which Linux copies onto each connection it accepts. uvicorn
    wraps an inherited fd as a Unix socket, so neither asyncio nor uvloop set it on the connections, as they do on a
    socket uvicorn binds: each reply on a kept-alive connection (a browser's, a proxy's) then waited for the client's
    delayed ACK (Nagle), 44 ms a request against 1.3 ms on --port. A Unix socket is left as it is. An fd that is no
    socket is an error naming the option, before the app loads; a socket that refuses the option is served all the
    same, with a warning: before it was set, such a socket was served, only slowly."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError as error:  # `rehabmap serve` says it as an error of the caller's (`cli.main._Group`)
        raise OSError(error.errno, f"--fd {fd}: {error.strerror}; give a listening socket this process inherits") \
            from None
    with sock:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as error:
                logger.warning("--fd %d: TCP_NODELAY not set (%s): each reply on a kept-alive connection may wait for "
                               "the client's delayed ACK.", fd, error.strerror)


@contextmanager
def counted_together() -> Iterator[None]:
    """The workers' metrics counted in one place: a scrape of the shared port reaches one worker at random, so
    each worker writes its counts where every worker's scrape reads them (prometheus_client's multiprocess
    mode, switched on by its `PROMETHEUS_MULTIPROC_DIR`, which the workers inherit; `api.metrics` reads it).
    A folder of this server's own, empty at start (old counts would be summed in) and removed when it stops;
    one the deployer set is used as it is."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="rehabmap-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(folder, ignore_errors=True)


def _where(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
