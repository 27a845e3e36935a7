"""A/B in one process: another checkout's ``sparse_rows`` (``--base``, e.g. main's) against this
one's, on a release's ``seen`` and ``recent`` rows: ``csr_of_rows`` (no pair added: the rows
copied as they stand), ``gather_rows`` and ``rows_grid``, each a fifth of the rows unknown.
Thread CPU a call, medians of alternating rounds (the same load for both).

    PYTHONPATH=src python benchmarks/row_spans_ab.py --model /work/shop-large/model \\
        --base /tmp/base/src/recsmith/sparse_rows.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

import recsmith.sparse_rows as this
from recsmith.pipeline.artifact import load_artifact


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("base_sparse_rows", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _median_us(
    call: Callable[[ModuleType], object], mods: dict[str, ModuleType], rounds: int
) -> dict[str, float]:
    got: dict[str, list[float]] = {name: [] for name in mods}
    for r in range(rounds):
        for name in list(mods)[:: 1 if r % 2 else -1]:
            started = time.thread_time()
            for _ in range(200):
                call(mods[name])
            got[name].append((time.thread_time() - started) / 200 * 1e6)
    return {name: float(np.median(v)) for name, v in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args()
    mods = {"base": _module(args.base), "new": this}
    pipe = load_artifact(args.model)
    rng = np.random.default_rng(0)
    for label, matrix in (("seen", pipe.bundle.seen), ("recent", pipe.recent)):
        width = matrix.shape[1]
        for n in (1, 16, 64):
            idx = rng.integers(0, matrix.shape[0], n).astype(np.int64)
            idx[1::5] = -1
            calls = {  # the loop's values bound now
                "csr_of_rows": lambda mod, m=matrix, i=idx, w=width: mod.csr_of_rows(m, i, w),
                "gather_rows": lambda mod, m=matrix, i=idx: mod.gather_rows(m, i),
                "rows_grid": lambda mod, m=matrix, i=idx: mod.rows_grid(m, i[:4]),
            }
            for what, call in calls.items():
                t = _median_us(call, mods, args.rounds)
                print(
                    f"{label:6s} batch {n:2d} {what:12s} base {t['base']:7.2f} µs "
                    f"new {t['new']:7.2f} µs new/base {t['new'] / t['base']:.3f}"
                )


if __name__ == "__main__":
    main()
