"""iALS on the same events in different row orders: its factors, its NDCG@10, its fit CPU (#15).

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python ials_order.py --datasets ml-100k@0.1,ml-100k

For each dataset, ``bar_check``'s validation part (the protocol cut inside the train part, the
test part never read) is trained by recsmith's ``ials`` at its defaults once per row order of the
same training events (the file's order, then seeded shuffles), and scored by the runner's metric
code. A tree whose iALS depends on the order prints several factor hashes (per id, in id order)
and a spread of NDCG; an order-free one prints one hash and one score. Then the fit's CPU seconds
(the process's, median of ``--repeats``) on the file's order, and on the simulator's 1M-event
shop with ``--shop``. Run it under two trees (``PYTHONPATH=…/src``), alternating, to compare.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import numpy as np
from bar_check import parts
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import ground_truth, score_lists
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.als import ImplicitALS
from recsmith.simulate import simulate

K = 10


def factor_hash(model: ImplicitALS, data: Interactions) -> str:
    """sha256 of the user and item factors with their rows in id order."""
    users = np.argsort(data.users.to_array(), kind="stable")
    items = np.argsort(data.items.to_array(), kind="stable")
    raw = model.user_factors_[users].tobytes() + model.item_factors_[items].tobytes()
    return hashlib.sha256(raw).hexdigest()[:12]


def fit_cpu(data: Interactions, repeats: int) -> float:
    """Median CPU seconds of the process over ``repeats`` fits."""
    seconds = []
    for _ in range(repeats):
        started = time.process_time()
        ImplicitALS().fit(data)
        seconds.append(time.process_time() - started)
    return statistics.median(seconds)


def run(name: str, protocol: str, orders: int, repeats: int) -> None:
    split, _ = parts(name, protocol, "validation")
    weights = dict(EventSettings().weights)
    hashes, scores = [], []
    for seed in [None, *range(1, orders)]:
        train = split.train if seed is None else split.train.sample(frac=1.0, random_state=seed)
        data = Interactions.from_events(train, weights)
        truth = ground_truth(data, split.test, weights)
        model = ImplicitALS().fit(data)
        users = data.users.to_index(truth.user_ids)
        top = model.recommend(users, K, exclude=data.matrix[users])
        r = score_lists("ials", {}, top.ids, data, truth, K, ("ndcg",), curve_k=0, features=None,
                        fit_seconds=0.0, recommend_seconds=0.0)  # fmt: skip
        hashes.append(factor_hash(model, data))
        scores.append(r.metrics["ndcg"])
    data = Interactions.from_events(split.train, weights)
    cpu = fit_cpu(data, repeats)
    print(
        f"| {name} `{protocol}` validation ({len(split.test):,} test events) | {len(set(hashes))} "
        f"| {min(scores):.4f}–{max(scores):.4f} | {' '.join(f'{s:.4f}' for s in scores)} "
        f"| {cpu:.3f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k@0.1,ml-100k")
    parser.add_argument("--protocol", default="leave-last-out")
    parser.add_argument("--orders", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shop", action="store_true", help="also the 1M-event shop's fit CPU")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print("| data | distinct factor hashes | NDCG@10 range | per order | fit CPU s |")
    print("|---|---:|---:|---|---:|")
    for name in args.datasets.split(","):
        run(name, args.protocol, args.orders, args.repeats)
    if args.shop:
        sim = simulate(n_users=33_000, n_items=5_000, seed=0)
        events, _ = validate_events(sim.events, EventSettings())
        data = Interactions.from_events(events, dict(EventSettings().weights))
        cpu = fit_cpu(data, args.repeats)
        print(f"1M-event shop: {len(events):,} events, iALS fit {cpu:.2f} CPU s (median)")


if __name__ == "__main__":
    main()
