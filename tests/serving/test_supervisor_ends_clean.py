"""What a ``Supervisor.run`` leaves behind when it ends: no open fds, the signal handlers it found,
and a ``stop`` that no longer writes anywhere. Real runs: a port another socket holds, and a real
worker whose app cannot start (no settings in the environment), so ``run`` ends on its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.errors import ServerStartError
from recsmith.serving.app import SETTINGS_ENV
from recsmith.serving.supervisor import Supervisor
from recsmith.testing.ports import free_port

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def handlers() -> Iterator[dict[int, object]]:
    """Handlers of our own on SIGINT and SIGTERM for the test (not the defaults, which a
    ``run`` that installed nothing would also leave), put back as they were afterwards."""
    before = {sig: signal.getsignal(sig) for sig in SIGNALS}
    ours = {sig: lambda *_: None for sig in SIGNALS}
    for sig, handler in ours.items():
        signal.signal(sig, handler)
    yield dict(ours)
    for sig, handler in before.items():
        signal.signal(sig, handler)  # type: ignore[arg-type]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds in /proc")
def test_a_taken_port_leaves_no_fd_open(handlers: dict[int, object]) -> None:
    """The port check fails before any worker starts: five runs, not one fd more after them
    (the wake pipe was opened in ``__init__`` and never closed: two fds a run)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = {"host": "127.0.0.1", "port": taken.getsockname()[1]}
        before = _open_fds()
        for _ in range(5):
            with pytest.raises(ServerStartError, match=r"serving\.port: cannot listen"):
                Supervisor(1, options, balance=False).run()
        assert _open_fds() == before
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers


@pytest.mark.slow
def test_after_a_run_the_handlers_are_back_and_stop_writes_nothing(
    handlers: dict[int, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that cannot start ends ``run`` with an error. Afterwards SIGINT and SIGTERM have
    the handlers they had before it (its own called ``stop``, which wrote a NUL byte into the
    closed wake pipe's fd number: an ``EBADF``, or a byte in whatever file had reused it). Files
    opened after the run take the lowest free fds, the pipe's old numbers among them; a ``stop``
    then must neither raise nor write into any of them."""
    monkeypatch.delenv(SETTINGS_ENV, raising=False)
    options = {"host": "127.0.0.1", "port": free_port(), "log_level": "critical"}
    supervisor = Supervisor(1, options, balance=False)
    with pytest.raises(ServerStartError, match="could not start"):
        supervisor.run()
    assert {sig: signal.getsignal(sig) for sig in SIGNALS} == handlers
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(8)]
        supervisor.stop()
        supervisor.stop()
        for file in files:
            file.seek(0)
            assert file.read() == b""
