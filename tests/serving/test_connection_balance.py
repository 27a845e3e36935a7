"""The connection balance's rule, on the shared array the supervisor makes (a real
``multiprocessing`` RawArray), against counts worked out by hand; and a real uvicorn server on
``BalancedProtocol``: its counts, the closes, and the connections it must leave open."""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from prometheus_client import generate_latest

from recsmith.serving import connection_balance
from recsmith.serving.connection_balance import (
    NOT_SERVING,
    BalancedProtocol,
    ConnectionBalance,
    CountedServer,
)
from recsmith.serving.metrics import Metrics
from recsmith.testing.ports import free_port


def _counts(*values: int) -> multiprocessing.Array:  # type: ignore[valid-type]
    return multiprocessing.get_context("spawn").RawArray("i", list(values))


def test_only_a_worker_two_or_more_ahead_of_the_fewest_closes() -> None:
    counts = _counts(18, 14)
    assert ConnectionBalance(counts, 0).should_close(18)  # 18 - 14 = 4
    assert not ConnectionBalance(counts, 1).should_close(14)  # the lighter one never
    assert not ConnectionBalance(_counts(17, 16), 0).should_close(17)  # one ahead: even enough
    assert ConnectionBalance(_counts(10, 10, 8), 0).should_close(10)  # 10 - 8 = 2, of three


def test_a_worker_not_serving_yet_is_not_counted() -> None:
    # the other worker still loads its model: the kernel gives it no connection, so closing
    # one here would only bring the client back to this worker
    assert not ConnectionBalance(_counts(NOT_SERVING, 5), 1).should_close(5)
    assert ConnectionBalance(_counts(3, NOT_SERVING, 0), 0).should_close(3)


def test_one_close_per_cooldown_and_each_counted() -> None:
    balance = ConnectionBalance(_counts(20, 12), 0, cooldown_s=0.2)
    assert balance.should_close(20)
    # the client of that close is reconnecting: 19 + 12 open, a gap that is not one
    assert not balance.should_close(19)
    time.sleep(0.25)
    assert balance.should_close(19)
    assert balance.closed == 2


def test_record_writes_this_workers_slot_only() -> None:
    counts = _counts(NOT_SERVING, 7)
    ConnectionBalance(counts, 0).record(9)
    assert list(counts) == [9, 7]


def test_metrics_count_this_workers_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    def scraped() -> str:
        return generate_latest(Metrics.create().registry).decode()

    assert "recsmith_connections_closed_to_balance_total 0.0" in scraped()  # one worker
    balance = ConnectionBalance(_counts(20, 12), 0, cooldown_s=0.0)
    monkeypatch.setattr(connection_balance, "_balance", balance)
    assert balance.should_close(20) and balance.should_close(19)
    assert not balance.should_close(13)
    assert "recsmith_connections_closed_to_balance_total 2.0" in scraped()


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """200 "ok" to a GET; a POST is answered 401 at once, before its body is read; a websocket
    is accepted and held until the client leaves."""
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["type"] != "http":
        return
    status = 401 if scope["method"] == "POST" else 200
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def balanced_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, ConnectionBalance]]:
    """A real uvicorn server on ``BalancedProtocol`` in a thread, as worker 0 of two whose other
    worker holds no connection (no cooldown): once it holds two, every response may close its
    connection. One idle connection is open before the test's own."""
    counts = _counts(NOT_SERVING, 0)
    balance = ConnectionBalance(counts, 0, cooldown_s=0.0)
    monkeypatch.setattr(connection_balance, "_balance", balance)
    port = free_port()
    with _uvicorn(port), socket.create_connection(("127.0.0.1", port)):
        _wait_for(lambda: counts[0] == 1)
        yield port, balance


@contextmanager
def _uvicorn(port: int) -> Iterator[None]:
    """uvicorn serving ``_app`` on ``BalancedProtocol`` in a thread, started, until the block
    ends."""
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, http=BalancedProtocol, lifespan="off", log_level="error"
    )
    server = CountedServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: server.started)
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def _answers(sock: socket.socket, n: int) -> list[bytes]:
    """The heads of the next ``n`` answers (each with a 2-byte body) on ``sock``."""
    data, heads = b"", []
    while len(heads) < n:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(heads)} of {n} answers"
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        while len(data) < 2:
            data += sock.recv(65536)
        heads.append(head.lower())
        data = data[2:]
    return heads


def test_a_served_worker_counts_its_connections_from_start(
    balanced_server: tuple[int, ConnectionBalance],
) -> None:
    port, balance = balanced_server
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    _wait_for(lambda: balance.counts[0] == 4)
    for c in clients[:2]:
        c.close()
    _wait_for(lambda: balance.counts[0] == 2)  # closes counted too
    clients[2].close()


def test_a_worker_publishes_its_count_once_it_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any connection: a worker that waits for its first one to be counted would stay
    out of the balance (``NOT_SERVING``) while the others send it none."""
    counts = _counts(NOT_SERVING, 5)
    monkeypatch.setattr(connection_balance, "_balance", ConnectionBalance(counts, 0))
    with _uvicorn(free_port()):
        _wait_for(lambda: list(counts) == [0, 5])


def test_a_response_closes_its_connection_unless_a_request_waits_behind_it(
    balanced_server: tuple[int, ConnectionBalance],
) -> None:
    port, balance = balanced_server
    get = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as lone:
        _wait_for(lambda: balance.counts[0] == 2)
        lone.sendall(get)
        assert b"connection: close" in _answers(lone, 1)[0]
        assert lone.recv(1) == b""  # and closed after it
    # two requests in one write: the first answer keeps the connection for the second
    with socket.create_connection(("127.0.0.1", port)) as piped:
        _wait_for(lambda: balance.counts[0] == 2)
        piped.sendall(get + get)
        first, second = _answers(piped, 2)
        assert b"connection: close" not in first and b"connection: close" in second
    assert balance.closed == 2


def test_an_early_answer_to_an_upload_leaves_the_connection_open(
    balanced_server: tuple[int, ConnectionBalance],
) -> None:
    """A 401 before the body is read: closing then would reset a client still sending."""
    port, balance = balanced_server
    with socket.create_connection(("127.0.0.1", port)) as upload:
        _wait_for(lambda: balance.counts[0] == 2)
        upload.sendall(b"POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        assert b"connection: close" not in _answers(upload, 1)[0]
    assert balance.closed == 0


def test_a_websocket_leaves_the_count_when_it_ends(
    balanced_server: tuple[int, ConnectionBalance],
) -> None:
    """An upgraded connection is counted while it lasts, and no longer once it ends: uvicorn
    hands it to its websocket protocol, whose end the HTTP protocol never hears of."""
    port, balance = balanced_server
    with socket.create_connection(("127.0.0.1", port)) as websocket:
        websocket.sendall(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert websocket.recv(65536).startswith(b"HTTP/1.1 101")
        assert balance.counts[0] == 2  # the fixture's idle connection and this one
    _wait_for(lambda: balance.counts[0] == 1)


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition not met within 10 s"
        time.sleep(0.01)
