"""``calibration.ease_autoencoder`` (``[1.0]`` by default; ``[]`` tries none): calibration
tries a Mult-DAE's logits beside an EASE source's scores after its low-pass weight (so at the λ,
rising factor and filter kept), and turns it on only beyond noise, as the filter
(``SWITCHED_STRENGTHS``; BENCHMARKS §139)."""

from __future__ import annotations

from test_calibration import WEIGHTS, config, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import GRID, SWITCHED_STRENGTHS, calibrate, grid_of
from recsmith.pipeline.config import CalibrationConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes

EASE_SOURCE = {"name": "ease", "model": "ease", "quota": 50}


def calibrated(weights: list[float], lowpass: list[float]) -> tuple[dict, dict]:
    """(report, the shipped EASE source's params) on ``test_calibration``'s popularity case."""
    cfg = config([EASE_SOURCE])
    cc = cfg.calibration.model_copy(
        update={
            "ease_autoencoder": weights,
            "ease_lowpass": lowpass,
            "ease_recency": [],  # its own step: test_calibration_ease_recency
            "budget_seconds": 300.0,
        }
    )
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(
        cfg.model_copy(update={"calibration": cc}), full, ItemAttributes.from_items([], full.items)
    )
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    return chosen.report, shipped.params


def test_on_by_default_and_tried_last_as_a_switched_strength() -> None:
    cc = default_pipeline_config().calibration
    assert cc.ease_autoencoder == [1.0]
    assert CalibrationConfig().ease_autoencoder == [1.0]  # a file without the key: the same
    cc = cc.model_copy(update={"ease_recency": []})  # its place: test_calibration_ease_recency
    assert grid_of("ease", cc) == (
        *GRID["ease"],
        ("lowpass", (0.3, 1.0)),
        ("autoencoder", (1.0,)),
    )
    off = cc.model_copy(update={"ease_autoencoder": []})
    assert grid_of("ease", off) == (*GRID["ease"], ("lowpass", (0.3, 1.0)))
    on = cc.model_copy(update={"ease_autoencoder": [2.0, 0.5, 2.0]})
    assert grid_of("ease", on) == (
        *GRID["ease"],
        ("lowpass", (0.3, 1.0)),
        ("autoencoder", (2.0, 0.5)),  # after the filter; each value fitted once
    )
    alone = on.model_copy(update={"ease_lowpass": []})
    assert grid_of("ease", alone) == (*GRID["ease"], ("autoencoder", (2.0, 0.5)))
    assert grid_of("ials", on) == GRID["ials"]  # only EASE sources have one
    assert "autoencoder" in SWITCHED_STRENGTHS


def test_none_listed_tries_none_and_one_listed_is_scored_from_the_values_kept() -> None:
    report, params = calibrated([], [])
    assert list(report["grid"]) == ["ease.regularization", "ease.rising"]
    assert "autoencoder" not in params
    report, params = calibrated([1.0], [])
    grid = report["grid"]
    assert list(grid) == ["ease.regularization", "ease.rising", "ease.autoencoder"]
    entry = grid["ease.autoencoder"]
    assert list(entry["ndcg@10"]) == ["as configured", "1.0"]
    # its "as configured" is EASE at the values kept before it, scored again
    rising = grid["ease.rising"]
    kept = rising["kept"]
    assert (
        entry["ndcg@10"]["as configured"]
        == rising["ndcg@10"][str(kept) if kept != "as configured" else kept]
    )
    # on this case the network lifts validation beyond noise (0.269 → 0.306), so it is shipped
    assert entry["kept"] == 1.0
    assert params["autoencoder"] == 1.0
