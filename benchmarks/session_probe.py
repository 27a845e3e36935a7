"""Can any model family, or a fusion of two or three, lead iALS on diginetica-sample?

The pipeline's one unmet offline goal (BENCHMARKS §4) is diginetica-sample, where no ranker trains
and the tuned peer (LensKit ImplicitMF, 0.0583) is the same algorithm as recsmith's iALS at
alpha 10. This probe scores, on the validation split carved from the train part (where choices
are made) and on the test split (where they are checked):

- single models: iALS (alpha 2 and 10), item-kNN, EASE (λ 250 and 20), session-kNN, and
  item-kNN / session-kNN fed only each user's latest 1–3 items;
- iALS at alpha 10 and 20 averaged over 8 seeds (max-normalised scores);
- SASRec (needs torch; ``--sasrec``) with sampled softmax and dropout;
- iALS (alpha 10) fused with each of the above by reciprocal-rank fusion (constant 60) or by the
  sum of max-normalised scores, the weight of the second list picked on validation.

Scores are dense (users × items): fine at diginetica's 5–7k items, not a serving path.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/session_probe.py [--sasrec]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from calibration import calibration_line
from pipeline_vs_models import DATASETS, load

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import compute_metrics
from recsmith.evaluation.runner import ground_truth
from recsmith.evaluation.split import parse_split
from recsmith.features.interactions import Interactions, binarize
from recsmith.models.registry import create
from recsmith.pipeline.training import recent_items

K = 10
SEEDS = 8
FUSION_WEIGHTS = (0.1, 0.25, 0.5, 1.0)
SASREC = {
    "sasrec bce": {},
    "sasrec softmax": {"loss": "sampled_softmax", "n_negatives": 1000},
    "sasrec softmax dropout 0.5": {"loss": "sampled_softmax", "n_negatives": 1000, "dropout": 0.5},
    "sasrec softmax dropout 0.7": {"loss": "sampled_softmax", "n_negatives": 1000, "dropout": 0.7},
}


class Probe:
    """One split: the training matrix, the evaluated users and their truth."""

    def __init__(self, train: pd.DataFrame, test: pd.DataFrame) -> None:
        self.data = Interactions.from_events(train, dict(EventSettings().weights))
        truth = ground_truth(self.data, test, EventSettings().weights)
        self.users = self.data.users.to_index(truth.user_ids)
        self.truth = truth.matrix
        self.seen = binarize(self.data.matrix)[self.users]

    def scores(self, name: str, history_items: int = 0, **params: object) -> np.ndarray:
        model = create(name, **params).fit(self.data)
        if history_items:
            history = recent_items(self.data, history_items)[self.users]
            return np.asarray(model._score_history(history), dtype=np.float64)
        return np.asarray(model._score(self.users), dtype=np.float64)

    def masked(self, scores: np.ndarray) -> np.ndarray:
        out = scores.copy()
        out[self.seen.nonzero()] = -np.inf
        return out

    def ndcg(self, scores: np.ndarray) -> float:
        masked = self.masked(scores)
        top = np.argpartition(-masked, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(masked, top, 1), axis=1)
        recs = np.take_along_axis(top, order, 1)
        n_cols = self.truth.shape[1]
        return compute_metrics(recs, self.truth, n_cols, ["ndcg"]).means["ndcg"]

    def rrf(self, scores: np.ndarray) -> np.ndarray:
        ranks = np.argsort(np.argsort(-self.masked(scores), axis=1), axis=1)
        return 1.0 / (60 + ranks)

    def unit(self, scores: np.ndarray) -> np.ndarray:
        out = scores.copy()
        out[self.seen.nonzero()] = 0
        out -= out.min(axis=1, keepdims=True)
        top = out.max(axis=1, keepdims=True)
        return out / np.where(top > 0, top, 1)


def candidates(sasrec: bool) -> dict[str, Callable[[Probe], np.ndarray]]:
    out: dict[str, Callable[[Probe], np.ndarray]] = {
        "ials alpha 2": lambda p: p.scores("ials"),
        "ials alpha 10": lambda p: p.scores("ials", alpha=10.0),
        "itemknn": lambda p: p.scores("itemknn"),
        "ease λ 250": lambda p: p.scores("ease"),
        "ease λ 20": lambda p: p.scores("ease", regularization=20.0),
        "sknn": lambda p: p.scores("sknn"),
    }
    for n in (1, 2, 3):
        out[f"itemknn last {n}"] = lambda p, n=n: p.scores("itemknn", history_items=n)
        out[f"sknn last {n}"] = lambda p, n=n: p.scores("sknn", history_items=n)
    for alpha in (10.0, 20.0):
        out[f"ials alpha {alpha:g}, {SEEDS} seeds"] = lambda p, a=alpha: sum(
            p.unit(p.scores("ials", alpha=a, random_state=s)) for s in range(SEEDS)
        )
    if sasrec:
        for label, params in SASREC.items():
            out[label] = lambda p, params=params: p.scores("sasrec", epochs=100, **params)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sasrec", action="store_true", help="also SASRec (needs torch)")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    fmt, folder, split = DATASETS["diginetica-sample"]
    events, _ = load(fmt, folder)
    spec = parse_split(split)
    test_split = spec.apply(events)
    val_split = spec.apply(test_split.train)
    probes = {
        "val": Probe(val_split.train, val_split.test),
        "test": Probe(test_split.train, test_split.test),
    }
    started = time.perf_counter()
    scores = {
        name: {where: make(p) for where, p in probes.items()}
        for name, make in candidates(args.sasrec).items()
    }
    print(f"| model | val ndcg@{K} | test ndcg@{K} |\n|---|---:|---:|")
    for name, by in scores.items():
        val, test = (probes[w].ndcg(by[w]) for w in ("val", "test"))
        print(f"| {name} | {val:.4f} | {test:.4f} |")
    base = "ials alpha 10"
    print(f"\n| {base} fused with | how | weight (val) | val | test |\n|---|---|---:|---:|---:|")
    for name, by in scores.items():
        if name == base or name.startswith("ials"):
            continue
        for how in ("rrf", "unit"):

            def fused(where: str, w: float, how: str = how, by: dict = by) -> float:
                p = probes[where]
                f = getattr(p, how)
                return p.ndcg(f(scores[base][where]) + w * f(by[where]))

            w = max(FUSION_WEIGHTS, key=lambda w: fused("val", w))
            print(f"| {name} | {how} | {w} | {fused('val', w):.4f} | {fused('test', w):.4f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
