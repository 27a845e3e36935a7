"""``calibration.ease_decay`` (``[]`` by default: not confirmed on unread samples, BENCHMARKS
§164): calibration tries EASE's time decay last, at the values kept before it, as a switched
strength (each half-life must beat no decay beyond noise by itself; ``test_calibration_strengths``
checks that rule with ``decay`` among the switched parameters)."""

from __future__ import annotations

from test_calibration import ease_alone_calibrated

from recsmith.pipeline.calibration import GRID, SWITCHED_STRENGTHS, grid_of
from recsmith.pipeline.config import CalibrationConfig, default_pipeline_config


def test_off_by_default_and_tried_last_as_a_switched_strength() -> None:
    cc = default_pipeline_config().calibration
    assert cc.ease_decay == []
    assert CalibrationConfig().ease_decay == []  # a file without the key: the same
    cc = cc.model_copy(update={"ease_recency": []})  # its place: test_calibration_ease_recency
    on = cc.model_copy(update={"ease_decay": [1.0, 0.25, 1.0]})
    assert grid_of("ease", on) == (
        *GRID["ease"],
        ("lowpass", (0.3, 1.0)),
        ("autoencoder", (1.0,)),
        ("decay", (1.0, 0.25)),  # after the autoencoder; each value fitted once
    )
    assert grid_of("ease", on.model_copy(update={"ease_lowpass": [], "ease_autoencoder": []})) == (
        *GRID["ease"],
        ("decay", (1.0, 0.25)),
    )
    assert grid_of("ials", on) == GRID["ials"]  # only EASE sources have one
    assert "decay" in SWITCHED_STRENGTHS


def test_listed_values_are_scored_from_the_values_kept_before() -> None:
    chosen = ease_alone_calibrated(ease_decay=[0.25, 1.0])
    grid = chosen.report["grid"]
    assert list(grid) == ["ease.regularization", "ease.rising", "ease.decay"]
    entry, rising = grid["ease.decay"], grid["ease.rising"]
    assert list(entry["ndcg@10"]) == ["as configured", "0.25", "1.0"]
    kept = rising["kept"]
    assert (
        entry["ndcg@10"]["as configured"]
        == rising["ndcg@10"][str(kept) if kept != "as configured" else kept]
    )
    assert set(entry["interval"]) == {"as configured", "0.25", "1.0"}
    shipped = next(s for s in chosen.config.retrieval.sources if s.name == "ease")
    assert shipped.params.get("decay", "as configured") == entry["kept"]
