"""CPU of carving a latest-item validation past in its own item numbering (BENCHMARKS §170).

A validation past numbers its items as a model trained on it alone would
(``Interactions.own_item_order``): one more pass over the kept events (``pd.unique``) and one
gather of their item codes, beside the subset the split always built. This times, in one process
and alternating rounds, the past as main carves it (``subset(kept)``: arm A, twice per round, the
A/A) against the branch's (``own_item_order`` + ``subset(kept, order)``: arm B), on a whole data
set's train part (``shape_sweep``'s ``whole`` shape and split):

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/own_numbering_cost.py --dataset ml-latest-small --rounds 7
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from calibration import calibration_line
from shape_sweep import SHAPES, events_of, sample, split

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.pipeline.source_tuning import latest_ranks


def cpu(work: Callable[[], object]) -> float:
    """The process CPU seconds ``work`` took."""
    began = time.process_time()
    work()
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(calibration_line())
    shape = SHAPES["whole"]
    train = split(sample(events_of(args.dataset, 0), shape, 0), shape.protocol).train
    full = Interactions.from_events(
        train.assign(event_id=None, context=None), dict(EventSettings().weights)
    )
    distinct = np.diff(full.matrix.indptr) >= 2
    kept = (latest_ranks(full, 0) > 0) | ~distinct[full.event_users]
    order = full.own_item_order(kept)
    moved = 0 if order is None else int((order != np.arange(len(order))).sum())
    print(
        f"{args.dataset}: {len(full.event_users)} events, {full.n_users} users, "
        f"{full.n_items} items; the past renumbers {moved} of them"
    )
    arms: dict[str, Callable[[], object]] = {
        "A": lambda: full.subset(kept),
        "B": lambda: full.subset(kept, full.own_item_order(kept)),
        "A2": lambda: full.subset(kept),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    for n in range(args.rounds):
        for name in list(arms) if n % 2 == 0 else list(arms)[::-1]:
            times[name].append(cpu(arms[name]))
    for name, t in times.items():
        print(f"{name}: median {np.median(t) * 1e3:.1f} ms CPU, min {min(t) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
