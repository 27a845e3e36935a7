"""``sparse_rows.pairs_held`` (which filler pairs a batch's candidates already hold) against the
sorted search ``append_below`` ran at the session start (8c280b4), on synthetic batches.

``candidate_stages_ab.py`` times ``append_below`` on the shop's one draw of users, whose filler
items happen to sit where they sit; here the filler's largest item is set either near the end of
a 100,000-item catalogue (99,990) or below 20,000, for 1 to 64 queries of 257 candidates each and
40 popular filler items (30 asked a query, a seventh of the candidates among them), so a table
sized by the largest filler item shows. Both run alternately in one process, order flipped every
round; the figure is the thread CPU of a call (10th percentile, µs). Answers must agree.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/pairs_held_ab.py
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line

from recsmith.sparse_rows import in_sorted, pairs_held


def start_search(
    query: np.ndarray, items: np.ndarray, ask_query: np.ndarray, ask_items: np.ndarray
) -> np.ndarray:
    """The start's ``append_below`` lookup: every held key sorted, each asked key searched."""
    n_items = int(max(items.max(initial=0), ask_items.max(initial=0))) + 1
    have = query.astype(np.int64) * n_items + items
    key = ask_query.astype(np.int64) * n_items + ask_items
    return in_sorted(np.sort(have, kind="stable"), key)


def p10_us(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    spent: dict[str, list[int]] = {name: [] for name in calls}
    for r in range(rounds):
        for name in list(calls)[:: 1 if r % 2 else -1]:
            started = time.thread_time_ns()
            calls[name]()
            spent[name].append(time.thread_time_ns() - started)
    return {name: float(np.percentile(t, 10)) / 1e3 for name, t in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1500, help="calls each (a quarter at 64)")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    np.ones(500_000)  # freed: glibc raises its mmap threshold, as in the serving process
    rng = np.random.default_rng(1)
    for top in (20_000, 100_000):
        for n_queries in (1, 2, 3, 4, 8, 16, 64):
            query = np.repeat(np.arange(n_queries), 257).astype(np.int32)
            items = rng.integers(0, 100_000, len(query)).astype(np.int32)
            popular = np.sort(rng.choice(top, 40, replace=False))
            if top == 100_000:
                popular[-1] = 99_990
            ask_query = np.repeat(np.arange(n_queries), 30).astype(np.int32)
            ask_items = np.tile(popular[:30], n_queries).astype(np.int32)
            if top == 100_000:
                ask_items[-1] = 99_990
            items[::7] = rng.choice(popular, len(items[::7]))
            args_ = (query, items, ask_query, ask_items)
            if not np.array_equal(pairs_held(*args_, n_queries), start_search(*args_)):
                raise SystemExit(f"pairs_held differs at {n_queries} queries")
            spent = p10_us(
                {
                    "start": lambda a=args_: start_search(*a),
                    "this": lambda a=args_, n=n_queries: pairs_held(*a, n),
                },
                args.rounds if n_queries < 64 else args.rounds // 4,
            )
            print(
                f"largest filler item {int(popular[-1]):>6}, {n_queries:>2} queries "
                f"({len(query):>6,} held): start {spent['start']:6.1f} µs, "
                f"this {spent['this']:6.1f} µs",
                flush=True,
            )


if __name__ == "__main__":
    main()
