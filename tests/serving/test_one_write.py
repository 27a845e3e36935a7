"""``one_write``: a response's head leaves with its body, through a real uvicorn on a socket.

The oracle is uvicorn's own httptools protocol serving the same app: every response's bytes
(but the ``date`` header) must be equal, for the shapes a server answers (a body, a ``HEAD``, a
``Connection: close``, a streamed body, an empty body, a chunked one, an app failing after the
start, a keep-alive connection asked twice). That the head waits for the body is seen on the
wire: an app that pauses between the two sends lets uvicorn's head through during the pause,
and nothing of the one-write server's.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
import uvicorn

from recsmith.serving import one_write
from recsmith.serving.app import run as serving_run

PAUSE_S = 0.4
JSON = [(b"content-type", b"application/json")]
#: How each ``/pause`` body send ended: ``"sent"`` or the exception it raised.
PAUSED_SENDS: list[str] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by path: each path one shape of response (module docstring)."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        for part in (b'{"a":', b"1", b"}"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/fail":  # started, then broken: uvicorn closes the connection after the head
        await send({"type": "http.response.start", "status": 200, "headers": JSON})
        raise RuntimeError("broken on purpose")
    body = b"" if path == "/empty" else b'{"items": ["i1", "i2"]}'
    headers = list(JSON)
    if path != "/chunked":
        headers.append((b"content-length", b"%d" % len(body)))
    await send(
        {
            "type": "http.response.start",
            "status": 204 if path == "/empty" else 200,
            "headers": headers,
        }
    )
    if path != "/pause":
        await send({"type": "http.response.body", "body": body})
        return
    await asyncio.sleep(PAUSE_S)
    try:
        await send({"type": "http.response.body", "body": body})
    except Exception as exc:
        PAUSED_SENDS.append(repr(exc))
        raise
    PAUSED_SENDS.append("sent")


@contextmanager
def serving(http: Any) -> Iterator[int]:
    """``app`` on a real uvicorn (uvloop, as ``recsmith serve``) in a thread; its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http,
        lifespan="off",
        log_level="critical",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)


def exchange(port: int, raw: bytes) -> bytes:
    """Everything the server sends back for ``raw`` until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


def undated(answer: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*\r\n", b"", answer)


REQUESTS = {
    "body": b"GET /body HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "head": b"HEAD /body HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "http/1.0": b"GET /body HTTP/1.0\r\nhost: x\r\n\r\n",
    "stream": b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "empty": b"GET /empty HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "chunked": b"GET /chunked HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "fail": b"GET /fail HTTP/1.1\r\nhost: x\r\n\r\n",
    "keep-alive twice": b"GET /body HTTP/1.1\r\nhost: x\r\n\r\n"
    b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
}


def test_the_protocol_is_the_one_write_one() -> None:
    assert one_write.protocol() is one_write.OneWriteProtocol


def test_every_response_is_byte_for_byte_uvicorns() -> None:
    with serving("httptools") as plain_port, serving(one_write.protocol()) as one_port:
        for name, raw in REQUESTS.items():
            expected = undated(exchange(plain_port, raw))
            assert expected.startswith(b"HTTP/1.1 200") or name == "empty", (name, expected)
            assert undated(exchange(one_port, raw)) == expected, name


def _during_pause(port: int) -> tuple[bytes, bytes]:
    """What arrives while the app pauses between start and body, and all of it by the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(REQUESTS["body"].replace(b"/body", b"/pause"))
        sock.settimeout(PAUSE_S / 2)
        early = bytearray()
        with suppress(TimeoutError):
            early += sock.recv(65536)
        sock.settimeout(10)
        whole = bytearray(early)
        while chunk := sock.recv(65536):
            whole += chunk
    return bytes(early), bytes(whole)


def test_the_head_leaves_with_the_body() -> None:
    with serving("httptools") as plain_port, serving(one_write.protocol()) as one_port:
        early, whole = _during_pause(plain_port)
        assert early.startswith(b"HTTP/1.1 200 OK\r\n") and early.endswith(b"\r\n\r\n")
        assert whole == early + b'{"items": ["i1", "i2"]}'
        early, whole = _during_pause(one_port)
        assert early in (b"", whole)  # nothing while the app pauses (or all, a slow machine)
        assert undated(whole) == undated(_during_pause(plain_port)[1])


