"""What reading events in the canonical order costs at a shop's size (BENCHMARKS §61, §66).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/event_order_cost.py --events 1000000 --rounds 3

A seeded frame of ``--events`` view / add-to-cart / purchase events by 100k users on 50k
items, a month of timestamps at one-second resolution (so ties), in a shuffled row order. Per
round, CPU seconds of: ``in_canonical_order`` on the shuffled frame and on the sorted one, and
``Interactions.from_events`` on the shuffled frame (which sorts, from §66 on) and on the sorted
one (where it finds the order in place). Before §66 ``train_pipeline`` paid the sort and then
``from_events``; from §66 on it pays ``from_events`` alone. Run it with either tree on
``PYTHONPATH`` to compare: the figures are per tree.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions, in_canonical_order


def shop_events(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` canonical-column events in no particular order."""
    rng = np.random.default_rng(seed)
    users = np.array([f"u{k:06d}" for k in range(100_000)], dtype=object)
    items = np.array([f"i{k:06d}" for k in range(50_000)], dtype=object)
    types = np.array(["view", "add_to_cart", "purchase"], dtype=object)
    return pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(n)],
            "user_id": users[rng.integers(0, len(users), n)],
            "session_id": None,
            "item_id": items[rng.integers(0, len(items), n)],
            "event_type": types[rng.integers(0, len(types), n)],
            "value": np.nan,
            "ts": (1_700_000_000 + rng.integers(0, 30 * 86_400, n)) * 1_000_000,
            "context": None,
        }
    )


def cpu_seconds(step: Callable[[], object]) -> float:
    """CPU seconds of one call (the machine is shared: wall time says less)."""
    started = time.process_time()
    step()
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    shuffled = shop_events(args.events)
    ordered = in_canonical_order(shuffled)
    weights = dict(EventSettings().weights)
    steps = {
        "in_canonical_order, shuffled": lambda: in_canonical_order(shuffled),
        "in_canonical_order, sorted": lambda: in_canonical_order(ordered),
        "from_events, shuffled": lambda: Interactions.from_events(shuffled, weights),
        "from_events, sorted": lambda: Interactions.from_events(ordered, weights),
    }
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            seconds[name].append(cpu_seconds(step))
    for name, values in seconds.items():
        print(f"{name}: {min(values):.2f}-{max(values):.2f} s CPU over {args.rounds} rounds")


if __name__ == "__main__":
    main()
