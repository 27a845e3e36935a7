"""A gridded strength (EASE's λ) keeps its best worst share on validation, while a value that turns
something on (EASE's rising factor) must still win beyond noise: the same per-user scores, read
under each kind of parameter (``calibration.kept_value``), and a real calibration whose kept λ is
the one with the best validation mean it reports."""

from __future__ import annotations

import numpy as np
import pytest
from test_calibration import WEIGHTS, config, frame

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import GRID, _grid_param, calibrate, grid_kept, kept_value
from recsmith.pipeline.config import PipelineConfig, SourceConfig, default_pipeline_config
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import (
    RESAMPLES,
    Refs,
    Tried,
    bounded_trade,
    prefer,
    worst_share,
)

CONFIG = default_pipeline_config()


def tried(name: str, *per_protocol: np.ndarray) -> Tried:
    return Tried(name, CONFIG, tuple(np.asarray(p, dtype=float) for p in per_protocol))


def lead_within_noise() -> tuple[Tried, Tried, Refs]:
    """The file's value and another ahead on both protocols by a few users' luck: 300 users per
    protocol, the other value hits 6 users the file's misses and misses 4 it hits."""
    rng = np.random.default_rng(7)
    a = [rng.choice([0.0, 1.0], 300) for _ in range(2)]
    b = [p.copy() for p in a]
    for p in b:
        p[np.flatnonzero(p == 0.0)[:6]] = 1.0
        p[np.flatnonzero(p == 1.0)[-4:]] = 0.0
    configured, other = tried("as configured", *a), tried("other", *b)
    refs = Refs(tuple(max(x.mean(), y.mean()) for x, y in zip(a, b, strict=True)))
    return configured, other, refs


def test_a_strength_keeps_a_lead_within_noise_and_a_switch_does_not() -> None:
    configured, other, refs = lead_within_noise()
    for x, y in zip(configured.per_user, other.per_user, strict=True):
        assert y.mean() > x.mean()  # ahead on each protocol ...
        low, _ = bootstrap_ci(y - x, n_resamples=RESAMPLES, seed=0)
        assert low <= 0  # ... by no more than noise
    assert kept_value(configured, other, "regularization", refs, seed=0) is other
    assert kept_value(configured, other, "rising", refs, seed=0) is configured
    # and a value behind stays behind under either kind of parameter
    assert kept_value(other, configured, "regularization", refs, seed=0) is other
    assert kept_value(other, configured, "rising", refs, seed=0) is other


def test_a_tie_keeps_the_file_value() -> None:
    configured, _, refs = lead_within_noise()
    twin = tried("twin", *configured.per_user)
    assert kept_value(configured, twin, "regularization", refs, seed=0) is configured


def test_protocols_that_disagree_are_read_by_the_worst_share() -> None:
    """Two protocols, each's best single mean 0.5: the file's value scores 0.5 / 0.4 (worst share
    0.8); a value ahead on the first protocol and in the sum of means (0.9 / 0.3) has the lower
    worst share (0.6) and is not kept; one behind on the first protocol and in the sum (0.42 /
    0.42) has the higher worst share (0.84) and is kept."""
    refs = Refs((0.5, 0.5))
    configured = tried("as configured", np.full(100, 0.5), np.full(100, 0.4))
    lopsided = tried("lopsided", np.full(100, 0.9), np.full(100, 0.3))
    even = tried("even", np.full(100, 0.42), np.full(100, 0.42))
    assert sum(lopsided.means) > sum(configured.means) > sum(even.means)
    assert kept_value(configured, lopsided, "regularization", refs, seed=0) is configured
    assert kept_value(configured, even, "regularization", refs, seed=0) is even


def test_a_nan_score_replaces_nothing_and_is_not_replaced() -> None:
    """A value whose scores are NaN is never kept over a scored one, and a NaN kept so far is not
    replaced on a comparison with NaN (which says neither is higher)."""
    configured, other, refs = lead_within_noise()
    blank = tried("blank", *(np.full(300, np.nan) for _ in range(2)))
    for param in ("regularization", "rising"):
        assert kept_value(configured, blank, param, refs, seed=0) is configured
        assert kept_value(blank, other, param, refs, seed=0) is blank


