"""Hyper-parameter tuning: valid search spaces, seeded reproducibility, a test part no trial sees,
the params file, and ``recsmith tune`` → ``recsmith train --params-file``."""

from __future__ import annotations

import io
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from recsmith.cli import _common as cli_common
from recsmith.cli import tune as tune_cli
from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.errors import MissingExtraError, UnknownModelError, ValidationError
from recsmith.evaluation import tuning
from recsmith.evaluation.split import parse_split
from recsmith.events.validate import validate_events
from recsmith.models.registry import create, model_class
from recsmith.simulate import simulate

optuna = pytest.importorskip("optuna")  # the ``tune`` extra (in ``dev``)
WEIGHTS = EventSettings().weights
SPEC = parse_split("temporal:0.8")


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    valid, rejected = validate_events(simulate(n_users=200, n_items=100).events, EventSettings())
    assert not rejected
    return valid


@pytest.mark.parametrize("model", sorted(tuning.SEARCH_SPACES))
def test_every_search_space_yields_valid_configs(model: str) -> None:
    """Random draws make configs the model accepts; None only where None is the default (the
    params file leaves None out, so train falls back to the default)."""
    space = tuning.search_space(model)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    defaults = model_class(model).Config.model_fields
    for _ in range(8):
        params = space(study.ask())
        create(model, **params)
        for key, value in params.items():
            assert value is not None or defaults[key].default is None, key


@pytest.mark.parametrize("model", ["popular", "trending"])
def test_models_without_hyper_parameters_have_nothing_to_tune(model: str) -> None:
    with pytest.raises(ValidationError, match="nothing to tune"):
        tuning.search_space(model)


def test_unknown_model_and_metric_are_errors(events: pd.DataFrame) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        tuning.search_space("nope")
    with pytest.raises(ValidationError, match="--metric"):
        tuning.tune_model(events, "ease", SPEC, WEIGHTS, n_trials=1, metric="auc")


def test_validation_split_lies_before_the_test_part(events: pd.DataFrame) -> None:
    splits = tuning.tuning_splits(events, SPEC)
    test_start = splits.outer.test["ts"].min()
    assert splits.validation.train["ts"].max() < test_start
    assert splits.validation.test["ts"].max() < test_start
    used = set(splits.validation.train["event_id"]) | set(splits.validation.test["event_id"])
    assert used == set(splits.outer.train["event_id"])
    assert used.isdisjoint(splits.outer.test["event_id"])


