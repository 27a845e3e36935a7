"""Offline evaluation protocol: split, train each model, recommend as serving does, score.

Models are evaluated through ``ModelBundle.top_k`` — the same code path that answers the CLI and the
HTTP API (seen-item exclusion, popularity fill) — so the numbers describe what users would get.
Ground truth keeps test items the model never saw in training (cold items): they can never be hit,
and counting them keeps recall honest. Items a user already had in training are dropped from their
truth, because serving never recommends them again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.bundle import ModelBundle
from recsmith.config import Weight
from recsmith.evaluation.metrics import DEFAULT_METRICS, catalog_coverage, compute_metrics
from recsmith.evaluation.split import Split
from recsmith.features.interactions import Interactions, actor_keys
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import create


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """Held-out relevant items of the evaluated users, as a sparse matrix over train + cold
    items."""

    user_ids: np.ndarray  # external ids of evaluated users (known in train, non-empty truth)
    matrix: sparse.csr_array  # [n_users, n_train_items + n_cold_items]


@dataclass(frozen=True, slots=True)
class ModelResult:
    """One model's scores: metric means, per-user vectors (for significance tests), timings."""

    model: str
    params: dict[str, Any]
    metrics: dict[str, float]
    per_user: dict[str, np.ndarray] = field(repr=False)
    coverage: float
    fit_seconds: float
    recommend_seconds: float


def ground_truth(data: Interactions, test: pd.DataFrame) -> GroundTruth:
    """Truth for test actors known in training; their training items are removed from it."""
    actors = actor_keys(test)
    u = data.users.to_index(actors)
    test_items = test["item_id"].to_numpy(dtype=object)
    i = data.items.to_index(test_items)
    cold_codes, _ = pd.factorize(test_items[i < 0])
    i = i.astype(np.int64)
    i[i < 0] = data.n_items + cold_codes
    keep = u >= 0
    n_cols = data.n_items + (int(cold_codes.max()) + 1 if len(cold_codes) else 0)
    truth = sparse.csr_array(
        (np.ones(keep.sum(), np.float32), (u[keep], i[keep])), shape=(data.n_users, n_cols)
    )
    truth.sum_duplicates()
    seen = data.matrix.copy()
    seen.data[:] = 1.0
    seen.resize((data.n_users, n_cols))
    truth = (truth - truth.multiply(seen)).tocsr()  # drop what the user already had
    truth.eliminate_zeros()
    rows = np.flatnonzero(np.diff(truth.indptr) > 0)
    return GroundTruth(data.users.to_external(rows), truth[rows])


def evaluate_model(
    name: str,
    data: Interactions,
    truth: GroundTruth,
    k: int,
    params: Mapping[str, Any] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> ModelResult:
    """Fit one model on ``data`` and score its top-``k`` lists against ``truth``."""
    model = create(name, **dict(params or {}))
    started = time.perf_counter()
    bundle = ModelBundle.train(data, model)
    fitted = time.perf_counter()
    top, _ = bundle.top_k(truth.user_ids, k)
    done = time.perf_counter()
    result = compute_metrics(top.ids, truth.matrix, truth.matrix.shape[1], metrics, k)
    return ModelResult(
        model=name,
        params=model.get_params(),
        metrics=result.means,
        per_user=result.per_user,
        coverage=catalog_coverage(top.ids, data.n_items),
        fit_seconds=fitted - started,
        recommend_seconds=done - fitted,
    )


def evaluate_models(
    events: pd.DataFrame,
    split: Split | Any,
    models: Sequence[str],
    k: int,
    weights: Mapping[str, Weight],
    *,
    half_life_days: float | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    catalog: ItemCatalog | None = None,
) -> tuple[list[ModelResult], dict[str, int]]:
    """Run the protocol for each model on one split; returns results and split statistics."""
    parts = split if isinstance(split, Split) else split.apply(events)
    data = Interactions.from_events(
        parts.train, weights, half_life_days=half_life_days, catalog=catalog
    )
    truth = ground_truth(data, parts.test)
    if len(truth.user_ids) == 0:
        raise ValueError("no test user has history in the training part: nothing to evaluate")
    stats = {
        "train_events": len(parts.train),
        "test_events": len(parts.test),
        "users": data.n_users,
        "items": data.n_items,
        "evaluated_users": len(truth.user_ids),
    }
    results = [evaluate_model(m, data, truth, k, (params or {}).get(m)) for m in models]
    return results, stats
