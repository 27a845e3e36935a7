"""What the fairness measures add to ``evaluate``: ``score_lists`` with and without them.

``recsmith evaluate`` end to end is dominated by fitting and noisy on a shared machine; this
isolates the added step. One split of a store's events, one model's top-k lists, then the scoring
repeated: best of ``--repeat`` runs each way, plus the one-off cost of building the groups.

    python benchmarks/fairness_cost.py --store sqlite:////tmp/ml.db --split leave-last-out:10
    python benchmarks/fairness_cost.py --synthetic 100000   # each measure alone, at scale
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.evaluation.fairness import exposure, group_matrix, miscalibration
from recsmith.evaluation.grouping import fairness_inputs
from recsmith.evaluation.parity import activity_groups, group_parity
from recsmith.evaluation.runner import ground_truth, item_features, score_lists
from recsmith.evaluation.split import parse_split
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import create
from recsmith.store.open import open_store


def synthetic(n: int, k: int, repeat: int) -> None:
    """Each measure on random lists: ``n`` users x ``n`` items, 50 categories, 40 history items
    per user, six per-user metrics (best of ``repeat``)."""
    rng = np.random.default_rng(0)
    labels = [(f"c{c}",) for c in rng.integers(0, 50, n)]
    recs = rng.integers(0, n, (n, k))
    cells = n * 40
    history = sparse.csr_array(
        (np.ones(cells), (rng.integers(0, n, cells), rng.integers(0, n, cells))), shape=(n, n)
    )
    per_user = {m: rng.random(n) for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")}
    groups, names = group_matrix(labels)
    users, _ = activity_groups(np.diff(history.indptr))
    steps = {
        "group_matrix (once)": lambda: group_matrix(labels),
        "exposure": lambda: exposure(recs, n, groups, names),
        "miscalibration": lambda: miscalibration(recs, history, groups),
        "group_parity": lambda: group_parity(per_user, users, by="activity"),
    }
    print(f"synthetic: {n:,} users x {n:,} items, k={k}, 50 categories")
    for name, step in steps.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        print(f"  {name}: {min(times) * 1e3:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store")
    parser.add_argument("--synthetic", type=int, default=0, help="users = items for random lists")
    parser.add_argument("--split", default="leave-last-out:10")
    parser.add_argument("--model", default="ials")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if args.synthetic:
        synthetic(args.synthetic, args.k, args.repeat)
        return
    if not args.store:
        parser.error("give --store (a store with events and a catalogue) or --synthetic N")
    store = open_store(args.store)
    try:
        events, items = pd.concat(list(store.scan()), ignore_index=True), store.items()
    finally:
        store.close()
    parts = parse_split(args.split).apply(events)
    data = Interactions.from_events(
        parts.train, Settings().events.weights, catalog=ItemCatalog.from_items(items)
    )
    truth = ground_truth(data, parts.test, Settings().events.weights)
    top, _ = ModelBundle.train(data, create(args.model)).top_k(truth.user_ids, args.k)
    features = item_features(data)
    started = time.perf_counter()
    fair = fairness_inputs(data, truth.user_ids, items=items)
    build = time.perf_counter() - started

    def best(with_fairness: bool) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            score_lists(
                args.model, {}, top.ids, data, truth, args.k, ("precision", "recall", "ndcg",
                "map", "hit_rate", "mrr"), curve_k=0, features=features, fit_seconds=0.0,
                recommend_seconds=0.0, fairness=fair if with_fairness else None,
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
        return min(times)

    without, with_ = best(False), best(True)
    print(
        f"{args.split}: {len(truth.user_ids):,} users x {data.n_items:,} items, k={args.k}, "
        f"{len(fair.item_group_names)} item groups\n"
        f"score_lists without fairness {without * 1e3:.1f} ms, with {with_ * 1e3:.1f} ms "
        f"(+{(with_ - without) * 1e3:.1f} ms per model); groups built once in {build * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
