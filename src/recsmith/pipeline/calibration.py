"""Choosing what a pipeline serves on a validation split of the user's own events.

The fused order's weights and the ranker were chosen on the datasets this project can see; on a
sparse marketplace set nobody tuned for, the fused order lost 35 % to plain popularity (#15). So
training carves validation data out of the training events, by the protocol the data supports —
a global time cut where enough users return after it, else each user's latest item — fits the
sources once on what lies before it, and scores there every source alone (popularity among them,
listed or not), the configured fused order and, when one trains within the time budget, the
ranker; first, each iALS / EASE / item-kNN source's most data-dependent parameter is tried alone
over a small grid (``GRID``). The simpler choice ships unless a richer one beats it by more than
its noise: the lower end of a paired bootstrap interval of the per-user difference must be above
zero. A richer choice is only ever compared against what it would replace, so the shipped
pipeline is never worse on validation than its best single source.

A single source ships as the same pipeline with that source at weight 1 and every other at
``FILLER_WEIGHT``:
rules, re-ranking, fallbacks and the other sources' explanations and item-to-item lists stay, and
what is scored here is exactly the order that will serve (the same merge, the same popularity
fill beneath).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.models.popularity import Popular
from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import latest_holdout, latest_item_holdout
from recsmith.pipeline.training import (
    build_sources,
    feature_state,
    fit_models,
    has_time_order,
    label_windows,
    recent_items,
    train_ranker,
)
from recsmith.ranking.context import first_events, moments_of
from recsmith.ranking.features import candidate_features
from recsmith.ranking.ltr import LambdaMARTRanker
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import append_below, merge
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, StaticSource
from recsmith.sparse_rows import csr_from_pairs

K = 10
#: The popularity source calibration adds when the file lists none (``popular`` is reserved).
POPULARITY = "popularity"
#: Candidates each source proposes per validation user when it serves alone.
POPULARITY_QUOTA = 100
#: Bootstrap resamples behind every interval (seeded: the same data gives the same choice).
RESAMPLES = 1000
#: Every other source's say when one source serves alone: its proposals only order what fills a
#: list below the serving source's (1e-4 × 5 sources / 61 stays under the gap between adjacent
#: RRF ranks to depth 150), and what is scored on validation is exactly this order.
FILLER_WEIGHT = 1e-4
#: The most data-dependent parameter of each model, and the values tried beside the file's own
#: (iALS's confidence scale, EASE's λ, item-kNN's neighbourhood): one model-agnostic decade
#: either side of each default, not values read off any data set.
GRID: dict[str, tuple[str, tuple[float | int, ...]]] = {
    "ials": ("alpha", (0.2, 20.0)),
    "ease": ("regularization", (25.0, 2500.0)),
    "itemknn": ("neighbors", (10, 1000)),
}
#: Fewer validation users than this decide nothing: the configured pipeline ships as written.
MIN_USERS = 20


@dataclass(frozen=True, slots=True)
class Validation:
    """Events the sources learn from (``past``), the users scored and their held-out items
    (``truth`` rows align with ``users``), and the protocol that carved them."""

    past: Interactions
    users: np.ndarray
    truth: sparse.csr_array
    protocol: str
    #: each user's first held-out event (index into the full events; -1 none): the moment and
    #: context a validation query stands for, as in the ranker's label windows
    first: np.ndarray | None = None


def validation_split(
    full: Interactions, min_users: int, share: float, max_users: int, seed: int = 0
) -> Validation:
    """A global time cut where at least ``min_users`` users have events before it and items new
    to them after it: at the latest ``share`` of events, else twice or three times that share
    (below half the events) — the protocol closest to serving, which always answers the future,
    and the only one fair to time-relative features (a ranker's recency and trend). Otherwise
    each user's latest item (a random one where events carry no times). At most ``max_users``
    users are kept (seeded)."""
    if has_time_order(full):
        for cut_share in (share * n for n in (1, 2, 3) if share * n < 0.5):
            val = _time_cut(full, cut_share)
            if len(val.users) >= min_users:
                return _sampled(val, max_users, seed)
    past, users, items = latest_item_holdout(full, seed, max_users)
    truth = csr_from_pairs(len(users), full.n_items, np.arange(len(users)), items)
    first = first_events(full, latest_holdout(full, seed), users)
    return Validation(past, users, truth, "each user's latest item", first)


def _time_cut(full: Interactions, share: float) -> Validation:
    """Events before the latest ``share``; truth: each returning user's items new to them after."""
    cut = np.quantile(full.event_ts, 1.0 - share, method="higher")
    before = full.event_ts < cut
    past = full.subset(before)
    after = full.subset(~before).matrix
    new = sparse.csr_array(after - after.multiply(past.matrix > 0))
    new.eliminate_zeros()
    known = np.diff(past.matrix.indptr) > 0
    users = np.flatnonzero(known & (np.diff(new.indptr) > 0)).astype(np.int32)
    truth = sparse.csr_array(new[users] > 0, dtype=np.float32)
    first = first_events(full, ~before, users)
    return Validation(past, users, truth, f"temporal cut at the latest {share:g}", first)


def _sampled(val: Validation, max_users: int, seed: int) -> Validation:
    if len(val.users) <= max_users:
        return val
    pick = np.sort(np.random.default_rng(seed).choice(len(val.users), max_users, replace=False))
    first = None if val.first is None else val.first[pick]
    return Validation(val.past, val.users[pick], val.truth[pick], val.protocol, first)


@dataclass(frozen=True, slots=True)
class Tried:
    """One configuration scored on validation: the pipeline configuration that would ship it and
    its per-user NDCG@10."""

    name: str
    config: PipelineConfig
    per_user: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.per_user.mean())