def test_a_client_hanging_up_on_a_held_head_breaks_nothing() -> None:
    """The client goes while the head is held: the app's body send must end quietly, as
    uvicorn's own does for a gone client, and the server keeps answering."""
    PAUSED_SENDS.clear()
    with serving(one_write.protocol()) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(REQUESTS["body"].replace(b"/body", b"/pause"))
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while not PAUSED_SENDS:
            assert time.monotonic() < deadline, "the paused app never sent its body"
            time.sleep(0.02)
        assert PAUSED_SENDS == ["sent"]
        assert exchange(port, REQUESTS["body"]).endswith(b'\r\n\r\n{"items": ["i1", "i2"]}')


def test_held_writelines_and_write_eof_keep_the_order() -> None:
    """Bytes given to the held transport by any of its write methods leave after the head, on a
    real socket: nothing while held, then all of it in order, and the end of stream last."""

    async def drive(near: socket.socket, far: socket.socket) -> tuple[bytes, bytes, bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=near)
        held = one_write._Held(transport)  # type: ignore[arg-type]
        held.write(b"HEAD\r\n\r\n")
        held.writelines([b"body-1;", b"body-2"])
        await asyncio.sleep(0.05)
        early = b""
        with suppress(BlockingIOError):
            early = far.recv(65536)
        held.flush()
        held.write(b";tail")
        held.write_eof()
        await asyncio.sleep(0.05)
        far.setblocking(True)
        far.settimeout(10)
        rest = bytearray()
        while chunk := far.recv(65536):
            rest += chunk
        transport.close()
        return early, bytes(rest), chunk

    near, far = socket.socketpair()
    far.setblocking(False)
    with near, far:
        early, rest, end = asyncio.run(drive(near, far))
    assert early == b""
    assert rest == b"HEAD\r\n\r\nbody-1;body-2;tail" and end == b""


def test_protocol_falls_back_to_uvicorns_auto(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the private method it overrides, ``protocol`` gives uvicorn's default, once
    saying so."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    monkeypatch.delattr(HttpToolsProtocol, "_start_asgi_task")
    with caplog.at_level(logging.WARNING, logger=one_write.__name__):
        assert one_write.protocol() == "auto"
    warnings = [r for r in caplog.records if r.name == one_write.__name__]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


@pytest.mark.parametrize(
    "workers,balanced,even_out",
    [(1, True, True), (2, True, True), (2, True, False), (2, False, True)],
)
def test_recsmith_serve_gives_uvicorn_the_protocol(
    monkeypatch: pytest.MonkeyPatch, workers: int, balanced: bool, even_out: bool
) -> None:
    """One worker (``uvicorn.run``), several through the ``Supervisor`` (Linux) or through
    uvicorn's own workers: each is given the one-write protocol; the Supervisor's workers its
    connection-balancing subclass unless ``serving.balance_connections`` is off."""
    from recsmith.config import Settings
    from recsmith.serving import app as serving_app
    from recsmith.serving.connection_balance import BalancedProtocol

    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", serving_app.SETTINGS_ENV):
        monkeypatch.setenv(name, "restored after the test")  # ``run`` sets them
    given: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: given.update(options))
    monkeypatch.setattr(
        serving_app.Supervisor,
        "run",
        lambda self: given.update(self.options, counts=self._counts),
    )
    monkeypatch.setattr(serving_app, "reuseport_balances", lambda: balanced)
    serving_run(Settings(serving={"workers": workers, "balance_connections": even_out}))
    supervised = workers > 1 and balanced
    assert given["http"] is (
        BalancedProtocol if supervised and even_out else one_write.OneWriteProtocol
    )
    assert ("workers" in given) == (workers > 1 and not balanced)
    if supervised:  # the workers' shared counts exist only when they balance
        assert (given["counts"] is not None) == even_out
