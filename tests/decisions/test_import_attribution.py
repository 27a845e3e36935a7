"""Imports carry ``recommendation_id`` and ``position`` like HTTP does: checked, then attributed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recsmith.cli.import_ import run_import
from recsmith.config import Settings
from recsmith.decisions.record import decision
from recsmith.testing.backends import BACKENDS, open_backend

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_imported_file_is_checked_and_attributed(backend: str, tmp_path: Path) -> None:
    with open_backend(backend, tmp_path) as (store, url):
        store.append_decisions(
            [
                decision(
                    "rA",
                    unit="u1",
                    unit_kind="user",
                    route="recommendations",
                    release="r1",
                    item_ids=["i1", "i2"],
                    scores=[2.0, 1.0],
                    sources=[("als",), ("als",)],
                    served_at=T0,
                )
            ]
        )
        at = (T0 + timedelta(minutes=5)).isoformat()
        rows = [
            {
                "user_id": "u1",
                "item_id": "i2",
                "event_type": "click",
                "timestamp": at,
                "recommendation_id": "rA",
                "position": 2,
            },
            {
                "user_id": "u1",
                "item_id": "i1",
                "event_type": "purchase",
                "value": 5.0,
                "timestamp": at,
            },
            {
                "user_id": "u1",
                "item_id": "i1",
                "event_type": "click",
                "timestamp": at,
                "recommendation_id": "rZ",
            },
        ]
        path = tmp_path / "events.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result = run_import("events", path, url, settings=Settings(), progress=False)
        assert (result.accepted, result.rejected_count) == (2, 1)
        assert result.rejected[0].index == 2
        assert result.rejected[0].errors[0].field == "recommendation_id"
        got = store.scan_attributions().sort_values("event_type")
        assert got[["event_type", "recommendation_id", "position", "rule"]].values.tolist() == [
            ["click", "rA", 2, "explicit"],
            ["purchase", "rA", 1, "window"],
        ]
