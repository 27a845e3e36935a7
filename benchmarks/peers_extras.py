#!/usr/bin/env python
"""What could close the gap: recsmith options outside the fixed model list of ``peers.py``.

Same datasets, same splits, same validation carving, same metric code as ``benchmarks/peers.py``
(it reuses that script's loading and preparation). Each candidate is scored on validation AND test
so a reader can see whether validation would have picked it; nothing here enters the peers verdict.

Candidates: recsmith models the peers comparison leaves out (``userknn``, ``sknn``,
``cooccurrence``, ``trending``), EASE on the weighted matrix (``binary=false``, as RecTools' EASE
does) at the λ scale such weights need, and time decay of the training matrix
(``Interactions.from_events(..., half_life_days=...)``), which only a library that keeps event
times can offer.

    /tmp/peers-venv/bin/python benchmarks/peers_extras.py --datasets movielens-100k
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibration import calibration_line
from peers import DATASETS, Prepared, load_events, log, prepare

from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_model, ground_truth
from recsmith.evaluation.split import parse_split, validation_split
from recsmith.features.interactions import Interactions

#: (label, model, params, half_life_days of the training matrix or None)
CANDIDATES: list[tuple[str, str, dict[str, Any], float | None]] = [
    ("trending (half-life 7 d)", "trending", {}, None),
    ("trending (half-life 30 d)", "trending", {"half_life_days": 30.0}, None),
    ("ials alpha=10", "ials", {"alpha": 10.0}, None),
    ("ials factors=128, alpha=10", "ials", {"factors": 128, "alpha": 10.0}, None),
    ("userknn defaults", "userknn", {}, None),
    ("sknn defaults", "sknn", {}, None),
    ("cooccurrence defaults", "cooccurrence", {}, None),
    ("ease weighted λ=2000", "ease", {"binary": False, "regularization": 2000.0}, None),
    ("ease weighted λ=5000", "ease", {"binary": False, "regularization": 5000.0}, None),
    (
        "ease weighted λ=2000, matrix half-life 180 d",
        "ease",
        {"binary": False, "regularization": 2000.0},
        180.0,
    ),
    ("ials defaults, matrix half-life 180 d", "ials", {}, 180.0),
    (
        "hybrid ease+itemknn+popular",
        "hybrid",
        {"components": {"ease": {}, "itemknn": {}, "popular": {}}},
        None,
    ),
]


def decayed(p: Prepared, train: Any, test: Any, half_life: float | None) -> Prepared:
    if half_life is None:
        return p
    data = Interactions.from_events(train, EventSettings().weights, half_life_days=half_life)
    truth = ground_truth(data, test, EventSettings().weights)
    return Prepared(
        p.label, p.split_name, data, truth, p.user_index, p.matrix, p.frame, p.stats, {}
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--dense-max-items", type=int, default=10_000, help="skip EASE / hybrid above this"
    )
    args = parser.parse_args(argv)
    print(calibration_line(), flush=True)
    print("| dataset | candidate | val ndcg@10 | test ndcg@10 | test recall@10 | fit s |")
    print("|---|---|---:|---:|---:|---:|")
    for d in [x.strip() for x in args.datasets.split(",") if x.strip()]:
        spec = DATASETS[d]
        events, _ = load_events(spec)
        split_spec = parse_split(spec.split)
        split = split_spec.apply(events)
        vsplit = validation_split(split.train, split_spec)
        test = prepare("test", split.train, split.test, split.name)
        val = prepare("validation", vsplit.train, vsplit.test, vsplit.name)
        for label, model, params, half_life in CANDIDATES:
            dense = model in ("ease", "hybrid")
            if dense and test.data.n_items > args.dense_max_items:
                continue
            if half_life is not None and events["ts"].nunique() == 1:
                continue  # no event times (lastfm): decay is meaningless
            scores = []
            fit = 0.0
            for p, parts in ((val, vsplit), (test, split)):
                q = decayed(p, parts.train, parts.test, half_life)
                started = time.perf_counter()
                try:
                    r = evaluate_model(model, q.data, q.truth, args.k, params, ("ndcg", "recall"))
                except Exception as exc:  # a model that cannot run here is reported, not fatal
                    log(f"{d} {label}: {exc!r}")
                    scores = []
                    break
                scores.append(r)
                fit = r.fit_seconds
                log(
                    f"{d} {label} {p.label}: ndcg {r.metrics['ndcg']:.4f} "
                    f"({time.perf_counter() - started:.1f}s)"
                )
            if len(scores) == 2:
                v, t = scores
                print(
                    f"| {d} | {label} | {v.metrics['ndcg']:.4f} | {t.metrics['ndcg']:.4f} "
                    f"| {t.metrics['recall']:.4f} | {fit:.2f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
