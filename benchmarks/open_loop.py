"""An open-loop HTTP load generator: requests leave on a fixed schedule, whatever the server does.

wrk's closed loop sends a connection's next request only when the last answer arrived, so with 32
clients the mean latency is 32 / throughput by construction (Little's law) and says little about
how fast one request is served. Here each of ``connections`` keep-alive connections owns every
``connections``-th slot of a schedule at ``rate`` requests/s, and latency is measured from the
*scheduled* send time (as wrk2 does), so a stalled server is charged for every request it delayed
(no coordinated omission). After a response with ``Connection: close`` the connection's next
request goes on a new connection, as any HTTP/1.1 client's does (the reconnect counts in that
request's latency). Used by ``serve_load.py --rate``.

Two generators drive the same schedule with the same requests (each connection's paths drawn
with its own seed, ``path_choices``): ``c`` (``open_loop.c``, compiled at first use and cached
beside the ranker kernels, ``recsmith.trees.build``) and ``python`` (asyncio, here). Both run on
the server's machine, where real clients would not, and each result says how much CPU its
generator took from the server: against the plain baseline on 2 cores (BENCHMARKS.md §130) the
Python one ~0.14 ms a request at 1,000 req/s and ~0.075 at 2,500, the C one ~0.08 and ~0.055,
most of it the kernel's loopback TCP work, which any client on the same machine pays. Without a
working C compiler ``c`` falls back to ``python`` and the result says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsmith.trees import build

SOURCE = Path(__file__).with_name("open_loop.c")
#: gnu11: ppoll and memmem
FLAGS = ("-O2", "-std=gnu11")
#: the first request is due this long after the connections are open
LEAD_S = 0.2


@dataclass(frozen=True)
class OpenLoopResult:
    requests: int
    errors: int
    duration_s: float
    latencies_ms: np.ndarray
    #: which generator drove the load ("c", "python", or why C could not)
    generator: str
    #: CPU seconds the generator itself spent: what it took from the server on a shared machine
    generator_cpu_s: float

    def summary(self) -> dict[str, object]:
        lat = self.latencies_ms
        return {
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.duration_s, 1),
            "errors": self.errors,
            "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p90_ms": round(float(np.percentile(lat, 90)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "max_ms": round(float(lat.max()), 2),
            "generator": self.generator,
            "generator_cpu_ms_per_request": round(1000 * self.generator_cpu_s / self.requests, 4),
        }


def path_choices(n_paths: int, n: int, connections: int) -> np.ndarray:
    """The path index of each of the ``n`` scheduled requests: connection ``c`` draws those of
    its slots (``c``, ``c + connections``, ...) in order from ``random.Random(c)``, so a run's
    requests are the same with either generator and from one run to the next."""
    choices = np.empty(n, dtype=np.uint32)
    for c in range(connections):
        rng = random.Random(c)
        slots = range(c, n, connections)
        choices[c::connections] = [rng.randrange(n_paths) for _ in slots]
    return choices


async def _connection(
    host: str,
    port: int,
    slots: np.ndarray,
    start: float,
    requests: list[bytes],
) -> tuple[list[float], int]:
    reader, opened = await asyncio.open_connection(host, port)
    writer: asyncio.StreamWriter | None = opened
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    for due, request in zip(slots, requests, strict=True):
        wait = start + due - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if writer is None:  # the server ended the last one: a new connection, on the clock
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        lines = head.lower().split(b"\r\n")
        length = next(int(x.split(b":", 1)[1]) for x in lines if x.startswith(b"content-length:"))
        await reader.readexactly(length)
        latencies.append((loop.time() - (start + due)) * 1000.0)
        errors += status != 200
        if any(x.startswith(b"connection:") and b"close" in x for x in lines):  # server ends it
            writer.close()
            writer = None
    if writer is not None:
        writer.close()
    return latencies, errors


async def _run(
    host: str, port: int, requests: list[bytes], rate: float, connections: int
) -> tuple[np.ndarray, int, float]:
    schedule = np.arange(len(requests)) / rate
    loop = asyncio.get_running_loop()
    start = loop.time() + LEAD_S
    began = time.perf_counter()
    results = await asyncio.gather(
        *(
            _connection(host, port, schedule[c::connections], start, requests[c::connections])
            for c in range(connections)
        )
    )
    duration = time.perf_counter() - began - LEAD_S
    latencies = np.empty(len(requests))
    for c, (lat, _) in enumerate(results):
        latencies[c::connections] = lat
    return latencies, sum(e for _, e in results), duration


def _python(
    host: str,
    port: int,
    paths: list[str],
    tail: str,
    choices: np.ndarray,
    rate: float,
    connections: int,
    used: str = "python",
) -> OpenLoopResult:
    """The asyncio generator's run (``used``: what to call it in the result)."""
    requests = [f"GET {paths[i]}{tail}".encode() for i in choices]
    cpu = time.process_time()
    latencies, errors, duration = asyncio.run(_run(host, port, requests, rate, connections))
    cpu = time.process_time() - cpu
    return OpenLoopResult(len(requests), errors, duration, latencies, used, cpu)


