"""``benchmarks/open_loop.py``: both generators (compiled C and asyncio) against a real threaded
HTTP server started here, which records what it was sent and what it answered: the counts and
errors against the server's own tally, and a server stall charged to every request scheduled
during it (latencies from the schedule, bounds worked out by hand)."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from open_loop import OpenLoopResult, open_loop, path_choices

#: the status each path is answered with; "/slow" after SLOW_S
STATUS = {"/ok": 200, "/slow": 200, "/missing": 404, "/broken": 500}
#: answered 200 with "Connection: close", and the connection closed after it
CLOSE = "/close"
SLOW_S = 0.05


class Recorder(ThreadingHTTPServer):
    """A keep-alive HTTP/1.1 server that answers ``STATUS``, stalls everyone for ``stall_s``
    on the first request it gets (when set), and records every (path, status) it answered."""

    daemon_threads = True

    def __init__(self, stall_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.stall_s = stall_s
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int]] = []
        self.connections = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave as they are written
    server: Recorder

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        with self.server.lock:  # held through the stall: every request waits it out
            if self.server.stall_s:
                time.sleep(self.server.stall_s)
                self.server.stall_s = 0.0
        if self.path == "/slow":
            time.sleep(SLOW_S)
        status = 200 if self.path == CLOSE else STATUS[self.path]
        with self.server.lock:  # before answering: the client may finish as soon as it has all
            self.server.answered.append((self.path, status))
            body = b'{"items": []}' * (1 + len(self.server.answered) % 7)  # lengths vary
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if self.path == CLOSE:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test compiles the C generator afresh into its own cache directory."""
    monkeypatch.setenv("RECSMITH_CACHE_DIR", str(tmp_path / "cache"))


@contextmanager
def serve(stall_s: float = 0.0) -> Iterator[Recorder]:
    """A ``Recorder`` answering on a free local port until the block ends."""
    server = Recorder(stall_s)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


Answered = list[tuple[str, int]]


def drive(generator: str, rate: float, connections: int, seconds: float, stall_s: float = 0.0,
          paths: list[str] | None = None) -> tuple[OpenLoopResult, Answered]:  # fmt: skip
    """One run of ``generator`` against a fresh recording server: its result and what the
    server answered."""
    result, answered, _ = drive_counted(generator, rate, connections, seconds, stall_s, paths)
    return result, answered


def drive_counted(generator: str, rate: float, connections: int, seconds: float,
                  stall_s: float = 0.0, paths: list[str] | None = None,
                  ) -> tuple[OpenLoopResult, Answered, int]:  # fmt: skip
    """``drive``, with the connections the server accepted."""
    with serve(stall_s) as server:
        port = server.server_address[1]
        result = open_loop("127.0.0.1", port, paths or list(STATUS), "key", rate, connections,
                           seconds, generator)  # fmt: skip
        return result, server.answered, server.connections


def test_each_connection_draws_its_own_slots_paths_from_its_own_seed() -> None:
    """Connection c owns slots c, c + 3, ...; its paths are random.Random(c)'s draws in order."""
    choices = path_choices(5, 20, 3)
    for c in range(3):
        rng = random.Random(c)
        assert list(choices[c::3]) == [rng.randrange(5) for _ in range(c, 20, 3)]


@pytest.mark.parametrize("generator", ["c", "python"])
def test_every_scheduled_request_is_answered_and_non_200_counted_as_errors(
    generator: str,
) -> None:
    """300 requests (150/s for 2 s): the result's count, errors and paths agree with what the
    server itself answered, and every "/slow" request took at least its delay."""
    result, answered = drive(generator, 150.0, 4, 2.0)
    assert result.generator == generator
    assert result.requests == len(answered) == 300 == len(result.latencies_ms)
    errors = sum(status != 200 for _, status in answered)
    assert 0 < errors < 300
    assert result.errors == errors
    paths = list(STATUS)
    sent = Counter(paths[i] for i in path_choices(len(paths), 300, 4))
    assert Counter(path for path, _ in answered) == sent
    slow = path_choices(len(paths), 300, 4) == paths.index("/slow")
    assert result.latencies_ms[slow].min() >= SLOW_S * 1000
    assert 1.5 < result.duration_s < 4.0
    assert 0 < result.generator_cpu_s < 2.0


def test_the_c_and_the_python_generator_send_the_same_requests() -> None:
    """Same schedule, same paths: the same counts and errors and the same paths answered."""
    c, c_answered = drive("c", 200.0, 8, 1.0)
    python, python_answered = drive("python", 200.0, 8, 1.0)
    assert (c.requests, c.errors) == (python.requests, python.errors)
    assert sorted(c_answered) == sorted(python_answered)


@pytest.mark.parametrize("generator", ["c", "python"])
def test_a_stall_is_charged_to_every_request_scheduled_during_it(generator: str) -> None:
    """The server holds every request for 300 ms from the first one it gets (which leaves no
    earlier than the schedule's start). Request k is due k / 100 s after the start, so it cannot
    be answered before 300 ms after the start: its latency from the schedule is at least
    300 - 10 k ms (k < 30), though the requests queued behind another on their connection (k >=
    4) left only after the stall, moments before their answers. Once the backlog is served
    (after 0.5 s), requests are answered at once again."""
    result, _ = drive(generator, 100.0, 4, 1.0, stall_s=0.3, paths=["/ok"])
    due_ms = np.arange(100) * 10.0
    during = due_ms < 300
    floor = 300 - due_ms[during]
    assert (result.latencies_ms[during] >= floor).all()
    assert (result.latencies_ms[during] <= floor + 150).all()  # the stall, not more
    assert np.median(result.latencies_ms[due_ms >= 500]) < 20


def test_without_a_working_compiler_the_python_generator_runs_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A compiler that fails (``false``): the run still happens, with the Python generator,
    and the result names it and why."""
    monkeypatch.setenv("CC", "false")
    result, answered = drive("c", 100.0, 2, 0.5)
    assert result.generator.startswith("python (the C generator is unavailable: ")
    assert "false failed" in result.generator
    assert result.requests == len(answered) == 50


@pytest.mark.parametrize("generator", ["c", "python"])
def test_an_answer_that_closes_its_connection_is_followed_by_a_new_one(generator: str) -> None:
    """The server ends a connection after every "/close" answer (``Connection: close``, as the
    server's connection balance does): the connection's next request goes on a new one and every
    scheduled request is still sent and answered (2 connections to start, one more after each
    close that a request follows: connection c's last slot is 98 + c)."""
    paths = ["/ok", CLOSE]
    result, answered, connections = drive_counted(generator, 100.0, 2, 1.0, paths=paths)
    choices = path_choices(2, 100, 2)
    closes = sum(path == CLOSE for path, _ in answered)
    assert result.requests == len(answered) == 100 and result.errors == 0
    assert closes == sum(paths[i] == CLOSE for i in choices) > 10
    last_closes = sum(paths[choices[slot]] == CLOSE for slot in (98, 99))
    assert connections == 2 + closes - last_closes
