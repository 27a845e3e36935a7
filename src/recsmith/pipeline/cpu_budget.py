"""Calibration's time budget, counted in the training process's own CPU seconds.

Calibration stops its grid and skips the ranker when its budget would be passed. Counted in wall
seconds, the budget ran out sooner on a loaded machine, so the same data shipped a different
pipeline at a different load (ml-100k ``temporal:0.8``: 0.1845 at load 4, 0.1768 at load 12,
BENCHMARKS §39). The process's CPU time (``time.process_time``: every thread of the process, BLAS
and LightGBM workers included, while they run) does not grow while other processes hold the
cores, so the choice no longer depends on the machine's load — provided idle threads do not
spin: calibration runs BLAS on one thread for that reason (``calibration.calibrate``). What still
varies it, near the budget's edge only: a slower (or faster) CPU, cache and memory-bus
contention from neighbours, OpenMP threads (LightGBM's) that spin briefly before they sleep,
and, where training runs inside a serving process, the CPU its other threads spend meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class CpuBudget:
    """``seconds`` of this process's CPU time, counted from the moment it is made."""

    seconds: float
    started: float = field(default_factory=time.process_time)

    def spent(self) -> float:
        """CPU seconds this process has used since the budget started (all its threads)."""
        return time.process_time() - self.started

    def passes(self, more: float, share: float = 1.0) -> bool:
        """Whether spending ``more`` CPU seconds now would pass ``share`` of the budget."""
        return self.spent() + more > self.seconds * share
