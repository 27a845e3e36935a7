"""What ``rows.pack``'s check of the floats' text costs, and ``pack`` itself, against another
checkout's ``rows.py`` (review rv-dec25: the fast path's check made strict must stay below
~0.5 µs a list). Thread CPU, the arms alternating round by round in one process, A/A included.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/pack_check_cost.py \\
        --against /tmp/base/src

Ten-item lists of uniform scores (the fast path), with exploring propensities of the same kind,
and with scores under 1e-4 (written with an exponent: the standard encoder's).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np
from pydantic_core import to_json

from recsmith.decisions import rows
from recsmith.decisions.record import ones

LISTS = 2000
IDS = tuple(f"item{j}" for j in range(10))
SOURCES = (("als",),) * 10


def other_rows(src: Path) -> ModuleType:
    """``src``'s ``recsmith/decisions/rows.py`` loaded beside this checkout's."""
    spec = importlib.util.spec_from_file_location(
        "other_rows", src / "recsmith" / "decisions" / "rows.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_cost(check: Callable[[bytes, Sequence[float]], bool], lists: list[tuple]) -> float:
    """µs of thread CPU a list for ``check`` of its scores' ``to_json`` text."""
    texts = [(to_json(s), s) for s in lists]
    start = time.thread_time()
    for _ in range(25):
        for text, scores in texts:
            check(text, scores)
    return (time.thread_time() - start) / (25 * len(lists)) * 1e6


def pack_cost(module: ModuleType, lists: list[tuple], explored: bool) -> float:
    """µs of thread CPU a list for ``module.pack``."""
    pack = module.pack
    start = time.thread_time()
    for _ in range(5):
        for scores in lists:
            pack(IDS, scores, SOURCES, scores if explored else ones(10))
    return (time.thread_time() - start) / (5 * len(lists)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    old = other_rows(args.against)
    rng = np.random.default_rng(7)
    plain = [tuple(rng.random(10).tolist()) for _ in range(LISTS)]
    tiny = [tuple((rng.random(10) * 1e-4).tolist()) for _ in range(LISTS)]
    arrays = rows._ARRAYS
    arms: dict[str, Callable[[], float]] = {
        "check: none (loop and call)": lambda: check_cost(lambda t, s: True, plain),
        "check: against": lambda: check_cost(lambda t, s: old._plain(t), plain),
        "check: this": lambda: check_cost(lambda t, s: type(s) in arrays and rows._plain(t), plain),
        "check: against (A/A)": lambda: check_cost(lambda t, s: old._plain(t), plain),
        "pack uniform: against": lambda: pack_cost(old, plain, False),
        "pack uniform: this": lambda: pack_cost(rows, plain, False),
        "pack uniform: against (A/A)": lambda: pack_cost(old, plain, False),
        "pack uniform explored: against": lambda: pack_cost(old, plain, True),
        "pack uniform explored: this": lambda: pack_cost(rows, plain, True),
        "pack < 1e-4: against": lambda: pack_cost(old, tiny, False),
        "pack < 1e-4: this": lambda: pack_cost(rows, tiny, False),
        "pack < 1e-4: against (A/A)": lambda: pack_cost(old, tiny, False),
    }
    found: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.rounds):
        for name, arm in arms.items():
            found[name].append(arm())
    print(f"thread CPU µs a ten-item list, {args.rounds} alternating rounds: median (range)")
    for name, values in found.items():
        print(f"{name:32s} {statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    main()