@dataclass(frozen=True, slots=True)
class Calibration:
    """The configuration to ship, whether its ranker should be trained, and the report."""

    config: PipelineConfig
    use_ranker: bool
    report: dict[str, Any]


def with_popularity(config: PipelineConfig) -> PipelineConfig:
    """``config`` with a popularity source (at the filler weight) unless one is listed: a
    candidate to serve alone, as the data's best single signal can be popularity."""
    if any(s.model == "popular" for s in config.retrieval.sources):
        return config
    extra = SourceConfig(
        name=POPULARITY, model="popular", quota=POPULARITY_QUOTA, weight=FILLER_WEIGHT
    )
    return _with_sources(config, [*config.retrieval.sources, extra])


def alone(config: PipelineConfig, name: str) -> PipelineConfig:
    """``config`` serving source ``name``'s order: it at weight 1, every other at
    ``FILLER_WEIGHT``, so the others only order what fills a list that rules thinned."""
    return _with_sources(
        config,
        [
            s.model_copy(update={"weight": 1.0 if s.name == name else FILLER_WEIGHT})
            for s in config.retrieval.sources
        ],
    )


def _with_sources(config: PipelineConfig, sources: Sequence[SourceConfig]) -> PipelineConfig:
    return config.model_copy(
        update={"retrieval": config.retrieval.model_copy(update={"sources": list(sources)})}
    )


class _Scorer:
    """Sources fitted on the validation past as configurations ask for them (each distinct
    source once); any configuration made of them (and a ranker) scored against the held-out
    items with the serving path's merge and popularity fill."""

    def __init__(
        self, config: PipelineConfig, val: Validation, attrs: ItemAttributes, full: Interactions
    ) -> None:
        self.val, self.attrs, self.config = val, attrs, config
        past, users = val.past, val.users
        first = val.first if val.first is not None else np.full(len(users), -1)
        moments, contexts = moments_of(full, first)
        self.queries = Queries(
            users,
            recent_items(past, config.retrieval.recent_items)[users],
            past.matrix[users],
            contexts,
            moments,
        )
        self.proposals: dict[str, Proposals] = {}
        fallback = StaticSource("popular", Popular().fit(past).item_scores_)
        self.fallback = fallback.retrieve(self.queries, K)

    def _proposals(self, spec: SourceConfig) -> Proposals:
        """What ``spec``'s source, fitted on the validation past, proposes (cached)."""
        key = spec.model_copy(update={"weight": 1.0}).model_dump_json()
        if key not in self.proposals:
            one = _with_sources(self.config, [spec])
            model = fit_models(one, self.val.past)
            retrieval = one.retrieval
            source = build_sources([spec], model, self.attrs, retrieval.ann_min_items)[0]
            self.proposals[key] = source.retrieve(self.queries, spec.quota)
        return self.proposals[key]

    def proposes(self, spec: SourceConfig) -> bool:
        """Whether ``spec``'s source proposes anything here (new arrivals without creation
        dates do not: "alone" it would only be the others' fillers, under its name)."""
        return len(self._proposals(spec).items) > 0

    def candidates(self, config: PipelineConfig) -> Candidates:
        """The fused candidates of ``config``'s sources, as ``Pipeline.candidates`` retrieves
        them."""
        specs = config.retrieval.sources
        return merge(
            [self._proposals(s) for s in specs],
            [s.name for s in specs],
            len(self.queries),
            self.queries.n_items,
            [s.weight for s in specs],
        )

    def ndcg(self, cands: Candidates) -> np.ndarray:
        """Per-user NDCG@10 of ``cands``' order with popularity filling beneath (as served)."""
        served = append_below(cands, self.fallback, "popular").top(K)
        ids = np.full((len(self.queries), K), -1, np.int32)
        rank = np.arange(len(served)) - served.bounds()[served.query]
        ids[served.query, rank] = served.items
        return ndcg_at_k(ids, self.val.truth, K)

    def ranked(self, ranker: LambdaMARTRanker, config: PipelineConfig) -> np.ndarray:
        """Per-user NDCG@10 of ``ranker`` ordering ``config``'s candidates."""
        cands = self.candidates(config)
        state = feature_state(self.val.past, self.attrs, config.ranking)
        if len(cands):
            cands = cands.with_scores(ranker.score(candidate_features(state, self.queries, cands)))
        return self.ndcg(cands)


