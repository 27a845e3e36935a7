"""``calibration.ease_lowpass`` (on by default at 0.3 / 1): calibration tries GF-CF's low-pass
filter beside an EASE source's scores at those weights, after its λ and rising factor (so at the
values kept), and turns it on only beyond noise — the weight turns a second signal on (BENCHMARKS
§92); once on, another weight is kept on a higher worst share (§112,
``test_calibration_strengths``)."""

from __future__ import annotations

from test_calibration import WEIGHTS, config, only_scores, popularity_case
from test_calibration_strengths import lead_within_noise

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import GRID, calibrate, grid_kept, grid_of, kept_value
from recsmith.pipeline.config import CalibrationConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes

EASE_SOURCE = {"name": "ease", "model": "ease", "quota": 50}


def calibrated(
    weights: list[float], source: dict[str, object] = EASE_SOURCE, budget: float = 300.0
) -> tuple[dict[str, object], dict[str, object]]:
    """(report, the shipped EASE source's params) on tail histories whose latest item is one of
    a few popular hits none of the users had: EASE's full-rank weights learn the tails' noise,
    the filter's leading direction (the normalised matrix's top singular vector, which carries
    item popularity) points at the hits."""
    cfg = config([source])
    cc = cfg.calibration.model_copy(  # the filter alone: the autoencoder after it is not tried
        update={
            "ease_lowpass": weights,
            "ease_autoencoder": [],
            "ease_recency": [],  # its own step: test_calibration_ease_recency
            "budget_seconds": budget,
        }
    )
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(
        cfg.model_copy(update={"calibration": cc}), full, ItemAttributes.from_items([], full.items)
    )
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    return chosen.report, shipped.params


def test_the_default_tries_the_filter_after_lambda_and_rising() -> None:
    cc = default_pipeline_config().calibration
    assert cc.ease_lowpass == [0.3, 1.0]
    assert CalibrationConfig().ease_lowpass == [0.3, 1.0]  # a file without the key: the same
    cc = cc.model_copy(update={"ease_recency": []})  # its place: test_calibration_ease_recency
    # the autoencoder, when listed, comes after the filter (test_calibration_ease_autoencoder)
    assert grid_of("ease", cc)[: len(GRID["ease"]) + 1] == (*GRID["ease"], ("lowpass", (0.3, 1.0)))
    assert grid_of("ials", cc) == GRID["ials"]  # only EASE sources have a filter
    twice = cc.model_copy(update={"ease_lowpass": [1.0, 0.3, 1.0], "ease_autoencoder": []})
    assert grid_of("ease", twice)[-1] == ("lowpass", (1.0, 0.3))  # each value fitted once


def test_none_listed_tries_none() -> None:
    report, params = calibrated([])
    assert list(report["grid"]) == ["ease.regularization", "ease.rising"]  # type: ignore[arg-type]
    assert "lowpass" not in params


def test_a_weight_that_wins_beyond_noise_ships_with_the_values_kept_before_it() -> None:
    report, params = calibrated([0.3, 1.0])
    grid = report["grid"]  # type: ignore[index]
    assert list(grid) == ["ease.regularization", "ease.rising", "ease.lowpass"]  # type: ignore[arg-type]
    lowpass = grid["ease.lowpass"]  # type: ignore[index]
    scores = {k: v[0] for k, v in lowpass["ndcg@10"].items()}
    assert list(scores) == ["as configured", "0.3", "1.0"]
    # the filter's "as configured" is EASE at the rising factor kept, not the file's EASE
    rising = grid["ease.rising"]  # type: ignore[index]
    kept_rising = rising["kept"]
    key = "as configured" if kept_rising == "as configured" else str(kept_rising)
    assert scores["as configured"] == rising["ndcg@10"][key][0]
    # far ahead on 400 users: 0.27 → 0.35 (EASE learns noise, the filter finds the hits)
    assert scores["1.0"] > scores["0.3"] > scores["as configured"] + 0.03
    assert lowpass["kept"] == 1.0
    assert params["lowpass"] == 1.0
    assert only_scores(report)["ease"] == scores["1.0"]  # what serves is what was scored


def test_a_weight_the_file_sets_is_not_tried() -> None:
    report, params = calibrated([0.3, 1.0], {**EASE_SOURCE, "params": {"lowpass": 0.1}})
    assert "ease.lowpass" not in report["grid"]  # type: ignore[operator]
    assert params["lowpass"] == 0.1


def test_a_weight_ahead_within_noise_is_not_kept() -> None:
    """The per-user scores a strength (λ) keeps do not turn the filter on."""
    configured, other, refs = lead_within_noise()
    assert kept_value(configured, other, "regularization", refs, seed=0) is other
    assert grid_kept(configured, [other], "lowpass", refs, seed=0) is configured


def test_a_spent_budget_stops_the_grid_after_one_value() -> None:
    """The budget is checked before each value, not after each source: one EASE-with-filter try
    on a large catalogue costs tens of CPU s. With the budget spent by the first fits, the first
    λ is tried (no cost measured yet; the line search's first, the file's neighbour below) and
    nothing after it — not λ's other values, not the rising factor, not the filter."""
    report, params = calibrated([0.3, 1.0], budget=0.001)
    grid = report["grid"]  # type: ignore[index]
    assert list(grid) == ["ease.regularization", "stopped"]  # type: ignore[arg-type]
    tried = grid["ease.regularization"]  # type: ignore[index]
    assert list(tried["ndcg@10"]) == ["as configured", "100.0"]
    assert tried["stopped"].startswith("before 625.0: half the 0.001 s CPU budget")
    assert "skipped" not in tried  # what the budget stopped is not called the line search's
    assert "lowpass" not in params
