"""How long the decision writer's thread keeps an event loop from running (it holds the GIL
while it builds and binds a batch's rows), two checkouts in one process, alternating (issue #19).

An asyncio loop records ``--rate`` lists a second the way the recommendation route does
(``record_served``) while the side's ``DecisionLog`` writer thread stores them every
``flush_interval_s`` (0.5 s) into its own SQLite store (WAL, ``synchronous=FULL``), and a probe
on the loop asks to wake every millisecond: how late it wakes is how long something else held
the GIL (or the machine's scheduler held the process). A third side, ``off``, runs the same loop
recording the same lists into this checkout's log, whose writer thread is not started (its buffer
holds the whole run; they are stored after the measurement): the lateness the loop has with its
own recording but without the writer, so ``this`` minus ``off`` is the writer's part.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/decision_loop_lag.py --against /tmp/base/src --rounds 3 --seconds 10

Per side: the probe's lateness (p50, p99, p99.9, max, ms), the loop's total time late by more
than 1 ms a second of run, and the writer thread's CPU a stored list (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line
from decision_log_cost import listed

_TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(native_id: int) -> float:
    """User + system CPU seconds of one of this process's threads."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class Side:
    """One checkout's log, store and metrics; ``writer`` False: the writer thread not started
    (the loop records as ever, into a buffer big enough for ``lists``)."""

    def __init__(self, pkg: str, folder: Path, writer: bool, lists: int) -> None:
        def mod(name: str) -> ModuleType:
            return __import__(f"{pkg}.{name}", fromlist=["x"])

        self.record_served = mod("decisions.served").record_served
        self.store = mod("store.sqlite").SQLiteStore(folder / "events.db")
        settings = mod("config").DecisionSettings(flush_interval_s=0.5, buffer_size=lists + 1)
        self.writer = writer
        self.log = mod("decisions.log").DecisionLog(self.store, settings)
        self.metrics = mod("serving.metrics").Metrics.create()


async def drive(side: Side, rate: float, seconds: float, first: int) -> list[float]:
    """Record ``rate`` lists a second for ``seconds`` while probing the loop every 1 ms;
    returns each probe's lateness (ms)."""
    late: list[float] = []
    stop = time.perf_counter() + seconds

    async def probe() -> None:
        while (now := time.perf_counter()) < stop:
            await asyncio.sleep(0.001)
            late.append((time.perf_counter() - now - 0.001) * 1000)

    async def produce() -> None:
        k, due = first, time.perf_counter()
        while due < stop:
            side.record_served(side.log, side.metrics, uuid.uuid4().hex, **listed(k))
            k += 1
            due += 1 / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))

    await asyncio.gather(probe(), produce())
    return late


def one_run(side: Side, args: argparse.Namespace, first: int) -> dict[str, Any]:
    if side.writer:
        side.log.start()
    thread = side.log._thread
    cpu0 = thread_cpu_s(thread.native_id) if thread is not None else 0.0
    stored0 = side.log.written
    late = np.array(asyncio.run(drive(side, args.rate, args.seconds, first)))
    cpu1 = thread_cpu_s(thread.native_id) if thread is not None else 0.0
    stored = side.log.written - stored0  # by the writer thread: ``close`` stores the rest
    side.log.close()
    over = late[late > 1.0]
    return {
        "p50": float(np.percentile(late, 50)),
        "p99": float(np.percentile(late, 99)),
        "p999": float(np.percentile(late, 99.9)),
        "max": float(late.max()),
        "late_ms_s": float(over.sum()) / args.seconds,
        "writer_us_list": 1e6 * (cpu1 - cpu0) / stored if stored else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0, help="lists recorded a second")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print(
        "round side     probe lateness ms: p50    p99  p99.9    max   late>1ms ms/s  "
        "writer CPU us/list"
    )
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        names = [("against", "recsmith_base", True), ("this", "recsmith", True)]
        names.append(("off", "recsmith", False))
        first, lists = 0, int(args.rate * args.seconds) + 1
        for r in range(args.rounds):
            for name, pkg, writer in names[:: 1 if r % 2 == 0 else -1]:
                folder = Path(tmp) / f"{name}-{r}"
                folder.mkdir()
                f = one_run(Side(pkg, folder, writer, lists), args, first)
                first += lists
                print(
                    f"{r:5} {name:8} {f['p50']:24.3f} {f['p99']:6.3f} {f['p999']:6.3f} "
                    f"{f['max']:6.2f} {f['late_ms_s']:15.2f}  {f['writer_us_list']:10.1f}"
                    f"  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
