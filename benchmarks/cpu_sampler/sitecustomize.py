"""A CPU-time sampler for a served worker's event-loop thread, loaded by ``site`` in every process
whose ``PYTHONPATH`` starts with this folder and whose environment sets ``RECSMITH_CPU_SAMPLE``
(``worker_cpu_profile.py`` does both for the server it starts).

``RECSMITH_CPU_SAMPLE`` is ``<output prefix>|<start file>|<seconds>``: once the start file exists,
every ~1 ms of the process's CPU (``ITIMER_PROF``, counted in the kernel's ticks) the main
thread's Python stack is counted, for ``<seconds>``; then ``<prefix>.<pid>.txt`` gets the
collapsed stacks (``frame;frame;... count``, py-spy's raw format) after a first line with the
collector's collections and CPU over the same seconds (``gc.callbacks``). py-spy samples wall
time while a thread is runnable: on a machine running more threads than cores that counts a
thread waiting for the CPU or for the GIL (a loopback ``send`` waking the client, preempted at
its return) as busy, which put 15 % of a worker's samples in its socket write against 5 % of its
CPU in the kernel. A CPU-time signal only fires while the process runs; C work (a socket call,
numpy, SQLite, the collector) is counted at the next Python line the thread runs.

The supervisor (``python -m recsmith``) and the load driver are left alone: only processes started
by ``multiprocessing``'s spawn (``-c``), the server's workers, sample.
"""

from __future__ import annotations

import os

_SPEC = os.environ.get("RECSMITH_CPU_SAMPLE")


def _start(spec: str) -> None:
    import collections
    import gc
    import signal
    import time
    from types import FrameType
    from typing import Any

    prefix, start_file, seconds = spec.split("|")
    stacks: collections.Counter[str] = collections.Counter()
    state: dict[str, float | None] = {"until": None, "next_look": 0.0, "began": 0.0}
    collector = {"collections": [0, 0, 0], "cpu_s": [0.0, 0.0, 0.0], "collected": [0, 0, 0]}

    def counting() -> bool:
        until = state["until"]
        return until is not None and time.monotonic() <= until

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if not counting():
            return
        if phase == "start":
            state["began"] = time.thread_time()
        else:
            g = info["generation"]
            collector["collections"][g] += 1
            collector["cpu_s"][g] += time.thread_time() - (state["began"] or 0.0)
            collector["collected"][g] += info["collected"]

    def stack_of(frame: FrameType | None) -> str:
        parts = []
        while frame is not None:
            code = frame.f_code
            where = code.co_filename.rpartition("site-packages/")[2]
            parts.append(f"{code.co_qualname} ({where}:{frame.f_lineno})")
            frame = frame.f_back
        return ";".join(reversed(parts))

    def on_tick(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if state["until"] is None:
            if now < (state["next_look"] or 0.0):
                return
            state["next_look"] = now + 0.05
            if not os.path.exists(start_file):
                return
            state["until"] = now + float(seconds)
        if now > (state["until"] or 0.0):
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            with open(f"{prefix}.{os.getpid()}.txt", "w") as out:
                out.write(f"#collector {collector} threshold={gc.get_threshold()}\n")
                out.writelines(f"{stack} {n}\n" for stack, n in stacks.items())
            return
        stacks[stack_of(frame)] += 1

    gc.callbacks.append(on_collection)
    signal.signal(signal.SIGPROF, on_tick)
    signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)


if _SPEC:
    import sys

    if sys.argv[:1] == ["-c"]:  # a spawned worker; not the supervisor, not the load driver
        _start(_SPEC)
