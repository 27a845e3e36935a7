"""Calibration tries an iALS source's rank (``factors``) at 8 and 16 beside the file's 64, before
its confidence scale (which it then tries at the rank kept); a rank must win beyond noise (it is
not a strength: each rank starts from other random vectors), and a rank the file sets is left
alone."""

from __future__ import annotations

from test_calibration import WEIGHTS, config, only_scores, popularity_case
from test_calibration_strengths import lead_within_noise

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import GRID, calibrate, kept_value
from recsmith.pipeline.item_attributes import ItemAttributes


def calibrated(source: dict[str, object]) -> tuple[dict[str, object], dict[str, object]]:
    """(report, the shipped ials source's params) on tail histories whose latest item is one of
    a few hits: a 64-factor iALS fitted on 400 users' tails finds none of them (NDCG 0), 8
    factors find the hits (0.27)."""
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(config([source]), full, ItemAttributes.from_items([], full.items))
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ials")
    return chosen.report, shipped.params


def test_the_grid_tries_ranks_8_and_16_first() -> None:
    assert GRID["ials"][0] == ("factors", (8, 16))
    assert GRID["ials"][1][0] == "alpha"


def test_the_rank_that_wins_beyond_noise_is_kept_and_alpha_is_tried_at_it() -> None:
    report, params = calibrated({"name": "ials", "model": "ials", "quota": 50})
    grid = report["grid"]  # type: ignore[index]
    assert list(grid) == ["ials.factors", "ials.alpha"]  # type: ignore[arg-type]
    factors = grid["ials.factors"]  # type: ignore[index]
    scores = {k: v[0] for k, v in factors["ndcg@10"].items()}
    assert list(scores) == ["as configured", "8", "16"]
    assert scores["as configured"] == 0.0 and scores["8"] > 0.2 > scores["16"]
    assert factors["kept"] == 8  # the best mean, far beyond noise on 400 users
    # alpha's "as configured" is the rank kept, not the file's 64 (which scored 0)
    assert grid["ials.alpha"]["ndcg@10"]["as configured"] == [scores["8"]]  # type: ignore[index]
    assert params["factors"] == 8
    alpha = grid["ials.alpha"]["kept"]  # type: ignore[index]
    kept = "as configured" if alpha == "as configured" else str(alpha)
    assert grid["ials.alpha"]["ndcg@10"][kept] == [only_scores(report)["ials"]]  # type: ignore[index]


def test_a_rank_the_file_sets_is_not_tried() -> None:
    report, params = calibrated(
        {"name": "ials", "model": "ials", "quota": 50, "params": {"factors": 32}}
    )
    assert "ials.factors" not in report["grid"]  # type: ignore[operator]
    assert "ials.alpha" in report["grid"]  # type: ignore[operator]
    assert params["factors"] == 32


def test_a_rank_ahead_within_noise_is_not_kept() -> None:
    """The same per-user scores a strength keeps (``test_calibration_strengths``) do not move the
    rank: a start's luck alone moves iALS by that much."""
    configured, other, refs = lead_within_noise()
    assert kept_value(configured, other, "regularization", refs, seed=0) is other
    assert kept_value(configured, other, "factors", refs, seed=0) is configured
