"""The shipped default calibrates (#15): ``recsmith train --pipeline examples/pipeline.toml`` — the
bar's own command, and what quickstart trains (``default.toml`` is the same file,
``test_pipeline.test_packaged_default_is_the_example_file``) — chooses on validation, lists every
configuration tried (a grid's values and the fused order's variants too) with an interval, and
says its choice in one line, while a file that switches calibration off serves exactly what it
lists. With ``enabled = false`` in both files this fails at its first assert (and
``test_canonical_order`` by a KeyError on the missing report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.pipeline.config import CalibrationConfig, default_pipeline_config
from recsmith.simulate import simulate

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "pipeline.toml"


def _train(tmp_path: Path, toml: Path, name: str) -> tuple[list[str], dict]:
    events = tmp_path / "events.csv"
    if not events.exists():
        sim = simulate(n_users=240, n_items=80, days=30, seed=5)
        sim.events[["user_id", "item_id", "event_type", "timestamp"]].to_csv(events, index=False)
    out = tmp_path / name
    args = ["train", "--data", str(events), "--pipeline", str(toml), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    return result.stderr.splitlines(), json.loads((out / "manifest.json").read_text())


@pytest.mark.timeout(900)  # two trainings of the default: 33-64 CPU s, 152-324 s wall at load 13-14
def test_the_shipped_file_calibrates_and_a_file_can_switch_it_off(tmp_path: Path) -> None:
    assert default_pipeline_config().calibration.enabled is True
    assert CalibrationConfig().enabled is False  # a file without the section pins its choices
    said, manifest = _train(tmp_path, EXAMPLE, "default")
    report = manifest["calibration"]
    listed = [s["name"] for s in default_pipeline_config().model_dump()["retrieval"]["sources"]]
    tried = [t["name"] for t in report["tried"]]
    # popularity is tried although the file lists none, then each listed source that proposes
    # anything alone, then the file's fused order
    assert tried[0] == "popularity" and "fused" in tried
    assert set(tried) - {"popularity", "fused", "ranker"} <= set(listed)
    assert report["chosen"] in tried
    for t in report["tried"]:
        assert len(t["protocols"]) == len(report["protocols"]) >= 1
        for p in t["protocols"]:
            low, high = p["interval"]
            assert low <= p["ndcg@10"] <= high
    # a grid's values and the fused order's variants are configurations tried too: each has an
    # interval per protocol around its own mean
    grid = {k: g for k, g in report["grid"].items() if isinstance(g, dict)}
    assert grid  # the shipped file grids EASE, iALS and item-kNN
    variants = [(g["ndcg@10"], g["interval"]) for g in grid.values()]
    fused = report["fused_grid"]
    variants.append(({k: v for k, v in fused.items() if ": " in k}, fused["intervals"]))
    for means, bounds in variants:
        assert set(bounds) == set(means)
        for value, per_protocol in means.items():
            for mean, (low, high) in zip(per_protocol, bounds[value], strict=True):
                assert low <= mean <= high, (value, mean, low, high)
    lines = [line for line in said if line.startswith("calibration (")]
    assert len(lines) == 1 and f"serving {report['chosen']} (validation NDCG@10" in lines[0]
    assert lines[0] == manifest["calibration_summary"]

    pinned = tmp_path / "pinned.toml"
    text = EXAMPLE.read_text()
    switch = "[calibration]\nenabled = true "
    assert text.count(switch) == 1
    pinned.write_text(text.replace(switch, "[calibration]\nenabled = false"))
    said, manifest = _train(tmp_path, pinned, "pinned")
    assert "calibration" not in manifest
    assert not any(line.startswith("calibration (") for line in said)
    weights = {s["name"]: s["weight"] for s in manifest["pipeline"]["retrieval"]["sources"]}
    assert weights == {
        s.name: s.weight for s in default_pipeline_config().retrieval.sources
    }  # served as written: no source dropped to the filler weight, none added
