"""Choosing what a pipeline serves on a validation split of the user's own events.

The fused order's weights and the ranker were chosen on the datasets this project can see; on a
sparse marketplace set nobody tuned for, the fused order lost 35 % to plain popularity (#15). So
training carves validation data out of the training events — a global time cut where enough
users return after it, and each user's latest item (``validation.py``) — fits the sources once
per protocol on what lies before its held-out part, and scores there every source alone
(popularity among them, listed or not), the configured fused order and, when one trains within
the CPU budget (``cpu_budget.py``: the process's own CPU seconds, so the machine's load does not
change the choice), the ranker; first, each iALS / EASE / item-kNN source's most data-dependent
parameters are tried alone over a small grid (``GRID``), and the fused order tries each fitted
variant in its own place (``_fused_grid``) and, once, its order without the source that drags
it most (``fused_without_one``). A time cut holding few users is pooled with earlier
cuts into one protocol (``validation.py``); where no protocol tells the sources apart, each
user's items before the latest are held out too and pooled with it, and the report's
``evidence`` says when even that decides nothing (§65). Each configuration is judged by its worst
share of the best single source over the protocols (``robust_choice.py``): a choice that wins
one protocol and collapses on the other (trending alone on ml-100k: first after a time cut,
below popularity on each user's last item, BENCHMARKS §29) loses to one that holds on both; a
protocol whose best single source is not beyond noise of popularity takes no part (§42), and
where some protocol decides, a single source competes only if it beats popularity beyond noise
as a richer choice must, or scores above it on every protocol (``robust_choice.best_single``,
§94); where none decides, only if it is ahead of it beyond noise on every protocol's users
pooled (§104). Where each user's latest item is the next step of a sitting (``Sittings``:
most held-out latest items within 30 minutes of the user's previous event, as MovieLens users
rate), it measures the order inside a sitting, which neither a later visit nor serving sees, and
a time cut that does not decide bars what falls below popularity's mean there (§143, §150;
``robust_choice.vetoed``); the report's ``sittings`` says which the latest item measured and
whether a cut barred. The bar is off unless ``calibration.sitting_bar = true``: it is a prior
that the data is judged on later visits; on data judged leave-last-out it throws that test's
winner away (§150's correction), and on unread samples its time-split gain was not confirmed
while that loss was (§155). The simpler choice ships unless
a richer one beats it by more than its noise (paired bootstrap over validation users) on the
simpler one's weakest protocol, or on one protocol without falling below it beyond noise on any
(§60); so each replacement either keeps the worst share from
falling or falls beyond noise on no protocol; the manifest lists every configuration with its
score on each protocol.

A single source ships as the same pipeline with that source at weight 1 and every other at
``FILLER_WEIGHT``:
rules, re-ranking, fallbacks and the other sources' explanations and item-to-item lists stay, and
what is scored here is exactly the order that will serve (the same merge, the same popularity
fill beneath).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.models.popularity import Popular
from recsmith.models.registry import UnknownModelError, model_class
from recsmith.models.shared_fits import SharedFits, sharing
from recsmith.pipeline import sequential
from recsmith.pipeline.config import (
    CalibrationConfig,
    PipelineConfig,
    RankingConfig,
    SourceConfig,
)
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.decayed_source import tried_decayed
from recsmith.pipeline.fused_forward import FORWARD, forward_order
from recsmith.pipeline.fused_weights import stepped_weights
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import (
    RESAMPLES,
    TRADE_GAIN_RATIO,
    TRADE_LOSS,
    Refs,
    Tried,
    best_means,
    best_single,
    bounded_trade,
    deciding,
    prefer,
    relative_changes,
    vetoed,
    worst_share,
)
from recsmith.pipeline.source_tuning import known_items
from recsmith.pipeline.training import (
    LabelWindow,
    build_sources,
    feature_state,
    fit_models,
    has_time_order,
    label_windows,
    recent_items,
    train_ranker,
    window_quota,
)
from recsmith.pipeline.validation import (
    LATEST_ITEM,
    POOL_USERS,
    SITTING_GAP_US,
    SITTING_SHARE,
    Validation,
    distinct_users,
    sitting_share,
    validation_splits,
)
from recsmith.ranking.context import moments_of
from recsmith.ranking.features import candidate_features
from recsmith.ranking.ltr import LambdaMARTRanker
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import append_below, merge
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, StaticSource

K = 10
#: What the report's ``sittings.measures`` says where the latest item continues sittings.
SITTING = "the next step of a sitting"
#: The popularity source calibration adds when the file lists none (``popular`` is reserved).
POPULARITY = "popularity"
#: Candidates each source proposes per validation user when it serves alone.
POPULARITY_QUOTA = 100
#: Every other source's say when one source serves alone: its proposals only order what fills a
#: list below the serving source's (1e-4 × 5 sources / 61 stays under the gap between adjacent
#: RRF ranks to depth 150), and what is scored on validation is exactly this order.
FILLER_WEIGHT = 1e-4
#: A model's gridded parameters, each with the values tried beside the file's, in order.
Grid = tuple[tuple[str, tuple[float | int, ...]], ...]
#: The most data-dependent parameters of each model, and the values tried beside the file's own,
#: one parameter after the other (each with the values kept before it): iALS's confidence scale,
#: EASE's λ, item-kNN's neighbourhood — one model-agnostic decade either side of each default, not
#: values read off any data set; EASE's λ also a factor 2.5 either side (BENCHMARKS §59's grid),
#: as its best worst share is kept, not only one beyond noise (``STRENGTHS``) — and EASE's rising
#: factor (square root, linear; off as configured), which leans its personal order towards what
#: is taking off now: the time cut rewards that, each user's latest item mostly does not, and the
#: worst share weighs both (§39);
#: RP3beta's popularity penalty at its range's ends (0: the plain walk, 1: arrival divided by
#: the item's popularity; §63). iALS's rank and EASE's low-pass weight too where the file asks
#: (``grid_of``).
GRID: dict[str, Grid] = {
    "ials": (("alpha", (0.2, 20.0)),),
    "ease": (("regularization", (25.0, 100.0, 625.0, 2500.0)), ("rising", (0.5, 1.0))),
    "itemknn": (("neighbors", (10, 1000)),),
    "rp3beta": (("beta", (0.0, 1.0)),),
}


def grid_of(model: str, cc: CalibrationConfig) -> Grid | None:
    """``GRID``'s entry for ``model``, with what the file asks for beside it: iALS's rank first
    where ``cc.ials_factors`` names values (so its α is tried at the rank kept), EASE's low-pass
    weight where ``cc.ease_lowpass`` does (so it joins the λ and rising factor kept), and the
    weight of its Mult-DAE after that where ``cc.ease_autoencoder`` does (BENCHMARKS §139), and
    last its time decay where ``cc.ease_decay`` does: half-lives as shares of the validation
    past's own span, its reference time the past's newest event (``pair_decay``), so a value
    fits data of any time scale and nothing after the cut leaks in (BENCHMARKS §164). Its recency
    weights, where ``cc.ease_recency`` names β values (a user's own items weighed by their place
    from the newest at scoring time: no new solve, BENCHMARKS §182), come right after λ, so the
    steps after them are tried on the weights kept, and turn on by ``prefer`` alone or a
    bounded trade (``TRADES_PROTOCOLS``, §185, §188).

    §84 tried iALS's rank at 8 — the power of two nearest a decade below the file's 64 — and 16,
    half a decade (a factor 4, as λ's 2.5), nothing above: a fit's cost grows with the rank's
    square and cube. On the sparse marketplace shape a 64-factor iALS is 0.34–0.44× of EASE alone
    and drags the fused order to 0.66–0.79× of it (§82); with the ranks the fused order came level
    with EASE on validation, nothing shipped changed on the choosing samples and what changed
    elsewhere was within noise on test (§84), so the default tries none. A rank is not a strength
    (``STRENGTHS``): each one starts iALS from other random vectors, and a start alone moves iALS
    by ~12 % (``als.py``), so a lead within noise may be that luck: it must win beyond noise.

    EASE's low-pass weight (GF-CF's filter beside EASE's scores, ``low_pass.py``) turns a second
    signal on, so each weight must beat off beyond noise (§92); among those that do, the weights
    are read as a strength (``SWITCHED_STRENGTHS``, §112). A value listed twice is tried once (each
    try is a fit)."""
    grid = GRID.get(model)
    if model == "ials" and cc.ials_factors and grid is not None:
        return (("factors", tuple(dict.fromkeys(cc.ials_factors))), *grid)
    if model == "ease" and grid is not None:
        if cc.ease_recency:  # no solve: right after λ, where a grid the budget stops still gets
            # to it (hidden-long's stopped after the Mult-DAE, two steps before its place, §185)
            grid = (grid[0], ("recency", tuple(dict.fromkeys(cc.ease_recency))), *grid[1:])
        for param, values in (
            ("lowpass", cc.ease_lowpass),
            ("autoencoder", cc.ease_autoencoder),
            ("decay", cc.ease_decay),
        ):
            if values:
                grid = (*grid, (param, tuple(dict.fromkeys(values))))
    return grid


#: Gridded parameters that only set how strongly one model shrinks (EASE's λ: the same closed form
#: at each value), so no value is simpler than another: the best worst share among them wins (the
#: file's on ties) without the bar a richer choice must clear (``prefer``). Under that bar the
#: file's λ kept every lead within noise: on the simulated marketplace shape λ 100 led λ 250 on
#: both protocols by 0.2–2.6 % and on test by 1–3 % (BENCHMARKS §59, §71). A value that turns
#: something on (EASE's rising factor, RP3beta's penalty at its ends) still has to win beyond
#: noise. The rule is the alone grid's only: the fused order (``_fused_grid``) starts from the λ
#: the source kept alone and moves only beyond noise (``prefer``), as every other λ, the file's
#: 250 included, must beat that start there (§71's figures were measured so). iALS's ``alpha``
#: is one too: every value starts from the same seed (unlike a rank), so a lead within noise is
#: not a start's luck; on 17 design and unread samples no choice served changed, on
#: diginetica-sample whole (iALS serves) 0.81× → 1.00× tuned implicit ALS (§161).
STRENGTHS = frozenset({"regularization", "alpha"})
#: Gridded parameters whose 0 (the file's default) turns a second signal off: EASE's low-pass
#: weight, rising factor, Mult-DAE weight, time decay (0: every pair counts the same; a
#: half-life weighs old pairs down, a prior the data must confirm) and recency weights (0: a
#: user's items count the same whatever their place). Every value is scored, and
#: each must turn the signal on by itself: beat the grid's start (off) beyond noise
#: (``prefer``; for the ``TRADES_PROTOCOLS``, also a ``bounded_trade``). The values that do only
#: set how strongly the same signal counts — none is simpler than another — so among them the best
#: worst share wins, as for the ``STRENGTHS``, whatever order the grid lists them in
#: (``grid_kept``). Under the noise bar at every step the filter's weight 1 had to beat 0.3 beyond
#: noise once 0.3 was kept, and did not where it had the higher worst share (market / simulated /
#: 2, BENCHMARKS §112); EASE alone scored higher on test at 1 than at 0.3 on 11 of 12 marketplace
#: samples. Where no value beats off beyond noise (``short``, §92) nothing moves.
SWITCHED_STRENGTHS = frozenset({"lowpass", "rising", "autoencoder", "decay", "recency"})
#: Gridded parameters applied to EASE's scores after its solve (``ease.py``): their tries share
#: the solve of the λ kept (``models/shared_fits.py``). Any other value — a λ, a half-life (the
#: decayed pairs are solved again) — is another solve. Where at most ``SHARED_SOLVE_PASTS``
#: validation pasts score, it is kept only while it is the value kept (``_grid_param`` retains
#: after every try), so the steps after a λ other than the file's reuse its solve instead of
#: solving it again on every past (BENCHMARKS §184: two of the ten 12k-item solves at the hidden
#: long set's size); beyond that it is fitted apart, its pieces dying with its model.
AFTER_SOLVE = frozenset({"rising", "lowpass", "autoencoder", "recency"})
#: The most validation pasts on which a λ's or a half-life's try keeps its solve (above). In n × n
#: units, with k pasts: a try fitted apart peaks at k kept solves + its running solve's 2
#: (``EASE._solve``; 4 before review rv30c F2); a kept try adds, while it fits on past j, its
#: solve on every past before j: k + (k − 1) + 2. Against the k + 4 of calibration before the
#: reuse (no higher peak memory, review rv30c F1) that allows k ≤ 3, and the traced grid peak
#: with 4 pasts measured higher still with the reuse (508 MB against 468, 3,782 items).
SHARED_SOLVE_PASTS = 3
#: EASE's companion weights (GF-CF's low-pass filter, the Mult-DAE): where the grid keeps the top
#: of the values the file lists, and ``calibration.ease_past_top`` asks, it walks on up the
#: half-decade ladder (``step_up``: 1 → 3 → 10), each step while the last one is kept
#: (``step_past``).
#: On the hidden long set's proxy the grid kept low-pass 1.0 and Mult-DAE 1.0, each its list's top,
#: on seeds 0-2 (BENCHMARKS §167), so a larger weight was never tried. Each step reuses the λ's
#: solve (``AFTER_SOLVE``): a try costs the filter's product or the network's logits, not a fit.
#: Off by default: on the marketplace shape it kept Mult-DAE 3.0 on 3 of 5 design samples (test
#: up, each within noise); on 4 unread ones it changed 3, test pooled −0.0024 [−0.0049, +0.0001]
#: (low-pass 3.0 displaced the Mult-DAE on one: −0.0083 beyond noise): not confirmed (§173).
PAST_TOP = frozenset({"lowpass", "autoencoder"})
#: Fewer validation users than this decide nothing: the configured pipeline ships as written.
MIN_USERS = 20


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


def fit_key(spec: SourceConfig) -> str:
    """What tells one source's fit from another's: its settings but its weight (which only
    merges its proposals)."""
    return spec.model_copy(update={"weight": 1.0}).model_dump_json()


class _Scorer:
    """Sources fitted on the validation past as configurations ask for them (each distinct
    source once; EASE's grid values at one λ share its solve, ``models/shared_fits.py``); any
    configuration made of them (and a ranker) scored against the held-out items with the serving
    path's merge and popularity fill."""

    def __init__(
        self, config: PipelineConfig, val: Validation, attrs: ItemAttributes, full: Interactions
    ) -> None:
        # the past numbers its items its own way (``Validation.items``): so do its attributes
        self.val, self.attrs, self.config = val, attrs.taken(val.items), config
        past, users = val.past, val.users
        first = val.first if val.first is not None else np.full(len(users), -1)
        moments, contexts = moments_of(full, first)
        self.queries = Queries(
            users,
            recent_items(past, config.retrieval.recent_items)[users],
            past.had_pairs()[users],  # what serving excludes
            contexts,
            moments,
        )
        self.proposals: dict[str, Proposals] = {}
        self.fits = SharedFits(past)  # EASE's solve across its grid's values (shared_fits.py)
        self.known = known_items(past, full, val.items)  # as serving knows them: see there
        fallback = StaticSource("popular", Popular().fit(past).item_scores_)
        self.fallback = self._known(fallback.retrieve(self.queries, K))

    def _known(self, proposals: Proposals) -> Proposals:
        """``proposals`` without the items the validation past does not know (``known_items``)."""
        return proposals.where(self.known[proposals.items])

    def _proposals(self, spec: SourceConfig, share: bool = True) -> Proposals:
        """What ``spec``'s source, fitted on the validation past, proposes (cached); ``share``
        False: its fit neither reuses nor keeps a shared piece (they die with the model)."""
        key = fit_key(spec)
        if key not in self.proposals:
            one = _with_sources(self.config, [spec])
            with sharing(self.fits, key) if share else nullcontext():
                model = fit_models(one, self.val.past)
            retrieval = one.retrieval
            source = build_sources([spec], model, self.attrs, retrieval.ann_min_items)[0]
            self.proposals[key] = self._known(source.retrieve(self.queries, spec.quota))
        return self.proposals[key]

    def proposes(self, spec: SourceConfig) -> bool:
        """Whether ``spec``'s source proposes anything here (new arrivals without creation
        dates do not: "alone" it would only be the others' fillers, under its name)."""
        return len(self._proposals(spec).items) > 0

    def candidates(self, config: PipelineConfig, share: bool = True) -> Candidates:
        """The fused candidates of ``config``'s sources, as ``Pipeline.candidates`` retrieves
        them (``share``: as ``_proposals``)."""
        specs = config.retrieval.sources
        return merge(
            [self._proposals(s, share) for s in specs],
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


#: The validation splits of one protocol: one, or several pooled time cuts (``validation.py``).
Group = tuple[Validation, ...]


def grouped(splits: Sequence[Validation]) -> list[Group]:
    """Consecutive splits that name the same protocol, together (pooled time cuts)."""
    groups: list[Group] = []
    for val in splits:
        if groups and groups[-1][0].protocol == val.protocol:
            groups[-1] = (*groups[-1], val)
        else:
            groups.append((val,))
    return groups


def users_in(group: Group) -> int:
    """The distinct users a protocol scores (its pooled splits hold many of them again)."""
    return distinct_users(group)


class ByUser:
    """Each user's mean over the splits of a protocol that hold them: one row per distinct user
    (sorted by id), the same rows for every configuration, so differences stay paired. Pooled
    splits repeat users (three latest-item folds of ~200 users; a user who returns after the
    latest time cut returned after the earlier ones too), and the bootstrap resamples rows: one
    row per held-out item would count a user up to three times and narrow every interval by up to
    1/sqrt(3), so that noise would "decide" (§65, corrected)."""

    def __init__(self, users_per_split: Sequence[np.ndarray]) -> None:
        users = np.concatenate(users_per_split)
        self.users, self.inverse, counts = np.unique(users, return_inverse=True, return_counts=True)
        self.counts = counts.astype(np.float64)

    def __call__(self, per_split: Sequence[np.ndarray]) -> np.ndarray:
        """The per-user means of ``per_split`` (each split's per-user scores, in split order)."""
        scores = np.concatenate(per_split)
        return np.bincount(self.inverse, weights=scores, minlength=len(self.users)) / self.counts


def _protocol_row(group: Group) -> dict[str, Any]:
    """A protocol's report row: its name, distinct users, and where it pools splits (time cuts or
    latest-item folds, ``validation.py``) how many, and how many held-out rows they hold (a user
    once per split that holds them)."""
    row: dict[str, Any] = {"protocol": group[0].protocol, "validation_users": users_in(group)}
    if len(group) > 1:
        row["folds" if group[0].protocol.startswith(LATEST_ITEM) else "cuts"] = len(group)
        row["held_out"] = sum(len(v.users) for v in group)
    return row


class _Protocols:
    """One ``_Scorer`` per validation split: every configuration is scored on each of them, a
    protocol's pooled splits read as one score per distinct user (``ByUser``)."""

    def __init__(
        self,
        config: PipelineConfig,
        groups: Sequence[Group],
        attrs: ItemAttributes,
        full: Interactions,
        fitted: Sequence[Sequence[_Scorer]] = (),
    ) -> None:
        """``fitted``: scorers of the leading splits of each group, already fitted (the same
        protocols before more latest-item folds were pooled in): kept, not fitted again."""
        wide = with_popularity(config)
        self.scorers = [
            [
                fitted[g][n]
                if g < len(fitted) and n < len(fitted[g])
                else _Scorer(wide, v, attrs, full)
                for n, v in enumerate(group)
            ]
            for g, group in enumerate(groups)
        ]
        self.by_user = [ByUser([v.users for v in group]) for group in groups]

    def proposes(self, spec: SourceConfig) -> bool:
        return any(s.proposes(spec) for group in self.scorers for s in group)

    @property
    def pasts(self) -> int:
        """How many validation pasts score (each holds its own shared fit pieces)."""
        return sum(len(group) for group in self.scorers)

    def retain(self, *specs: SourceConfig) -> None:
        """Keep only the shared fit pieces ``specs``' fits used, on every validation past (none
        named: none)."""
        for s in (s for group in self.scorers for s in group):
            s.fits.retain(*map(fit_key, specs))

    def saved_seconds(self) -> float:
        """CPU seconds the shared pieces have saved so far, over every validation past."""
        return sum(s.fits.saved_seconds for group in self.scorers for s in group)

    def tried(self, name: str, config: PipelineConfig, share: bool = True) -> Tried:
        """``config``'s fused order scored on every protocol (``share``: as
        ``_Scorer._proposals``)."""
        return Tried(
            name,
            config,
            tuple(
                by_user([s.ndcg(s.candidates(config, share)) for s in group])
                for group, by_user in zip(self.scorers, self.by_user, strict=True)
            ),
        )


def calibrate(config: PipelineConfig, full: Interactions, attrs: ItemAttributes) -> Calibration:
    """Score the candidates on the validation splits of ``full`` (``validation.py``: a time
    cut where one holds, and each user's latest item) and choose what ships by its worst share
    of the best single source over them (``robust_choice.py``). Returns ``config`` unchanged
    (its ranker allowed) when the data holds too few validation users to decide anything.

    BLAS runs on one thread meanwhile (as iALS already does): its idle worker threads spin while
    they wait for a core, and on a loaded machine that spinning counted in the CPU budget as
    work (a small case: 0.4–0.8 CPU s run to run at load ~17 and 5.0 with the process crowded
    onto one core, against 0.3 throughout on one thread; BENCHMARKS §45), so the load would
    again have changed the choice. Calibration's BLAS work is EASE's inverse on each validation
    past. The limit is the process's: a library caller calibrating beside a serving thread
    slows that thread's BLAS too (``recsmith train`` and the scheduled retrain run alone)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _calibrate(config, full, attrs)


def _calibrate(config: PipelineConfig, full: Interactions, attrs: ItemAttributes) -> Calibration:
    started = time.perf_counter()
    cc = config.calibration
    budget = CpuBudget(cc.budget_seconds)
    seed = config.ranking.random_state
    splits = _groups(full, cc, seed, 1)
    vals = [g for g in splits if users_in(g) >= MIN_USERS]
    report: dict[str, Any] = {}
    if not vals and (pooled := _pooled(full, cc, seed)) is not None:
        # too few users to look at the latest item alone: the items before it may add some
        vals = pooled
        alone_users = f"{users_in(splits[-1])} users < {MIN_USERS}"
        report["pooled_folds"] = f"each user's latest item alone holds {alone_users}"
    report["protocols"] = [_protocol_row(g) for g in (vals or splits)]
    if not vals:
        most = max(users_in(g) for g in splits)
        report["reason"] = f"{most} validation users < {MIN_USERS}: nothing decided"
        if not (np.diff(full.matrix.indptr) >= 2).any():
            report["reason"] += " (no user has two distinct items: none can be held out)"
        report["evidence"] = f"weak: {report['reason']}, serving as configured"
        report |= _seconds(started, budget)
        return Calibration(config, config.ranking.enabled, report)
    # pooled folds keep each user's latest item as their first split: one measure serves both
    sittings = Sittings.measure(full, splits[-1][0], cc.sitting_bar)
    protocols, scored, refs, decides = _scored(config, vals, attrs, full, seed, sittings)
    few = "pooled_folds" not in report and users_in(splits[-1]) < POOL_USERS
    if few and not any(d["decides"] for d in decides):
        # nothing tells the sources apart: ask the items before each user's latest too (§65)
        pooled = _pooled(full, cc, seed)
        if pooled is not None:
            said = "; ".join(d["evidence"] for d in decides)
            report["pooled_folds"] = f"nothing decided on each user's latest item alone ({said})"
            vals = pooled
            report["protocols"] = [_protocol_row(g) for g in vals]
            # the same splits lead each group (a time cut holds >= MIN_USERS users, so only the
            # latest item can join here, last): their sources are not fitted again
            fitted = protocols.scorers
            protocols, scored, refs, decides = _scored(
                config, vals, attrs, full, seed, sittings, fitted
            )
    # the ranker refits every source without shared pieces: its estimate counts what they saved
    fit_seconds = budget.spent() + protocols.saved_seconds()
    report["cpu_seconds_before_grid"] = round(budget.spent(), 1)  # where the budget went (§167)
    tuned, report["grid"], variants, dearer = _grid(config, scored, protocols, refs, seed, budget)
    protocols.retain()  # the grid's shared fit pieces serve nothing after it
    fit_seconds += dearer  # the ranker refits the values kept, EASE's filter with it (§92)
    if tuned is not config:  # a source's value changed: its alone and fused orders are new
        config = tuned
        scored = [protocols.tried(n, c) for n, c in _options(config, protocols)]
        refs, decides = deciding(scored[:-1], seed, sittings.bars(vals))
    scored[-1], report["fused_grid"] = _fused_grid(scored[-1], variants, protocols, refs, seed)
    if cc.fused_drop:
        scored[-1], report["fused_drop"] = fused_without_one(
            scored[-1], protocols.tried, refs, seed
        )
    if cc.fused_weights:
        scored[-1], report["fused_weights"] = stepped_weights(
            scored[-1],
            personal(scored[-1].config),
            protocols.tried,
            (refs, seed, budget),
            lambda t: intervals(t, seed),
        )
    fused_kept = scored[-1]
    singles = scored[:-1]  # what follows (the fused order, then the ranker) is not single
    users = [b.users for b in protocols.by_user]  # a user on two protocols is one unit
    if not any(d["decides"] for d in decides):  # weak: popularity is the bar only beyond zero
        # (``best_single_source``); the file's own sources (not the popularity added)
        own = frozenset(s.name for s in config.retrieval.sources)
        best, why = best_single_source(singles, refs, own, seed, users)
    else:  # popularity, or a source ahead of it (``robust_choice.best_single``)
        best = best_single(singles, refs, seed)
        why = _base_reason(best, singles, refs)
    base = best  # the simpler rival of the full fusion: best, or an order grown from it
    if cc.fused_forward:
        names = [config.retrieval.sources[n].name for n in personal(config)]
        base, report["fused_forward"] = forward_order(
            best, names, protocols.tried, (refs, seed), lambda t: intervals(t, seed)
        )
        if base is not best:  # listed before the fused order, as it is simpler
            scored.insert(len(scored) - 1, base)
            why = f"{why}; {' + '.join(report['fused_forward']['serving'])} built forward"
    ids = users if cc.pooled_prefer else ()  # prefer's pooled clause (3), opt-in (§160)
    choice, reason = prefer(base, why, scored[-1], refs, seed, ids)
    labelled = _ranker_labels(choice, vals, decides, cc.ranker_latest)
    ranker = _try_ranker(labelled, vals, protocols, budget, fit_seconds)
    if labelled is not choice:  # ``calibration.ranker_latest`` switched its labels
        report["ranker_labels"] = labelled.config.ranking.label_protocol
    if isinstance(ranker, Tried):
        scored.append(ranker)
        report["ranker"] = f"trained on each validation past over the {choice.name} candidates"
        choice, reason = prefer(choice, reason, ranker, refs, seed)
    else:
        report["ranker"] = ranker
    if cc.decayed_source > 0:  # the fused order as kept, plus a decayed EASE (decayed_source.py)
        score = partial(protocols.tried, share=False)  # its own solve, no piece kept
        choice, reason, report["decayed_source"], tried = tried_decayed(
            fused_kept,
            (choice, reason),
            score,
            (refs, seed, budget),
            cc.decayed_source,
            FILLER_WEIGHT,
        )
        scored += tried
    for n, (p, ref, said) in enumerate(
        zip(report["protocols"], best_means(singles), decides, strict=True)
    ):
        p["best_single_ndcg@10"] = round(ref, 5)
        p["best_single_hits"] = best_single_hits(singles, n)
        p |= said
        if refs.bars and refs.bars[n] is not None:
            p["bars_below_popularity"] = round(refs.bars[n], 5)
    report["sittings"] = sittings.row(vals, refs)
    if barred := [t.name for t in singles if vetoed(t, refs)]:
        report["vetoed"] = barred
    report["evidence"] = _evidence(report["protocols"])
    pasts, left = sum(map(len, vals)), cc.budget_seconds - budget.spent()
    spec, report["sasrec"] = sequential.candidate(config, full, pasts, left)
    if spec is not None:  # last, as the richest choice: it ships only by ``prefer`` (sequential.py)
        fused = next(t for t in scored if t.name == "fused").config
        for name, c in [
            (spec.name, alone(_with_sources(config, [*config.retrieval.sources, spec]), spec.name)),
            (f"fused+{spec.name}", _with_sources(fused, [*fused.retrieval.sources, spec])),
        ]:
            scored.append(protocols.tried(name, c))
            choice, reason = prefer(choice, reason, scored[-1], refs, seed)
    report["tried"] = [_entry(t, best, refs, vals, seed) for t in scored]
    report["chosen"] = choice.name
    report["reason"] = reason
    if "fused_weights" in report:  # the weights it changed serve only with the fused order
        report["fused_weights"]["ships"] = fused_ships(report)
    report |= _seconds(started, budget)
    return Calibration(choice.config, choice.name == "ranker", report)


def fused_ships(report: Mapping[str, Any]) -> bool:
    """Whether the chosen order serves the fused order's sources as calibrated (the fused order,
    SASRec beside it, or the ranker over its candidates): only then do the weights
    ``stepped_weights`` changed and the source ``fused_without_one`` dropped ship (rv27a
    finding 4: a single source that wins ships none of them)."""
    return report["chosen"].startswith("fused") or _ranks_over(report, "fused")


def _ranks_over(report: Mapping[str, Any], name: str) -> bool:
    """Whether the chosen ranker was trained over ``name``'s candidates (``_calibrate``'s
    ``report["ranker"]``): then it serves that order's sources, as that order would."""
    over = str(report.get("ranker")).endswith(f"over the {name} candidates")
    return report["chosen"] == "ranker" and over


def _pooled(full: Interactions, cc: CalibrationConfig, seed: int) -> list[Group] | None:
    """The protocols holding ``MIN_USERS`` users once each user's latest item is pooled with the
    items before it (up to ``latest_folds``); None where that pools nothing (``latest_folds``
    1, or no earlier item new to anyone) or the pooled protocol still holds too few users to
    take part (then it is not reported as pooled)."""
    if cc.latest_folds < 2:
        return None
    wider = _groups(full, cc, seed, cc.latest_folds)
    vals = [g for g in wider if users_in(g) >= MIN_USERS]
    if len(wider[-1]) < 2 or not vals or vals[-1] is not wider[-1]:
        return None
    return vals


def _groups(full: Interactions, cc: CalibrationConfig, seed: int, folds: int) -> list[Group]:
    """The validation splits by protocol, each user's latest item pooled with up to ``folds``
    - 1 items before it (``validation.py``)."""
    return grouped(validation_splits(full, cc.min_users, cc.share, cc.max_users, seed, folds))


def _scored(
    config: PipelineConfig,
    vals: Sequence[Group],
    attrs: ItemAttributes,
    full: Interactions,
    seed: int,
    sittings: Sittings,
    fitted: Sequence[Sequence[_Scorer]] = (),
) -> tuple[_Protocols, list[Tried], Refs, list[dict[str, Any]]]:
    """Every source alone and the fused order (``_options``) scored on ``vals``, and whether
    each protocol decides (``robust_choice.deciding``, on the single sources, ``sittings``
    barring); ``fitted`` as ``_Protocols`` takes it."""
    protocols = _Protocols(config, vals, attrs, full, fitted)
    scored = [protocols.tried(n, c) for n, c in _options(config, protocols)]
    refs, decides = deciding(scored[:-1], seed, sittings.bars(vals))
    return protocols, scored, refs, decides


@dataclass(frozen=True)
class Sittings:
    """Whether each user's latest item continues a sitting, measured once per calibration
    (``validation.sitting_share`` on the latest item's first split, which pooled folds keep).
    Where at least ``SITTING_SHARE`` of the latest items follow the user's previous event within
    ``SITTING_GAP_US``, the latest item measures the order inside a sitting, and only the time
    cuts ask what a later visit takes (BENCHMARKS §143, §150): a time cut that does not decide
    then bars what falls below popularity (``robust_choice.deciding``'s ``barring``). That is a
    prior about the test, not something the data tells: where the data is judged on each user's
    last item (leave-last-out) the bar throws away that test's winner (§150's correction), and
    out of sample only that loss was confirmed (§155): ``calibration.sitting_bar`` switches it
    on, off by default."""

    #: the share within the gap; None where it cannot be measured (``why``)
    share: float | None
    #: why ``share`` is None ("" where it is not): the events carry no times, or no scored
    #: user has an earlier event
    why: str
    #: ``calibration.sitting_bar``: whether a sitting share bars at all
    on: bool

    @staticmethod
    def measure(full: Interactions, latest: Validation, on: bool) -> Sittings:
        """``latest``'s share, and why there is none."""
        share = sitting_share(full, latest)
        if share is not None:
            return Sittings(share, "", on)
        if latest.first is None or not has_time_order(full):
            return Sittings(share, "no times to tell", on)
        return Sittings(share, "no scored user has an earlier event to measure from", on)

    def bars(self, vals: Sequence[Group]) -> list[bool]:
        """Which of ``vals`` bar: the time cuts, where the latest item is among ``vals`` and
        continues sittings and the switch is on; the latest item itself never does."""
        return [self.fires(vals) and not _is_latest(g) for g in vals]

    def fires(self, vals: Sequence[Group]) -> bool:
        """Whether the time cuts among ``vals`` bar (``bars``)."""
        return self.on and self.continues(vals)

    def continues(self, vals: Sequence[Group]) -> bool:
        """Whether the latest item is among ``vals`` and at least ``SITTING_SHARE`` of it
        continues a sitting (whatever the switch says)."""
        share = self.share
        return any(map(_is_latest, vals)) and share is not None and share >= SITTING_SHARE

    def row(self, vals: Sequence[Group], refs: Refs) -> dict[str, Any]:
        """The report's word on what each user's latest item measured, whether the bar is on,
        and whether a time cut barred anything because of it (``time_cut_bars``, always)."""
        row: dict[str, Any] = {
            "latest_item_within_gap": None,
            "gap": f"{SITTING_GAP_US / 60e6:g} min",
        }
        if not any(map(_is_latest, vals)):
            row["measures"] = "no latest-item protocol"
        elif self.share is None:
            row["measures"] = self.why
        else:
            row["latest_item_within_gap"] = round(self.share, 4)
            row["measures"] = (
                f"{SITTING} (>= {SITTING_SHARE:g})" if self.continues(vals) else "a later visit"
            )
        row["sitting_bar"] = self.on
        row["time_cut_bars"] = any(b is not None for b in refs.bars)
        return row


def _ranker_labels(
    base: Tried, groups: Sequence[Group], decides: Sequence[Mapping[str, Any]], latest: bool
) -> Tried:
    """``base`` as the ranker is tried over it: with ``latest`` (``calibration.ranker_latest``)
    and a file whose ranker learns from time cuts, where the leave-last-out protocol decides,
    its ranker learns from each user's latest item instead (``ranking.label_protocol =
    "latest"``, which ships with it if it wins): time-cut labels teach a task that protocol
    does not ask, and a ranker kept on them lost 13 % there (BENCHMARKS §175, §181)."""
    if not latest or base.config.ranking.label_protocol != "time":
        return base
    if not any(d["decides"] for g, d in zip(groups, decides, strict=True) if _is_latest(g)):
        return base
    ranking = base.config.ranking.model_copy(update={"label_protocol": "latest"})
    return Tried(base.name, base.config.model_copy(update={"ranking": ranking}), base.per_user)


def _is_latest(group: Group) -> bool:
    return group[0].protocol.startswith(LATEST_ITEM)


def _seconds(started: float, budget: CpuBudget) -> dict[str, float]:
    """The report's wall seconds since ``started`` and CPU seconds of ``budget`` (what it
    counts)."""
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "cpu_seconds": round(budget.spent(), 3),
    }


