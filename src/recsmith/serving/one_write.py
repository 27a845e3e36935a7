"""One socket write per response: uvicorn's httptools protocol, holding a response's status line
and headers until its first body part, so both leave in one ``transport.write``.

uvicorn writes the head when the app sends ``http.response.start`` and the body when it sends
``http.response.body``: two writes, and under uvloop two ``send`` system calls, for every
response, while nearly every response of this server is one body part right after its start.
On loopback each ``send`` also runs the receiving side's TCP work in the sender's thread, and the
client wakes up for a head it cannot use without its body. A real worker spent 6.4 % of its loop
thread in those writes (BENCHMARKS §55; §74 for this cut).

The bytes on the wire are uvicorn's, in uvicorn's order: the cycle's own ``send`` still builds
the head and the body; only the head's write is held (``_Held``) and joined to the body's. A
streamed body's first part takes the head with it, the parts after it are written as before. A
``HEAD`` request or an empty body writes the head alone, when the body's message comes; a
connection closed by uvicorn in between (``keep-alive`` off, an app failing after the start)
writes the held head first. A response the app starts and then never continues keeps its head
until the app ends: uvicorn then closes the connection, as it did, after the head.

It leans on uvicorn's private ``HttpToolsProtocol._start_asgi_task`` and
``RequestResponseCycle`` (uvicorn 0.55); ``protocol()`` gives uvicorn's own ``"auto"`` when
they or httptools are missing, so the server then writes twice, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

try:  # private, checked here: without them, ``protocol`` answers uvicorn's default
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
    HttpToolsProtocol = RequestResponseCycle = None  # type: ignore[assignment,misc]


class _Held:
    """Stands in for a connection's transport between a response's start and its first body
    part: writes are kept and leave as one (``flush``); everything else is the transport's.
    Every way bytes leave is its own here (``write``, ``writelines``, ``write_eof``, ``close``),
    so none can overtake the held head through the real transport."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        self.parts.extend(data)

    def flush(self) -> None:
        """Write what is held, in one call."""
        if self.parts:
            self.transport.write(b"".join(self.parts))
            self.parts.clear()

    def close(self) -> None:
        """What is held first: uvicorn closes after a response it has written."""
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        """What is held first, then the end of the stream."""
        self.flush()
        self.transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


if RequestResponseCycle is not None:

    class OneWriteCycle(RequestResponseCycle):  # type: ignore[misc,valid-type]
        """uvicorn's cycle, its response head written with the first body part."""

        async def send(self, message: Any) -> None:
            if not self.response_started and message["type"] == "http.response.start":
                self.transport = _Held(self.transport)  # the head waits for the body
                await super().send(message)
                return
            held = self.transport if isinstance(self.transport, _Held) else None
            try:
                await super().send(message)
            finally:
                if held is not None:
                    self.transport = held.transport
                    if not self.disconnected:
                        held.flush()

    class OneWriteProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol whose requests are answered by ``cycle_class``."""

        #: the class every request's cycle becomes (a subclass may answer with its own)
        cycle_class: type = OneWriteCycle

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            cycle.__class__ = self.cycle_class  # built by uvicorn; a subclass adding no state
            super()._start_asgi_task(cycle, app)
else:  # pragma: no cover - uvicorn without the private names above: ``protocol`` says so
    OneWriteCycle = OneWriteProtocol = None  # type: ignore[assignment,misc]


def protocol() -> type[asyncio.Protocol] | str:
    """What ``recsmith serve`` gives uvicorn's ``http``: ``OneWriteProtocol`` where uvicorn
    has the private names it overrides, else ``"auto"`` (one warning line)."""
    start = getattr(HttpToolsProtocol, "_start_asgi_task", None)
    if RequestResponseCycle is None or start is None:
        log.warning("uvicorn's httptools protocol is not as written for: two writes a response")
        return "auto"
    return OneWriteProtocol
