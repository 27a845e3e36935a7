"""How long ``recsmith ope estimate`` takes on a large log: 1M logged impressions.

A synthetic log of 250,000 rounds × 4 positions over 10,000 items with two context columns, and a
target that spreads its mass over 3 items per (round, position) (3M target rows), both written as
Parquet; timed are reading the two files and ``estimate`` with all five estimators, 5 folds and
1,000 bootstrap replicates (the CLI's defaults), best of ``--repeat``.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 python benchmarks/ope_estimate.py [--rounds 250000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.ope import estimate
from recsmith.ope.inputs import read_table


def write_files(folder: Path, rounds: int, positions: int, items: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n = rounds * positions
    round_ids = np.repeat(np.arange(rounds), positions).astype(str)
    position = np.tile(np.arange(1, positions + 1), rounds).astype(str)
    action = rng.integers(0, items, n)
    pd.DataFrame(
        {
            "round": round_ids,
            "position": position,
            "action": action.astype(str),
            "reward": (rng.random(n) < 0.05).astype(float),
            "propensity": rng.uniform(0.05, 0.5, n),
            "x_0": rng.normal(size=n),
            "x_1": rng.normal(size=n),
        }
    ).to_parquet(folder / "log.parquet", index=False)
    offset = rng.integers(1, items - 1, n)[:, None] + np.array([0, 1])  # 3 distinct items
    others = (action[:, None] + offset) % items
    pd.DataFrame(
        {
            "round": np.repeat(round_ids, 3),
            "position": np.repeat(position, 3),
            "action": np.column_stack([action, others]).ravel().astype(str),
            "probability": np.tile([0.5, 0.3, 0.2], n),
        }
    ).to_parquet(folder / "target.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=250_000)
    parser.add_argument("--positions", type=int, default=4)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder, args.rounds, args.positions, args.items)
        best_read = best_total = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            log = read_table(folder / "log.parquet", "--log")
            target = read_table(folder / "target.parquet", "--target")
            read = time.perf_counter() - started
            report = estimate(log, target, bootstrap=args.bootstrap)
            total = time.perf_counter() - started
            best_read, best_total = min(best_read, read), min(best_total, total)
    print(
        f"rows={report.impressions:,} rounds={report.rounds:,} target_rows={len(target):,} "
        f"bootstrap={args.bootstrap}: read {best_read:.2f} s, read+estimate {best_total:.2f} s "
        f"(best of {args.repeat}); dr={report.values['dr']:.4f} ess={report.ess:,.0f}"
    )


if __name__ == "__main__":
    main()