def _grid(
    config: PipelineConfig,
    scored: list[Tried],
    protocols: _Protocols,
    refs: Refs,
    seed: int,
    budget: CpuBudget,
) -> tuple[PipelineConfig, dict[str, Any], list[tuple[int, SourceConfig]], float]:
    """``config`` with each gridded source parameter (``GRID``; not one the file sets or tunes)
    at the value under which the source alone has the best worst share on validation — the
    file's value unless another beats it beyond noise (or, for one of the ``STRENGTHS``, scores
    higher; for one of the ``SWITCHED_STRENGTHS``, the best of the values that beat off beyond
    noise: ``grid_kept``) — a report of every value tried, and every source variant tried (its
    index, its specification: fitted, so cheap to re-score), and how many CPU seconds more the
    values kept cost to fit than the configured ones (for the ranker's estimate, which refits
    them).
    Stops before a source whose tries would pass half the CPU budget (the rest is the
    ranker's), reckoning each source's tries to cost what the last one's did, and within a
    source before a value whose try, costing what the last one did, would (``_grid_param``;
    a strength's values there are a line search, ``next_value``)."""
    alone_scores = {t.name: t for t in scored}
    report: dict[str, Any] = {}
    variants: list[tuple[int, SourceConfig]] = []
    sources = list(config.retrieval.sources)
    dearer = 0.0
    for n, spec in enumerate(sources):
        grid = grid_of(spec.model or "", config.calibration)
        # a source that proposed nothing alone was not scored: no value of it can be judged
        if grid is None or spec.kind != "model" or spec.tune or spec.name not in alone_scores:
            continue
        began = budget.spent()
        protocols.retain(spec)  # one source's pieces at a time: one solve per past at most
        best = alone_scores[spec.name]
        costs: list[tuple[SourceConfig, float]] = []  # each variant tried, its try's CPU s
        stopped = False
        for param, values in grid:
            if param in spec.params or stopped:
                continue
            entry, best, tried = _grid_param(
                _with_sources(config, sources),
                n,
                best,
                (param, values),
                (protocols, refs, seed, budget),
            )
            report[f"{spec.name}.{param}"], stopped = entry, "stopped" in entry
            costs += tried
            variants += [(n, v.model_copy(update={"weight": spec.weight})) for v, _ in tried]
        kept = best.config.retrieval.sources[n]
        if kept_cost := [c for v, c in costs if v == kept]:
            # its fit against the cheapest try's (the configured one's, near enough)
            dearer += max(0.0, kept_cost[-1] - min(c for _, c in costs))
        sources[n] = kept.model_copy(update={"weight": spec.weight})
        if stopped or budget.passes(budget.spent() - began, share=0.5):
            report["stopped"] = f"half the {budget.seconds:g} s CPU budget reached"
            break
    changed = [s for s, o in zip(sources, config.retrieval.sources, strict=True) if s != o]
    if not changed:
        return config, report, variants, 0.0
    variants += [(n, s) for n, s in enumerate(config.retrieval.sources) if s != sources[n]]
    return _with_sources(config, sources), report, variants, dearer


