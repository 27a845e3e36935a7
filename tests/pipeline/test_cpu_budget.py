"""Calibration's budget counts the training process's CPU seconds: time the process spends
waiting (asleep, or for a core other processes hold) does not count, CPU its worker threads
burn does, and so the same data makes the same choice beside a busy neighbour."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest
from test_calibration import WEIGHTS, config, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import calibrate
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.item_attributes import ItemAttributes


def _busy(seconds: float) -> None:
    """Burn ``seconds`` of this thread's own CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_waiting_does_not_spend_the_budget_and_a_worker_threads_cpu_does() -> None:
    budget = CpuBudget(1.0)
    time.sleep(0.4)  # wall seconds pass, no CPU is used
    assert budget.spent() < 0.1
    assert not budget.passes(0.5)
    worker = threading.Thread(target=_busy, args=(0.4,))  # as BLAS and LightGBM threads do
    worker.start()
    worker.join()
    assert budget.spent() >= 0.35
    assert budget.passes(0.7) and not budget.passes(0.3)
    assert budget.passes(0.2, share=0.5) and not budget.passes(0.05, share=0.5)


@contextmanager
def crowded_core() -> Iterator[None]:
    """Every thread of this process and seven busy processes on one core: this process gets an
    eighth of it at most, so its wall time runs eight times (or more) its CPU time."""
    core = min(os.sched_getaffinity(0))
    threads = [int(t) for t in os.listdir("/proc/self/task")]
    saved = {t: os.sched_getaffinity(t) for t in threads}
    loop = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(7)]
    try:
        for t in threads:
            with suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.sched_setaffinity(t, {core})
        time.sleep(0.5)  # the hogs are spinning
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        for t, cores in saved.items():
            with suppress(ProcessLookupError):
                os.sched_setaffinity(t, cores)


#: A calibration report's clock readings: the whole run's, the first phase's, each grid try's.
CLOCKS = frozenset({"seconds", "cpu_seconds", "cpu_seconds_before_grid"})


def choice_of(report: dict[str, object], drop: frozenset[str] = frozenset()) -> dict[str, object]:
    """What calibration chose and tried, without its clock readings (nor the keys ``drop``):
    the report's own and those of each grid entry (``calibration.grid``: each try's CPU s)."""
    out = {k: v for k, v in report.items() if k not in CLOCKS | drop}
    if isinstance(grid := out.get("grid"), dict):
        out["grid"] = {
            k: {n: w for n, w in v.items() if n not in CLOCKS} if isinstance(v, dict) else v
            for k, v in grid.items()
        }
    return out


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_a_busy_neighbour_does_not_change_what_calibration_tries_or_chooses() -> None:
    """The popularity case's grid (EASE's λ and rising factor, item-kNN's neighbours), with a
    CPU budget of eight times what the whole calibration costs here: the grid never reaches its
    stop at half of it (the calibration so far plus the last source's tries), alone or beside
    seven busy processes on its core. Counted in wall seconds (as before), the crowded run
    passes half the budget before its last gridded source and reports a different grid."""
    events = popularity_case()
    cfg = config(
        [
            {"name": "ease", "model": "ease", "quota": 50},
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50},
        ]
    )
    full = Interactions.from_events(events, WEIGHTS)
    attrs = ItemAttributes.from_items([], full.items)
    calibrate(cfg, full, attrs)  # warm: first-call imports and compilation are not the cost
    cost = calibrate(cfg, full, attrs).report["cpu_seconds"]
    assert isinstance(cost, float) and cost > 0
    tight = cfg.model_copy(
        update={"calibration": cfg.calibration.model_copy(update={"budget_seconds": 8 * cost})}
    )
    alone = calibrate(tight, full, attrs).report
    with crowded_core():
        crowded = calibrate(tight, full, attrs).report
    assert "stopped" not in alone["grid"]
    assert crowded["seconds"] > 8 * cost / 2  # the hogs took the core: wall ran past half
    assert choice_of(crowded) == choice_of(alone)