def calibrate(config: PipelineConfig, full: Interactions, attrs: ItemAttributes) -> Calibration:
    """Score the candidates on a validation split of ``full`` and choose what ships (module
    docstring). Returns ``config`` unchanged (its ranker allowed) when the data holds too few
    validation users to decide anything."""
    started = time.perf_counter()
    cc = config.calibration
    seed = config.ranking.random_state
    val = validation_split(full, cc.min_users, cc.share, cc.max_users, seed)
    report: dict[str, Any] = {"protocol": val.protocol, "validation_users": len(val.users)}
    if len(val.users) < MIN_USERS:
        report["reason"] = f"{len(val.users)} validation users < {MIN_USERS}: nothing decided"
        report["seconds"] = round(time.perf_counter() - started, 3)
        return Calibration(config, config.ranking.enabled, report)
    scorer = _Scorer(with_popularity(config), val, attrs, full)
    scored = [Tried(n, c, scorer.ndcg(scorer.candidates(c))) for n, c in _options(config, scorer)]
    fit_seconds = time.perf_counter() - started
    tuned, report["grid"] = _grid(config, scored, scorer, seed, started)
    if tuned is not config:  # a source's value changed: its alone and fused orders are new
        config = tuned
        scored = [
            Tried(n, c, scorer.ndcg(scorer.candidates(c))) for n, c in _options(config, scorer)
        ]
    best_single = max(scored[:-1], key=lambda t: t.mean)  # ties: the first (popularity)
    choice, reason = _prefer(best_single, "best single source", scored[-1], seed)
    ranker = _try_ranker(choice, val, attrs, scorer, started, fit_seconds)
    if isinstance(ranker, Tried):
        scored.append(ranker)
        report["ranker"] = f"trained on the validation past over the {choice.name} candidates"
        choice, reason = _prefer(choice, reason, ranker, seed)
    else:
        report["ranker"] = ranker
    report["tried"] = [_entry(t, best_single, seed) for t in scored]
    report["chosen"] = choice.name
    report["reason"] = reason
    report["seconds"] = round(time.perf_counter() - started, 3)
    return Calibration(choice.config, choice.name == "ranker", report)


def _grid(
    config: PipelineConfig, scored: list[Tried], scorer: _Scorer, seed: int, started: float
) -> tuple[PipelineConfig, dict[str, Any]]:
    """``config`` with each gridded source's parameter (``GRID``; not one the file sets or tunes)
    at the value under which the source alone scores best on validation — the file's value unless
    another beats it beyond noise — and a report of every value tried. Stops before a source
    whose tries would pass half the budget (the rest is the ranker's)."""
    alone_scores = {t.name: t for t in scored}
    report: dict[str, Any] = {}
    sources = list(config.retrieval.sources)
    budget = config.calibration.budget_seconds / 2
    for n, spec in enumerate(sources):
        grid = GRID.get(spec.model or "")
        if grid is None or spec.kind != "model" or spec.tune or grid[0] in spec.params:
            continue
        began = time.perf_counter()
        param, values = grid
        best, tried = alone_scores[spec.name], {}
        default = best
        for value in values:
            variant = spec.model_copy(update={"params": {**spec.params, param: value}})
            candidate = alone(
                _with_sources(config, [*sources[:n], variant, *sources[n + 1 :]]), spec.name
            )
            t = Tried(spec.name, candidate, scorer.ndcg(scorer.candidates(candidate)))
            tried[str(value)] = round(t.mean, 5)
            best, _ = _prefer(best, "", t, seed) if t.mean > best.mean else (best, "")
        kept = best.config.retrieval.sources[n]
        report[spec.name] = {
            "param": param,
            "ndcg@10": {"as configured": round(default.mean, 5), **tried},
            "kept": kept.params.get(param, "as configured"),
        }
        sources[n] = kept.model_copy(update={"weight": spec.weight})
        spent = time.perf_counter() - began
        if time.perf_counter() - started + spent > budget:
            report["stopped"] = f"half the {config.calibration.budget_seconds:g} s budget reached"
            break
    changed = [s for s, o in zip(sources, config.retrieval.sources, strict=True) if s != o]
    return (_with_sources(config, sources), report) if changed else (config, report)


