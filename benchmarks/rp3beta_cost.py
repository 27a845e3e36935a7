"""What one RP3beta fit costs against one item-kNN fit, at the hidden long set's catalogue (12k
items) and at a 100k-item shop (BENCHMARKS §63).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks python benchmarks/rp3beta_cost.py

Users × items from a seeded synthetic shop (Zipf-like item popularity, log-normal user activity;
each user's items drawn with replacement, repeats counted once), then the two item-to-item
matrices — the whole of each model's fit but the copy of its input — computed alternately for
``--rounds`` rounds, so load changes hit both. Prints the process CPU and wall seconds of each
fit, as ranges.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from calibration import calibration_line
from scipy import sparse

from recsmith.models.itemknn import neighbours
from recsmith.models.rp3beta import rp3beta_similarity

SHAPES = {"12k items": (22_000, 12_000, 280_000), "100k items": (50_000, 100_000, 1_000_000)}


def shop(n_users: int, n_items: int, n_events: int, seed: int = 0) -> sparse.csr_array:
    """Binary users × items with about ``n_events`` distinct pairs."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    activity = rng.lognormal(0.0, 1.0, n_users)
    users = rng.choice(n_users, n_events, p=activity / activity.sum())
    items = rng.choice(n_items, n_events, p=popularity / popularity.sum())
    x = sparse.csr_array((np.ones(n_events, np.float32), (users, items)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    fits = {
        "itemknn": lambda x: neighbours(x.T.tocsr(), 100, 10.0),
        "rp3beta": lambda x: rp3beta_similarity(x, 100, 1.0, 0.5),
    }
    for label, shape in SHAPES.items():
        x = shop(*shape)
        print(f"{label}: {x.shape[0]:,} users, {x.shape[1]:,} items, {x.nnz:,} pairs", flush=True)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in fits}
        for _ in range(args.rounds):
            for name, fit in fits.items():
                wall, cpu = time.perf_counter(), time.process_time()
                fit(x)
                times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
        for name, pairs in times.items():
            cpus, walls = zip(*pairs, strict=True)
            print(
                f"  {name}: CPU {min(cpus):.1f}–{max(cpus):.1f} s, "
                f"wall {min(walls):.1f}–{max(walls):.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