#: Sources that propose the same items to everyone: their weight is a filler's by design
#: (``examples/pipeline.toml``: trending and new arrivals at 0.1 "never outvote").
SHARED_MODELS = frozenset({"popular", "trending"})


def personal(config: PipelineConfig) -> list[int]:
    """The indices of ``config``'s sources whose weight ``stepped_weights`` tries: personal ones
    (a model's, not popularity's or trending's; not new arrivals) with a say in the fused order
    (above ``FILLER_WEIGHT``: not left at the filler weight by ``fused_without_one``), cheapest
    first — fewest proposals (quota), the file's order on ties."""
    sources = config.retrieval.sources
    chosen = [
        n
        for n, s in enumerate(sources)
        if s.kind == "model" and s.model not in SHARED_MODELS and s.weight > FILLER_WEIGHT
    ]
    return sorted(chosen, key=lambda n: sources[n].quota)


def _fused_grid(
    fused: Tried,
    variants: Sequence[tuple[int, SourceConfig]],
    protocols: _Protocols,
    refs: Refs,
    seed: int,
) -> tuple[Tried, dict[str, Any]]:
    """The fused order with each source variant the grid tried swapped in, one after the other:
    a value chosen for a source serving alone need not be the best one for its place in the
    fusion (EASE's rising factor: alone, each user's latest item holds it back; among the
    personal sources that serve that protocol, the time cut asks for more, §39). The fused
    order keeps a variant only if it beats the current one as every choice here must
    (``prefer``), a strength's value too (``STRENGTHS`` rules the alone grid only: the fused
    order starts from the λ the source kept alone and moves only beyond noise); variants are
    already fitted, so each costs a merge. Returns the fused order
    to compete and a report of each variant's scores."""
    report: dict[str, Any] = {}
    bounds: dict[str, list[list[float]]] = {}
    for n, variant in variants:
        sources = list(fused.config.retrieval.sources)
        if sources[n] == variant:
            continue
        sources[n] = variant
        t = protocols.tried("fused", _with_sources(fused.config, sources))
        label = ", ".join(f"{k}={v}" for k, v in variant.params.items()) or "as configured"
        report[f"{variant.name}: {label}"] = [round(m, 5) for m in t.means]
        bounds[f"{variant.name}: {label}"] = intervals(t, seed)
        if worst_share(t, refs) > worst_share(fused, refs):
            fused, _ = prefer(fused, "", t, refs, seed)
    kept = fused.config.retrieval.sources
    report["kept"] = {s.name: s.params for s in kept if s.params}
    report["intervals"] = bounds
    return fused, report


