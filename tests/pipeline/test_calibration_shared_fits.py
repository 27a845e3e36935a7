"""Calibration shares EASE's fit pieces across its grid (``models/shared_fits.py``): what it tries,
scores and ships is the same as when every fit computes its own, with fewer solves."""

from __future__ import annotations

from typing import Any

import pytest
from test_calibration import WEIGHTS, config, popularity_case

from recsmith.features.interactions import Interactions
from recsmith.models import ease
from recsmith.pipeline.calibration import calibrate
from recsmith.pipeline.item_attributes import ItemAttributes

SOURCES = [
    {"name": "ease", "model": "ease", "quota": 50},
    {"name": "itemknn", "model": "itemknn", "quota": 50},
]


def calibrated(monkeypatch: pytest.MonkeyPatch, share: bool) -> tuple[dict[str, Any], Any, int]:
    """(report without its seconds, the shipped configuration, EASE solves computed) on
    ``test_calibration``'s popularity case, EASE's whole grid on; ``share`` False: every fit
    computes its own pieces (the library as it was before sharing)."""
    if not share:
        monkeypatch.setattr(ease, "shared", lambda data, key, make: make())
    solves = 0
    solve = ease.EASE._solve

    def counted(self: ease.EASE, xk: Any) -> Any:
        nonlocal solves
        solves += 1
        return solve(self, xk)

    monkeypatch.setattr(ease.EASE, "_solve", counted)
    cfg = config(SOURCES)
    cc = cfg.calibration.model_copy(
        update={"ease_lowpass": [0.3, 1.0], "ease_autoencoder": [1.0], "budget_seconds": 600.0}
    )
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(
        cfg.model_copy(update={"calibration": cc}), full, ItemAttributes.from_items([], full.items)
    )
    monkeypatch.undo()
    report = {k: v for k, v in chosen.report.items() if k not in ("seconds", "cpu_seconds")}
    return report, chosen.config, solves


def test_the_same_tries_scores_and_choice_with_fewer_solves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own, own_config, own_solves = calibrated(monkeypatch, share=False)
    report, shipped, solves = calibrated(monkeypatch, share=True)
    assert report == own
    assert shipped == own_config
    grid = report["grid"]
    assert "stopped" not in report
    tries = sum(len(grid[f"ease.{p}"]["ndcg@10"]) - 1 for p in ("rising", "lowpass"))
    assert grid["ease.autoencoder"]["ndcg@10"]  # the grid reached its last step
    # one solve per λ (the file's and 4 more), none for the rising, low-pass or network values
    assert own_solves == 5 + tries + 1
    assert solves == 5