def compiled_generator() -> Path:
    """The C generator's executable, built with the machine's C compiler at first use and cached
    under the hash of its source, compiler and flags (``recsmith.trees.build``'s cache directory,
    writable by this user only); raises ``build.KernelUnavailable`` saying why it cannot be."""
    cc = build.compiler()
    if cc is None:
        raise build.KernelUnavailable("no C compiler (set CC, or install gcc)")
    source = SOURCE.read_text()
    key = hashlib.sha256("\0".join([source, cc, *FLAGS]).encode()).hexdigest()[:24]
    try:
        executable = build.cache_dir() / f"open-loop-{key}"
        if not executable.is_file():  # built under a temporary name and renamed: no lock needed
            build._compile(cc, source, executable, FLAGS)
    except OSError as exc:  # an unwritable cache directory
        raise build.KernelUnavailable(str(exc)) from exc
    return executable


def _c(
    executable: Path,
    host: str,
    port: int,
    paths: list[str],
    tail: str,
    choices: np.ndarray,
    rate: float,
    connections: int,
) -> OpenLoopResult:
    """``open_loop.c``'s run."""
    with tempfile.TemporaryDirectory(prefix="open-loop-") as tmp:
        paths_file, choices_file = Path(tmp) / "paths", Path(tmp) / "choices"
        paths_file.write_text("".join(f"{p}\n" for p in paths))
        choices.astype(np.uint32).tofile(choices_file)
        arguments = [host, str(port), repr(rate), str(connections), tail]
        done = subprocess.run(
            [str(executable), *arguments, str(paths_file), str(choices_file)],
            capture_output=True,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"open_loop.c failed: {done.stderr.decode().strip()}")
    n = len(choices)
    duration, cpu = np.frombuffer(done.stdout, np.float64, 2)
    latencies = np.frombuffer(done.stdout, np.float64, n, offset=16)
    statuses = np.frombuffer(done.stdout, np.int32, n, offset=16 + 8 * n)
    return OpenLoopResult(
        n, int((statuses != 200).sum()), float(duration), latencies, "c", float(cpu)
    )


def open_loop(
    host: str,
    port: int,
    paths: list[str],
    key: str,
    rate: float,
    connections: int,
    seconds: float,
    generator: str = "c",
) -> OpenLoopResult:
    """Drive ``rate`` GET requests/s of ``paths`` over ``connections`` connections for
    ``seconds`` with the ``c`` or the ``python`` generator."""
    if generator not in ("c", "python"):
        raise ValueError(f"generator {generator!r}: expected 'c' or 'python'")
    choices = path_choices(len(paths), int(rate * seconds), connections)
    tail = f" HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
    used = "python"
    if generator == "c":
        try:
            executable = compiled_generator()
        except build.KernelUnavailable as exc:
            used = f"python (the C generator is unavailable: {exc})"
            print(f"open_loop: {used}", file=sys.stderr, flush=True)
        else:
            return _c(executable, host, port, paths, tail, choices, rate, connections)
    return _python(host, port, paths, tail, choices, rate, connections, used)
