"""``recsmith retrain`` end to end on a simulated shop whose store grows after a release.

The current release is trained on the first 70 % of the events (by time); the rest arrive later.
The holdout is then the newest 10 %, which neither side has seen. The candidate's figure is checked
against ``evaluation.runner.evaluate_model`` on the same split — the offline protocol, not the
retrain code — and the gate's verdict against the two figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from grown_shop import grown_shop
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle, read_manifest
from recsmith.cli.app import app
from recsmith.config import Settings
from recsmith.evaluation.metrics import compute_metrics
from recsmith.evaluation.runner import evaluate_model, ground_truth
from recsmith.events.schema import User
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.pipeline.artifact import load_pipeline, train_pipeline
from recsmith.pipeline.config import load_pipeline_config
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()


def _retrain(url: str, registry: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(
        app,
        ["retrain", "--registry", str(registry), "--json", *args],
        env={"RECSMITH_STORE__URL": url},
    )
    assert result.exit_code in (0, 3), result.stderr + result.stdout
    return result.exit_code, json.loads(result.stdout)


def test_a_better_candidate_is_deployed_with_its_figures(
    events: pd.DataFrame, tmp_path: Path
) -> None:
    url, registry = grown_shop(tmp_path, events, "popular")
    before = ModelRegistry(registry).current()
    code, report = _retrain(url, registry, "--model", "itemknn", "--gate", "ndcg@10 >= current")
    assert code == 0 and report["passed"] is True

    # the holdout: the newest 10 % by time (after the current release's 70 %)
    ts = events["ts"].to_numpy()
    start = int(np.quantile(ts, 0.9, method="higher"))
    assert report["holdout"] == {
        "start_us": start,
        "train_events": int((ts < start).sum()),
        "test_events": int((ts >= start).sum()),
    }
    # the candidate's figure is the offline protocol's on the same split
    train = events[ts < start]
    data = Interactions.from_events(train, Settings().events.weights)
    truth = ground_truth(data, events[ts >= start], Settings().events.weights)
    offline = evaluate_model("itemknn", data, truth, 10)
    assert report["users"] == len(truth.user_ids)
    assert report["candidate_metrics"]["ndcg"] == pytest.approx(offline.metrics["ndcg"], abs=1e-9)
    # the current release's figure: its lists as a server makes them (what each user had before
    # the holdout left out, as the store would tell a server), by the offline metrics
    released = ModelBundle.load(ModelRegistry(registry).path(before))
    history = [sorted(set(train.loc[train["user_id"] == u, "item_id"])) for u in truth.user_ids]
    top, _ = released.top_k(truth.user_ids, 10, extra_seen=history)
    mapped = data.items.to_index(released.items.to_external(top.ids.ravel())).reshape(top.ids.shape)
    lists = np.where(top.ids >= 0, mapped, -1)
    served = compute_metrics(lists.astype(np.int64), truth.matrix, truth.matrix.shape[1], k=10)
    assert report["current_metrics"]["ndcg"] == pytest.approx(served.means["ndcg"], abs=1e-9)
    assert report["candidate_metrics"]["ndcg"] > report["current_metrics"]["ndcg"]
    (gate,) = report["gates"]
    assert gate["threshold"] == pytest.approx(report["current_metrics"]["ndcg"])

    # deployed: the new current release says why it shipped, and was trained on every event
    models = ModelRegistry(registry)
    assert report["deployed"] == models.current() != before
    manifest = read_manifest(models.path(models.current()))
    assert manifest["model"] == "itemknn"
    assert manifest["retrain"]["gates"] == report["gates"]
    assert manifest["data_profile"]["n_events"] == len(events)
    store = SQLiteStore(Path(url.removeprefix("sqlite:///")))
    (record,) = [r for r in store.scan_audit() if r.action == "retrain"]
    store.close()
    assert (record.target, record.outcome) == (report["deployed"], "ok")
    assert record.detail["passed"] is True and record.detail["current"] == before

    # nothing newer than that release: nothing to judge a second retrain on
    again = runner.invoke(
        app, ["retrain", "--registry", str(registry)], env={"RECSMITH_STORE__URL": url}
    )
    assert again.exit_code == 3 and "nothing new to retrain on" in again.stderr


def test_a_worse_candidate_is_refused_and_nothing_changes(
    events: pd.DataFrame, tmp_path: Path
) -> None:
    url, registry = grown_shop(tmp_path, events, "itemknn")
    models = ModelRegistry(registry)
    before, published = models.current(), [r.version for r in models.releases()]
    code, report = _retrain(url, registry, "--model", "popular")  # default: >= 0.98 * current
    assert code == 3 and report["passed"] is False and report["deployed"] is None
    (gate,) = report["gates"]
    assert gate["gate"] == "ndcg@10 >= 0.98 * current"
    assert gate["candidate"] < gate["threshold"] == pytest.approx(0.98 * gate["current"])
    assert models.current() == before
    assert [r.version for r in models.releases()] == published


def test_a_dry_run_judges_and_deploys_nothing(events: pd.DataFrame, tmp_path: Path) -> None:
    url, registry = grown_shop(tmp_path, events, "popular")
    before = ModelRegistry(registry).current()
    # the current config (popular) again, with a gate it passes
    code, report = _retrain(url, registry, "--dry-run", "--gate", "ndcg@10 >= 0.5 * current")
    assert code == 0 and report["passed"] and report["deployed"] is None, json.dumps(report)
    assert ModelRegistry(registry).current() == before


def test_a_pipeline_candidate_builds_each_events_matrix_once(
    events: pd.DataFrame, tmp_path: Path, matrices_built: list[int], two_source_pipeline: Path
) -> None:
    """The judge trains the pipeline on the matrix it scores on, the release on the matrix of
    every event: one ``from_events`` each (were two: the pipeline sorted them again), and the
    same figures and release as a pipeline that builds its own."""
    url, registry = grown_shop(tmp_path, events, "popular")
    toml = two_source_pipeline
    matrices_built.clear()  # the current release's training counted too
    code, report = _retrain(url, registry, "--pipeline", str(toml), "--gate", "ndcg@10 >= 0")
    assert code == 0 and report["deployed"], json.dumps(report)
    start = report["holdout"]["start_us"]
    train = events[events["ts"].to_numpy() < start]
    assert matrices_built == [len(train), len(events)]  # the holdout's past, then every event

    # the same as pipelines that build their own matrices: the judged figure ...
    config = load_pipeline_config(toml)
    weights = dict(Settings().events.weights)
    own = train_pipeline(config, train, weights)
    data = Interactions.from_events(train, weights)
    truth = ground_truth(data, events[events["ts"].to_numpy() >= start], weights)
    top, _, _ = own.top_k(truth.user_ids, 10)
    scored = compute_metrics(top.ids.astype(np.int64), truth.matrix, truth.matrix.shape[1], k=10)
    assert report["candidate_metrics"]["ndcg"] == pytest.approx(scored.means["ndcg"], abs=1e-12)
    # ... and the release's lists
    released = load_pipeline(ModelRegistry(registry).path(report["deployed"]))
    whole = train_pipeline(config, events, weights)
    users = whole.bundle.users.to_external(np.arange(len(whole.bundle.users)))
    assert np.array_equal(released.top_k(users, 10)[0].ids, whole.top_k(users, 10)[0].ids)


def test_a_retrained_pipeline_is_fitted_on_the_stores_user_profiles(
    events: pd.DataFrame,
    tmp_path: Path,
    two_source_pipeline: Path,
    store_tiers: Callable[[str, Sequence[str]], list[User]],
) -> None:
    """``train --pipeline`` hands the pipeline the store's user profiles (segment popularity,
    the ranker's profile features); a retrain must too, or a scheduled retrain deploys a
    release without them (it did: the pipeline was handed the matrix and no users)."""
    url, registry = grown_shop(tmp_path, events, "popular")
    profiled = store_tiers(url, sorted(events["user_id"].unique())[:40])
    toml = two_source_pipeline
    code, report = _retrain(url, registry, "--pipeline", str(toml), "--gate", "ndcg@10 >= 0")
    assert code == 0 and report["deployed"], json.dumps(report)
    manifest = read_manifest(ModelRegistry(registry).path(report["deployed"]))
    # the oracle: the segments a pipeline trained directly on these users reports
    direct = train_pipeline(
        load_pipeline_config(toml), events, dict(Settings().events.weights), users=profiled
    )
    assert direct.manifest["segments"]["profiled_users"] == 40
    assert manifest["segments"] == direct.manifest["segments"]
