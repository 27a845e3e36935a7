"""A simulated shop whose store grows after its first release (the lifecycle tests' data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.simulate import simulate
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()


def simulated_events() -> pd.DataFrame:
    frame, rejected = validate_events(
        simulate(n_users=300, n_items=200, seed=5).events, EventSettings()
    )
    assert not rejected
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def grown_shop(root: Path, events: pd.DataFrame, model: str) -> tuple[str, Path]:
    """A store with the first 70 % of ``events``, ``model`` trained on them and deployed, then
    the remaining 30 % appended."""
    db = root / "store.sqlite"
    url = f"sqlite:///{db}"
    cut = int(len(events) * 0.7)
    store = SQLiteStore(db)
    store.append(events.iloc[:cut])
    store.close()
    out = root / "current"
    env = {"RECSMITH_STORE__URL": url}  # deploy's audit record goes to this shop's store
    trained = runner.invoke(
        app, ["train", "--store", url, "--model", model, "--out", str(out)], env=env
    )
    assert trained.exit_code == 0, trained.stderr
    registry = root / "releases"
    deployed = runner.invoke(
        app, ["deploy", "--model-dir", str(out), "--registry", str(registry)], env=env
    )
    assert deployed.exit_code == 0, deployed.stderr
    store = SQLiteStore(db)
    store.append(events.iloc[cut:])
    store.close()
    return url, registry
