"""Live fairness figures against a small log worked out by hand.

Catalogue a, b (group X), c, d (group Y). Unit u1 was shown [a, b] then [a, c]; u2 [c, d].
Slots: a 2, b 1, c 2, d 1 → X 3/6, Y 3/6; Gini of [1, 1, 2, 2] = (−3 − 1 + 2 + 6) / (4 · 6) = 1/6.
Narrowing (last 1): u1's latest list has 2 groups, the one before 1 → ratio 2; u2 has too few.
u1's events: one c → p = (0, 1). KL to [a, b] (q = (1, 0)): log(1 / 0.01) = 4.60517; to [a, c]
(q̃_Y = 0.99 · 0.5 + 0.01 = 0.505): log(1 / 0.505) = 0.68320; u2 has no events (no figure).
Mean 2.64419 over 2 lists. One attributed event on list r2: u1's bucket has 1 outcome per 2 lists.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.decisions.record import decision
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.fairness.report import fairness_report
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend

LABELS = {"a": ("X",), "b": ("X",), "c": ("Y",), "d": ("Y",)}
T0 = datetime.now(UTC) - timedelta(hours=1)
LISTS = [("r1", "u1", ["a", "b"], 0), ("r2", "u1", ["a", "c"], 1), ("r3", "u2", ["c", "d"], 2)]


def _shown() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "recommendation_id": r,
                "unit": u,
                "served_at": T0 + timedelta(minutes=m),
                "position": p,
                "item_id": i,
            }
            for r, u, items, m in LISTS
            for p, i in enumerate(items)
        ]
    )


def _check(payload: dict) -> None:
    assert payload["lists"] == 3
    assert payload["exposure"]["group_share"] == {"X": 0.5, "Y": 0.5}
    assert payload["exposure"]["gini"] == pytest.approx(1 / 6)
    assert payload["exposure"]["catalogue_shown"] == 1.0
    assert payload["narrowing"] == {"last": 1, "units": 1, "share_narrowing": 0.0, "median": 2.0}
    assert payload["calibration"]["lists"] == 2
    assert payload["calibration"]["mean"] == pytest.approx(2.64419, abs=1e-5)
    light = payload["parity"]["light"]
    assert (light["units"], light["lists"], light["outcomes_per_list"]) == (1, 2, 0.5)


def test_report_figures_match_the_hand_computed_log() -> None:
    events = pd.DataFrame({"user_id": ["u1"], "item_id": ["c"]})
    attributions = pd.DataFrame({"recommendation_id": ["r2"]})
    report = fairness_report(
        _shown(),
        events,
        attributions,
        LABELS,
        window="test",
        grouping="category",
        catalogue=4,
        last=1,
    )
    _check(report.to_json())
    assert "<h1>" in report.to_html()


def test_a_list_served_to_no_unit_has_no_calibration_figure() -> None:
    """A ``/popular`` list has no unit (None in the log): it counts as a list and its slots, but
    has no history to be calibrated to; the units' figures stay the hand-computed ones."""
    anonymous = pd.DataFrame(
        [{"recommendation_id": "r4", "unit": None, "served_at": T0, "position": 0, "item_id": "d"}]
    )
    report = fairness_report(
        pd.concat([_shown(), anonymous], ignore_index=True),
        pd.DataFrame({"user_id": ["u1"], "item_id": ["c"]}),
        pd.DataFrame({"recommendation_id": ["r2"]}),
        LABELS,
        window="test",
        grouping="category",
        catalogue=4,
        last=1,
    ).to_json()
    assert report["lists"] == 4 and report["exposure"]["group_share"] == {"X": 3 / 7, "Y": 4 / 7}
    assert report["calibration"]["lists"] == 2
    assert report["calibration"]["mean"] == pytest.approx(2.64419, abs=1e-5)


@pytest.mark.parametrize("kind", BACKENDS)
def test_cli_report_reads_the_store(kind: str, tmp_path: Path) -> None:
    with open_backend(kind, tmp_path) as (store, url):
        _fill(store)
        _run_cli(url, tmp_path)


def _fill(store: EventStore) -> None:
    """The hand-made log, items, one event and its attribution, written through the store."""
    store.upsert_items([Item(item_id=i, categories=list(c)) for i, c in LABELS.items()])
    store.append_decisions(
        [
            decision(
                r,
                unit=u,
                unit_kind="user",
                route="recommendations",
                release="v1",
                item_ids=items,
                scores=[1.0] * len(items),
                sources=[["s"]] * len(items),
                served_at=T0 + timedelta(minutes=m),
            )
            for r, u, items, m in LISTS
        ]
    )
    raw = pd.DataFrame(
        {
            "event_id": ["e1"],
            "user_id": ["u1"],
            "item_id": ["c"],
            "event_type": ["view"],
            "timestamp": [(T0 + timedelta(minutes=5)).isoformat()],
        }
    )
    store.append(validate_events(raw, EventSettings())[0])
    store.append_attributions(
        pd.DataFrame(
            {
                "event_id": ["e1"],
                "recommendation_id": ["r2"],
                "position": [1],
                "rule": ["explicit"],
                "event_type": ["view"],
                "value": [0.0],
                "ts": [int((T0 + timedelta(minutes=5)).timestamp() * 1e6)],
            }
        )
    )


def _run_cli(url: str, tmp_path: Path) -> None:
    html = tmp_path / "fair.html"
    result = CliRunner().invoke(
        app,
        [
            "fairness",
            "report",
            "--since",
            "2h",
            "--last",
            "1",
            "--json",
            "--html",
            str(html),
            "--store",
            url,
        ],
    )
    assert result.exit_code == 0, result.stderr
    _check(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "Fairness report" in html.read_text()


def test_cli_lines_say_n_a_where_there_is_no_figure(tmp_path: Path) -> None:
    """Nothing served: the figures are JSON nulls, and the lines said "None" (Python's word)."""
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = CliRunner().invoke(app, ["fairness", "report", "--since", "1d", "--store", url])
    assert result.exit_code == 0, result.stderr
    assert "None" not in result.stderr
    assert "mean miscalibration: n/a" in result.stderr
    assert "narrowing: n/a of 0 units (median n/a)" in result.stderr
