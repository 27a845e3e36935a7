"""Training every stage, leak-free: the ranker learns on a past that never saw its labels.

The latest ``label_share`` of training events is the label window. Sources and feature aggregates
are fitted on the events before it; the ranker learns which of those sources' candidates the users
then actually chose. Finally the sources are refitted on all events for serving, while the ranker
keeps what it learned (its features are relative: ranks, shares, recency), as in two-stage
recommenders such as RecTools' CandidateRankingModel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.als import FactorModel
from recsmith.models.base import Recommender
from recsmith.models.registry import create
from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.ranking.features import FeatureState, candidate_features, feature_names
from recsmith.ranking.ltr import LambdaMARTRanker
from recsmith.retrieval.ann import ANNSource, ItemIndex
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import merge
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import CandidateSource, ModelSource, StaticSource


def fit_models(config: PipelineConfig, data: Interactions) -> dict[str, Recommender]:
    """One fitted model per model-backed source."""
    return {
        s.name: create(s.model, **s.params).fit(data)
        for s in config.retrieval.sources
        if s.kind == "model" and s.model is not None
    }


def build_sources(
    configs: Sequence[SourceConfig],
    models: dict[str, Recommender],
    attrs: ItemAttributes,
    ann_min_items: int = 50_000,
) -> list[CandidateSource]:
    """Sources in config order; 'new_arrivals' ranks items by creation time; factor models over
    at least ``ann_min_items`` items retrieve through an approximate index."""
    out: list[CandidateSource] = []
    for s in configs:
        model = models.get(s.name)
        if s.kind == "new_arrivals":
            created = attrs.created_ts.astype(np.float64)
            scores = np.where(created >= 0, created / 1e12, -np.inf).astype(np.float32)
            out.append(StaticSource(s.name, scores))
        elif isinstance(model, FactorModel) and s.use == "auto" and model.n_items >= ann_min_items:
            out.append(ANNSource(s.name, model.user_factors_, ItemIndex(model.item_factors_)))
        else:
            assert model is not None
            out.append(ModelSource(s.name, model, s.use))
    return out


def recent_items(data: Interactions, n: int) -> sparse.csr_array:
    """Each user's ``n`` latest distinct items, weighted 1 (what 'recent' sources score)."""
    if n == 0 or len(data.event_ts) == 0:
        return sparse.csr_array(data.matrix.shape, dtype=np.float32)
    order = np.lexsort((-data.event_ts, data.event_users))
    users, items = data.event_users[order], data.event_items[order]
    pair = users.astype(np.int64) * data.n_items + items
    _, first = np.unique(pair, return_index=True)
    first = np.sort(first)  # distinct (user, item), still newest first within each user
    users, items = users[first], items[first]
    starts = np.searchsorted(users, users, side="left")
    keep = (np.arange(len(users)) - starts) < n
    matrix = sparse.csr_array(
        (np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=data.matrix.shape
    )
    return matrix


def retrieve(
    sources: Sequence[CandidateSource], quotas: Sequence[int], queries: Queries
) -> Candidates:
    """Every source's proposals for the batch, merged."""
    proposals = [s.retrieve(queries, q) for s, q in zip(sources, quotas, strict=True)]
    return merge(proposals, [s.name for s in sources], len(queries), queries.n_items)


def train_ranker(
    config: PipelineConfig, full: Interactions, attrs: ItemAttributes
) -> LambdaMARTRanker | None:
    """The ranker, trained on the label window (None when disabled or there is nothing to learn)."""
    rc = config.ranking
    if not rc.enabled:
        return None
    cut = np.quantile(full.event_ts, 1.0 - rc.label_share)
    past = full.subset(full.event_ts < cut)
    future = full.subset(full.event_ts >= cut).matrix
    future = (future - future.multiply(past.matrix > 0)).tocsr()  # only items new to the user
    users = np.flatnonzero((np.diff(future.indptr) > 0) & (np.diff(past.matrix.indptr) > 0))
    if len(users) < 10:
        return None
    rng = np.random.default_rng(rc.random_state)
    if len(users) > rc.max_queries:
        users = np.sort(rng.choice(users, rc.max_queries, replace=False))
    models = fit_models(config, past)
    sources = build_sources(config.retrieval.sources, models, attrs, config.retrieval.ann_min_items)
    queries = Queries(
        users.astype(np.int32),
        recent_items(past, config.retrieval.recent_items)[users],
        past.matrix[users],
        tuple({} for _ in users),
    )
    cands = retrieve(sources, [s.quota for s in config.retrieval.sources], queries)
    cands = cands.top(rc.max_candidates)  # lambdarank cost grows with list length
    labels = np.asarray(future[users[cands.query], cands.items]).ravel() > 0
    positive = np.bincount(cands.query, weights=labels, minlength=len(users)) > 0
    rows = np.flatnonzero(positive[cands.query])
    if len(rows) == 0:
        return None
    cands = cands.take(rows)
    state = FeatureState.build(past, attrs.category, attrs.price, attrs.created_ts)
    features = candidate_features(state, queries, cands)
    groups = np.bincount(cands.query, minlength=len(users))
    return LambdaMARTRanker(rc.params).fit(
        features,
        labels[rows].astype(np.int32),
        groups[groups > 0],
        feature_names(cands.sources),
    )
