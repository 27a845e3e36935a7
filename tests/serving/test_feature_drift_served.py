"""Feature drift end to end: a served pipeline samples its ranker's feature rows into the store,
and ``recsmith monitor``'s ``feature_psi`` compares them with the release's training profile.

Every user of the device shop asks once, at the moment of their own latest event (the
pipeline's clock), as the training profile asked for them. Unchanged traffic (each user's own
device) must give a PSI near 0 on every feature: any skew between what training profiled and
what serving computes would show here. All traffic from one device must give a large PSI on
``device`` and leave every other feature where it was (the device changes the ranker's scores,
not its inputs' other columns).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from recsmith.config import MonitorSettings
from recsmith.monitoring.gauges import MonitorGauges
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import MonitorReport, monitor
from recsmith.pipeline.artifact import save_pipeline
from recsmith.pipeline.runtime import Pipeline
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.device_shop import (
    device_shop_events,
    device_shop_pipeline,
    replay_latest,
)

SETTINGS = MonitorSettings(min_events=200)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, pd.DataFrame, Path]:
    events = device_shop_events()
    pipeline = device_shop_pipeline(events)
    where = tmp_path_factory.mktemp("release") / "pipe"
    save_pipeline(pipeline, where)
    return pipeline, events, where


def _replay(
    shop: tuple[Pipeline, pd.DataFrame, Path], tmp: Path, device: str | None
) -> MonitorReport:
    """``replay_latest`` into a new store, then the monitor over what the server sampled."""
    pipeline, events, where = shop
    replay_latest(pipeline, events, f"sqlite:///{tmp / 's.sqlite'}", device)
    store = SQLiteStore(tmp / "s.sqlite")
    try:
        now = datetime.now(UTC)
        return monitor(store, ReleaseView.read(where), now - timedelta(hours=1), SETTINGS, now)
    finally:
        store.close()


def _signal(report: MonitorReport) -> tuple[float | None, str, str]:
    [found] = [s for s in report.signals if s.name == "feature_psi"]
    return found.value, found.status, found.note


def test_unchanged_traffic_drifts_on_no_feature(shop, tmp_path: Path) -> None:
    report = _replay(shop, tmp_path, device=None)
    names = shop[0].manifest["feature_profile"]["names"]
    assert set(report.features) == set(names)
    assert max(report.features.values()) < 0.01, report.features
    value, status, _ = _signal(report)
    assert value is not None and value < 0.01 and status == "ok"


def test_traffic_from_one_device_drifts_on_the_device_feature_only(shop, tmp_path: Path) -> None:
    report = _replay(shop, tmp_path, device="mobile")
    worst, *others = report.features
    assert worst == "device" and report.features["device"] > 0.25, report.features
    assert max(report.features[n] for n in others) < 0.01, report.features
    value, status, note = _signal(report)
    assert value == report.features["device"] and status == "alert"
    assert note.startswith("worst: device ") and note.count(",") == 4  # the worst five
    gauges = MonitorGauges.create(registry := CollectorRegistry())
    gauges.show(report)
    assert registry.get_sample_value(
        "recsmith_monitor_feature_psi", {"feature": "device"}
    ) == pytest.approx(report.features["device"])
    assert report.as_dict()["feature_psi"]["device"] == report.features["device"]
