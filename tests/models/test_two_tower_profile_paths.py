"""Every path that fits a two-tower model hands it the user profiles, as ``train`` does:
``evaluate`` (``evaluation.runner.evaluate_models``) and ``retrain`` (the judged candidate and
the shipped release). A path that dropped them would measure or ship a model with no profile
term, and nothing else would notice: it still fits and ranks."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_two_tower import SMALL, taste_catalog, taste_events
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_models
from recsmith.evaluation.split import parse_split
from recsmith.events.schema import User
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.two_tower import TwoTower
from recsmith.store.sqlite import SQLiteStore

FAST = {**SMALL, "epochs": 2}
SEGMENT_TOKENS = {"segment=A", "segment=B", "segment=C"}


@pytest.fixture
def fitted_on(monkeypatch: pytest.MonkeyPatch) -> list[Interactions]:
    """The data of every ``TwoTower.fit`` (the real fit runs)."""
    seen: list[Interactions] = []
    fit = TwoTower.fit

    def recording(self: TwoTower, data: Interactions) -> TwoTower:
        seen.append(data)
        return fit(self, data)

    monkeypatch.setattr(TwoTower, "fit", recording)
    return seen


def _profiles(users: Any) -> dict[str, dict[str, str]]:
    return {u: {"segment": u[0]} for u in users}


def _interleaved() -> pd.DataFrame:
    """The taste events with every user's n-th event at one moment, so a time cut (a holdout)
    leaves each user history before it."""
    events = taste_events()
    step = events.groupby("user_id").cumcount().to_numpy()
    return events.assign(ts=1_700_000_000_000_000 + step * 3_600_000_000 + events.index)


def test_evaluate_fits_two_tower_on_the_profiles(fitted_on: list[Interactions]) -> None:
    events = _interleaved()
    profiles = _profiles(events["user_id"].unique())
    evaluate_models(
        events,
        parse_split("temporal:0.8"),
        ["two_tower"],
        5,
        EventSettings().weights,
        params={"two_tower": FAST},
        items=taste_catalog(),
        profiles=profiles,
    )
    (data,) = fitted_on
    got = dict(zip(data.users.external_ids, data.profiles or (), strict=True))
    assert got == {u: profiles[u] for u in data.users.external_ids}


def test_retrain_judges_and_ships_two_tower_with_the_stores_profiles(
    fitted_on: list[Interactions], tmp_path: Path
) -> None:
    events = _interleaved()
    db = tmp_path / "store.sqlite"
    store = SQLiteStore(db)
    store.append(events.assign(recommendation_id=None, position=np.nan))
    store.upsert_users(
        [User(user_id=u, properties=p) for u, p in _profiles(events["user_id"].unique()).items()]
    )
    store.close()
    registry = tmp_path / "releases"
    params = [x for key, value in FAST.items() for x in ("--param", f"{key}={value}")]
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(
        app,
        ["retrain", "--registry", str(registry), "--model", "two_tower", *params, "--json"],
        env={"RECSMITH_STORE__URL": url},
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    judged, shipped = fitted_on  # the candidate on the events before the holdout, then on all
    for data in (judged, shipped):
        assert {p["segment"] for p in data.profiles or () if p} == {"A", "B", "C"}
    released = ModelBundle.load(ModelRegistry(registry).path(ModelRegistry(registry).current()))
    assert isinstance(released.model, TwoTower)
    assert set(released.model.user_tokens_.vocabulary) >= SEGMENT_TOKENS


def test_train_reads_the_profiles_only_for_a_model_that_uses_them(tmp_path: Path) -> None:
    """``train --users`` with a file that is not there: two_tower, which fits on profiles, says
    so; ials, which ignores them, trains as without ``--users``."""
    events_csv = tmp_path / "events.csv"
    events = taste_events()
    events.assign(timestamp=events["ts"] // 1_000_000)[
        ["user_id", "item_id", "timestamp", "event_type"]
    ].to_csv(events_csv, index=False)
    common = ["--data", str(events_csv), "--users", str(tmp_path / "missing.csv")]
    runner = CliRunner()
    ials = ["train", "--model", "ials", "--param", "iterations=2", *common]
    result = runner.invoke(app, [*ials, "--out", str(tmp_path / "ials")])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(
        app, ["train", "--model", "two_tower", *common, "--out", str(tmp_path / "tt")]
    )
    assert result.exit_code != 0
    assert "--users" in result.stderr and "missing.csv" in result.stderr
