"""Drift and freshness of a trained release, on a store small enough to work out by hand.

Training (November 1st): u1 views a, b, c and buys a; u2 views a, b; u3 views a. So the release
knows users u1..u3 and items a, b, c with 3, 2 and 1 distinct users (6 in all); the mix is 6 views
and 1 purchase. Popularity buckets (a tenth of the training interactions each, by the share
*before* an item on the curve): a starts at 0 → bucket 0, b at 3/6 → bucket 5, c at 5/6 → bucket 8.

After training: u3 views b on November 10th (after training, before the window), then in the
window from November 20th: u1 views c, u4 views c and d, u5 buys c, u2 buys b.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy.spatial.distance import jensenshannon
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings, MonitorSettings, Settings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import monitor, popularity_buckets
from recsmith.serving.app import create_app
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()
TRAINING = [
    ("u1", "a", "view"), ("u1", "b", "view"), ("u1", "c", "view"), ("u1", "a", "purchase"),
    ("u2", "a", "view"), ("u2", "b", "view"), ("u3", "a", "view"),
]  # fmt: skip
BETWEEN = [("u3", "b", "view")]
WINDOW = [
    ("u1", "c", "view"), ("u4", "c", "view"), ("u4", "d", "view"),
    ("u5", "c", "purchase"), ("u2", "b", "purchase"),
]  # fmt: skip
WINDOW_START = datetime(2026, 11, 20, tzinfo=UTC)


def _append(store: SQLiteStore, rows: list[tuple[str, str, str]], day: int, tag: str) -> None:
    records = [
        {
            "event_id": f"{tag}{n}",
            "user_id": u,
            "item_id": i,
            "event_type": t,
            "timestamp": f"2026-11-{day:02d}T{10 + n:02d}:00:00Z",
        }
        for n, (u, i, t) in enumerate(rows)
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    store.append(frame)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("monitor")
    db = root / "store.sqlite"
    store = SQLiteStore(db)
    store.upsert_items([Item(item_id=i) for i in "abc"])
    _append(store, TRAINING, 1, "t")
    store.close()
    out = root / "model"
    result = runner.invoke(
        app, ["train", "--store", f"sqlite:///{db}", "--model", "popular", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    store = SQLiteStore(db)
    _append(store, BETWEEN, 10, "b")
    _append(store, WINDOW, 21, "w")
    store.upsert_items([Item(item_id="d"), Item(item_id="e")])  # after training: 2 changes
    store.close()
    return db, out


def _by_name(report: object) -> dict[str, object]:
    return {s.name: s for s in report.signals}  # type: ignore[attr-defined]


def test_every_signal_against_the_hand_computed_value(shop: tuple[Path, Path]) -> None:
    db, out = shop
    release = ReleaseView.read(out)
    rows = release.items.to_index(np.array(["a", "b", "c"], dtype=object))
    assert release.item_users[rows].tolist() == [3, 2, 1]
    now = release.created_at + timedelta(hours=100)
    store = SQLiteStore(db)
    try:
        report = monitor(store, release, WINDOW_START, MonitorSettings(min_events=1), now=now)
    finally:
        store.close()
    s = _by_name(report)
    assert report.window_events == 5
    # event mix: training (purchase 1, view 6) vs window (purchase 2, view 3), by scipy
    mix = jensenshannon([1 / 7, 6 / 7], [2 / 5, 3 / 5], base=2) ** 2
    assert s["event_mix_js"].value == pytest.approx(mix, abs=1e-9)
    # popularity: training mass 3, 2, 1 in buckets 0, 5, 8; the window's known distinct pairs
    # (u1,c) (u4,c) (u5,c) (u2,b): 1 in bucket 5, 3 in bucket 8. Empty buckets get 1e-4.
    e = np.full(10, 1e-4)
    e[[0, 5, 8]] = [3 / 6, 2 / 6, 1 / 6]
    a = np.full(10, 1e-4)
    a[[5, 8]] = [1 / 4, 3 / 4]
    e, a = e / e.sum(), a / a.sum()
    expected_psi = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert s["item_popularity_psi"].value == pytest.approx(expected_psi, rel=1e-9)
    assert s["item_popularity_psi"].status == "alert"  # the window left the head entirely
    assert s["unknown_users"].value == pytest.approx(2 / 4)  # u4, u5 of u1, u2, u4, u5
    assert s["unknown_items"].value == pytest.approx(1 / 5)  # d, of five events
    assert s["model_age_h"].value == pytest.approx(100.0)
    assert s["model_age_h"].status == "warn"  # warn at 72 h, alert at 168 h
    assert s["events_since_training"].value == 6  # u3's on the 10th and the window's five
    assert s["catalog_changes_since_training"].value == 2
    newest = datetime(2026, 11, 21, 14, tzinfo=UTC)  # the window's fifth event, 14:00
    assert s["newest_event_age_h"].value == pytest.approx((now - newest).total_seconds() / 3600)


def test_too_few_events_are_not_judged(shop: tuple[Path, Path]) -> None:
    db, out = shop
    store = SQLiteStore(db)
    try:
        report = monitor(store, ReleaseView.read(out), WINDOW_START, MonitorSettings())
    finally:
        store.close()
    s = _by_name(report)
    assert s["item_popularity_psi"].status == "insufficient"
    assert "5 events in the window: too few" in s["item_popularity_psi"].note


def test_the_command_reports_json_and_fails_on_alert(shop: tuple[Path, Path]) -> None:
    db, out = shop
    env = {"RECSMITH_STORE__URL": f"sqlite:///{db}", "RECSMITH_MONITOR__MIN_EVENTS": "1"}
    args = ["monitor", "--model-dir", str(out), "--since", "2026-11-20", "--json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "alert" and payload["window_events"] == 5
    result = runner.invoke(app, [*args, "--fail-on", "alert"], env=env)
    assert result.exit_code == 3


def test_thresholds_name_known_signals_in_order() -> None:
    with pytest.raises(ValueError, match="unknown signal 'psi'"):
        MonitorSettings(thresholds={"psi": (0.1, 0.2)})
    with pytest.raises(ValueError, match=r"warn 0\.5 is above alert 0\.2"):
        MonitorSettings(thresholds={"item_popularity_psi": (0.5, 0.2)})


def test_popularity_buckets_by_the_share_before_each_item() -> None:
    # shares 3/6, 2/6, 1/6 start at 0, 0.5, 0.833: buckets 0, 5, 8 (order of the input kept)
    assert popularity_buckets(np.array([1, 3, 2])).tolist() == [8, 0, 5]
    # ten equal items: one per bucket; a heavy head item alone fills the first half
    assert popularity_buckets(np.ones(10, dtype=np.int64)).tolist() == list(range(10))
    assert popularity_buckets(np.array([10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])).tolist() == [
        0, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9,
    ]  # fmt: skip


def test_a_value_at_a_threshold_reaches_that_level(shop: tuple[Path, Path]) -> None:
    db, out = shop
    store = SQLiteStore(db)
    try:
        release = ReleaseView.read(out)
        at_alert = MonitorSettings(min_events=1, thresholds={"unknown_users": (0.2, 0.5)})
        at_warn = MonitorSettings(min_events=1, thresholds={"unknown_users": (0.5, 0.6)})
        below = MonitorSettings(min_events=1, thresholds={"unknown_users": (0.51, 0.6)})
        statuses = [
            _by_name(monitor(store, release, WINDOW_START, s))["unknown_users"].status
            for s in (at_alert, at_warn, below)
        ]
    finally:
        store.close()
    assert statuses == ["alert", "warn", "ok"]


def test_a_server_shows_the_signals_as_gauges(shop: tuple[Path, Path]) -> None:
    db, out = shop
    settings = Settings(
        store={"url": f"sqlite:///{db}"},
        serving={"model_dir": out},
        monitor={"window": "2026-11-20", "min_events": 1, "refresh_s": 0.05},
    )
    wanted = {
        'recsmith_monitor_signal{signal="unknown_users"} 0.5',
        'recsmith_monitor_signal{signal="unknown_items"} 0.2',
        'recsmith_monitor_level{signal="item_popularity_psi"} 2.0',
        'recsmith_monitor_signal{signal="catalog_changes_since_training"} 2.0',
    }
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = set(client.get("/metrics").text.splitlines())
            if wanted <= lines:
                break
            time.sleep(0.05)
    assert wanted <= lines, sorted(line for line in lines if "monitor" in line)


def test_a_window_without_events_is_no_data_not_ok(shop: tuple[Path, Path], tmp_path: Path) -> None:
    """A store the release's traffic never reached (empty): no signal can be judged, so the
    report says so, and a gate fails, instead of vouching "ok" for traffic it never saw."""
    _, out = shop
    env = {"RECSMITH_STORE__URL": f"sqlite:///{tmp_path / 'empty.sqlite'}"}
    args = ["monitor", "--model-dir", str(out), "--since", "2026-12-01"]
    payload = json.loads(runner.invoke(app, [*args, "--json"], env=env).stdout)
    assert payload["window_events"] == 0 and payload["status"] == "no_data"
    assert {s["status"] for s in payload["signals"]} <= {"unknown", "ok", "info"}
    shown = runner.invoke(app, args, env=env, terminal_width=200)
    assert shown.exit_code == 0, shown.stderr
    assert "overall: no_data: no events since 2026-12-01 00:00 UTC" in shown.stdout
    assert runner.invoke(app, [*args, "--fail-on", "alert"], env=env).exit_code == 3


def test_a_stalled_ingest_alerts_even_with_no_events_in_the_window(
    shop: tuple[Path, Path],
) -> None:
    """Events stored, none in the window: the newest one's age alerts, which no_data must not
    hide."""
    db, out = shop
    env = {"RECSMITH_STORE__URL": f"sqlite:///{db}"}
    args = ["monitor", "--model-dir", str(out), "--since", "2026-12-01", "--json"]
    payload = json.loads(runner.invoke(app, args, env=env).stdout)
    assert payload["window_events"] == 0 and payload["status"] == "alert"
