"""Where ``calibration.ials_factors`` names ranks (none by default), calibration tries an iALS
source's rank (``factors``) at them beside the file's 64, before its confidence scale (which it
then tries at the rank kept); a rank must win beyond noise (it is not a strength: each rank starts
from other random vectors), and a rank the file sets is left alone."""

from __future__ import annotations

from test_calibration import WEIGHTS, config, only_scores, popularity_case
from test_calibration_strengths import lead_within_noise

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import calibrate, grid_of, kept_value
from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes

SOURCE = {"name": "ials", "model": "ials", "quota": 50}


def calibrated(
    source: dict[str, object], ranks: list[int], drop: bool = False, *others: dict[str, object]
) -> tuple[dict[str, object], dict[str, object]]:
    """(report, the shipped ials source's params) on tail histories whose latest item is one of
    a few hits: a 64-factor iALS fitted on 400 users' tails finds none of them (NDCG 0), 8
    factors find the hits (0.27). ``others``: sources listed after it."""
    cfg = config([source, *others])
    cc = cfg.calibration.model_copy(update={"ials_factors": ranks, "fused_drop": drop})
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(
        cfg.model_copy(update={"calibration": cc}),
        full,
        ItemAttributes.from_items([], full.items),
    )
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ials")
    return chosen.report, shipped.params


def test_by_default_no_rank_is_tried_and_the_fused_order_drops_nothing() -> None:
    report, params = calibrated(SOURCE, [])
    assert list(report["grid"]) == ["ials.alpha"]  # type: ignore[arg-type]
    # α is tried at the file's 2 and a decade either side, each value one fit per validation
    # past; 5 and 100 moved α on design and unread samples but no test score (BENCHMARKS §168)
    tried = report["grid"]["ials.alpha"]["ndcg@10"]  # type: ignore[index]
    assert list(tried) == ["as configured", "0.2", "20.0"]
    assert "factors" not in params
    assert "fused_drop" not in report
    assert default_pipeline_config().calibration.ials_factors == []
    assert default_pipeline_config().calibration.fused_drop is False


def test_the_rank_that_wins_beyond_noise_is_kept_and_alpha_is_tried_at_it() -> None:
    report, params = calibrated(SOURCE, [8, 16])
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


def test_only_ials_sources_have_their_rank_tried() -> None:
    """EASE beside iALS: its grid (λ, recency, rising, the low-pass filter) is tried as ever, and no
    rank."""
    report, _ = calibrated(SOURCE, [8, 16], False, {"name": "ease", "model": "ease", "quota": 50})
    assert list(report["grid"]) == [  # type: ignore[arg-type]
        "ials.factors",
        "ials.alpha",
        "ease.regularization",
        "ease.recency",
        "ease.rising",
        "ease.lowpass",
        "ease.autoencoder",
    ]


def test_a_rank_the_file_sets_is_not_tried() -> None:
    report, params = calibrated({**SOURCE, "params": {"factors": 32}}, [8, 16], drop=True)
    # the switch on, a fusion of one source has nothing to drop
    assert report["fused_drop"] == {"dropped": None, "why": "1 source carries weight"}
    assert "ials.factors" not in report["grid"]  # type: ignore[operator]
    assert "ials.alpha" in report["grid"]  # type: ignore[operator]
    assert params["factors"] == 32


def test_a_rank_ahead_within_noise_is_not_kept() -> None:
    """The same per-user scores a strength keeps (``test_calibration_strengths``) do not move the
    rank: a start's luck alone moves iALS by that much."""
    configured, other, refs = lead_within_noise()
    assert kept_value(configured, other, "regularization", refs, seed=0) is other
    assert kept_value(configured, other, "factors", refs, seed=0) is configured


def test_a_rank_listed_twice_is_tried_once() -> None:
    cc = default_pipeline_config().calibration.model_copy(update={"ials_factors": [16, 8, 16]})
    assert grid_of("ials", cc) == (("factors", (16, 8)), ("alpha", (0.2, 20.0)))
