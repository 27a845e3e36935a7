"""Validation-only probe of the ``transitions`` model's window and history (BENCHMARKS §64).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/transitions_probe.py long/ml-100k/0,long/ml-100k/1,long/ml-latest-small/0

For each SHAPE/DATASET/SEED: shape_sweep's sample and split, then a validation split carved from
the TRAIN part by the same protocol (the test part is never read), and on it the validation
NDCG@10 of EASE and item-kNN at their defaults and of ``transitions`` over ``steps`` × ``history``.
Choose on these (designated) seeds only; confirm elsewhere.
"""

from __future__ import annotations

import itertools
import sys
import time

from shape_sweep import SHAPES, events_of, ndcg_at_10, recsmith_lists, sample, split

#: (steps, history): the two rounds §64 ran, the second widening the first's best corner
GRID = sorted(
    {*itertools.product((1, 3, 10), (1, 3, 5, 10)), *itertools.product((5, 10, 20), (10, 20, 50))}
)


def main() -> None:
    variants = [("ease", {}), ("itemknn", {})] + [
        ("transitions", {"steps": st, "history": h}) for st, h in GRID
    ]
    for case in sys.argv[1].split(","):
        shape, dataset, seed = case.split("/")
        s = split(
            sample(events_of(dataset, int(seed)), SHAPES[shape], int(seed)), SHAPES[shape].protocol
        )
        inner = split(s.train, SHAPES[shape].protocol)
        for model, params in variants:
            cpu = time.process_time()
            val = ndcg_at_10(recsmith_lists(model, params)(inner), inner).mean()
            print(
                f"{case} {model} {params}: validation NDCG@10 {val:.4f} "
                f"({time.process_time() - cpu:.1f} s CPU)",
                flush=True,
            )


if __name__ == "__main__":
    main()
