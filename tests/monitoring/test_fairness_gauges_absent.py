"""The exposure Gini and narrowing gauges have no sample while there is nothing to measure.

A fresh server exported ``recsmith_exposure_gini 0.0`` (perfectly even exposure, which nobody
measured) and, after its first fairness refresh over an empty decision log, ``NaN``. Prometheus'
way to say "no value" is an absent series; the family's HELP and TYPE stay, so dashboards and
``test_ops_files`` still find the name.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recsmith.config import Settings
from recsmith.serving.app import create_app
from recsmith.serving.metrics import Metrics

OPTIONAL = ("recsmith_exposure_gini", "recsmith_narrowing_share")


def _samples(text: str) -> dict[str, list[float]]:
    """Each optional gauge's sample values (an empty list: described, no sample)."""
    return {
        f.name: [s.value for s in f.samples]
        for f in text_string_to_metric_families(text)
        if f.name in OPTIONAL
    }


def test_a_gauge_has_a_sample_only_while_its_value_is_known() -> None:
    metrics = Metrics.create()

    def exported() -> dict[str, list[float]]:
        return _samples(generate_latest(metrics.registry).decode())

    assert exported() == {name: [] for name in OPTIONAL}  # not 0 before anything is measured
    metrics.set_exposure({}, math.nan, math.nan)  # an empty decision log's figures
    assert exported() == {name: [] for name in OPTIONAL}
    metrics.set_exposure({"books": 0.75, "toys": 0.25}, 0.4, 0.0)  # 0.0 is a value: kept
    assert exported() == {"recsmith_exposure_gini": [0.4], "recsmith_narrowing_share": [0.0]}
    metrics.set_exposure({"books": 1.0}, 0.5, math.nan)  # no unit with enough lists any more
    assert exported() == {"recsmith_exposure_gini": [0.5], "recsmith_narrowing_share": []}
    metrics.set_exposure({"books": 1.0}, math.inf, -math.inf)  # not a figure either: no sample
    assert exported() == {name: [] for name in OPTIONAL}


def test_a_fresh_server_exports_no_nan_and_no_made_up_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"}, serving={"allow_no_model": True}
    )
    assert settings.decisions.enabled  # the fairness watch runs (at start, then on a timer)
    refreshed = threading.Event()
    set_exposure = Metrics.set_exposure

    def seen(self: Metrics, shares: dict[str, float], gini: float, narrowing: float) -> None:
        set_exposure(self, shares, gini, narrowing)  # the real gauges, the refresh noted
        refreshed.set()

    monkeypatch.setattr(Metrics, "set_exposure", seen)
    app = create_app(settings)
    with TestClient(app) as client:
        before = client.get("/metrics").text
        # the watch's first refresh over the empty log, in its thread, has set the gauges
        assert refreshed.wait(timeout=60)
        after = client.get("/metrics").text
    for text in (before, after):
        assert _samples(text) == {name: [] for name in OPTIONAL}, text
        fairness = [line for line in text.splitlines() if line.startswith(OPTIONAL)]
        assert fairness == [], fairness  # no sample line, NaN or other
