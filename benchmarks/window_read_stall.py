"""What a server's first drift refresh costs the event loop: ``DriftWatch.refresh`` on a shop's
store and release, in a worker thread as ``serve`` runs it, while the main thread (the event
loop's stand-in) sleeps 1 ms at a time.

A worker's ``DriftWatch`` first reads the decision log's whole window 5 s after the worker
settles (``monitoring.gauges.FIRST_REFRESH_S``), in the thread pool: a thread that holds the GIL
through each C call it makes (one ``json.loads`` of every list, the collections its containers
trigger, pandas' conversions). Printed: the refresh's thread CPU, the main thread's longest waits
beyond its 1 ms (on a shared machine partly other jobs': compare same-run rounds), and the CPU of
each full collection during the refresh. Run it on a copy: the store is opened for writing.

    cp -r /work/shop-large /tmp/shop && (serve it once, so its log holds decisions)
    PYTHONPATH=src .venv/bin/python benchmarks/window_read_stall.py /tmp/shop
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as each server worker runs

from calibration import calibration_line
from prometheus_client import CollectorRegistry

from recsmith.config import MonitorSettings
from recsmith.decisions.window import windowed
from recsmith.monitoring.gauges import DriftWatch, MonitorGauges
from recsmith.store.sqlite import SQLiteStore


def main() -> None:
    print(calibration_line(), flush=True)
    shop = Path(sys.argv[1])
    store = windowed(SQLiteStore(shop / "store.sqlite"))
    watch = DriftWatch(
        MonitorGauges.create(CollectorRegistry()), store, MonitorSettings(), lambda: shop / "model"
    )
    gc.collect()
    gc.freeze()  # as a settled worker (serving.worker_process)
    full: list[float] = []  # thread CPU ms of each full collection
    started = [0.0]

    def timed(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        elif info["generation"] == 2:
            full.append(round((time.thread_time() - started[0]) * 1e3, 1))

    cpu: list[float] = []

    def refresh() -> None:
        began = time.thread_time()
        watch.refresh()
        cpu.append((time.thread_time() - began) * 1e3)

    gc.callbacks.append(timed)
    worker = threading.Thread(target=refresh)
    worker.start()
    waits = []
    while worker.is_alive():
        began = time.perf_counter()
        time.sleep(0.001)
        waits.append((time.perf_counter() - began) * 1e3 - 1)
    gc.callbacks.remove(timed)
    waits.sort()
    print(
        f"refresh cpu {cpu[0]:.0f} ms | main thread waits: max {waits[-1]:.0f} ms, "
        f"top5 {[round(w) for w in waits[-5:]]}, over 20 ms {sum(w > 20 for w in waits)} | "
        f"full collections (cpu ms) {full} | loadavg {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