def taste_clusters(seed: int) -> list[tuple[int, int]]:
    """600 users in 6 taste clusters of 40 items each: every user takes 6 of their cluster's items
    (the latest one held out by calibration), so EASE's λ shapes the order only a little and the
    values lie within noise of each other."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int]] = []
    for u in range(600):
        cluster = u % 6
        weights = np.linspace(2.0, 1.0, 40)
        items = rng.choice(40, 6, replace=False, p=weights / weights.sum())
        rows += [(u, int(40 * cluster + i)) for i in items]
    return rows


#: Seeds whose best λ lies at the grid's end (0), at the file's 250 (7) and in the middle (8: λ
#: 100 above 625 and 2500), so a keep rule that took each later value regardless fails two. The
#: line search (``calibration.next_value``) walks from 250 up to 2500 on seed 0, stops at 250's
#: neighbours on seed 7, and on seed 8 meets a dip (100 and 625 both above 250): every value.
SEEDS = {0: "the last", 7: "not the last", 8: "not the last"}


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_calibration_ships_the_lambda_with_the_best_validation_mean(seed: int) -> None:
    """One protocol (each user's latest item): the worst share is the mean over the best single
    source's, so the λ kept must be the first of the reported values with the highest mean — the
    file's where none is higher — and it is what ships."""
    cfg: PipelineConfig = config([{"name": "ease", "model": "ease", "quota": 50}])
    full = Interactions.from_events(frame(taste_clusters(seed)), WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    grid = chosen.report["grid"]["ease.regularization"]
    order = ["as configured", *(str(v) for v in dict(GRID["ease"])["regularization"])]
    listed = list(grid["ndcg@10"])  # the values the line search tried, in the grid's order
    assert listed == [v for v in order if v in listed]
    assert set(listed) | set(grid.get("skipped", {})) == set(order)  # the rest said skipped
    means = [grid["ndcg@10"][v][0] for v in listed]
    best = listed[int(np.argmax(means))]
    assert (best == order[-1]) == (SEEDS[seed] == "the last")  # the data plays its part
    assert str(grid["kept"]) == best
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    expected = 250.0 if best == "as configured" else float(best)
    assert shipped.params.get("regularization", 250.0) == expected


def with_params(source: int, **params: float) -> PipelineConfig:
    """The default configuration with retrieval source ``source``'s params set to ``params``."""
    sources = list(CONFIG.retrieval.sources)
    sources[source] = sources[source].model_copy(update={"params": params})
    retrieval = CONFIG.retrieval.model_copy(update={"sources": sources})
    return CONFIG.model_copy(update={"retrieval": retrieval})


def flip(p: np.ndarray, up: int, down: int) -> np.ndarray:
    """``p`` with its first ``up`` misses turned to hits and its first ``down`` hits to misses."""
    q = p.copy()
    q[np.flatnonzero(p == 0.0)[:up]] = 1.0
    q[np.flatnonzero(p == 1.0)[:down]] = 0.0
    return q


#: 600 users per protocol: the file's (off) hits half of them on protocol A and 30 % on B.
OFF_A, OFF_B = (np.repeat([1.0, 0.0], [k, 600 - k]) for k in (300, 180))
#: Each protocol's best single mean (B led by another source), so B is the weakest share.
SWITCH_REFS = Refs((0.5, 0.6))


def switched(param: str, value: float, up_down_a: tuple[int, int], up_down_b: tuple[int, int]):
    """EASE (source 0) with ``param`` at ``value``, its per-user hits flipped from off's."""
    return Tried(
        f"{param} {value}",
        with_params(0, **{param: value}),
        (flip(OFF_A, *up_down_a), flip(OFF_B, *up_down_b)),
    )


def beats_off(t: Tried, off: Tried) -> list[bool]:
    """Per protocol, whether ``t`` is above ``off`` beyond noise (the bootstrap's lower end)."""
    return [
        bool(bootstrap_ci(y - x, n_resamples=RESAMPLES, seed=0)[0] > 0)
        for x, y in zip(off.per_user, t.per_user, strict=True)
    ]


@pytest.mark.parametrize("param", ["lowpass", "rising", "decay"])
def test_a_switched_signal_needs_noise_to_turn_on_and_is_a_strength_once_on(param: str) -> None:
    """A lead within noise (``lead_within_noise``) does not turn EASE's low-pass filter or rising
    factor on; of two values that each beat off beyond noise, the one with the higher worst share
    is kept though it leads the other only within noise (BENCHMARKS §112), in either order."""
    assert CONFIG.retrieval.sources[0].model == "ease"
    configured, other, refs = lead_within_noise()
    off = Tried("as configured", CONFIG, configured.per_user)
    noise = Tried(f"{param} 1.0", with_params(0, **{param: 1.0}), other.per_user)
    assert grid_kept(off, [noise], param, refs, seed=0) is off
    off = Tried("as configured", CONFIG, (OFF_A, OFF_B))
    low = switched(param, 0.3, (60, 0), (60, 0))
    high = switched(param, 1.0, (66, 2), (66, 2))
    assert beats_off(low, off) == beats_off(high, off) == [True, True]
    assert prefer(low, "", high, SWITCH_REFS, 0)[0] is low  # 1.0 leads 0.3 within noise only
    assert worst_share(high, SWITCH_REFS) > worst_share(low, SWITCH_REFS)
    assert grid_kept(off, [low, high], param, SWITCH_REFS, seed=0) is high
    assert grid_kept(off, [high, low], param, SWITCH_REFS, seed=0) is high


@pytest.mark.parametrize("param", ["lowpass", "rising", "decay"])
def test_a_switched_value_ships_only_if_it_beats_off_itself(param: str) -> None:
    """Review bar15 F1: 0.3 turns the signal on (a clear gain on protocol A, noise on the weakest,
    B); 1.0 has the higher worst share but loses to off beyond noise on A and gains only noise on
    B, so it would never have turned the signal on: 0.3 ships, whichever is listed first."""
    off = Tried("as configured", CONFIG, (OFF_A, OFF_B))
    low = switched(param, 0.3, (60, 0), (10, 8))
    high = switched(param, 1.0, (0, 48), (20, 14))
    assert worst_share(high, SWITCH_REFS) > worst_share(low, SWITCH_REFS)
    assert bootstrap_ci(high.per_user[0] - OFF_A, n_resamples=RESAMPLES, seed=0)[1] < 0
    assert prefer(off, "", low, SWITCH_REFS, 0)[0] is low
    assert prefer(off, "", high, SWITCH_REFS, 0)[0] is off
    for order in ([low, high], [high, low]):
        assert grid_kept(off, order, param, SWITCH_REFS, seed=0) is low


@pytest.mark.parametrize("param", ["lowpass", "rising", "decay"])
def test_a_switched_value_is_chosen_whatever_the_grid_order(param: str) -> None:
    """Review bar15 F3: 0.3 has the best worst share but does not beat off beyond noise; 1.0
    does (a clear gain on A): 1.0 ships, listed before 0.3 or after it."""
    off = Tried("as configured", CONFIG, (OFF_A, OFF_B))
    low = switched(param, 0.3, (10, 8), (22, 14))
    high = switched(param, 1.0, (60, 0), (10, 8))
    assert worst_share(low, SWITCH_REFS) > worst_share(high, SWITCH_REFS)
    assert prefer(off, "", low, SWITCH_REFS, 0)[0] is off
    for order in ([low, high], [high, low]):
        assert grid_kept(off, order, param, SWITCH_REFS, seed=0) is high


class FixedScores:
    """``_Protocols`` stand-in: each value of EASE's ``param`` (its low-pass weight unless named)
    with fixed per-user scores."""

    def __init__(
        self, by_weight: dict[float, tuple[np.ndarray, np.ndarray]], param: str = "lowpass"
    ) -> None:
        self.by_weight = by_weight
        self.param = param

    def tried(self, name: str, config: PipelineConfig, share: bool = True) -> Tried:
        weight = config.retrieval.sources[0].params.get(self.param, 0.0)
        return Tried(name, config, self.by_weight[weight])

    pasts = 1  # validation pasts: one protocol, one past

    def saved_seconds(self) -> float:
        return 0.0  # no fits, so no shared pieces (``models/shared_fits.py``)

    def retain(self, *specs: SourceConfig) -> None:
        pass


@pytest.mark.parametrize(
    ("low", "high", "kept"),
    [
        (((60, 0), (60, 0)), ((66, 2), (66, 2)), 1.0),  # both beat off, 1.0 ahead within noise
        (((60, 0), (10, 8)), ((0, 48), (20, 14)), 0.3),  # 1.0 never beats off (F1)
    ],
)
def test_the_grid_of_a_source_keeps_the_switched_rule_choice(
    low: tuple[tuple[int, int], ...], high: tuple[tuple[int, int], ...], kept: float
) -> None:
    """``_grid_param`` (what calibration runs per gridded parameter) ships ``grid_kept``'s value
    for EASE's ``lowpass`` weights 0.3 and 1.0, and reports it (review bar15 F4)."""
    scores = {
        0.0: (OFF_A, OFF_B),
        0.3: tuple(flip(p, *ud) for p, ud in zip((OFF_A, OFF_B), low, strict=True)),
        1.0: tuple(flip(p, *ud) for p, ud in zip((OFF_A, OFF_B), high, strict=True)),
    }
    protocols = FixedScores(scores)
    start = protocols.tried("ease", CONFIG)
    context = (protocols, SWITCH_REFS, 0, CpuBudget(1e9))
    grid = ("lowpass", (0.3, 1.0))
    entry, best, tried = _grid_param(CONFIG, 0, start, grid, context)  # type: ignore[arg-type]
    assert entry["kept"] == kept
    assert best.config.retrieval.sources[0].params == {"lowpass": kept}
    assert [v.params["lowpass"] for v, _ in tried] == [0.3, 1.0]


def test_ials_alpha_is_a_strength_and_its_rank_is_not() -> None:
    """iALS's α only sets how strongly each event counts, from the same seeded start (§161): a
    lead within noise with the higher worst share is kept, as EASE's λ; iALS's rank starts every
    vector elsewhere, so another rank must still win beyond noise."""
    assert CONFIG.retrieval.sources[1].model == "ials"
    configured, other, refs = lead_within_noise()
    kept = Tried("alpha 2", with_params(1, alpha=2.0), configured.per_user)
    higher = Tried("alpha 20", with_params(1, alpha=20.0), other.per_user)
    assert grid_kept(kept, [higher], "alpha", refs, seed=0) is higher
    assert grid_kept(higher, [kept], "alpha", refs, seed=0) is higher  # behind stays behind
    ranked = Tried("factors 16", with_params(1, factors=16), other.per_user)
    assert grid_kept(kept, [ranked], "factors", refs, seed=0) is kept


@pytest.mark.parametrize("seed", [0, 7])
def test_calibration_ships_the_alpha_with_the_best_validation_mean(seed: int) -> None:
    """As for EASE's λ: one protocol, so the α kept is the first reported value with the highest
    validation mean, and it is what ships. On these seeds α 0.2 leads the file's 2 by under 0.004
    (~600 users; intervals ~0.04 wide): a lead the noise bar would have refused."""
    cfg: PipelineConfig = config([{"name": "ials", "model": "ials", "quota": 50}])
    full = Interactions.from_events(frame(taste_clusters(seed)), WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    grid = chosen.report["grid"]["ials.alpha"]
    order = ["as configured", *(str(v) for v in dict(GRID["ials"])["alpha"])]
    assert list(grid["ndcg@10"]) == order
    means = [grid["ndcg@10"][v][0] for v in order]
    best = order[int(np.argmax(means))]
    assert best == "0.2"  # the data plays its part
    assert str(grid["kept"]) == best
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ials")
    expected = 2.0 if best == "as configured" else float(best)
    assert shipped.params.get("alpha", 2.0) == expected


@pytest.mark.parametrize(("param", "turns_on"), [("recency", True), ("lowpass", False)])
def test_a_protocol_trading_switch_turns_on_by_prefer_alone(param: str, turns_on: bool) -> None:
    """§185: EASE's recency weights gain beyond noise on one protocol (A: 300 → 360 of 600 hits)
    and lose within noise on the weakest one (B: 180 → 174 net, 10 up and 16 down; its share 0.5
    → 0.483), so their worst share falls: a switched signal stays off under the worst share
    (low-pass), recency turns on (``TRADES_PROTOCOLS``: beyond noise on one, worse beyond noise on
    none); a loss beyond noise there (B: 180 → 120) keeps recency off too."""
    off = Tried("as configured", CONFIG, (OFF_A, OFF_B))
    trade = switched(param, 1.0, (60, 0), (10, 16))
    assert worst_share(trade, SWITCH_REFS) < worst_share(off, SWITCH_REFS)
    assert beats_off(trade, off) == [True, False]
    assert bootstrap_ci(trade.per_user[1] - OFF_B, n_resamples=RESAMPLES, seed=0)[1] > 0
    assert (grid_kept(off, [trade], param, SWITCH_REFS, seed=0) is trade) is turns_on
    costly = switched(param, 3.0, (60, 0), (0, 60))
    assert bootstrap_ci(costly.per_user[1] - OFF_B, n_resamples=RESAMPLES, seed=0)[1] < 0
    assert grid_kept(off, [costly], param, SWITCH_REFS, seed=0) is off
    assert grid_kept(off, [costly, trade], param, SWITCH_REFS, seed=0) is (
        trade if turns_on else off
    )


#: 10,000 users per protocol: the file's (off) hits half on A and 30 % on B; the best single
#: source's means as references, B the weakest share. At this size a 1 % loss (30 of 3,000 hits,
#: none gained) is beyond noise, as a time cut's −1.0 % at 5,000 users was (§187).
BIG_A, BIG_B = (np.repeat([1.0, 0.0], [k, 10_000 - k]) for k in (5_000, 3_000))
BIG_REFS = Refs((0.5, 0.3))


@pytest.mark.parametrize(
    ("gained_a", "lost_b", "on"),
    [
        (250, 30, True),  # +5 % for −1 %: within the bound, the gain 5 × the loss
        (600, 60, False),  # +12 % for −2 %: a loss past the 1.5 % bound
        (200, 44, True),  # +4 % for −1.47 %: under the bound, the gain 2.7 × the loss
        (100, 40, False),  # +2 % for −1.33 %: within the bound, the gain under twice it
        (125, 30, True),  # +2.5 % for −1 %: the gain 2.5 × the loss
    ],
)
def test_a_protocol_trading_switch_turns_on_by_a_bounded_trade(
    gained_a: int, lost_b: int, on: bool
) -> None:
    """§188: where recency's loss on one protocol is beyond noise (``prefer`` refuses it), it
    still turns on where that loss is at most 1.5 % of off's mean there and the gain beyond noise
    on the other at least twice it (shares hand-computed from the hit counts); low-pass, not a
    trading switch, stays off in every case."""
    off = Tried("as configured", CONFIG, (BIG_A, BIG_B))
    recency, lowpass = (
        Tried(
            f"{p} 1.0",
            with_params(0, **{p: 1.0}),
            (flip(BIG_A, gained_a, 0), flip(BIG_B, 0, lost_b)),
        )
        for p in ("recency", "lowpass")
    )
    assert beats_off(recency, off) == [True, False]
    assert bootstrap_ci(recency.per_user[1] - BIG_B, n_resamples=RESAMPLES, seed=0)[1] < 0
    assert prefer(off, "", recency, BIG_REFS, seed=0)[0] is off  # the loss beyond noise
    assert (grid_kept(off, [recency], "recency", BIG_REFS, seed=0) is recency) is on
    assert grid_kept(off, [lowpass], "lowpass", BIG_REFS, seed=0) is off


@pytest.mark.parametrize(
    ("lost_b", "trade"), [(30, "+5.0% on protocol 1; -1.0% on protocol 2"), (3, None)]
)
def test_the_grid_reports_a_value_kept_by_the_trade_alone(lost_b: int, trade: str | None) -> None:
    """``_grid_param`` names what a recency weight kept by ``bounded_trade`` alone traded (its
    relative change on each protocol, hand-computed from the hit counts: +250 of 5,000, −30 of
    3,000); a value ``prefer`` keeps (3 hits lost: within noise) reports no trade."""
    scores = {0.0: (BIG_A, BIG_B), 1.0: (flip(BIG_A, 250, 0), flip(BIG_B, 0, lost_b))}
    protocols = FixedScores(scores, param="recency")
    start = protocols.tried("ease", CONFIG)
    context = (protocols, BIG_REFS, 0, CpuBudget(1e9))
    entry, best, _ = _grid_param(CONFIG, 0, start, ("recency", (1.0,)), context)  # type: ignore[arg-type]
    assert entry["kept"] == 1.0
    assert best.config.retrieval.sources[0].params == {"recency": 1.0}
    if trade is None:
        assert "trade" not in entry
    else:
        assert entry["trade"].startswith(trade + ": kept by a bounded trade")


def hits(k: int, n: int = 10_000) -> np.ndarray:
    """``k`` hits (1) then ``n − k`` misses (0)."""
    return np.repeat([1.0, 0.0], [k, n - k])


#: Popularity's per-user scores on B, shuffled against BIG_B: 2,995 hits, so a value 30 hits
#: below off (0.297) is under popularity's mean (0.2995) but not below it beyond noise.
SHUFFLED_POPULAR_B = np.random.default_rng(0).permutation(hits(2_995))


@pytest.mark.parametrize(
    ("case", "simple_a", "rich", "refs", "kept"),
    [
        # the bounds hold at equality (float shares: 45 of 3,000 is −0.015000000000000013)
        ("a loss of exactly 1.5 %", BIG_A, ((250, 0), (0, 45)), BIG_REFS, True),
        ("a gain of exactly twice the loss", BIG_A, ((100, 0), (0, 30)), BIG_REFS, True),
        # shares of off's means, not of the references: −44 of 3,000 is −1.47 %, of 0.25 −1.76 %
        ("shares of off, not of refs", BIG_A, ((250, 0), (0, 44)), Refs((0.5, 0.25)), True),
        # +7.5 % on 200 users (3 hits more of 40) is within noise: nothing to trade for
        ("a gain within noise", hits(40, 200), ((3, 0), (0, 30)), Refs((0.2, 0.3)), False),
        # B does not decide and bars at popularity's mean: 0.297 < 0.2995, off (0.3) is above it
        (
            "vetoed",
            BIG_A,
            ((250, 0), (0, 30)),
            Refs((0.5, 0.0), (None, SHUFFLED_POPULAR_B), (None, 0.2995)),
            False,
        ),
        # B does not decide, popularity scores off's users there: below it beyond noise
        ("below popularity", BIG_A, ((250, 0), (0, 30)), Refs((0.5, 0.0), (None, BIG_B)), False),
        # B does not count, yet its −2 % is past the bound on every protocol
        (
            "a loss past the bound where B does not count",
            BIG_A,
            ((600, 0), (0, 60)),
            Refs((0.5, 0.0)),
            False,
        ),
    ],
)
def test_a_bounded_trade_keeps_its_bounds_and_prefer_s_guards(
    case: str,
    simple_a: np.ndarray,
    rich: tuple[tuple[int, int], tuple[int, int]],
    refs: Refs,
    kept: bool,
) -> None:
    """``bounded_trade`` at its bounds (hand-computed shares), against off's means rather than
    the references, and under ``prefer``'s guards: a gain beyond noise, no veto, no fall below
    popularity beyond noise that off does not make (review rv32t F1, F2)."""
    off = tried("off", simple_a, BIG_B)
    on = tried("on", flip(simple_a, *rich[0]), flip(BIG_B, *rich[1]))
    assert bounded_trade(off, on, refs, seed=0) is kept, case
