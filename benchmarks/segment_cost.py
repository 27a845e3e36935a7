"""CPU cost of the segment fallback per batch of cold profiled users (#15).

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python segment_cost.py

A synthetic shop of 1M events, 50k users and ~100k items, profiles with gender (2 values), plan
(7) and age (5 bands). First with the heads of the segment combinations computed afresh for every
batch (a release's first requests: one pass over the catalogue per distinct combination), then as
kept (``SegmentPopularity.heads``: what every later request of those combinations costs). CPU time
per batch (``time.process_time``), so the machine's other load does not count.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from calibration import calibration_line
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.retrieval.queries import Queries
from recsmith.segments.popularity import SegmentPopularity

N_USERS, N_ITEMS, N_EVENTS, REPEATS = 50_000, 100_000, 1_000_000, 20


def shop() -> Interactions:
    rng = np.random.default_rng(0)
    users = rng.integers(0, N_USERS, N_EVENTS)
    head = (rng.pareto(1.2, N_EVENTS) * 50).astype(int) % N_ITEMS
    items = np.where(rng.random(N_EVENTS) < 0.5, rng.integers(0, N_ITEMS, N_EVENTS), head)
    frame = pd.DataFrame(
        {
            "event_id": np.arange(N_EVENTS).astype(str),
            "user_id": users.astype(str),
            "item_id": items.astype(str),
            "event_type": "view",
            "ts": np.arange(N_EVENTS, dtype=np.int64) * 1000,
            "session_id": None,
            "value": np.nan,
        }
    )
    return Interactions.from_events(frame, dict(EventSettings().weights))


def per_batch_ms(table: SegmentPopularity, n: int, fresh: bool) -> tuple[float, int]:
    ids = np.asarray([f"new{j}" for j in range(n)], dtype=object)
    profiles = [{"gender": "F", "plan": f"p{j % 7}", "age": 20 + j} for j in range(n)]
    empty = sparse.csr_array((n, table.n_items), dtype=np.float32)
    queries = Queries(np.full(n, -1, np.int32), empty, empty)
    codes = table.codes_of(ids, profiles)
    started = time.process_time()
    for _ in range(REPEATS):
        if fresh:
            table.heads.clear()
        table.retrieve(queries, 30, table.codes_of(ids, profiles))
    return (time.process_time() - started) / REPEATS * 1000, len(np.unique(codes, axis=0))


def main() -> None:
    print(calibration_line())
    data = shop()
    profiles = {
        str(x): {"gender": ["F", "M"][x % 2], "plan": f"p{x % 7}", "age": 18 + x % 60}
        for x in range(N_USERS)
    }
    started = time.process_time()
    table = SegmentPopularity.build(data, profiles, max_properties=8, shrinkage=10.0)
    print(f"build: {time.process_time() - started:.2f} s CPU, {data.n_items:,} items")
    print("| cold users in the batch | combinations | heads computed | heads kept |")
    print("|---:|---:|---:|---:|")
    for n in (1, 16, 64):
        fresh, combos = per_batch_ms(table, n, fresh=True)
        kept, _ = per_batch_ms(table, n, fresh=False)
        print(f"| {n} | {combos} | {fresh:.1f} ms | {kept:.2f} ms |")


if __name__ == "__main__":
    main()
