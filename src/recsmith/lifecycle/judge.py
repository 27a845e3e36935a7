"""Candidate against current release on the newest holdout: the same users, lists made as
serving makes them, metrics from ``evaluation.metrics`` and a paired test on the gate's metric.

The candidate is trained on the events before the holdout; the current release is used exactly as
deployed. Both lists leave out what each user had before the holdout (serving reads it from the
store): the current release was trained earlier, so it would otherwise lose on items the user
acted on since, which no server would show them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recsmith.bundle import ModelBundle
from recsmith.config import Weight
from recsmith.errors import ValidationError
from recsmith.evaluation.metrics import compute_metrics
from recsmith.evaluation.runner import GroundTruth, ground_truth
from recsmith.evaluation.significance import PairedResult, paired_test
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.lifecycle.holdout import Holdout
from recsmith.models.registry import create
from recsmith.monitoring.profile import data_profile
from recsmith.pipeline.artifact import profile_users, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline

#: Fewer evaluated users than this and the verdict says the comparison is weak.
FEW_USERS = 30


@dataclass(frozen=True)
class Candidate:
    """What to train: a pipeline config, or a model name with its parameters."""

    pipeline: PipelineConfig | None = None
    model: str | None = None
    params: Mapping[str, Any] | None = None

    def train(
        self,
        events: pd.DataFrame,
        data: Interactions,
        weights: Mapping[str, Weight],
        items: list[Item],
        half_life_days: float | None,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ModelBundle | Pipeline:
        """Fit on ``data`` (``events`` as the caller built and scores on them: a pipeline
        does not sort them again). A pipeline is handed ``profiles`` as ``train --pipeline``
        hands it the store's users, so its ranker's profile features and segment popularity
        are fitted on a retrain too."""
        if self.pipeline is not None:
            return train_pipeline(
                self.pipeline,
                events,
                dict(weights),
                items=items,
                users=profile_users(profiles),
                half_life_days=half_life_days,
                data=data,
            )
        assert self.model is not None
        model = create(self.model, **dict(self.params or {}))
        return ModelBundle.train(data, model, data_profile=data_profile(events))


@dataclass(frozen=True)
class Judgement:
    users: int
    k: int
    candidate: dict[str, float]
    current: dict[str, float] | None
    paired: PairedResult | None  # candidate − current on the gate metric
    note: str


def judge(
    candidate: Candidate,
    current: ModelBundle | Pipeline | None,
    holdout: Holdout,
    weights: Mapping[str, Weight],
    *,
    k: int,
    gate_metric: str,
    items: list[Item],
    half_life_days: float | None,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Judgement:
    """Train ``candidate`` on ``holdout.train`` and score it, and ``current`` as it is, on
    ``holdout.test``. ``profiles`` (user id → properties) reach a candidate that fits on them,
    as they will when it is trained for release."""
    catalog = ItemCatalog.from_items(items) if items else None
    data = Interactions.from_events(
        holdout.train, weights, half_life_days=half_life_days, catalog=catalog, profiles=profiles
    )
    truth = ground_truth(data, holdout.test, weights)
    if len(truth.user_ids) == 0:
        raise ValidationError(
            "--holdout", "no user in the holdout has history before it: nothing to judge on"
        )
    trained = candidate.train(holdout.train, data, weights, items, half_life_days, profiles)
    candidate_lists = _lists(trained, truth, data, k, with_history=False)
    scores = compute_metrics(candidate_lists, truth.matrix, truth.matrix.shape[1], k=k)
    note = ""
    if len(truth.user_ids) < FEW_USERS:
        note = f"only {len(truth.user_ids)} users in the holdout: too few to tell models apart"
    if current is None:
        return Judgement(len(truth.user_ids), k, scores.means, None, None, note)
    current_lists = _lists(current, truth, data, k, with_history=True)
    before = compute_metrics(current_lists, truth.matrix, truth.matrix.shape[1], k=k)
    paired = paired_test(scores.per_user[gate_metric], before.per_user[gate_metric])
    return Judgement(len(truth.user_ids), k, scores.means, before.means, paired, note)


def _lists(
    served: ModelBundle | Pipeline,
    truth: GroundTruth,
    data: Interactions,
    k: int,
    *,
    with_history: bool,
) -> np.ndarray:
    """Top-``k`` lists for the truth's users, as indices into the truth's item columns (-1 where
    an item is not among them: a miss). ``with_history`` passes each user's pre-holdout items as
    extra exclusions (the candidate already has them as its training history)."""
    extra: Sequence[list[str]] | None = None
    if with_history:
        rows = data.users.to_index(truth.user_ids)
        matrix = data.matrix.tocsr()[rows]
        ids = data.items.to_external(matrix.indices)
        extra = [list(part) for part in np.split(ids, matrix.indptr[1:-1])]
    found = served.top_k(truth.user_ids, k, extra_seen=extra)
    top = found[0]
    if served.items == data.items:
        return top.ids.astype(np.int64)
    out = np.full(top.ids.shape, -1, dtype=np.int64)
    valid = top.ids >= 0
    out[valid] = data.items.to_index(served.items.to_external(top.ids[valid]))
    return out