def fused_without_one(
    fused: Tried, score: Callable[[str, PipelineConfig], Tried], refs: Refs, seed: int
) -> tuple[Tried, dict[str, Any]]:
    """The fused order without the one source whose absence lifts its worst share most, if that
    beats it as every choice here must (``prefer``): a source that drags the fusion down (item-kNN
    over the latest items on the sparse marketplace shape, §82) otherwise stays in it, and no
    single source is the fusion of the rest. One drop only, each source at a time at the filler
    weight (its proposals still fill the list and explain, as ``alone`` keeps the others) — a
    merge each, as every source is fitted already; only where at least two sources keep their
    say, else the rest is a single source, scored as such. ``score``: a configuration's fused
    order on every protocol (``_Protocols.tried``). Returns the fused order to compete and a
    report: what was dropped (or None), why, and each drop's scores under ``scores`` by the
    dropped source's name (nested, so a source named ``dropped`` or ``why`` overwrites nothing)."""
    sources = fused.config.retrieval.sources
    weighted = [n for n, s in enumerate(sources) if s.weight > FILLER_WEIGHT]
    if len(weighted) < 3:
        carry = "1 source carries" if len(weighted) == 1 else f"{len(weighted)} sources carry"
        return fused, {"dropped": None, "why": f"{carry} weight"}
    scores: dict[str, list[float]] = {}
    report: dict[str, Any] = {"dropped": None, "scores": scores}
    best, dropped = fused, None
    for n in weighted:
        filler = sources[n].model_copy(update={"weight": FILLER_WEIGHT})
        config = _with_sources(fused.config, [*sources[:n], filler, *sources[n + 1 :]])
        t = score("fused", config)
        scores[sources[n].name] = [round(m, 5) for m in t.means]
        if worst_share(t, refs) > worst_share(best, refs):
            best, dropped = t, sources[n].name
    if dropped is not None:
        kept, report["why"] = prefer(fused, "the fused order", best, refs, seed)
        report["dropped"] = dropped if kept is best else None
        return kept, report
    return fused, report


