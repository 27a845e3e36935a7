"""Score drift (``monitoring.scores``): the training profile's buckets, the PSI of served scores
against it, and the ``score_psi`` signal over a real decision log, all against hand values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings, MonitorSettings
from recsmith.decisions.record import decision
from recsmith.events.validate import validate_events
from recsmith.ids import IdMap
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.scores import score_profile, score_psi
from recsmith.monitoring.signals import monitor
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.store.sqlite import SQLiteStore

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
#: scores 1..10: deciles at 1.9, 2.8, …, 9.1 (linear interpolation), one score per bucket
PROFILE = score_profile(np.arange(1.0, 11.0))
#: three scores in the lowest bucket, one in each other: shares 3/12 and 1/12 against 1/10 each
SHIFTED = [1.0, 1.5, 1.8, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
HAND_PSI = (3 / 12 - 0.1) * math.log((3 / 12) / 0.1) + 9 * (1 / 12 - 0.1) * math.log((1 / 12) / 0.1)


def test_the_profile_cuts_ten_equal_mass_buckets() -> None:
    assert PROFILE["edges"] == pytest.approx([1 + 0.9 * j for j in range(1, 10)])
    assert PROFILE["counts"] == [1] * 10 and PROFILE["n_scores"] == 10
    # ties merge cuts; -inf (a short list's padding) is not a score
    tied = score_profile(np.array([0.0] * 8 + [1.0, 2.0, -np.inf]))
    assert tied["edges"] == pytest.approx([0.0, 0.2, 1.1]) and tied["n_scores"] == 10
    assert tied["counts"] == [0, 8, 1, 1]  # a score at a cut counts above it


def test_the_psi_of_served_scores_against_the_profile() -> None:
    assert score_psi(PROFILE, np.array(SHIFTED)) == pytest.approx(HAND_PSI)
    assert pytest.approx(0.16479, abs=1e-5) == HAND_PSI
    assert score_psi(PROFILE, np.arange(1.0, 11.0)) == pytest.approx(0.0)
    assert score_psi(PROFILE, np.empty(0)) is None


def _shown(rid: str, unit: str | None, scores: list[float], **what: str) -> object:
    return decision(
        rid,
        unit=unit,
        unit_kind="user" if unit else "none",
        route=what.get("route", "recommendations"),
        release=what.get("release", "r1"),
        item_ids=[f"i{n}" for n in range(len(scores))],
        scores=scores,
        sources=[("knn",)] * len(scores),
        served_at=NOW - timedelta(hours=1),
    )


def test_the_signal_reads_the_release_s_lists_to_known_users(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append_decisions(
        [
            _shown("a", "u1", SHIFTED[:6]),
            _shown("b", "u2", SHIFTED[6:]),
            _shown("c", "visitor", [100.0] * 5),  # an unknown user's fallback: left out
            _shown("d", "u1", [100.0] * 5, release="r0"),  # another release
            _shown("e", "u2", [100.0] * 5, route="popular"),  # another route
        ]
    )
    release = ReleaseView(
        version="r1",
        created_at=NOW - timedelta(days=1),
        users=IdMap(["u1", "u2"]),
        items=IdMap(["i0"]),
        item_users=np.array([1]),
        profile=None,
        scores=PROFILE,
    )
    settings = MonitorSettings(min_events=12)
    report = monitor(store, release, NOW - timedelta(days=1), settings, now=NOW)
    [signal] = [s for s in report.signals if s.name == "score_psi"]
    assert signal.value == pytest.approx(HAND_PSI)
    assert (signal.status, signal.warn, signal.alert) == ("warn", 0.1, 0.25)
    stricter = MonitorSettings(min_events=13)
    [few] = [
        s
        for s in monitor(store, release, NOW - timedelta(days=1), stricter, now=NOW).signals
        if s.name == "score_psi"
    ]
    assert few.status == "insufficient" and "12 served scores" in few.note
    unprofiled = monitor(
        store,
        ReleaseView(**{**release.__dict__, "scores": None}),
        NOW - timedelta(days=1),
        settings,
        now=NOW,
    )
    [unknown] = [s for s in unprofiled.signals if s.name == "score_psi"]
    assert unknown.status == "unknown" and "not recorded" in unknown.note
    store.close()


def test_training_records_the_profile_of_its_own_lists() -> None:
    records = [
        {
            "event_id": f"e{u}-{j}",
            "user_id": f"u{u}",
            "item_id": f"i{(u + 3 * j) % 12}",
            "event_type": "view",
            "timestamp": 1_700_000_000 + 60 * (u * 4 + j),
        }
        for u in range(20)
        for j in range(4)
    ]
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn"}]},
            "ranking": {"enabled": False},
        }
    )
    trained = train_pipeline(config, pd.DataFrame(frame), dict(EventSettings().weights))
    users = list(trained.bundle.users.external_ids)
    scores = np.concatenate([np.ravel(row) for row in trained.answer(users, 10).lists.scores])
    assert trained.manifest["score_profile"] == {**score_profile(scores), "k": 10}
    assert trained.manifest["score_profile"]["n_scores"] == int(np.isfinite(scores).sum()) > 0
