"""Even connection counts over the server's worker processes.

With ``SO_REUSEPORT`` (``supervisor.py``) the kernel hashes each new connection onto one worker's
socket, and a keep-alive connection then stays where it landed. 32 connections over two workers
split as coin flips do (§7 of BENCHMARKS.md measured the smaller share at 13.5 on average): 16/16
one time in seven, 18/14 or worse six in ten, 20/12 or worse one in five. Under a
closed loop both workers stay busy whatever the split, but under a fixed arrival rate — real
traffic, or a proxy's keep-alive pool — the worker holding more connections gets more of the
requests and runs out of its core first: at 80 % of the pair's capacity a 20/12 split asks 100 %
of one worker, and its queue, not the pipeline, sets the tail latency.

A worker cannot refuse a connection the kernel gave it, but HTTP/1.1 lets a server end one after
any response (``Connection: close``), and every client — browsers, proxies' pools, wrk, httpx —
opens a new one, which the kernel hashes again. So a worker holding two or more connections more
than the least-loaded worker closes one after the response it is about to give; the difference
shrinks by one at a time until no worker holds two more than another (Envoy's ``exact_balance``
does the same inside one process, by handing out the accepted sockets).

Each worker publishes its open connections in one slot of an array the supervisor shares (a
worker not yet serving holds -1 and is not counted). One close at a time: after closing, a worker
waits ``COOLDOWN_S`` before the next, so the client still reconnecting — one connection missing
from the total — is not taken for a gap and answered with a second close. A connection with a
request queued behind the response (pipelined), or whose request body is still arriving, is not
closed (``BalancedCycle``). When a worker dies, the supervisor, woken by its exit, clears its
slot at once (it would otherwise keep its last count, and the survivor would close connections
whose clients can only come back to it). A connection upgraded to a websocket leaves the count
when the websocket ends.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, MutableSequence
from typing import Any

import uvicorn
from prometheus_client.core import CounterMetricFamily

from recsmith.serving.one_write import OneWriteCycle, OneWriteProtocol
from recsmith.serving.supervisor import NOT_SERVING

#: How long a worker waits after closing a connection before it may close another: longer than a
#: loopback or LAN reconnect (well under a millisecond), short enough to even out 32 connections
#: within about a second (1.6 s from 32/0 in review).
COOLDOWN_S = 0.05


class ConnectionBalance:
    """One worker's view of every worker's open connections (see module docstring)."""

    def __init__(self, counts: MutableSequence[int], index: int, cooldown_s: float = COOLDOWN_S):
        self.counts = counts
        self.index = index
        self.cooldown_s = cooldown_s
        self.closed = 0  # connections this worker closed to even the counts out
        self._next_close = 0.0

    def record(self, open_connections: int) -> None:
        """Publish this worker's open connections (on every open and close, and once serving)."""
        self.counts[self.index] = open_connections

    def should_close(self, open_connections: int) -> bool:
        """Whether this worker, holding ``open_connections``, should close the connection whose
        response it is about to give."""
        fewest = min((c for c in self.counts if c != NOT_SERVING), default=open_connections)
        if open_connections - fewest < 2:
            return False
        now = time.monotonic()
        if now < self._next_close:
            return False
        self._next_close = now + self.cooldown_s
        self.closed += 1
        return True


#: This process's balance, when it is one of several workers (``install``); None otherwise.
_balance: ConnectionBalance | None = None


def install(counts: MutableSequence[int], index: int) -> ConnectionBalance:
    """Make this worker process balance its connections against the others' (the supervisor's
    workers call it before uvicorn starts; its slot stays ``NOT_SERVING`` until ``serving``)."""
    global _balance
    _balance = ConnectionBalance(counts, index)
    return _balance


def serving(open_connections: int) -> None:
    """This worker listens now: count it, with the connections it holds (none, at start)."""
    if _balance is not None:
        _balance.record(open_connections)


class CountedServer(uvicorn.Server):
    """uvicorn's server, counted by the balance once it listens (not while its model loads: the
    kernel gives a worker connections only from then on)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            serving(len(self.server_state.connections))


class ClosedToBalance:
    """The Prometheus counter ``recsmith_connections_closed_to_balance_total``: connections this
    worker closed to even the split out (0 where there is one worker or the balance is off). A
    count that keeps rising under steady clients means they reconnect onto the same worker — a
    client or balancer pinning its connections — and the balance is churning, not helping."""

    NAME = "recsmith_connections_closed_to_balance"

    def collect(self) -> Iterator[CounterMetricFamily]:
        closed = 0 if _balance is None else _balance.closed
        yield CounterMetricFamily(
            self.NAME,
            "Keep-alive connections this worker closed after a response because it held two or "
            "more more than another worker (serving.balance_connections).",
            value=closed,
        )


if OneWriteProtocol is not None:

    class BalancedCycle(OneWriteCycle):  # type: ignore[misc,valid-type]
        """``OneWriteCycle`` that, when the balance says so, answers with ``Connection: close``
        (uvicorn writes the header and closes after the response when ``keep_alive`` is off).

        Decided as the response starts, not as the request arrives: by then uvicorn has parsed
        everything the client sent with it, so a request pipelined behind this one is in the
        protocol's queue and the connection stays (a close would drop it). Nor while the request's
        body is still coming: an early answer (a 401 to an upload) followed by a close would reset
        a client that is still sending."""

        async def send(self, message: Any) -> None:
            if (
                _balance is not None
                and not self.response_started
                and message["type"] == "http.response.start"
                and self.keep_alive
                and not self.more_body
                and not self.protocol.pipeline
                and _balance.should_close(len(self.protocol.connections))
            ):
                self.keep_alive = False
            await super().send(message)

    class BalancedProtocol(OneWriteProtocol):  # type: ignore[misc,valid-type]
        """``OneWriteProtocol`` that publishes its worker's open connections and answers with
        ``BalancedCycle``."""

        cycle_class = BalancedCycle

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if _balance is not None:
                _balance.record(len(self.connections))

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            if _balance is not None:
                _balance.record(len(self.connections))

        def handle_websocket_upgrade(self) -> None:
            """The connection now speaks the websocket protocol, whose ``connection_lost``
            leaves the server's connections without this class's: have it publish the count
            too, or the worker's slot stays one high until its next connection comes or goes."""
            super().handle_websocket_upgrade()
            websocket = self.transport.get_protocol()
            lost = websocket.connection_lost
            connections = self.connections

            def counted(exc: Exception | None) -> None:
                lost(exc)
                if _balance is not None:
                    _balance.record(len(connections))

            websocket.connection_lost = counted

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            cycle.protocol = self  # what ``BalancedCycle`` reads as its response starts
            super()._start_asgi_task(cycle, app)
else:  # pragma: no cover - uvicorn without the private names one_write overrides
    BalancedCycle = BalancedProtocol = None  # type: ignore[assignment,misc]