def _grid_param(
    config: PipelineConfig,
    n: int,
    best: Tried,
    grid: tuple[str, Sequence[float | int]],
    context: tuple[_Protocols, Refs, int, CpuBudget],
) -> tuple[dict[str, Any], Tried, list[tuple[SourceConfig, float]]]:
    """Source ``n`` of ``config`` alone under each of the ``grid``'s values of its parameter
    (its other parameters as in ``best``); the value ``grid_kept`` chooses among them replaces
    ``best`` (beyond noise, by worst share alone for one of the ``STRENGTHS``, or for one of the
    ``SWITCHED_STRENGTHS`` the best worst share among the values that beat off beyond noise);
    and each variant tried with its try's CPU seconds. ``context``: the protocols, references,
    seed and CPU budget. Stops (``stopped`` in the report) before a value whose try, costing
    what the last one did, would pass half the budget: one try of EASE with its low-pass filter
    on a large catalogue costs tens of CPU s, so a check per source came too late (§92).

    A strength's values (``STRENGTHS``) are a line search from the file's value
    (``next_value``): a far value is fitted only past a neighbour that was kept, so the cheap steps
    after EASE's λ (those that reuse its solve, ``AFTER_SOLVE``) are reached within the budget at
    sizes where λ's four solves per validation past used it up (§166, §167). The report lists the
    values tried in the grid's order, as the variants handed on are (so the fused order's grid
    meets them as a full grid's), ``skipped`` says why each value left untried was left,
    ``trade`` what a value kept by a ``bounded_trade`` alone traded, and ``cpu_seconds`` what
    each try cost, in the order tried (where the budget went). A companion
    weight (``PAST_TOP``, where ``calibration.ease_past_top`` is on) walks on past the grid's top
    while each step is kept (``step_past``); its steps follow the listed values in the report,
    and ``skipped`` names the ladder's values it left, up to what EASE accepts."""
    param, values = grid
    protocols, refs, seed, budget = context
    sources = config.retrieval.sources
    spec = best.config.retrieval.sources[n]
    default, tried, specs, tries = best, {}, [], []
    bounds: dict[str, list[list[float]]] = {"as configured": intervals(default, seed)}
    entry: dict[str, Any] = {"param": param}
    cpu: dict[str, float] = {}
    start = configured_value(spec, param) if param in STRENGTHS else None
    most = highest(spec, param) if param in PAST_TOP and config.calibration.ease_past_top else None
    last, value = 0.0, next_value(values, start, [], None, [])
    while value is not None:
        if specs and budget.passes(last, share=0.5):
            entry["stopped"] = f"before {value}: half the {budget.seconds:g} s CPU budget"
            break
        began, saved = budget.spent(), protocols.saved_seconds()
        variant = spec.model_copy(update={"params": {**spec.params, param: value}})
        candidate = alone(
            _with_sources(config, [*sources[:n], variant, *sources[n + 1 :]]), spec.name
        )
        t = protocols.tried(
            spec.name, candidate, param in AFTER_SOLVE or protocols.pasts <= SHARED_SOLVE_PASTS
        )
        tried[str(value)] = [round(m, 5) for m in t.means]
        bounds[str(value)] = intervals(t, seed)
        tries.append(t)
        last = budget.spent() - began
        cpu[str(value)] = round(last, 1)
        # the ranker refits without shared pieces: its estimate counts what they saved here
        specs.append((variant, last + protocols.saved_seconds() - saved))
        kept_so_far = grid_kept(default, tries, param, refs, seed).config.retrieval.sources[n]
        # a value applied after the solve: the latest try's pieces (its low-pass factors) serve
        # the next value; only the one kept serves later (a λ's solve too, once it is kept)
        protocols.retain(kept_so_far, *([variant] if param in AFTER_SOLVE else []))
        done = [s.params[param] for s, _ in specs]
        above = [
            v
            for v, t in zip(done, tries, strict=True)
            if kept_value(default, t, param, refs, seed) is t
        ]
        value = next_value(values, start, done, kept_so_far.params.get(param, start), above)
        if value is None and most is not None:
            value = step_past(values, done, kept_so_far.params.get(param), most)
    # in the grid's own order, whatever order the line search tried them in (the steps past its
    # top after it): the values kept and the fused order's variants (``_fused_grid``) follow as
    # a full grid's would
    done = [s.params[param] for s, _ in specs]
    order = {v: k for k, v in enumerate([*values, *sorted(set(done) - set(values))])}
    ranked = sorted(range(len(specs)), key=lambda k: order[specs[k][0].params[param]])
    tries, specs = [tries[k] for k in ranked], [specs[k] for k in ranked]
    tried = {str(v.params[param]): tried[str(v.params[param])] for v, _ in specs}
    best = grid_kept(default, tries, param, refs, seed)
    kept = best.config.retrieval.sources[n].params.get(param, "as configured")
    entry["ndcg@10"] = {"as configured": [round(m, 5) for m in default.means], **tried}
    entry["interval"] = {k: bounds[k] for k in ["as configured", *tried]}
    entry["kept"] = kept
    if (
        param in TRADES_PROTOCOLS
        and best is not default
        and not _preferred(default, best, refs, seed)
    ):
        entry["trade"] = traded(default, best)
    if "stopped" not in entry:
        skipped = skipped_values(values, start, done) if start is not None else {}
        if most is not None and done:
            skipped |= skipped_past(max(done), most)
        if skipped:
            entry["skipped"] = skipped
    entry["cpu_seconds"] = cpu
    return entry, best, specs


