"""EASE with an item prior on the validation parts of a data set: what a trending-aware personal
order scores under each protocol calibration sees (#15, BENCHMARKS §39).

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python rising_frontier.py --datasets ml-100k

For each protocol of the bar the protocol is applied to the train part a second time (the test
part is never read, as ``bar_check.py --part validation``); on that inner train part it scores,
against the inner test and against calibration's own carvings (each user's latest item, and the
time cuts at the latest 0.1 / 0.2 / 0.3, each on its own past): EASE (λ 250), trending (7-day
half-life), EASE × trending-share ** γ and EASE × rising ** γ, rising = (recent share, half-life
h) / (share of users) — the factor ``ease.rising`` applies (``models/ease.py``), here computed
by hand. Dense score matrices: small data sets only.
"""

from __future__ import annotations

import numpy as np
from bar_check import parts
from protocol_frontier import each_dataset_and_protocol

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.runner import ground_truth
from recsmith.features.interactions import Interactions, decay_factors
from recsmith.models.ease import EASE
from recsmith.pipeline.validation import Validation, _time_cut, latest_item_split

K = 10


def shares(past: Interactions, half_life: float) -> tuple[np.ndarray, np.ndarray]:
    """Each item's share of the decayed recent events and of distinct users."""
    recent = np.bincount(
        past.event_items,
        weights=decay_factors(past.event_ts, past.reference_ts, half_life),
        minlength=past.n_items,
    )
    users = np.bincount(past.matrix.indices, minlength=past.n_items).astype(float)
    return recent / recent.sum(), users / users.sum()


def orders(past: Interactions, users: np.ndarray) -> dict[str, np.ndarray]:
    """Log-scores of every order: EASE's clipped like ``RISING_FLOOR``, plus γ × log prior."""
    ease = np.asarray(EASE(regularization=250.0).fit(past)._score(users), np.float64)
    log_ease = np.log(np.maximum(ease, 1e-4))
    out = {"ease": log_ease}
    recent7, _ = shares(past, 7.0)
    out["trending"] = np.broadcast_to(recent7, ease.shape)
    for hl in (7.0, 30.0):
        recent, _ = shares(past, hl)
        for g in (0.25, 0.5, 1.0):
            out[f"ease × trending{hl:g}^{g}"] = log_ease + g * np.log(recent + 1e-6)
    for hl in (7.0, 30.0, 90.0):
        recent, spread = shares(past, hl)
        for g in (0.25, 0.5, 1.0):
            out[f"ease × rising{hl:g}^{g}"] = log_ease + g * np.log(
                (recent + 1e-6) / (spread + 1e-6)
            )
    return out


def scores(val: Validation) -> dict[str, float]:
    seen = val.past.matrix[val.users].toarray() > 0
    out = {}
    for name, s in orders(val.past, val.users).items():
        s = np.where(seen, -np.inf, s)
        top = np.argsort(-s, axis=1, kind="stable")[:, :K]
        out[name] = float(ndcg_at_k(top, val.truth, K).mean())
    return out


def run(name: str, protocol: str) -> None:
    split, _ = parts(name, protocol, "validation")
    full = Interactions.from_events(split.train, dict(EventSettings().weights))
    truth = ground_truth(full, split.test, EventSettings().weights)
    matrix = truth.matrix[:, : full.n_items].tocsr()
    keep = np.diff(matrix.indptr) > 0
    users = full.users.to_index(truth.user_ids).astype(np.int32)[keep]
    vals = {
        "inner test": Validation(full, users, matrix[keep], "inner test", None),
        "latest item": latest_item_split(full, 5000, 0),
        **{f"cut {s:g}": _time_cut(full, s) for s in (0.1, 0.2, 0.3)},
    }
    table = {k: scores(v) for k, v in vals.items()}
    print(f"\n#### {name}, `{protocol}` (validation part)")
    print("| order | " + " | ".join(f"{k} ({len(v.users)})" for k, v in vals.items()) + " |")
    print("|---|" + "---:|" * len(vals))
    for order in table["inner test"]:
        print(f"| {order} | " + " | ".join(f"{table[k][order]:.4f}" for k in vals) + " |")


def main() -> None:
    each_dataset_and_protocol(run, __doc__ or "")


if __name__ == "__main__":
    main()
