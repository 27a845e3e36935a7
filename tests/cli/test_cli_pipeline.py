"""A pipeline through the batch CLI: train --pipeline, recommend, evaluate --pipeline."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

# ``recommend`` logs its lists into the default store when one exists (a quickstart user's
# ./recsmith-data): these commands name none, so they get a store of their own
pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


def test_pipeline_trains_recommends_and_evaluates(
    events_csv: Path, tmp_path: Path, small_pipeline: str
) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text(small_pipeline)
    out = tmp_path / "pipe"
    result = runner.invoke(
        app, ["train", "--data", str(events_csv), "--pipeline", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "manifest.json").read_text())["kind"] == "pipeline"
    users = tmp_path / "users.txt"
    users.write_text("u0001\nnobody\n")
    result = runner.invoke(
        app,
        [
            "recommend",
            "--model-dir",
            str(out),
            "--users",
            str(users),
            "--k",
            "5",
            "--out",
            str(tmp_path / "r.csv"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    recs = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert recs.groupby("user_id").size().to_dict() == {"u0001": 5, "nobody": 5}
    report = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--data",
            str(events_csv),
            "--models",
            "popular",
            "--pipeline",
            str(config),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.stderr
    models = [r["model"] for r in json.loads(report.read_text())["results"]]
    assert models == ["popular", "pipeline"]
