"""One request's answer with an explanation of every listed item (``?explain=true``).

It runs the single-request path (``served.answer`` for one query, outside the coalesced batches
and the response cache), so nothing of it touches the ordinary request path. A pipeline is traced
(``explain.trace``) and each item explained from the trace: its sources' ranks and scores, the
ranker's SHAP values (LightGBM's TreeSHAP, which sum to the ranker's raw score, the item's score),
its position after each stage (``explain.positions``) and its anchors (``explain.anchors``). A
single model can say less: its own rank and score, and, for an item-to-item model, the items of
the user's history behind each item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recsmith.bundle import FILL, Answer, ModelBundle
from recsmith.explain.anchors import supporting
from recsmith.explain.positions import moved_by, positions, stage_lists
from recsmith.explain.rule_steps import moved_by_rules, rule_steps
from recsmith.explain.schema import (
    Anchor,
    Contribution,
    ItemExplanation,
    RankerExplanation,
    SourceSay,
)
from recsmith.explain.trace import Trace
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.features import candidate_features
from recsmith.retrieval.candidates import Candidates


def explain_answer(
    served: Pipeline | ModelBundle, user_id: str, k: int, **request: Any
) -> tuple[Answer, list[ItemExplanation]]:
    """``served.answer([user_id], k, **request)`` and an explanation per listed item."""
    if isinstance(served, Pipeline):
        trace = Trace()
        answer = served.answer([user_id], k, trace=trace, **request)
        return answer, _pipeline_items(served, trace)
    answer = served.answer([user_id], k, **request)
    own = [*(request.get("history") or [()])[0], *(request.get("recent") or [()])[0]]
    return answer, _model_items(served, answer, user_id, own)


def _pipeline_items(pipeline: Pipeline, trace: Trace) -> list[ItemExplanation]:
    """The explanations of the served rows of a one-query trace, in list order."""
    assert trace.served is not None and trace.queries is not None
    served = trace.served
    stages = stage_lists(pipeline.reranker, trace)
    steps = rule_steps(pipeline.reranker, trace, pipeline.config.rerank.rules)
    ranker = _ranker(pipeline, trace)
    history = trace.queries.recent.indices
    out = []
    for row, item in enumerate(served.items.tolist()):
        at = positions(stages, item)
        anchors = [
            Anchor(source=name, item_id=_external(pipeline.bundle, r), weight=w)
            for name, matrix in pipeline.anchor_matrices.items()
            if name in served.sources and served.source_ranks[row, served.sources.index(name)] > 0
            for r, w in supporting(history, matrix, item)
        ]
        out.append(
            ItemExplanation(
                sources=_said(served, row),
                ranker=ranker.get(item),
                positions=at,
                moved_by=moved_by(at, moved_by_rules(steps, at["ranked"], item)),
                anchors=anchors,
            )
        )
    return out


def _said(rows: Candidates, row: int) -> list[SourceSay]:
    """Every source that proposed the row's item, with its rank and score."""
    ranks, scores = rows.source_ranks[row], rows.source_scores[row]
    return [
        SourceSay(name=name, rank=int(ranks[c]), score=_number(scores[c]))
        for c, name in enumerate(rows.sources)
        if ranks[c] > 0
    ]


def _ranker(pipeline: Pipeline, trace: Trace) -> dict[int, RankerExplanation]:
    """Per ranked item of the pool (those retrieval proposed, not the fallback under them), the
    ranker's SHAP values for the features it was ranked on; empty without a ranker."""
    assert trace.pool is not None and trace.queries is not None
    if pipeline.ranker is None or pipeline.ranker.booster is None:
        return {}
    pool, width = trace.pool, len(pipeline.sources)
    rows = np.flatnonzero((pool.source_ranks[:, :width] > 0).any(axis=1))
    retrieved = Candidates(
        pool.n_queries,
        pool.sources[:width],
        pool.query[rows],
        pool.items[rows],
        pool.score[rows],
        pool.source_scores[rows, :width],
        pool.source_ranks[rows, :width],
    )
    features = candidate_features(pipeline.state, trace.queries, retrieved)
    shap = pipeline.ranker.contributions(features)
    names: Sequence[str] = pipeline.ranker.booster.feature_name()
    out = {}
    for item, values, effects in zip(retrieved.items.tolist(), features, shap, strict=True):
        order = np.lexsort((np.arange(len(names)), -np.abs(effects[:-1])))
        out[item] = RankerExplanation(
            raw_score=float(effects.sum()),
            expected_value=float(effects[-1]),
            contributions=[
                Contribution(
                    feature=names[f], value=_number(values[f]), contribution=float(effects[f])
                )
                for f in order.tolist()
            ],
        )
    return out


def _model_items(
    bundle: ModelBundle, answer: Answer, user_id: str, own: Sequence[str]
) -> list[ItemExplanation]:
    """What a single model can say: its rank and score of each item it listed, and for an
    item-to-item model the history items behind each one (the user's training history; past
    it, ``own``: the items met since training, stored and recent, which the list was scored
    from, with a known user's training items). An item the popularity fallback listed (a fallback
    list, or the fill below the model's items) is the fill's: its place among the fill and
    popularity's own score (the users who had the item), never the model's name — the model
    had nothing there."""
    ids: list[str] = answer.lists.item_ids[0].tolist()
    scores = answer.lists.scores[0].tolist()
    tier = answer.tiers[0]
    matrix = bundle.model.item_to_item
    trained = _scored_from(bundle, user_id)
    if tier == "personalised":
        history = trained
    else:
        history = bundle.items.to_index(list(own))
        history = np.concatenate([trained, history[history >= 0]])
    items = bundle.items.to_index(ids)
    popularity = bundle.popular.item_scores_
    out = []
    filled = 0
    for rank, (index, source) in enumerate(
        zip(items.tolist(), answer.sources[0], strict=True), start=1
    ):
        if source == [FILL]:
            filled += 1
            say = SourceSay(name=FILL, rank=filled, score=_number(popularity[index]))
            anchors = []
        else:
            say = SourceSay(name=source[0], rank=rank, score=_number(scores[rank - 1]))
            anchors = (
                [
                    Anchor(source=source[0], item_id=_external(bundle, r), weight=w)
                    for r, w in supporting(np.asarray(history), matrix, index)
                ]
                if matrix is not None and index >= 0
                else []
            )
        out.append(ItemExplanation(sources=[say], positions={"ranked": rank}, anchors=anchors))
    return out


def _scored_from(bundle: ModelBundle, user_id: str) -> np.ndarray:
    """The user's training items the model scored from (``ModelBundle.liked``: an item rated 0
    or below is seen but no signal), so none is shown as an anchor; none for a visitor."""
    return bundle.liked(int(bundle.users.to_index([user_id])[0]))


def _external(bundle: ModelBundle, index: int) -> str:
    return str(bundle.items.to_external(np.asarray([index]))[0])


def _number(value: float) -> float | None:
    """A JSON-safe number: None for NaN or an infinity."""
    value = float(value)
    return value if np.isfinite(value) else None