def _options(config: PipelineConfig, scorer: _Scorer) -> list[tuple[str, PipelineConfig]]:
    """(name, configuration) of every order tried: popularity alone first (the simplest, so it
    wins ties), every other source that proposes anything alone, and last the configured
    fusion."""
    widest = with_popularity(config)
    popular = next(s.name for s in widest.retrieval.sources if s.model == "popular")
    others = [s.name for s in config.retrieval.sources if s.name != popular and scorer.proposes(s)]
    return [
        (popular, alone(widest, popular)),
        *((name, alone(config, name)) for name in others),
        ("fused", config),
    ]


def _prefer(simple: Tried, reason: str, rich: Tried, seed: int) -> tuple[Tried, str]:
    """``rich`` replaces ``simple`` only if the paired bootstrap interval of their per-user
    difference lies above zero: a richer choice must win by more than its noise."""
    low, high = bootstrap_ci(rich.per_user - simple.per_user, n_resamples=RESAMPLES, seed=seed)
    gap = f"{rich.mean - simple.mean:+.4f} [{low:+.4f}, {high:+.4f}]"
    if low > 0:
        return rich, f"beats {simple.name} by {gap}"
    return simple, f"{reason}; {rich.name} not better by more than noise ({gap})"


def _try_ranker(
    base: Tried,
    val: Validation,
    attrs: ItemAttributes,
    scorer: _Scorer,
    started: float,
    fit_seconds: float,
) -> Tried | str:
    """The ranker trained on the validation past over the ``base`` choice's candidates and
    scored like the rest, or why not (off, over the time budget, or it did not train there)."""
    config = base.config
    rc, budget = config.ranking, config.calibration.budget_seconds
    if not rc.enabled:
        return "off (ranking.enabled = false)"
    enough = rc.min_queries if has_time_order(val.past) else rc.max_queries
    windows = len(label_windows(val.past, rc.label_share, enough, seed=rc.random_state))
    estimate = fit_seconds * (windows + 1)  # sources refitted per window, plus LightGBM
    elapsed = time.perf_counter() - started
    if elapsed + estimate > budget:
        return f"not tried: ~{estimate:.0f} s more would pass the {budget:g} s budget"
    ranker, outcome = train_ranker(config, val.past, attrs)
    if ranker is None:
        return f"not trained on the validation past ({outcome.get('outcome')})"
    return Tried("ranker", config, scorer.ranked(ranker, config))


def _entry(t: Tried, best_single: Tried, seed: int) -> dict[str, Any]:
    """One manifest row: the configuration, its NDCG@10 with a bootstrap interval, its weights,
    and its paired difference from the best single source (with that difference's interval)."""
    low, high = bootstrap_ci(t.per_user, n_resamples=RESAMPLES, seed=seed)
    entry: dict[str, Any] = {
        "name": t.name,
        "ndcg@10": round(t.mean, 5),
        "interval": [round(low, 5), round(high, 5)],
        "weights": {s.name: s.weight for s in t.config.retrieval.sources},
    }
    if t is not best_single:
        d_low, d_high = bootstrap_ci(
            t.per_user - best_single.per_user, n_resamples=RESAMPLES, seed=seed
        )
        diff = [t.mean - best_single.mean, d_low, d_high]
        entry["vs_best_single"] = [round(x, 5) for x in diff]
    return entry


def calibration_summary(report: dict[str, Any]) -> str:
    """One line for ``recsmith train``: what serves, on what evidence."""
    if "tried" not in report:
        return f"calibration: {report['reason']}; serving as configured"
    scores = {t["name"]: t["ndcg@10"] for t in report["tried"]}
    chosen = report["chosen"]
    others = ", ".join(f"{n} {v:.4f}" for n, v in scores.items() if n != chosen)
    grid = report.get("grid", {})
    changed = "".join(
        f"; {name} {g['param']}={g['kept']}"
        for name, g in grid.items()
        if isinstance(g, dict) and g["kept"] != "as configured"
    )
    return (
        f"calibration ({report['protocol']}, {report['validation_users']:,} users, "
        f"{report['seconds']:.0f} s): serving {chosen} (validation NDCG@10 {scores[chosen]:.4f}; "
        f"{others}){changed}"
    )
