"""``recsmith evaluate --pipeline`` fits the pipeline on the store's user profiles, as ``train
--pipeline`` and a retrain do: without them the pipeline it scores has no segment popularity and
no profile features, so it is not the pipeline that would serve."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import recsmith.evaluation.runner as runner_module
from recsmith.cli._data import load_events
from recsmith.cli.app import app
from recsmith.config import Settings
from recsmith.evaluation.split import parse_split
from recsmith.events.schema import User
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import load_pipeline_config
from recsmith.pipeline.runtime import Pipeline
from recsmith.simulate import simulate
from recsmith.store.open import open_store

runner = CliRunner()
SPLIT = "leave-last-out"


def test_evaluate_fits_the_pipeline_on_the_stores_profiles(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    two_source_pipeline: Path,
    store_tiers: Callable[[str, Sequence[str]], list[User]],
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    settings = Settings()
    store = open_store(url)
    try:
        store.append(
            validate_events(simulate(n_users=120, n_items=60, seed=5).events, settings.events)[0]
        )
    finally:
        store.close()
    events = load_events(None, url, settings)
    profiled = store_tiers(url, sorted(events["user_id"].unique())[:40])
    toml = two_source_pipeline
    fitted: list[Pipeline] = []

    def recorded(*args: Any, **kwargs: Any) -> Pipeline:  # the real training, its result kept
        fitted.append(train_pipeline(*args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(runner_module, "train_pipeline", recorded)
    args = ["evaluate", "--store", url, "--models", "popular", "--split", SPLIT]
    result = runner.invoke(app, [*args, "--pipeline", str(toml)])
    assert result.exit_code == 0, result.stderr
    (evaluated,) = fitted
    # the oracle: a pipeline trained directly on the split's train part and these 40 users
    train = parse_split(SPLIT).apply(events).train
    direct = train_pipeline(
        load_pipeline_config(toml), train, dict(settings.events.weights), users=profiled
    )
    assert direct.manifest["segments"]["profiled_users"] == 40
    assert evaluated.manifest.get("segments") == direct.manifest["segments"]
