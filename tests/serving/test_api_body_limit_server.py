"""A huge request body against a real server: refused at the limit, memory flat, liveness prompt.

A real uvicorn process (``recsmith.serving.run``) gets a 128 MiB body two ways: declared up front
(``Content-Length``), and streamed chunked so its size is unknown until it ends. The server's peak
resident memory (``VmHWM`` from /proc, the kernel's count, not the app's) must not grow by anything
near the body's size, and ``/health/live`` must keep answering while the body streams in.
"""

from __future__ import annotations

import json
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, live_server

from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

MiB = 1024 * 1024
HUGE = 128 * MiB
LIMIT = Settings().serving.max_body_bytes  # the default is what is tested
CHUNK = b"A" * MiB


def _peak_rss(pid: int) -> int:
    """The process's peak resident set in bytes, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@dataclass(frozen=True)
class Server:
    live: LiveServer
    secret: str

    @property
    def port(self) -> int:
        return self.live.port

    def head(self, extra: str) -> bytes:
        return (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.secret}\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n"
        ).encode()


@pytest.fixture
def server(tmp_path: Path, bundle_dir: Path) -> Iterator[Server]:
    db_path = tmp_path / "limit.sqlite"
    setup = SQLiteStore(db_path)
    _, secret = create_api_key(setup, "limit", ["ingest"])
    setup.close()
    settings = Settings(store={"url": f"sqlite:///{db_path}"}, serving={"model_dir": bundle_dir})
    with live_server(settings, tmp_path) as live:
        yield Server(live, secret)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Status and JSON body of the one response on ``sock`` (read until the body is complete)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        part = sock.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body[: _length(data)])


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 62


def _stream_chunked(server: Server, total: int) -> tuple[int, dict[str, str], int]:
    """Send a ``total``-byte JSON array chunked, stopping as soon as the server answers; the
    response and how many bytes were sent. The body is valid JSON, so a server without a limit
    parses all of it (one event whose context holds the bulk)."""
    opening = b'[{"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": 1, '
    opening += b'"context": {"blob": "'
    closing = b'"}}]'
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(server.head("Transfer-Encoding: chunked\r\n"))
        pieces = [opening, *[CHUNK] * ((total - len(opening) - len(closing)) // len(CHUNK))]
        try:
            for piece in [*pieces, closing]:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered before the end of the body
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        status, body = _read_response(sock)
    return status, body, sent


def test_declared_huge_body_is_refused_before_it_is_sent(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(server.head(f"Content-Length: {HUGE}\r\n"))  # headers only: no body yet
        status, body = _read_response(sock)
    assert status == 413
    assert "serving.max_body_bytes" in body["detail"]
    assert str(LIMIT) in body["detail"] and str(HUGE) in body["detail"]


def test_streamed_huge_body_stops_at_the_limit_with_memory_flat_and_liveness_prompt(
    server: Server,
) -> None:
    live = f"http://127.0.0.1:{server.port}/health/live"
    with httpx.Client(timeout=10) as http:
        baseline = max(_timed(http, live) for _ in range(5))  # same server, same command
        before = _peak_rss(server.live.proc.pid)
        outcome: list[tuple[int, dict[str, str], int]] = []
        sender = threading.Thread(target=lambda: outcome.append(_stream_chunked(server, HUGE)))
        sender.start()
        waits = []
        while sender.is_alive() or len(waits) < 5:  # at least 5 probes, more while it streams
            waits.append(_timed(http, live))
            time.sleep(0.02)
        sender.join(timeout=60)
    grown = _peak_rss(server.live.proc.pid) - before
    status, body, sent = outcome[0]
    assert status == 413, body
    assert "serving.max_body_bytes" in body["detail"]
    assert sent < HUGE / 2, f"the server read {sent} bytes before refusing"
    assert grown < HUGE / 4, f"peak memory grew by {grown / MiB:.0f} MiB for a refused body"
    assert max(waits) < baseline + 0.5, f"liveness took {max(waits):.2f} s (idle: {baseline:.3f})"


def _timed(http: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    assert http.get(url).status_code == 200
    return time.perf_counter() - started
