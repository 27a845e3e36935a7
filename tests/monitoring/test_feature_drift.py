"""Feature drift (``monitoring.features``): the rows a query contributes, each feature's deciles
and PSI against hand values, and the profile training records, checked against the raw events."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from recsmith.config import MonitorSettings
from recsmith.ids import IdMap
from recsmith.monitoring.deciles import decile_profile
from recsmith.monitoring.feature_rows import encode
from recsmith.monitoring.features import feature_profile, feature_psi, query_rows
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import Signal, monitor
from recsmith.store.base import micros
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.device_shop import DEVICE_CODES, device_shop_events, device_shop_pipeline

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
#: feature "a": 1..10 (one per decile bucket) and two missing; "b": constant 5
A = [*np.arange(1.0, 11.0), np.nan, np.nan]
PROFILE = feature_profile(["a", "b"], np.column_stack([A, [5.0] * 12]))
#: "a" at serving: three in the lowest bucket, one in each other, three missing
SERVED_A = [1.0, 1.5, 1.8, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, *[np.nan] * 3]
HAND_A = (
    (3 / 15 - 1 / 12) * math.log((3 / 15) / (1 / 12))
    + 9 * (1 / 15 - 1 / 12) * math.log((1 / 15) / (1 / 12))
    + (3 / 15 - 2 / 12) * math.log((3 / 15) / (2 / 12))
)


def test_query_rows_spreads_each_query_s_pick_over_its_rows() -> None:
    query = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2])
    assert query_rows(query, np.array([0, 2]), per_query=2).tolist() == [0, 1, 8]
    assert query_rows(query, np.array([1]), per_query=2).tolist() == [3, 5]  # 5 rows: 0th, 2nd
    assert query_rows(query, np.array([1]), per_query=20).tolist() == [3, 4, 5, 6, 7]
    assert query_rows(query, np.array([3]), per_query=2).tolist() == []  # no rows


def test_deciles_count_missing_values_apart() -> None:
    a = PROFILE["features"]["a"]
    assert a["edges"] == pytest.approx([1 + 0.9 * j for j in range(1, 10)])
    assert (a["counts"], a["missing"]) == ([1] * 10, 2)
    assert PROFILE["features"]["b"] == {"edges": [5.0], "counts": [0, 12], "missing": 0}
    assert decile_profile(np.array([np.nan, np.nan])) == {"edges": [], "counts": [0], "missing": 2}


def test_feature_psi_against_hand_values() -> None:
    served = np.column_stack([SERVED_A, [5.0] * 15])
    assert pytest.approx(0.14169, abs=1e-5) == HAND_A
    psi = feature_psi(PROFILE, served)
    assert list(psi) == ["a", "b"]  # worst first
    assert psi["a"] == pytest.approx(HAND_A)
    assert psi["b"] == pytest.approx(0.0)
    assert feature_psi(PROFILE, np.column_stack([A, [5.0] * 12]))["a"] == pytest.approx(0.0)
    assert feature_psi(PROFILE, np.zeros((0, 2))) == {}
    assert feature_psi(PROFILE, np.zeros((3, 3))) == {}  # another release's width


def test_training_profiles_the_served_rows_of_each_user_s_latest_moment() -> None:
    """Oracle from the raw events, not the pipeline: every user gives 20 rows (its candidates
    are more), all with the device and UTC hour of that user's latest event."""
    events = device_shop_events()
    pipeline = device_shop_pipeline(events)
    profile = pipeline.manifest["feature_profile"]
    latest = events.sort_values("ts").groupby("user_id").tail(1)
    assert profile["n_rows"] == 20 * len(latest) == 20 * 400
    assert profile["names"] == list(pipeline.ranker.booster.feature_name())
    device = profile["features"]["device"]
    codes = latest["context"].str.extract(r'"device":"(\w+)"')[0].map(DEVICE_CODES)
    want = np.bincount(np.searchsorted(device["edges"], codes, side="right"), minlength=3)
    assert device["counts"] == (20 * want).tolist() and device["missing"] == 0
    hours = (latest["ts"].to_numpy() // 3_600_000_000) % 24
    hour = profile["features"]["hour"]
    want = np.bincount(np.searchsorted(hour["edges"], hours, side="right"), minlength=10)
    assert hour["counts"] == (20 * want).tolist()


def test_the_signal_reads_the_release_s_sampled_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    at = micros(NOW - timedelta(hours=1)) or 0
    store.append_feature_samples(encode("r1", at, np.column_stack([SERVED_A, [5.0] * 15])))
    store.append_feature_samples(encode("r0", at, np.full((50, 2), 99.0)))  # another release
    release = ReleaseView(
        version="r1",
        created_at=NOW - timedelta(days=1),
        users=IdMap(["u1"]),
        items=IdMap(["i0"]),
        item_users=np.array([1]),
        profile=None,
        features=PROFILE,
    )
    since = NOW - timedelta(days=1)

    def signal(view: ReleaseView, min_events: int) -> Signal:
        report = monitor(store, view, since, MonitorSettings(min_events=min_events), now=NOW)
        return next(s for s in report.signals if s.name == "feature_psi")

    judged = signal(release, 15)
    assert judged.value == pytest.approx(HAND_A)
    assert (judged.status, judged.warn, judged.alert) == ("warn", 0.1, 0.25)
    assert judged.note == "worst: a 0.142, b 0"
    few = signal(release, 16)
    assert few.status == "insufficient"
    assert few.note == (
        "15 sampled feature rows in the window: too few to judge (min_events = 16); "
        "worst: a 0.142, b 0"
    )
    unprofiled = signal(ReleaseView(**{**release.__dict__, "features": None}), 1)
    assert unprofiled.status == "unknown" and "not recorded" in unprofiled.note
    unsampled = signal(ReleaseView(**{**release.__dict__, "version": "r2"}), 1)
    assert unsampled.status == "unknown" and "no feature rows sampled" in unsampled.note
    store.close()
