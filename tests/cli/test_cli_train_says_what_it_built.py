"""`train --pipeline` says in one line what it built and what it fell back from (#12)."""

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()


def _train(tmp_path: Path, data: Path, pipeline: str) -> tuple[str, dict]:
    config = tmp_path / "pipeline.toml"
    config.write_text(pipeline)
    out = tmp_path / "pipe"
    args = ["train", "--data", str(data), "--pipeline", str(config), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert (
        json.loads(as_json.stdout.splitlines()[-1])["ranker_summary"]
        == (manifest["ranker_summary"])
    )
    return result.stderr, manifest


def test_a_skipped_ranker_is_named_with_its_count(tmp_path: Path, small_pipeline: str) -> None:
    """50 users, each with one event on day 1 and one on day 10: the latest 10% of events (the
    label window) falls on day 10 and every older cut is empty, so exactly 50 users have both a
    past and a label, and 50 < min_queries' default 200."""
    users = [f"u{n:02d}" for n in range(50)]
    frame = pd.DataFrame(
        {
            "user_id": users * 2,
            "item_id": [f"i{n % 10}" for n in range(50)] + [f"i{(n + 1) % 10}" for n in range(50)],
            "timestamp": ["2026-01-01T00:00:00Z"] * 50 + ["2026-01-10T00:00:00Z"] * 50,
            "value": 1.0,
        }
    )
    data = tmp_path / "events.csv"
    frame.to_csv(data, index=False)
    said, manifest = _train(tmp_path, data, small_pipeline)
    line = (
        "ranker not trained: 50 labelled queries (50 users in 4 label windows) < min_queries "
        "200; serving the fused order"
    )
    assert line in said.replace("\n", " ")
    assert manifest["ranker"] is False and manifest["ranker_summary"] == line


def test_a_skipped_ranker_counts_a_user_once_per_label_window(
    tmp_path: Path, small_pipeline: str
) -> None:
    """20 users with one event a day for 10 days: each of the four 10% windows (days 10, 9, 8,
    7) labels all 20, who each have a past, so 80 labelled queries of 20 users, not 80 users
    (80 < min_queries' default 200)."""
    users = [f"u{n:02d}" for n in range(20)]
    frame = pd.DataFrame(
        {
            "user_id": users * 10,
            "item_id": [f"i{(u + day) % 12}" for day in range(10) for u in range(20)],
            "timestamp": [f"2026-01-{day + 1:02d}T00:00:00Z" for day in range(10) for _ in users],
            "value": 1.0,
        }
    )
    data = tmp_path / "events.csv"
    frame.to_csv(data, index=False)
    said, manifest = _train(tmp_path, data, small_pipeline)
    line = (
        "ranker not trained: 80 labelled queries (20 users in 4 label windows) < min_queries "
        "200; serving the fused order"
    )
    assert manifest["ranker_summary"] == line
    assert line in said.replace("\n", " ")


def test_a_ranker_no_better_than_fused_says_so(
    events_csv: Path, tmp_path: Path, small_pipeline: str
) -> None:
    said, manifest = _train(tmp_path, events_csv, small_pipeline)
    report = manifest["ranker_training"]
    assert manifest["ranker"] is False and report["outcome"] == "not_better"
    assert report["heldout_ndcg_ranker"] <= report["heldout_ndcg_retrieval"]
    summary = manifest["ranker_summary"]
    assert summary.startswith("ranker not kept") and summary.endswith("serving the fused order")
    assert f"fused {report['heldout_ndcg_retrieval']:.4f}" in summary
    assert summary in said.replace("\n", " ")


def test_a_disabled_ranker_is_named(events_csv: Path, tmp_path: Path, small_pipeline: str) -> None:
    said, manifest = _train(tmp_path, events_csv, small_pipeline + "enabled = false\n")
    assert (
        manifest["ranker_summary"]
        == "ranker off (ranking.enabled = false); serving the fused order"
    )
    assert manifest["ranker_summary"] in said
