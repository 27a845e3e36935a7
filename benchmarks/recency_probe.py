"""EASE with a known user's own items weighed by recency at scoring time (``ease.recency``, #15).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \
        benchmarks/recency_probe.py --shapes long,short,reviews,market --seeds 0,1,2 --out DIR

EASE scores a user as x_u · B; on review sequences each user's last item is held out, and what a
user did last says most about it. ``recency`` weighs item i of x_u by 1 + β · 0.5 ** ((place −
1) / h), place 1 the user's newest item, with no new solve. Per sample (``shape_sweep``'s
samples and protocol; ``reviews``: the simulator's reviews at ``ranker_at_size``'s middle size,
6,000 users × 4,000 items, each user's last item held out) this fits EASE once at ``--lambda``
and scores the test users at every (β, h) of ``--betas`` × ``--halves`` sharing that solve
(``shared_fits``), each scored by ``shape_sweep.ndcg_at_10``. Per shape, the samples pooled:
each setting's NDCG@10 difference to β = 0 with a paired 95 % bootstrap interval over people
(``shape_sweep.people_of``: a MovieLens user is one person in every seed's sample). ``--out``
keeps each sample's per-user arrays (``SHAPE-DATASET-SEED.npz``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from calibration import calibration_line
from ranker_at_size import review_events
from shape_sweep import (
    SHAPES,
    K,
    Shape,
    Split,
    _matrix,
    _named,
    events_of,
    ndcg_at_10,
    people_of,
    sample,
    split,
)

from recsmith.models.ease import EASE
from recsmith.models.shared_fits import SharedFits, sharing

BETAS = (0.5, 1.0, 3.0)
HALVES = (1.0, 4.0)
RESAMPLES = 2000
REVIEWS = Shape(6000, 4000, None, "last", datasets=("simulated-reviews",))


def settings(betas: tuple[float, ...], halves: tuple[float, ...]) -> list[tuple[float, float]]:
    """(β, h) pairs: β = 0 first (the plain EASE every other setting is paired with)."""
    return [(0.0, 1.0)] + [(b, h) for h in halves for b in betas]


def scored(s: Split, lam: float, grid: list[tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per setting (``"β/h"``), each test user's NDCG@10 (``s.users`` order), one solve shared."""
    data = _matrix(s)
    fits = SharedFits(data)
    out = {}
    for beta, half in grid:
        with sharing(fits, "probe"):
            model = EASE(regularization=lam, recency=beta, recency_half_places=half).fit(data)
        users = data.users.to_index(s.users)
        known = users >= 0
        top = model.recommend(users[known], K, exclude=data.matrix[users[known]])
        lists = _named(data, list(np.array(s.users, dtype=object)[known]), top.ids)
        out[f"{beta:g}/{half:g}"] = ndcg_at_10(lists, s)
    return out


def interval(diff: np.ndarray, people: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``diff`` and its 95 % paired bootstrap interval, a person's rows one unit."""
    _, person = np.unique(people, return_inverse=True)
    sums, counts = np.bincount(person, diff), np.bincount(person)
    rows = np.random.default_rng(seed).integers(0, len(sums), (RESAMPLES, len(sums)))
    means = sums[rows].sum(axis=1) / counts[rows].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="long,short,reviews,market")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--lambda", dest="lam", type=float, default=250.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--betas", default=",".join(map(str, BETAS)))
    parser.add_argument("--halves", default=",".join(map(str, HALVES)))
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    seeds = [int(x) for x in args.seeds.split(",")]
    grid = settings(
        tuple(float(x) for x in args.betas.split(",")),
        tuple(float(x) for x in args.halves.split(",")),
    )
    for name in args.shapes.split(","):
        shape = REVIEWS if name == "reviews" else SHAPES[name]
        pooled: dict[str, list[np.ndarray]] = {}
        people: list[np.ndarray] = []
        for dataset in shape.datasets:
            for seed in seeds:
                began = time.process_time()
                if name == "reviews":
                    events = review_events(seed, shape.users, shape.items or 0)
                else:
                    events = sample(events_of(dataset, seed), shape, seed)
                s = split(events, shape.protocol)
                scores = scored(s, args.lam, grid)
                if args.out is not None:
                    args.out.mkdir(parents=True, exist_ok=True)
                    target = args.out / f"{name}-{dataset}-{seed}.npz"
                    np.savez(target, users=np.array(s.users), **scores)
                for key, value in scores.items():
                    pooled.setdefault(key, []).append(value)
                people.append(
                    np.array([f"{dataset}:{p}" for p in people_of(dataset, seed, s.users)])
                )
                line = " ".join(f"{k}={v.mean():.4f}" for k, v in scores.items())
                spent = time.process_time() - began
                print(
                    f"{name} {dataset} {seed} users={len(s.users)} {line} cpu={spent:.0f}s",
                    flush=True,
                )
        everyone = np.concatenate(people)
        base = np.concatenate(pooled["0/1"])
        print(f"== {name}: {len(base)} rows, β=0 NDCG@10 {base.mean():.4f}")
        for key, values in pooled.items():
            if key == "0/1":
                continue
            mean, low, high = interval(np.concatenate(values) - base, everyone)
            print(f"   β/h {key:>6}: {mean:+.4f} [{low:+.4f}, {high:+.4f}]", flush=True)


if __name__ == "__main__":
    main()
