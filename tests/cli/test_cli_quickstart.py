"""`recsmith quickstart --no-serve`: data, evaluation, a trained pipeline and a key, end to end."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.pipeline.artifact import load_artifact
from recsmith.pipeline.runtime import Pipeline
from recsmith.store.open import open_store

pytestmark = pytest.mark.slow


def test_quickstart_sets_up_a_served_pipeline(tmp_path: Path) -> None:
    target = tmp_path / "qs"
    result = CliRunner().invoke(app, ["quickstart", "--dir", str(target), "--no-serve"])
    assert result.exit_code == 0, result.stderr
    assert "ndcg@10" in result.stdout and "API key (admin, shown once): rsk_" in result.stdout
    config = (target / "recsmith.toml").read_text()
    assert "[store]" in config and "[serving]" in config
    served = load_artifact(target / "model")
    assert isinstance(served, Pipeline)
    assert json.loads((target / "model" / "manifest.json").read_text())["kind"] == "pipeline"
    store = open_store(f"sqlite:///{target / 'recsmith.sqlite'}")
    try:
        assert store.count_events() > 10_000 and len(store.items()) == 1000
    finally:
        store.close()