def configured_value(spec: SourceConfig, param: str) -> float | None:
    """The value ``spec``'s model fits ``param`` with (the file's, else the model's default):
    where a strength's line search starts (``next_value``). None where the model has no such
    field (the grid then tries every value)."""
    try:
        config = model_class(spec.model or "").Config.model_validate(spec.params, strict=False)
        value = getattr(config, param)
    except (UnknownModelError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _sides(values: Sequence[float | int], start: float) -> tuple[list[float | int], ...]:
    """``values`` below ``start`` (nearest first) and above it (nearest first)."""
    below = sorted((v for v in values if v < start), reverse=True)
    return below, sorted(v for v in values if v > start)


def next_value(
    values: Sequence[float | int],
    start: float | None,
    done: Sequence[float | int],
    kept: float | None,
    above: Sequence[float | int] = (),
) -> float | int | None:
    """The grid's next value to try after ``done`` (``kept``: the value kept so far; ``start``
    the one the file fits; ``above``: the values of ``done`` that beat the file's), or None when
    it is through.

    Without a ``start`` (not one of the ``STRENGTHS``): each value in the grid's order. For a
    strength, a line search from the file's value: its nearest value below and above first, then
    outward only on the side of the value kept so far, one value at a time, while the latest one
    there is kept. A strength sets how hard one model shrinks (EASE's λ: the same closed form at
    each value, a bias against a variance), so each protocol's validation score rises to one peak
    and falls on either side of it, and the worst share over protocols — their minimum, each a
    fixed multiple of its score — peaks once too (a minimum of single-peaked curves has no second
    peak). A value past one that scored below the value kept then cannot score above it: the
    full grid would keep the same value without its far tries. Where both neighbours beat the
    file's value, the file's sits in a dip: the data shows no single peak there (noise on a small
    sample: diginetica-sample's 260 users, §167), so the line search has nothing to stand on and
    every value is tried, as the full grid does. Each far value is a fit: at the
    hidden long set's size (12k items) an EASE solve per validation past, ~24 CPU s, and λ's two
    far values spent the half of the CPU budget the grid may use before the steps that reuse the
    solve (rising factor, low-pass weight, Mult-DAE) were reached (BENCHMARKS §166, §167). Where
    noise breaks the single peak, the line search keeps a local best (measured, §167)."""
    if start is None:
        return next((v for v in values if v not in done), None)
    below, higher = _sides(values, start)
    for side in (below, higher):  # the two neighbours first
        if side and side[0] not in done:
            return side[0]
    if below and higher and below[0] in above and higher[0] in above:  # a dip: no single peak
        return next((v for v in values if v not in done), None)
    side = below if kept is not None and kept < start else higher
    if kept is None or kept == start or kept not in side:
        return None  # no neighbour beat the file's value: no far value can
    at = side.index(kept)
    farther = side[at + 1] if at + 1 < len(side) else None
    return farther if farther is not None and farther not in done else None


def skipped_values(
    values: Sequence[float | int], start: float, done: Sequence[float | int]
) -> dict[str, str]:
    """Why each value of a strength's grid that the line search left untried was left
    (``next_value``): past a value tried on its side that the grid did not keep."""
    out = {}
    for side in _sides(values, start):
        tried = [v for v in side if v in done]
        for v in side:
            if v not in done:
                out[str(v)] = f"line search: past {tried[-1]}, which the grid did not keep"
    return out


def step_up(value: float, most: float) -> float | None:
    """The half-decade ladder's next value above ``value`` (1 and 3 times a power of ten: 1 → 3
    → 10, 0.5 → 1), or None past ``most`` (what the model accepts). A weight scales a second
    signal beside EASE's, row-scaled like EASE's own scores (``ease.py``), so its effect is on a
    log scale: each step moves it by about the same factor (×3, ×3.3) the listed values do (0.3 →
    1)."""
    decade = 10.0 ** math.floor(math.log10(value))
    # rounded to 12 significant digits (a product's float noise), not to decimals: 3e-12 stays
    up = next(v for m in (1, 3, 10, 30) if (v := float(f"{m * decade:.12g}")) > value)
    return up if up <= most else None


def step_past(
    values: Sequence[float | int], done: Sequence[float | int], kept: float | None, most: float
) -> float | None:
    """The next weight past the grid's listed ``values`` once each is ``done``: one half-decade
    step (``step_up``) above the highest tried, only where that one is the value ``kept`` so far
    and at least the listed top (a step above a value not kept cannot be kept: see below); None
    where the walk ends.

    The rule is the one the switched weights are kept by (``grid_kept``): each step must beat off
    beyond noise by itself, and among those the best worst share wins — so the walk goes on while
    its latest step is kept, as the λ line search does (``next_value``). A weight only sets how
    strongly one signal counts beside EASE's, so each protocol's score has one peak over it (from
    EASE alone at 0 to the companion alone as the weight grows) and a step past one that was not
    kept cannot be (§112, §167)."""
    if kept is None or kept != max(done) or kept < max(values):
        return None
    return step_up(kept, most)


def skipped_past(top: float, most: float) -> dict[str, str]:
    """Why each ladder value above ``top`` (the highest weight tried) up to ``most`` was left
    (``step_past``): past ``top``, which the grid did not keep (or, where it did, not yet: the
    walk tries the next one, so a value listed here always follows one not kept)."""
    out, value = {}, step_up(top, most)
    while value is not None:
        out[str(value)] = f"line search: past {top}, which the grid did not keep"
        value = step_up(value, most)
    return out


def highest(spec: SourceConfig, param: str) -> float:
    """The largest value ``spec``'s model accepts for ``param`` (its field's ``le``; EASE's
    weights: 10), where a walk past the grid's top ends."""
    field = model_class(spec.model or "").Config.model_fields[param]
    return min((float(m.le) for m in field.metadata if hasattr(m, "le")), default=math.inf)


def grid_kept(start: Tried, tries: Sequence[Tried], param: str, refs: Refs, seed: int) -> Tried:
    """Which of ``start`` (the grid's entry: ``param`` as the file leaves it) and ``tries`` (its
    other values, in the grid's order) a grid keeps. For one of the ``SWITCHED_STRENGTHS``
    (``start`` has the signal off): among the values that beat ``start`` by themselves
    (``turns_on``: beyond noise, or a bounded trade for recency), the best worst share (the
    first listed on an exact tie), so no value ships that did not beat off and the grid's order
    does not decide — a value chosen against the one kept before it could have lost to off
    beyond noise on one protocol and gained only noise on another (review bar15 F1, F3).
    Otherwise each value against the one kept so far (``kept_value``)."""
    if param in SWITCHED_STRENGTHS:
        on = [t for t in tries if turns_on(start, t, param, refs, seed)]
        return max(on, key=lambda t: worst_share(t, refs), default=start)
    best = start
    for t in tries:
        best = kept_value(best, t, param, refs, seed)
    return best


#: Switched signals that trade one protocol for the other by design: EASE's recency weights lift
#: each user's next item (the latest-item protocol) and may cost a time cut's wider window a
#: little. Under the worst share a within-noise loss on the time cut refuses any gain on the latest
#: item wherever the time cut is the weaker protocol (hidden-long seed 4, §185: β 1 −0.3 % / +4.3 %
#: not kept), so these turn on by ``prefer``: beyond noise on one protocol, worse beyond
#: noise on none (§60's rule for a richer choice); or, where a loss is beyond noise, by a bounded
#: trade (``bounded_trade``: at most 1.5 % lost, a gain beyond noise at least twice that; §188).
TRADES_PROTOCOLS = frozenset({"recency"})


def _preferred(start: Tried, t: Tried, refs: Refs, seed: int) -> bool:
    """Whether ``prefer`` alone takes ``t`` over ``start``."""
    return prefer(start, "", t, refs, seed)[0] is t


def traded(start: Tried, t: Tried) -> str:
    """What a value kept by ``bounded_trade`` alone traded, for the grid's report: each
    protocol's relative change (``prefer`` would have refused its loss beyond noise)."""
    changes = "; ".join(
        f"{c:+.1%} on protocol {n + 1}" for n, c in enumerate(relative_changes(start, t))
    )
    bound = f"a loss of at most {TRADE_LOSS:.1%}, a gain beyond noise at least "
    bound += f"{TRADE_GAIN_RATIO:g}× it"
    return f"{changes}: kept by a bounded trade ({bound})"


def turns_on(start: Tried, t: Tried, param: str, refs: Refs, seed: int) -> bool:
    """Whether ``t`` turns the switched ``param`` on against ``start`` (off): ``prefer`` or a
    ``bounded_trade`` for one of the ``TRADES_PROTOCOLS``, else ``kept_value`` (a higher worst
    share too)."""
    if param in TRADES_PROTOCOLS:
        return _preferred(start, t, refs, seed) or bounded_trade(start, t, refs, seed)
    return kept_value(start, t, param, refs, seed) is t


def kept_value(best: Tried, t: Tried, param: str, refs: Refs, seed: int) -> Tried:
    """Which of ``best`` (the value kept so far) and ``t`` (another value of ``param``) a grid
    keeps: ``t`` where its worst share is higher and — unless ``param`` is one of the
    ``STRENGTHS`` — it wins beyond noise (``prefer``). A NaN worst share on either side is never
    higher: a NaN value is not kept, and one kept so far is not replaced on a NaN comparison
    (``<=`` would have read both as a win for ``t``)."""
    if not worst_share(t, refs) > worst_share(best, refs):
        return best
    return t if param in STRENGTHS else prefer(best, "", t, refs, seed)[0]


def _options(config: PipelineConfig, protocols: _Protocols) -> list[tuple[str, PipelineConfig]]:
    """(name, configuration) of every order tried: popularity alone first (the simplest, so it
    wins ties), every other source that proposes anything alone, and last the configured
    fusion."""
    widest = with_popularity(config)
    popular = next(s.name for s in widest.retrieval.sources if s.model == "popular")
    others = [
        s.name for s in config.retrieval.sources if s.name != popular and protocols.proposes(s)
    ]
    return [
        (popular, alone(widest, popular)),
        *((name, alone(config, name)) for name in others),
        ("fused", config),
    ]


def _try_ranker(
    base: Tried,
    groups: Sequence[Group],
    protocols: _Protocols,
    budget: CpuBudget,
    fit_seconds: float,
) -> Tried | str:
    """The ranker trained on each validation past over the ``base`` choice's candidates and
    scored like the rest on that protocol, or why not (off, over the CPU budget, or it did not
    train on one of them)."""
    config = base.config
    rc = config.ranking
    if not rc.enabled:
        return "off (ranking.enabled = false)"
    vals = [v for group in groups for v in group]
    estimate = ranker_estimate(rc, [v.past for v in vals], fit_seconds)
    if budget.passes(estimate):
        more = f"~{estimate:.0f} CPU s more"
        return f"not tried: {more} would pass the {budget.seconds:g} s CPU budget"
    per_user = []
    for group, scorers in zip(groups, protocols.scorers, strict=True):
        ranked = []
        for val, scorer in zip(group, scorers, strict=True):
            ranker, outcome = train_ranker(config, val.past, scorer.attrs)
            if ranker is None:
                why = outcome.get("outcome")
                return f"not trained on the validation past of {val.protocol} ({why})"
            ranked.append(scorer.ranked(ranker, config))
        per_user.append(protocols.by_user[len(per_user)](ranked))
    return Tried("ranker", config, tuple(per_user))


def ranker_estimate(rc: RankingConfig, pasts: Sequence[Interactions], fit_seconds: float) -> float:
    """CPU seconds training the ranker on each of ``pasts`` is expected to take, from
    ``fit_seconds`` (the sources' fits on all of them): per past, one refit of the sources per
    label window, plus the examples' retrieval, features and LightGBM, counted as one more fit
    for time-cut labels and scaled by the queries its labels give against theirs (neither below
    ``min_queries``, as no ranker trains on fewer). Each user's latest item labels every user
    with one, up to ``max_queries``, where a time cut holds a share of them, and that larger
    example set is most of the "latest" ranker's extra cost (BENCHMARKS §181; review rv30r)."""
    windows, examples = 0, 0.0
    for past in pasts:
        enough = rc.min_queries if has_time_order(past) else rc.max_queries
        protocol = rc.label_protocol
        mine = label_windows(past, rc.label_share, enough, seed=rc.random_state, protocol=protocol)
        if protocol == "latest":
            cuts = label_windows(past, rc.label_share, enough, seed=rc.random_state)
        else:  # "both": the latest window, then the time cuts
            cuts = mine[1:] if protocol == "both" else mine
        windows += len(mine)
        floor = rc.min_queries
        examples += max(_queries(mine, rc), floor) / max(_queries(cuts, rc), floor)
    return fit_seconds / len(pasts) * (windows + examples)


def _queries(windows: Sequence[LabelWindow], rc: RankingConfig) -> int:
    """The queries ``train_ranker`` draws from ``windows``: each window's users, at most its
    ``window_quota``."""
    labelled = [len(w.users) for w in windows if len(w.users)]
    quota = window_quota(len(labelled), rc.max_queries)
    return sum(min(n, quota) for n in labelled)


def _entry(
    t: Tried, single: Tried, refs: Refs, groups: Sequence[Group], seed: int
) -> dict[str, Any]:
    """One manifest row: the configuration, its worst share of the best single source, its
    weights, and on each protocol its NDCG@10 with a bootstrap interval and its paired
    difference from the chosen best single source (with that difference's interval)."""
    entry: dict[str, Any] = {
        "name": t.name,
        "worst_share": round(worst_share(t, refs), 4),
        "weights": {s.name: s.weight for s in t.config.retrieval.sources},
        "protocols": [],
    }
    for group, scores, base, interval in zip(
        groups, t.per_user, single.per_user, intervals(t, seed), strict=True
    ):
        row: dict[str, Any] = {
            "protocol": group[0].protocol,
            "ndcg@10": round(float(scores.mean()), 5),
            "interval": interval,
        }
        if t is not single:
            d_low, d_high = bootstrap_ci(scores - base, n_resamples=RESAMPLES, seed=seed)
            diff = [float(scores.mean() - base.mean()), d_low, d_high]
            row["vs_best_single"] = [round(x, 5) for x in diff]
        entry["protocols"].append(row)
    return entry


def intervals(t: Tried, seed: int) -> list[list[float]]:
    """``t``'s 95 % bootstrap interval of NDCG@10 over users on each protocol, rounded as the
    manifest shows it: every configuration tried, a grid's values and the fused order's variants
    too, is listed with its interval (#15), so a reader can see which leads are noise."""
    return [
        [round(x, 5) for x in bootstrap_ci(p, n_resamples=RESAMPLES, seed=seed)] for p in t.per_user
    ]


def _base_reason(best: Tried, singles: Sequence[Tried], refs: Refs) -> str:
    """Why ``best`` is the single source the richer choices must beat, naming the source with
    a higher worst share that ``robust_choice.best_single`` passed over (not ahead of
    popularity: where some protocol decides, below it on some protocol and beating it beyond
    noise on none; where none does, not ahead beyond noise on the users pooled), if any. Where
    none decides and ``best`` is not popularity, it says ``best`` is ahead on the users pooled:
    on one protocol a runner-up can be, where the best by mean is not."""
    top = max(singles, key=lambda t: worst_share(t, refs))
    if worst_share(top, refs) <= worst_share(best, refs):
        return "best single source"
    passed = f"{top.name}, worst share {worst_share(top, refs):.3f} against "
    passed += f"{worst_share(best, refs):.3f}, is not"
    if vetoed(top, refs):  # ``Sittings``
        return (
            f"best single source ahead of popularity ({passed}: vetoed, below popularity on a "
            "time cut that does not decide while the latest items continue sittings)"
        )
    if refs.some_decide:
        return f"best single source ahead of popularity ({passed})"
    if best is singles[0]:
        return (
            f"{best.name}: no source ahead of it beyond noise on the validation users pooled, "
            f"no protocol deciding ({passed})"
        )
    return (
        f"best single source: {best.name} ahead of {singles[0].name} beyond noise on the "
        f"validation users pooled, no protocol deciding ({passed})"
    )


def best_single_source(
    singles: Sequence[Tried],
    refs: Refs,
    own: frozenset[str],
    seed: int,
    users: Sequence[np.ndarray] = (),
) -> tuple[Tried, str]:
    """Where no protocol tells the single sources apart (calibration calls it only there), the
    base single source and why: popularity unless a source is ahead of it beyond noise on the
    protocols' users pooled (``robust_choice.best_single``, §104, ``users`` each protocol's ids
    as it takes them; the reason names a source with a higher worst share passed over). Where
    popularity's own score is not beyond zero on any protocol (the lower end of its 95 %
    bootstrap interval over users is 0: a few users carry it), it is not the bar, whether the
    file lists it or calibration added it (``with_popularity``: not among ``own``, the file's
    source names): the file's own source with the best worst share ships — popularity among
    them where the file lists it, on its best mean like any other of the file's sources (the
    rule before §104) — and where calibration added it, the reason says popularity was left out
    where its worst share was the best. Popularity is the bar so that it ships where the data
    shows it is the signal, and a score no different from zero shows nothing: 500 short
    sessions, 3 hits of 250 users against 2–4, shipped popularity at 0.0000 on test where every
    personal source scored 0.012–0.017 (BENCHMARKS §59, §95); listed, as the bar, 2 hits of 250
    would have held off a source with 4, which nothing pooled can show ahead of it. Where its
    score is beyond zero it is the base: on a marketplace sample where it leads by a little on
    124 users hit, it is the best of them on test (`market` / ml-100k / 1, §65, §95).
    Popularity still fills every list beneath."""
    popularity, eligible = singles[0], [t for t in singles if t.name in own]
    if not eligible or _beyond_zero(popularity, seed):
        best = best_single(singles, refs, seed, users)
        return best, _base_reason(best, singles, refs)
    mine = max(eligible, key=lambda t: worst_share(t, refs))  # ties: the first (popularity)
    if mine is popularity or worst_share(mine, refs) > worst_share(popularity, refs):
        return mine, "best single source"  # listed and the best, or added and never the top
    left_out = f"{popularity.name}'s best mean left out: no protocol decides, its score not "
    left_out += "beyond 0"
    return mine, f"best single source of the file's own ({left_out})"


def _beyond_zero(t: Tried, seed: int) -> bool:
    """Whether ``t`` scores above zero beyond noise on some protocol (its bootstrap interval's
    lower end over users above 0)."""
    return any(bootstrap_ci(p, n_resamples=RESAMPLES, seed=seed)[0] > 0 for p in t.per_user)


def best_single_hits(singles: Sequence[Tried], n: int) -> int:
    """The users that protocol ``n``'s best single source (by mean; ties: the first, as
    ``robust_choice.deciding`` reads them) scores above 0: the evidence its choice rests on.
    Not the most any source hits — that may be another source's, with a lower mean."""
    best = max(singles, key=lambda t: t.means[n])
    return int(np.count_nonzero(best.per_user[n]))


def _evidence(protocols: Sequence[dict[str, Any]]) -> str:
    """ "weak: …" where no protocol tells the single sources apart beyond noise — the choice then
    rests on a few hits, as likely luck as signal (popularity unless a source is ahead of it on
    the users pooled; 500 short sessions: popularity shipped on 3 hits against 1–2 and scored 0
    on test, where item-kNN scored 0.015; BENCHMARKS §59, §104) — else which protocols decide.
    The engine says when its own results are weak."""
    deciding = [p["protocol"] for p in protocols if p["decides"]]
    if deciding:
        return "decided on " + "; ".join(deciding)
    hits = "; ".join(
        f"{p['protocol']}: {p['best_single_hits']} of {p['validation_users']:,} users"
        for p in protocols
    )
    return (
        "weak: no protocol tells the single sources apart beyond noise (users the best single "
        f"source hits: {hits}); what serves may be luck"
    )


def _says(protocol: dict[str, Any], some_decide: bool) -> str:
    """What the summary adds to a protocol that did not decide (``robust_choice.deciding``)."""
    if protocol.get("decides", True) or not some_decide:
        return ""
    said = f", not deciding ({protocol['evidence']})"
    if "bars_below_popularity" in protocol:  # ``Sittings``
        said += ", barring what falls below popularity (the latest items continue sittings)"
    return said


def calibration_summary(report: dict[str, Any]) -> str:
    """One line for ``recsmith train``: what serves, on what evidence (a protocol that does not
    tell the single sources apart beyond noise is named so: the choice was made without it)."""
    protocols = report["protocols"]
    some = any(p.get("decides", True) for p in protocols)
    where = "; ".join(
        f"{p['protocol']}, {p['validation_users']:,} users{_says(p, some)}" for p in protocols
    )
    weak = str(report.get("evidence", "")).startswith("weak")
    if not some and "tried" in report:
        where += "; none tells the sources apart beyond noise: all count"
    sittings = report.get("sittings", {})
    if sittings.get("sitting_bar") is False and sittings.get("measures", "").startswith(SITTING):
        where += "; the latest items continue sittings, sitting bar off (calibration.sitting_bar)"
    if "tried" not in report:
        return f"calibration ({where}): {report['reason']}; serving as configured; EVIDENCE WEAK"
    scores = {
        t["name"]: " / ".join(f"{p['ndcg@10']:.4f}" for p in t["protocols"])
        for t in report["tried"]
    }
    chosen = report["chosen"]
    others = ", ".join(f"{n} {v}" for n, v in scores.items() if n != chosen)
    grid = report.get("grid", {})
    changed = "".join(
        f"; {name.partition('.')[0]} {g['param']}={g['kept']}"
        for name, g in grid.items()
        if isinstance(g, dict) and g["kept"] != "as configured"
    )
    fused = report.get("fused_grid", {}).get("kept")
    if chosen.startswith("fused") and fused is not None:  # its own values (``_fused_grid``)
        changed = "".join(
            f"; {name} " + ", ".join(f"{k}={v}" for k, v in params.items())
            for name, params in fused.items()
        )
    # a source the fused order left at the filler weight (``fused_without_one``) ships with it,
    # and with the ranker trained over its candidates
    # and so does each weight ``stepped_weights`` changed
    dropped = report.get("fused_drop", {}).get("dropped")
    weights = report.get("fused_weights", {}).get("kept")
    if fused_ships(report):
        changed += f"; without {dropped}" if dropped is not None else ""
        if weights:
            changed += "; weights " + ", ".join(f"{n}={w:g}" for n, w in weights.items())
    # which sources the order built forward serves (``fused_forward``), alone or under the ranker
    if chosen == FORWARD:
        changed += "; serving " + " + ".join(report["fused_forward"]["serving"])
    elif _ranks_over(report, FORWARD):
        changed += "; over the candidates of " + " + ".join(report["fused_forward"]["serving"])
    share = next(t["worst_share"] for t in report["tried"] if t["name"] == chosen)
    cpu = f", {report['cpu_seconds']:.0f} s CPU" if "cpu_seconds" in report else ""
    return (
        f"calibration ({where}; {report['seconds']:.0f} s{cpu}): serving {chosen} "
        f"(validation NDCG@10 {scores[chosen]}, worst share of the best single source "
        f"{share:.2f}; {others}){changed}"
        + (f"; EVIDENCE WEAK: {report['evidence'].removeprefix('weak: ')}" if weak else "")
    )
