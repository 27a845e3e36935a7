"""``recsmith evaluate --debias``: debiased metrics beside the plain ones, and the tests on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.simulate import simulate

runner = CliRunner()


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate(n_users=150, n_items=80)
    path = tmp_path_factory.mktemp("data") / "events.csv"
    sim.events[["user_id", "item_id", "timestamp", "event_type"]].to_csv(path, index=False)
    return path


def _evaluate(events_file: Path, out: Path, *extra: str) -> dict:
    args = ["evaluate", "--data", str(events_file), "--models", "popular,itemknn"]
    result = runner.invoke(app, [*args, "--split", "leave-last-out", *extra, "--json", str(out)])
    assert result.exit_code == 0, result.output
    return {"payload": json.loads(out.read_text()), "output": result.output}


def test_eta_zero_gives_the_plain_ndcg_back(events_file: Path, tmp_path: Path) -> None:
    run = _evaluate(events_file, tmp_path / "r.json", "--debias", "popularity:0")
    got = run["payload"]
    assert "per-user ndcg_debiased@10" in " ".join(run["output"].split())
    assert got["debias"] == "popularity:0"
    for r in got["results"]:
        assert r["metrics"]["ndcg_debiased"] == pytest.approx(r["metrics"]["ndcg"])
    assert {c["metric"] for c in got["comparisons"]} == {"ndcg_debiased"}


def test_debiasing_lowers_popularity_more_than_a_personal_model(
    events_file: Path, tmp_path: Path
) -> None:
    """Weighting found rare items up costs the popularity list most: its debiased NDCG falls by a
    larger share than item-kNN's."""
    run = _evaluate(events_file, tmp_path / "r.json", "--debias", "popularity:1")
    by_model = {r["model"]: r["metrics"] for r in run["payload"]["results"]}
    kept = {m: v["ndcg_debiased"] / v["ndcg"] for m, v in by_model.items()}
    assert kept["popular"] < kept["itemknn"]
    assert np.all([0.0 <= v["ndcg_debiased"] <= 1.0 for v in by_model.values()])
    assert "debiased @10" in run["output"]


def test_a_bad_spec_names_the_option(events_file: Path) -> None:
    result = runner.invoke(app, ["evaluate", "--data", str(events_file), "--debias", "views"])
    assert result.exit_code != 0
    assert "--debias" in result.output
