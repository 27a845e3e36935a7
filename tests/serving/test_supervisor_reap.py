"""A real ``Supervisor`` with two real workers (the app from the settings in the environment, on
``BalancedProtocol``): a worker killed while it holds connections has its slot in the balance's
counts cleared (``NOT_SERVING``) as it exits, so the survivor stops balancing against the count
it died with. The supervisor used to notice at its next half-second tick, and meanwhile the
survivor closed connections whose clients could only come back to it.

The one timing bound here, 0.1 s from the killed worker's connections ending (the moment their
clients may reconnect) to its cleared slot, stands for "woken by the exit, not by a tick": the
exit wakes the supervisor within milliseconds; a half-second poll misses the bound four times in
five a kill, and one of the two kills 24 times in 25."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, MutableSequence

import pytest

from recsmith.config import Settings
from recsmith.serving.app import SETTINGS_ENV
from recsmith.serving.connection_balance import BalancedProtocol
from recsmith.serving.supervisor import NOT_SERVING, Supervisor, reuseport_balances
from recsmith.testing.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not reuseport_balances(), reason="SO_REUSEPORT balancing: Linux"),
]
BOUND_S = 0.1


def _pid_of(index: int) -> int:
    (worker,) = [
        p for p in multiprocessing.active_children() if p.name == f"recsmith-worker-{index}"
    ]
    assert worker.pid is not None
    return worker.pid


def _wait_for(condition: Callable[[], bool], within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


def _kill_each(port: int, counts: MutableSequence[int], delays: list[float]) -> None:
    """Kill worker 0, then worker 1, each while both serve and each holds a connection; record
    the time from each kill to its slot's ``NOT_SERVING``."""
    for victim in (0, 1):
        _wait_for(lambda: list(counts) == [0, 0])  # both listen, no connection left
        clients: list[socket.socket] = []
        try:
            while min(counts) < 1:  # the kernel's hash: open more until each holds one
                clients.append(socket.create_connection(("127.0.0.1", port)))
                _wait_for(lambda: sum(counts) == len(clients))  # noqa: B023
            os.kill(_pid_of(victim), signal.SIGKILL)
            # its connections end when the kernel closes its files (after freeing its memory,
            # which takes a while): the moment a client could reconnect to the survivor
            ended, _, _ = select.select(clients, [], [], 10)
            assert ended, "no connection of the killed worker ended"
            reset = time.monotonic()
            _wait_for(lambda: counts[victim] == NOT_SERVING, within_s=10)  # noqa: B023
            delays.append(time.monotonic() - reset)
        finally:
            for client in clients:
                client.close()


def test_a_killed_workers_slot_is_cleared_as_it_exits(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTINGS_ENV, settings.model_dump_json())
    port = free_port()
    options = {
        "host": "127.0.0.1",
        "port": port,
        "access_log": False,
        "log_level": "error",
        "http": BalancedProtocol,
    }
    supervisor = Supervisor(2, options, balance=True)
    counts = supervisor.counts
    assert counts is not None
    delays: list[float] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            _kill_each(port, counts, delays)
        except BaseException as exc:  # raised in the test's thread below
            errors.append(exc)
        finally:
            supervisor.stop()

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=check)
    thread.start()
    try:
        supervisor.run()  # signal handlers: the main thread's
    finally:
        thread.join(120)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if errors:
        raise errors[0]
    assert len(delays) == 2 and max(delays) < BOUND_S, delays
