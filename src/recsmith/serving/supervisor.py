"""Several server processes, each listening on the port itself, so the kernel spreads the clients.

uvicorn's own ``workers`` binds one socket in the parent and every worker accepts from it; the
worker that wakes first takes every connection waiting. Clients that open their connections
together — a load balancer's keep-alive pool, 32 benchmark clients — then mostly land on one
worker: in 15 trials of 32 connections opened at once, two workers split them 32/0 five times and
the smaller share averaged 6.4, so one core served most of the traffic while the other idled.

On Linux each worker here binds its own socket with ``SO_REUSEPORT``, and the kernel hashes every
new connection onto one of the listening sockets, whichever process happens to be awake (in 20
trials of the same test the smaller share averaged 13.5 and was never below 10). Elsewhere (no
load-balancing ``SO_REUSEPORT``) ``run`` keeps uvicorn's shared socket.

Where the kernel's hash leaves one worker two or more connections ahead of another, that worker
closes one after a response and the client's reconnect is hashed again (``connection_balance.py``;
the workers share their counts in an array the supervisor makes).

The supervisor restarts a worker that is killed (a crash, the OOM killer) or stopped on its
own, stops with an error when one cannot start, and stops the others when it is asked to stop
(SIGINT, SIGTERM); if the supervisor itself is killed, the kernel stops the workers. Before any
worker starts, it checks that no other program holds the port: sockets that all set
``SO_REUSEPORT`` would otherwise share it silently.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, MutableSequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from recsmith.errors import ServerStartError

log = logging.getLogger(__name__)

#: prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

#: A worker's slot in the connection balance's counts while it is not serving (loading its model,
#: restarting): not counted (``connection_balance.py``, which the workers import; this module is
#: imported by the CLI and stays light).
NOT_SERVING = -1

#: The app factory each worker serves (it reads the settings from the environment).
APP = "recsmith.serving.app:app_from_env"


def reuseport_balances() -> bool:
    """Whether the kernel spreads connections over ``SO_REUSEPORT`` sockets (Linux does; macOS
    and the BSDs let them share a port but hand every connection to one of them)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listen_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to ``host:port``, in the port's reuseport group when ``reuse_port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = f"cannot listen on {host}:{port} ({exc.strerror})"
        raise ServerStartError(f"serving.port: {reason}") from exc
    return sock


def _exit_with(parent: int) -> None:
    """Have the kernel SIGTERM this worker when the supervisor dies, however it dies (SIGKILL
    included), so no orphaned worker keeps answering on the port (Linux ``PR_SET_PDEATHSIG``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_one(
    uvicorn_options: dict[str, Any], parent: int, counts: MutableSequence[int] | None, index: int
) -> None:
    """A worker process: its own socket in the reuseport group, then uvicorn until stopped;
    with ``counts``, it balances its connections against the other workers' (slot ``index``)."""
    import uvicorn  # the worker's, not the CLI's: importing this module must stay light

    from recsmith.serving import connection_balance

    _exit_with(parent)
    if counts is not None:
        connection_balance.install(counts, index)
    sock = listen_socket(uvicorn_options["host"], uvicorn_options["port"], reuse_port=True)
    server = connection_balance.CountedServer(uvicorn.Config(APP, factory=True, **uvicorn_options))
    server.run(sockets=[sock])
    if not server.started:  # the app failed to start (uvicorn has logged why)
        sys.exit(3)