def test_no_trial_ever_sees_test_events(
    events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spy on what each trial fits on and is scored against."""
    seen: list[tuple[int, int]] = []
    real = tuning.evaluate_model

    def spy(name: str, data: Any, truth: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((int(data.event_ts.max()), len(data.event_ts)))
        return real(name, data, truth, *args, **kwargs)

    monkeypatch.setattr(tuning, "evaluate_model", spy)
    tuning.tune_model(events, "itemknn", SPEC, WEIGHTS, n_trials=3, seed=0)
    splits = tuning.tuning_splits(events, SPEC)
    assert len(seen) == 3
    for max_ts, n_events in seen:
        assert max_ts < splits.outer.test["ts"].min()
        assert n_events == len(splits.validation.train)


def test_same_seed_gives_the_same_search(events: pd.DataFrame) -> None:
    first = tuning.tune_model(events, "itemknn", SPEC, WEIGHTS, n_trials=4, seed=7)
    again = tuning.tune_model(events, "itemknn", SPEC, WEIGHTS, n_trials=4, seed=7)
    assert len(first.values) == 4
    assert first.best_params == again.best_params
    assert first.values == again.values
    assert first.best_value == max(first.values)
    assert first.validation == "validation:temporal:0.8"


def test_missing_optuna_names_the_extra(
    events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"recsmith\[tune\]"):
        tuning.tune_model(events, "ease", SPEC, WEIGHTS, n_trials=1)


def result(model: str, **params: Any) -> tuning.TuneResult:
    return tuning.TuneResult(model, "ndcg", 10, params, 0.25, [0.25], "validation:x", 10)


def test_params_file_round_trips_and_keeps_other_models(tmp_path: Path) -> None:
    path = tmp_path / "tuned.toml"
    tuning.write_params_file(path, result("ease", regularization=12.5), 3, 0)
    tuning.write_params_file(path, result("sknn", neighbors=40, recency_half_life_days=None), 3, 0)
    tuning.write_params_file(
        path, result("cooccurrence", metric="lift", min_support=2, neighbors=7), 3, 0
    )
    assert tuning.read_params_file(path, "ease") == {"regularization": 12.5}
    assert tuning.read_params_file(path, "sknn") == {"neighbors": 40}
    assert tuning.read_params_file(path, "cooccurrence")["metric"] == "lift"
    doc = tomllib.loads(path.read_text())
    assert doc["tuning"]["ease"]["metric"] == "ndcg@10"
    with pytest.raises(ValidationError, match=r"no models\.ials table"):
        tuning.read_params_file(path, "ials")
    with pytest.raises(FileNotFoundError):
        tuning.read_params_file(tmp_path / "missing.toml", "ease")
    foreign = tmp_path / "recsmith.toml"
    foreign.write_text('[store]\nurl = "sqlite:///x.db"\n')
    with pytest.raises(ValidationError, match="not a params file"):
        tuning.write_params_file(foreign, result("ease", regularization=1.0), 1, 0)


# ---- through the CLI ---------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate(n_users=200, n_items=100, seed=2)
    path = tmp_path_factory.mktemp("data") / "events.csv"
    sim.events[["user_id", "item_id", "timestamp", "event_type"]].to_csv(path, index=False)
    return path


def tune_args(events_file: Path, out: Path, *extra: str) -> list[str]:
    return [
        "tune", "--model", "itemknn", "--trials", "3", "--data", str(events_file),
        "--split", "temporal:0.8", "--seed", "5", "--out", str(out), *extra,
    ]  # fmt: skip


def test_cli_tune_then_train_uses_the_tuned_params(events_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned.toml"
    tuned = invoke(*tune_args(events_file, out))
    assert tuned.exit_code == 0, tuned.stderr
    assert "best validation ndcg@10:" in tuned.stdout
    assert "test ndcg" not in tuned.stdout  # the test part is only scored on request
    best = tomllib.loads(out.read_text())["models"]["itemknn"]
    assert set(best) == {"neighbors", "shrinkage", "binary"}

    trained = invoke(
        "train", "--model", "itemknn", "--data", str(events_file), "--params-file", str(out),
        "--out", str(tmp_path / "m"), "--json",
    )  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    config = json.loads(trained.stdout.strip().splitlines()[-1])["config"]
    assert {key: config[key] for key in best} == best

    override = invoke(
        "train", "--model", "itemknn", "--data", str(events_file), "--params-file", str(out),
        "--param", "neighbors=7", "--out", str(tmp_path / "m2"), "--json",
    )  # fmt: skip
    assert override.exit_code == 0, override.stderr
    config = json.loads(override.stdout.strip().splitlines()[-1])["config"]
    assert config["neighbors"] == 7 and config["shrinkage"] == best["shrinkage"]


def test_cli_tune_is_reproducible_and_reports_test_only_on_request(
    events_file: Path, tmp_path: Path
) -> None:
    first = invoke(*tune_args(events_file, tmp_path / "a.toml"))
    again = invoke(*tune_args(events_file, tmp_path / "b.toml", "--report-test"))
    assert first.exit_code == 0 and again.exit_code == 0, again.stderr
    models = [tomllib.loads((tmp_path / n).read_text())["models"] for n in ("a.toml", "b.toml")]
    assert models[0] == models[1]
    assert "test ndcg@10 of the best params (temporal:0.8):" in again.stdout


@pytest.mark.parametrize("quiet", [False, True])
def test_cli_tune_progress_bar_shows_on_a_terminal_unless_quiet(
    events_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet: bool
) -> None:
    terminal = io.StringIO()  # stderr as a terminal would receive it
    console = Console(file=terminal, force_terminal=True, width=120)
    monkeypatch.setattr(cli_common, "stderr", console)
    monkeypatch.setattr(tune_cli, "stderr", console)
    flags = ["-q"] if quiet else []
    outcome = invoke(*flags, *tune_args(events_file, tmp_path / "p.toml"))
    assert outcome.exit_code == 0, outcome.stderr
    shown = terminal.getvalue()
    if quiet:
        assert "tuning" not in shown
    else:
        assert "tuning itemknn" in shown and "3/3" in shown and "best 0." in shown


@pytest.mark.parametrize(
    ("model", "message"), [("nope", "unknown model 'nope'"), ("popular", "nothing to tune")]
)
def test_cli_tune_rejects_models_it_cannot_tune(
    events_file: Path, tmp_path: Path, model: str, message: str
) -> None:
    outcome = invoke("tune", "--model", model, "--data", str(events_file))
    assert outcome.exit_code == 2
    assert message in outcome.stderr


def test_cli_train_params_file_without_the_models_table(events_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[models.ease]\nregularization = 10.0\n")
    outcome = invoke(
        "train", "--model", "itemknn", "--data", str(events_file), "--params-file", str(path),
        "--out", str(tmp_path / "m"),
    )  # fmt: skip
    assert outcome.exit_code == 2
    assert "no models.itemknn table" in outcome.stderr
