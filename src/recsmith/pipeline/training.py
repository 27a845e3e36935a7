"""Training every stage, leak-free: the ranker learns on a past that never saw its labels.

The latest ``label_share`` of training events is the label window (a random share of them where
the events have no time order). Sources and feature aggregates are fitted on the window's past —
the events before it; under ``ranking.label_protocol = "latest"`` every event but each user's
latest, so other users' later events too, never an example's own label (``latest_window``) — and
the ranker learns which of those sources' candidates the users then actually chose. Finally the
sources are refitted on all events for serving, while the ranker keeps what it learned (its
features are relative: ranks, shares, recency), as in two-stage recommenders such as RecTools'
CandidateRankingModel.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.models.base import Recommender
from recsmith.models.popularity import Popular
from recsmith.models.registry import create
from recsmith.pipeline.config import PipelineConfig, RankingConfig, SourceConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import latest_ranks
from recsmith.ranking.context import first_events, moments_of
from recsmith.ranking.features import FeatureState, candidate_features, feature_names
from recsmith.ranking.ltr import LambdaMARTRanker
from recsmith.retrieval.ann import ANNSource, ItemIndex, ann_available
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import merge
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import (
    CandidateSource,
    ModelSource,
    Proposals,
    StaticSource,
    static_proposals,
)


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
    indexes: Mapping[str, ItemIndex] | None = None,
) -> list[CandidateSource]:
    """Sources in config order; 'new_arrivals' ranks items by creation time; embedding models
    (iALS, BPR, SASRec: ``Recommender.embeddings``) over at least ``ann_min_items`` items retrieve
    through an approximate index (``indexes[name]`` when a saved one was loaded, else built
    here)."""
    out: list[CandidateSource] = []
    for s in configs:
        model = models.get(s.name)
        if s.kind == "new_arrivals":
            created = attrs.created_ts.astype(np.float64)
            scores = np.where(created >= 0, created / 1e12, -np.inf).astype(np.float32)
            out.append(StaticSource(s.name, scores))
        elif isinstance(model, Popular):  # the same list for everyone: rank it once
            out.append(StaticSource(s.name, model.item_scores_))
        elif (
            model is not None
            and (vectors := model.embeddings) is not None
            and s.use == "auto"
            and model.n_items >= ann_min_items
            and ann_available()
        ):
            index = (indexes or {}).get(s.name) or ItemIndex(vectors[1])
            out.append(ANNSource(s.name, vectors[0], index))
        else:
            assert model is not None
            out.append(ModelSource(s.name, model, s.use))
    return out


def feature_state(data: Interactions, attrs: ItemAttributes, rc: RankingConfig) -> FeatureState:
    """The ranker's feature aggregates of ``data``, as training, validation and serving build
    them."""
    return FeatureState.build(
        data,
        attrs.category,
        attrs.price,
        attrs.created_ts,
        item_properties=attrs.properties.first(rc.max_property_features)
        if attrs.properties is not None
        else None,
        max_profile_properties=rc.max_property_features,
        use_context=rc.context_features,
        context_keys=rc.context_keys,
    )


def recent_items(data: Interactions, n: int) -> sparse.csr_array:
    """Each user's ``n`` latest distinct items with a positive weight, weighted 1 (what 'recent'
    sources score and explanations cite): an item rated 0 or below is seen, never listed, but
    no anchor to recommend from."""
    if n == 0 or len(data.event_ts) == 0:
        return sparse.csr_array(data.matrix.shape, dtype=np.float32)
    order = np.lexsort((-data.event_ts, data.event_users))
    users, items = data.event_users[order], data.event_items[order]
    pair = users.astype(np.int64) * data.n_items + items
    _, first = np.unique(pair, return_index=True)
    first = np.sort(first)  # distinct (user, item), still newest first within each user
    users, items = users[first], items[first]
    liked = np.asarray(data.matrix[users, items]).ravel() > 0
    users, items = users[liked], items[liked]
    starts = np.searchsorted(users, users, side="left")
    keep = (np.arange(len(users)) - starts) < n
    matrix = sparse.csr_array(
        (np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=data.matrix.shape
    )
    return matrix


def retrieve(
    sources: Sequence[CandidateSource],
    quotas: Sequence[int],
    queries: Queries,
    weights: Sequence[float] | None = None,
    *,
    ordered: bool = True,
) -> Candidates:
    """Every source's proposals for the batch, merged (``weights``: each source's say in the
    fused order; ``ordered``: see ``merge``)."""
    proposals = propose(list(zip(sources, quotas, strict=True)), queries)
    names = [s.name for s in sources]
    return merge(proposals, names, len(queries), queries.n_items, weights, ordered=ordered)


def propose(asked: Sequence[tuple[CandidateSource, int]], queries: Queries) -> list[Proposals]:
    """``[source.retrieve(queries, k) for source, k in asked]``, the static sources among them
    answered together (``static_proposals``: one pass over the batch's exclusions)."""
    static = [i for i, (source, _) in enumerate(asked) if type(source) is StaticSource]
    together = static_proposals([asked[i] for i in static], queries)  # type: ignore[misc]
    out = dict(zip(static, together, strict=True))
    return [out[i] if i in out else s.retrieve(queries, k) for i, (s, k) in enumerate(asked)]


@dataclass(frozen=True, slots=True)
class LabelWindow:
    """One set of ranker examples: events in ``labels`` label them, features and sources see only
    events in ``past`` (boolean masks over the events); ``future`` holds the labels (users ×
    items), and every user in ``users`` has a past and a positive label in it."""

    past: np.ndarray
    labels: np.ndarray
    users: np.ndarray
    future: sparse.csr_array

    @classmethod
    def of(cls, full: Interactions, past: np.ndarray, labels: np.ndarray) -> LabelWindow:
        """The window with these masks. Its labels are the items new to a user there
        (``Interactions.new_to_users``, net weight above 0), and its users those with a past and
        at least one such label: only they give an example, so only they count toward
        ``min_queries`` (review rv30r: a user whose latest event repeats an item, or is rated 0
        or below, has a label event but nothing to learn; counted, a window of only such users
        crashed ``train_ranker``)."""
        future = full.subset(past).new_to_users(full.subset(labels).matrix)
        before = np.bincount(full.event_users[past], minlength=full.n_users) > 0
        return cls(past, labels, np.flatnonzero(before & (np.diff(future.indptr) > 0)), future)


def has_time_order(full: Interactions) -> bool:
    """Whether the events carry real times (a data set of totals, such as Last.fm's play counts,
    stamps every event with the same instant)."""
    ts = full.event_ts
    return len(ts) > 0 and bool(ts.min() < ts.max())


def label_windows(
    full: Interactions,
    share: float,
    enough: int,
    max_windows: int = 4,
    seed: int = 0,
    protocol: str = "time",
) -> list[LabelWindow]:
    """Where the ranker's labels come from (``ranking.label_protocol``).

    ``"time"``: the latest ``share`` of events, and — while the windows so far hold fewer than
    ``enough`` queries (a user in a window) — the ``share`` before it, and so on
    (at most ``max_windows``). Each window is a global time cut, so every feature of its examples
    is computed strictly before every one of its labels; a user active in two windows gives two
    examples from two different pasts. Small data sets, where one window holds too few users with
    both a past and a future, get a trained ranker this way instead of none.

    Events without a time order have no past to cut: there each window labels a random
    ``share`` of the events (disjoint draws, with ``seed``) and the rest is its past — the same
    hold-out the data set is evaluated with, so a ranker can still learn how to weigh the
    sources.

    ``"latest"``: one window, each user's latest item (``latest_window``): the task a
    leave-last-out evaluation asks, which the time cuts do not teach (BENCHMARKS §175: a ranker
    kept on them lost 13 % there). ``"both"``: that window, then the time cuts as above."""
    out = [latest_window(full, seed)] if protocol != "time" else []
    if protocol == "latest":
        return out
    n = min(max_windows, int(1 / share))
    masks = _time_cuts(full, share, n) if has_time_order(full) else _draws(full, share, n, seed)
    cuts: list[LabelWindow] = []
    for past, labels in masks:
        cuts.append(LabelWindow.of(full, past, labels))
        if sum(len(x.users) for x in cuts) >= enough:
            break
    return out + cuts


def latest_window(full: Interactions, seed: int = 0) -> LabelWindow:
    """Each user's latest event labels, every other event is the past — the past the
    validation's leave-last-out fold scores on (``source_tuning.holdout_at`` at place 0: ties
    and time-less events broken by the same seeded draw; a user with fewer than two distinct
    items keeps their events in the past and gives no example).

    The past holds other users' events later than a user's label, so popularity, trend and the
    sources see them; that is not the label leaking (no example's own label event is in it) but
    the same information the leave-last-out protocol gives a model at test time — every other
    event of the training data — so the ranker learns from the features it will be served
    (a time cut at each user's label would teach features no served query has). Where a user's
    latest moment holds several items (a basket), the draw labels one and the others stay in
    the past as the user's most recent items, anchors of the "recent" sources: the validation
    fold does the same, so the ranker learns that artefact of the protocol too."""
    distinct = np.diff(full.matrix.indptr) >= 2
    labels = (latest_ranks(full, seed) == 0) & distinct[full.event_users]
    return LabelWindow.of(full, ~labels, labels)


def _time_cuts(full: Interactions, share: float, n: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(past, labels) masks of the latest ``share`` of events, then the ``share`` before, …"""
    ts = full.event_ts
    edges = np.quantile(ts, np.clip(1.0 - share * np.arange(n + 1), 0.0, 1.0))
    edges[0] = np.inf
    for w in range(n):
        yield ts < edges[w + 1], (ts >= edges[w + 1]) & (ts < edges[w])


def _draws(
    full: Interactions, share: float, n: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(past, labels) masks of disjoint random ``share``s of the events; the rest is the past."""
    draw = np.random.default_rng(seed).random(len(full.event_ts))
    for w in range(n):
        labels = (draw >= w * share) & (draw < (w + 1) * share)
        yield ~labels, labels


def _window_examples(
    config: PipelineConfig,
    full: Interactions,
    attrs: ItemAttributes,
    window: LabelWindow,
    max_queries: int,
    rng: np.random.Generator,
) -> tuple[Candidates, np.ndarray, np.ndarray, np.ndarray, FeatureState]:
    """Candidates, labels, features, the user of each query and the feature state, for one
    window (at least one user): sources and feature aggregates fitted on its past, labels = items
    new to the user inside it (``LabelWindow.future``); queries without a single positive
    candidate are dropped (they teach a ranker nothing)."""
    past, future, users = full.subset(window.past), window.future, window.users
    if len(users) > max_queries:
        users = np.sort(rng.choice(users, max_queries, replace=False))
    models = fit_models(config, past)
    sources = build_sources(config.retrieval.sources, models, attrs, config.retrieval.ann_min_items)
    # each query stands for the user's first label-window event: its time and stored context
    moments, contexts = moments_of(full, first_events(full, window.labels, users))
    queries = Queries(
        users.astype(np.int32),
        recent_items(past, config.retrieval.recent_items)[users],
        past.had_pairs()[users],  # what serving excludes
        contexts,
        moments,
    )
    specs = config.retrieval.sources
    cands = retrieve(sources, [s.quota for s in specs], queries, [s.weight for s in specs])
    cands = cands.top(config.ranking.max_candidates)  # lambdarank cost grows with list length
    labels = np.asarray(future[users[cands.query], cands.items]).ravel() > 0
    positive = np.bincount(cands.query, weights=labels, minlength=len(users)) > 0
    keep = np.flatnonzero(positive[cands.query])
    cands, labels = cands.take(keep), labels[keep]
    state = feature_state(past, attrs, config.ranking)
    return cands, labels, candidate_features(state, queries, cands), users, state


def window_quota(windows: int, max_queries: int) -> int:
    """The most queries ``train_ranker`` draws from each of ``windows`` labelled windows: an
    equal share of ``max_queries``."""
    return max(1, max_queries // max(windows, 1))


def _stack(parts: list[Candidates]) -> Candidates:
    """Candidates of several windows as one batch (each window's queries after the last's)."""
    offsets = np.cumsum([0] + [c.n_queries for c in parts[:-1]])
    return Candidates(
        int(sum(c.n_queries for c in parts)),
        parts[0].sources,
        np.concatenate([c.query + o for c, o in zip(parts, offsets, strict=True)]).astype(np.int32),
        np.concatenate([c.items for c in parts]),
        np.concatenate([c.score for c in parts]),
        np.concatenate([c.source_scores for c in parts]),
        np.concatenate([c.source_ranks for c in parts]),
    )


def train_ranker(
    config: PipelineConfig, full: Interactions, attrs: ItemAttributes
) -> tuple[LambdaMARTRanker | None, dict[str, float]]:
    """The ranker trained on the label windows, and how it did on held-out queries.

    No ranker when fewer than ``min_queries`` examples can be labelled. Otherwise a fifth of the
    users are held out, and the ranker is kept only if it orders their candidates better
    (NDCG@10) than the fused retrieval order does: on small or odd data a learnt ranker can be
    worse than none, and then it is not deployed (the fused order serves). The report's
    ``outcome`` says which of these happened, so training can say it (``ranker_summary``) instead
    of leaving a silent ``"ranker": false`` in the manifest.
    """
    rc = config.ranking
    if not rc.enabled:
        return None, {"outcome": "disabled"}
    # older time cuts are staler, so they are added only until a ranker can be trained at all;
    # random draws are exchangeable, so they are added until the examples reach max_queries
    # (lastfm validation NDCG@10: 0.1597 with one draw, 0.1708 with two, 0.1748 with four)
    enough = rc.min_queries if has_time_order(full) else rc.max_queries
    windows = label_windows(
        full, rc.label_share, enough, seed=rc.random_state, protocol=rc.label_protocol
    )
    # a query is a user in a window: one active in two windows is two queries
    available = sum(len(w.users) for w in windows)
    if available < rc.min_queries:  # a ranker learnt from a handful of users is noise
        return None, {
            "outcome": "too_few_queries",
            "queries": float(available),
            "users": float(np.unique(np.concatenate([w.users for w in windows])).size),
            "min_queries": float(rc.min_queries),
            "windows": float(len(windows)),
        }
    rng = np.random.default_rng(rc.random_state)
    labelled = [w for w in windows if len(w.users)]  # a window without a new label: no example
    per_window = window_quota(len(labelled), rc.max_queries)
    parts = [_window_examples(config, full, attrs, w, per_window, rng) for w in labelled]
    cands = _stack([part[0] for part in parts])
    labels = np.concatenate([part[1] for part in parts])
    features = np.concatenate([part[2] for part in parts])
    query_users = np.concatenate([part[3] for part in parts])
    names = feature_names(cands.sources, parts[0][4])
    if len(cands) == 0:
        return None, {"outcome": "no_positives", "queries": 0.0, "windows": float(len(windows))}
    held = (rng.random(full.n_users) < 0.2)[query_users]  # by user: no one on both sides
    fit_rows = ~held[cands.query]
    groups = np.bincount(cands.query[fit_rows], minlength=cands.n_queries)
    ranker = LambdaMARTRanker(rc.params).fit(
        features[fit_rows],
        labels[fit_rows].astype(np.int32),
        groups[groups > 0],
        names,
    )
    check = cands.take(np.flatnonzero(~fit_rows))
    truth = labels[~fit_rows]
    fused = _ndcg_per_query(check, check.score, truth)
    ranked = _ndcg_per_query(check, ranker.score(features[~fit_rows]), truth)
    keep, low, high = keeps(ranked, fused, rc.keep)
    report: dict[str, float | str] = {
        "queries": float(groups.astype(bool).sum()),
        "heldout_queries": float(np.unique(check.query).size),
        "windows": float(len(windows)),
        "label_share": float(np.mean(np.any([w.labels for w in windows], axis=0))),
        "heldout_ndcg_retrieval": float(fused.mean()) if len(fused) else 0.0,
        "heldout_ndcg_ranker": float(ranked.mean()) if len(ranked) else 0.0,
        "heldout_gain_low": low,
        "heldout_gain_high": high,
    }
    better = report["heldout_ndcg_ranker"] > report["heldout_ndcg_retrieval"]
    report["outcome"] = "kept" if keep else ("within_noise" if better else "not_better")
    return (ranker if keep else None), report


def keeps(ranked: np.ndarray, fused: np.ndarray, rule: str) -> tuple[bool, float, float]:
    """Whether the held-out check keeps the ranker, and the 95 % paired bootstrap interval of its
    per-query NDCG gain over the fused order. ``rule`` "better": any mean gain; "beyond_noise":
    the interval's lower end above zero, so a gain a few held-out users could show by chance
    does not ship a ranker (small data)."""
    if len(fused) == 0:
        return False, 0.0, 0.0
    low, high = bootstrap_ci(ranked - fused)
    if rule == "beyond_noise":
        return low > 0, low, high
    return bool(ranked.mean() > fused.mean()), low, high


def ranker_summary(report: Mapping[str, object]) -> str:
    """One line saying what ``train_ranker`` built or what it fell back from, and why.

    A pipeline whose ranker was skipped serves the fused retrieval order, which is a different
    product from the one configured; a newcomer must read that at training time, not discover
    ``"ranker": false`` in the manifest later. A kept ranker states its held-out gain, the only
    evidence that it earns its place.
    """
    outcome = report.get("outcome")
    fused = "serving the fused order"
    if outcome == "disabled":
        return f"ranker off (ranking.enabled = false); {fused}"
    if outcome == "not_chosen":
        return f"ranker not trained: calibration chose {report['chosen']} on validation"
    if outcome == "too_few_queries":
        return (
            f"ranker not trained: {report['queries']:,.0f} labelled queries "
            f"({report['users']:,.0f} users in {report['windows']:,.0f} label windows) "
            f"< min_queries {report['min_queries']:,.0f}; {fused}"
        )
    if outcome == "no_positives":
        return f"ranker not trained: no label-window user chose a retrieved candidate; {fused}"
    ranked, retrieval = (
        float(report["heldout_ndcg_ranker"]),
        float(report["heldout_ndcg_retrieval"]),
    )
    gain = (
        f"held-out NDCG@10 {ranked:.4f} vs fused {retrieval:.4f} "
        f"({ranked - retrieval:+.4f}) on {report['heldout_queries']:,.0f} held-out queries"
    )
    if outcome == "kept":
        return f"ranker kept: {gain}"
    if outcome == "within_noise":
        interval = f"[{report['heldout_gain_low']:+.4f}, {report['heldout_gain_high']:+.4f}]"
        return (
            f"ranker not kept (its gain is within noise, 95 % interval {interval}; "
            f'ranking.keep = "beyond_noise"): {gain}; {fused}'
        )
    return f"ranker not kept (no better than the fused order): {gain}; {fused}"


def _ndcg_per_query(
    cands: Candidates, scores: np.ndarray, labels: np.ndarray, k: int = 10
) -> np.ndarray:
    """NDCG@k of ordering each query's candidates by ``scores`` (binary labels), one value per
    query with a relevant candidate (the others have nothing to order)."""
    if len(cands) == 0:
        return np.zeros(0)
    order = np.lexsort((-scores, cands.query))
    q, rel = cands.query[order], labels[order].astype(np.float64)
    starts = np.searchsorted(q, np.arange(cands.n_queries))
    rank = np.arange(len(q)) - starts[q]
    gain = np.where(rank < k, rel / np.log2(rank + 2.0), 0.0)
    dcg = np.bincount(q, weights=gain, minlength=cands.n_queries)
    n_rel = np.bincount(q, weights=rel, minlength=cands.n_queries)
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k).astype(int) - 1]
    has = n_rel > 0
    return dcg[has] / ideal[has]
