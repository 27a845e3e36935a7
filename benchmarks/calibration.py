"""The calibration line every benchmark prints first: how fast this machine and these versions are.

A figure measured on one VM says little on another unless it comes with the machine's own speed
beside it. Two fixed probes stand for the two kinds of work the engine does (interpreted Python
and numpy kernels), and the versions of the libraries that carry the request path say what was
measured. Compare a table against another only when their calibration lines are close, or as
ratios to a baseline measured in the same run (``serve_load.py`` does both).

    python benchmarks/calibration.py
"""

from __future__ import annotations

import os
import platform
import time
import timeit
from importlib import metadata
from pathlib import Path

import numpy as np

#: The distributions whose versions the figures depend on (the request path's libraries).
PACKAGES = ("numpy", "scipy", "pandas", "lightgbm", "faiss-cpu", "fastapi", "uvicorn")


def python_loop_ms(repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``sum(range(10**6))``: interpreted-Python speed (the same loop
    as ``python3 -m timeit "sum(range(10**6))"``)."""
    return min(timeit.repeat("sum(range(10**6))", number=1, repeat=repeat)) * 1e3


def matmul_gflops(n: int = 2000, repeat: int = 3) -> float:
    """float32 ``n × n`` matmul GFLOP/s, best of ``repeat``: numpy/BLAS speed on every thread
    the benchmark itself would use."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a  # first call pays BLAS set-up
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def versions() -> dict[str, str]:
    """Installed version of each of ``PACKAGES`` ("-" where it is not installed)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def calibration() -> dict[str, object]:
    """The probes and versions as one record (what ``--json`` outputs keep)."""
    return {
        "python_loop_ms": round(python_loop_ms(), 1),
        "matmul_f32_gflops": round(matmul_gflops()),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),  # other work on the machine meanwhile
        "python": platform.python_version(),
        **versions(),
        "recsmith_from": recsmith_from(),
    }


def recsmith_from() -> str:
    """The recsmith source folder a benchmark measures (``PYTHONPATH`` picks another checkout)."""
    try:
        import recsmith
    except ImportError:
        return "-"
    return str(Path(recsmith.__file__).parent)


def calibration_line(record: dict[str, object] | None = None) -> str:
    """One line: ``calibration: python_loop_ms=20.5 matmul_f32_gflops=146 ... numpy=2.4.6 ...``."""
    record = calibration() if record is None else record
    return "calibration: " + " ".join(f"{k}={v}" for k, v in record.items())


if __name__ == "__main__":
    print(calibration_line())
