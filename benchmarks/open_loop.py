"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

wrk's closed loop sends a connection's next request only when the last answer arrived, so with 32
clients the mean latency is 32 / throughput by construction (Little's law) and says little about
how fast one request is served. Here each of ``connections`` keep-alive connections owns every
``connections``-th slot of a schedule at ``rate`` requests/s, and latency is measured from the
*scheduled* send time (as wrk2 does), so a stalled server is charged for every request it delayed
(no coordinated omission). A response with ``Connection: close`` is followed by a new connection,
as any HTTP/1.1 client does (the time to reconnect counts in the next request's latency). Used by
``serve_load.py --rate``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OpenLoopResult:
    requests: int
    errors: int
    duration_s: float
    latencies_ms: np.ndarray

    def summary(self) -> dict[str, float]:
        lat = self.latencies_ms
        return {
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.duration_s, 1),
            "errors": self.errors,
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "max_ms": round(float(lat.max()), 2),
        }


async def _connection(
    host: str,
    port: int,
    slots: np.ndarray,
    start: float,
    paths: list[str],
    headers: str,
    seed: int,
) -> tuple[list[float], int]:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    for due in slots:
        wait = start + due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        path = paths[rng.randrange(len(paths))]
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        lines = head.lower().split(b"\r\n")
        length = next(int(x.split(b":", 1)[1]) for x in lines if x.startswith(b"content-length:"))
        await reader.readexactly(length)
        latencies.append((loop.time() - (start + due)) * 1000.0)
        errors += status != 200
        if b"connection: close" in lines:  # the server ends it (e.g. to even its workers out)
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
    writer.close()
    return latencies, errors


async def _run(
    host: str, port: int, paths: list[str], key: str, rate: float, connections: int, seconds: float
) -> OpenLoopResult:
    n = int(rate * seconds)
    schedule = np.arange(n) / rate
    headers = f"Authorization: Bearer {key}\r\n"
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    began = time.perf_counter()
    results = await asyncio.gather(
        *(
            _connection(host, port, schedule[c::connections], start, paths, headers, c)
            for c in range(connections)
        )
    )
    duration = time.perf_counter() - began - 0.2
    latencies = np.asarray([x for lat, _ in results for x in lat])
    return OpenLoopResult(len(latencies), sum(e for _, e in results), duration, latencies)


def open_loop(
    host: str, port: int, paths: list[str], key: str, rate: float, connections: int, seconds: float
) -> OpenLoopResult:
    """Drive ``rate`` GET requests/s over ``connections`` connections for ``seconds``."""
    return asyncio.run(_run(host, port, paths, key, rate, connections, seconds))
