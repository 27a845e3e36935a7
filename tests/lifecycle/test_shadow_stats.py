"""Shadow figures merged over server processes from the registry (``lifecycle.shadow_stats``),
against hand-computed sums and percentiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recsmith.lifecycle.shadow_stats import FOLDER, merged, registry_shadow, write_tally

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _tally(release: str, compared: int, jaccard_sum: float, rbo_sum: float, **more: Any) -> dict:
    return {
        "release": release,
        "sample": 0.5,
        "since": more.pop("since", "2026-12-03T10:00:00+00:00"),
        "compared": compared,
        "dropped": more.pop("dropped", 0),
        "failed": more.pop("failed", 0),
        **({"store_failed": more.pop("store_failed")} if "store_failed" in more else {}),
        "jaccard_sum": jaccard_sum,
        "rbo_sum": rbo_sum,
        "shadow_ms": more.pop("shadow_ms", []),
        "served_ms": more.pop("served_ms", []),
        "written_at": more.pop("written_at", (NOW - timedelta(minutes=1)).isoformat()),
    }


def _put(root: Path, name: str, tally: dict[str, Any]) -> None:
    (root / FOLDER).mkdir(parents=True, exist_ok=True)
    (root / FOLDER / f"{name}.json").write_text(json.dumps(tally))


def test_the_processes_of_the_named_release_are_merged_exactly(tmp_path: Path) -> None:
    (tmp_path / "shadow.json").write_text(json.dumps({"release": "v2", "sample": 0.5}))
    _put(
        tmp_path,
        "a-1",
        _tally(
            "v2",
            3,
            1.5,
            2.1,
            dropped=2,
            shadow_ms=[1.0, 5.0, 3.0],
            served_ms=[10.0],
            since="2026-12-03T11:00:00+00:00",
        ),
    )
    _put(
        tmp_path,
        "b-7",
        _tally("v2", 1, 0.9, 0.3, failed=1, store_failed=2, shadow_ms=[2.0, 4.0]),
    )
    _put(tmp_path, "c-2", _tally("v1", 50, 50.0, 50.0))  # an earlier shadow: left out
    old = (NOW - timedelta(days=2)).isoformat()
    _put(tmp_path, "d-3", _tally("v2", 9, 9.0, 9.0, written_at=old))  # a process long gone
    (tmp_path / FOLDER / "e-4.json").write_text("{half a fi")  # being written: skipped
    got = registry_shadow(tmp_path, NOW)
    assert got is not None
    assert (got["release"], got["sample"], got["processes"]) == ("v2", 0.5, 2)
    assert (got["compared"], got["dropped"], got["failed"]) == (4, 2, 1)
    assert got["store_failed"] == 2  # a-1 was written without the count: none
    assert got["jaccard"] == pytest.approx((1.5 + 0.9) / 4)
    assert got["rbo"] == pytest.approx((2.1 + 0.3) / 4)
    assert got["since"] == "2026-12-03T10:00:00+00:00"
    # shadow latencies 1..5: the median is 3, p99 lies 0.96 of the way from 4 to 5
    assert got["shadow_latency_ms"] == pytest.approx({"p50": 3.0, "p99": 4.96})
    assert got["served_latency_ms"] == {"p50": 10.0, "p99": 10.0}


def test_nothing_shadowed_and_no_comparisons_yet(tmp_path: Path) -> None:
    assert registry_shadow(tmp_path, NOW) is None  # no shadow.json, no tallies
    (tmp_path / "shadow.json").write_text(json.dumps({"release": None, "sample": 0.1}))
    assert registry_shadow(tmp_path, NOW) is None  # stopped
    empty = merged("v3", 0.1, [])
    assert (empty["compared"], empty["processes"], empty["jaccard"]) == (0, 0, None)
    assert empty["shadow_latency_ms"] is None


def test_a_written_tally_reads_back_and_settings_only_shadows_are_found(tmp_path: Path) -> None:
    # [lifecycle] shadow_release at start writes no shadow.json: the newest tally names it
    write_tally(tmp_path, _tally("v5", 2, 2.0, 1.0, shadow_ms=[7.0]))
    got = registry_shadow(tmp_path)
    assert got is not None and (got["release"], got["compared"], got["rbo"]) == ("v5", 2, 0.5)
    assert [p.name for p in (tmp_path / FOLDER).iterdir() if p.name.startswith(".")] == []