class Supervisor:
    """Runs ``workers`` copies of ``_serve_one`` until SIGINT/SIGTERM (see module docstring);
    ``balance`` has them even out their connections (``connection_balance.py``)."""

    def __init__(self, workers: int, uvicorn_options: dict[str, Any], *, balance: bool) -> None:
        self.workers = workers
        self.options = uvicorn_options
        self._stop = threading.Event()
        # while ``run`` is under way, ``stop`` writes to this pipe (read end, write end) to wake
        # the loop, which otherwise sleeps until a worker exits; None before and after, under
        # the lock, so a late ``stop`` never writes into a closed fd that a file may now reuse
        # (reentrant: the SIGINT handler calls ``stop`` in whatever the main thread was doing)
        self._wake: tuple[int, int] | None = None
        self._wake_lock = threading.RLock()
        self._context = multiprocessing.get_context("spawn")  # no copied locks, no forked pools
        # one slot a worker, shared memory the workers write without a lock (one int each)
        self._counts = self._context.RawArray("i", [NOT_SERVING] * workers) if balance else None

    @property
    def counts(self) -> MutableSequence[int] | None:
        """Each worker's open connections as the balance shares them (None without it)."""
        return self._counts

    def run(self) -> None:
        """Serve until asked to stop; raises ``ServerStartError`` if the port is taken or a worker
        cannot start. SIGINT and SIGTERM call ``stop`` while it runs, and do what they did
        before once it returns."""
        listen_socket(self.options["host"], self.options["port"], reuse_port=False).close()
        with self._wake_pipe() as wake, self._stopped_by_signals():
            procs = [self._start(i) for i in range(self.workers)]
            failure: str | None = None
            try:
                while failure is None and not self._stop.is_set():
                    # woken the moment a worker exits (its sentinel), not at the next tick of a
                    # poll: until its slot is cleared (``_start``) the others balance against
                    # the count it died with and close connections whose clients can only come
                    # back to them
                    wait([*(proc.sentinel for proc in procs), wake])
                    for i, proc in enumerate(procs):
                        if proc.is_alive():
                            continue
                        if proc.exitcode is not None and proc.exitcode > 0:
                            # uvicorn fails a worker only when its app cannot start (a bad model
                            # directory, no store): another try would fail the same way
                            failure = f"a server worker could not start (exit code {proc.exitcode})"
                            break
                        # killed (a crash, the OOM killer: a negative code) or stopped alone (0)
                        log.warning(
                            "server worker %s exited (code %s): restarting", i, proc.exitcode
                        )
                        procs[i] = self._start(i)
            finally:
                self._shut_down(procs)
        if failure is not None:
            raise ServerStartError(failure)

    def stop(self) -> None:
        """Ask ``run`` to stop the workers and return (what SIGINT and SIGTERM do)."""
        self._stop.set()
        with self._wake_lock:
            if self._wake is not None:
                with contextlib.suppress(BlockingIOError):  # a wake already pending is enough
                    os.write(self._wake[1], b"\0")

    @contextlib.contextmanager
    def _wake_pipe(self) -> Iterator[int]:
        """The wake pipe for one ``run`` (its read end), opened after the port check so that a
        taken port leaves no fd behind, and closed however ``run`` ends."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        with self._wake_lock:
            self._wake = read, write
        try:
            yield read
        finally:
            with self._wake_lock:
                self._wake = None
                os.close(read)
                os.close(write)

    @contextlib.contextmanager
    def _stopped_by_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM call ``stop`` inside the block; their handlers before it are back
        after it (a later Ctrl-C raises KeyboardInterrupt again, as it did before ``run``)."""
        signals = (signal.SIGINT, signal.SIGTERM)
        before = {sig: signal.getsignal(sig) for sig in signals}
        try:
            for sig in signals:
                signal.signal(sig, lambda *_: self.stop())
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)

    def _start(self, index: int) -> BaseProcess:
        if self._counts is not None:  # a restarted worker's connections died with it
            self._counts[index] = NOT_SERVING
        proc = self._context.Process(
            target=_serve_one,
            args=(self.options, os.getpid(), self._counts, index),
            name=f"recsmith-worker-{index}",
            daemon=False,
        )
        proc.start()
        return proc

    @staticmethod
    def _shut_down(procs: list[BaseProcess], grace_s: float = 30.0) -> None:
        """SIGTERM every worker (uvicorn finishes the requests in flight), then wait; kill what
        is still there after ``grace_s``."""
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
