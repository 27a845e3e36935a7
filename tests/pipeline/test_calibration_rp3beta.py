"""Calibration tries an RP3beta source's popularity penalty at 0 and 1 beside the file's value
(``GRID``), keeps the file's unless another wins beyond noise, and leaves a value the file sets
alone."""

from __future__ import annotations

from test_calibration import WEIGHTS, config, only_scores, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import calibrate
from recsmith.pipeline.item_attributes import ItemAttributes


def calibrated(source: dict[str, object]) -> dict[str, object]:
    events = popularity_case()
    full = Interactions.from_events(events, WEIGHTS)
    return calibrate(config([source]), full, ItemAttributes.from_items([], full.items)).report


def test_the_penalty_is_tried_at_both_ends_and_what_is_kept_is_what_the_source_scores() -> None:
    report = calibrated({"name": "walk", "model": "rp3beta", "quota": 50})
    beta = report["grid"]["walk.beta"]  # type: ignore[index]
    assert beta["param"] == "beta"
    assert set(beta["ndcg@10"]) == {"as configured", "0.0", "1.0"}
    kept = beta["kept"] if beta["kept"] == "as configured" else str(beta["kept"])
    assert beta["ndcg@10"][kept] == [only_scores(report)["walk"]]


def test_a_penalty_the_file_sets_is_not_tried() -> None:
    report = calibrated({"name": "walk", "model": "rp3beta", "quota": 50, "params": {"beta": 0.3}})
    assert "walk.beta" not in report.get("grid", {})  # type: ignore[operator]
