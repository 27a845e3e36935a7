"""The fairness keys through a trained pipeline: calibration matches users' histories, floors
hold on served lists, and the server's watch turns the decision log into gauges and a boost."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.decisions.record import decision
from recsmith.errors import ValidationError
from recsmith.evaluation.fairness import group_matrix, miscalibration
from recsmith.events.schema import Item
from recsmith.fairness.stage import build_fairness
from recsmith.fairness.watch import FairnessWatch
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank import ItemTable
from recsmith.serving.metrics import Metrics
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend

K = 10


def _by_size(items: list[Item]) -> list[str]:
    """Primary categories, fewest items first."""
    counts = pd.Series([it.categories[0] for it in items if it.categories]).value_counts()
    return counts.sort_values(kind="stable").index.tolist()


@pytest.fixture(scope="module")
def small(items: list[Item]) -> str:
    """The category with the fewest items (the group a floor protects)."""
    return _by_size(items)[0]


@pytest.fixture(scope="module")
def fair(config: PipelineConfig, events: pd.DataFrame, items: list[Item], small: str) -> Pipeline:
    keys = {
        "calibration": 0.9,
        "exposure": [{"property": "category", "in": [small], "at_least": 0.2}],
        "amortised": {"strength": 1.0, "refresh_s": 60},
    }
    cfg = config.model_copy(update={"rerank": config.rerank.model_validate(keys)})
    return train_pipeline(cfg, events, dict(EventSettings().weights), items=items)


def _plain(pipeline: Pipeline) -> Pipeline:
    out = copy.copy(pipeline)
    out.reranker = replace(pipeline.reranker, fairness=None)
    return out


def _lists(pipeline: Pipeline, users: np.ndarray) -> np.ndarray:
    """int [n_users, K] item indices of the served lists, -1 = empty slot."""
    out = np.full((len(users), K), -1)
    for u, row in enumerate(pipeline.answer(users, K).lists.item_ids):  # test-side reshaping
        ids = np.asarray(row, dtype=object)
        out[u, : len(ids)] = pipeline.bundle.items.to_index(ids)
    return out


def test_calibration_brings_lists_closer_to_each_history(
    fair: Pipeline, events: pd.DataFrame, items: list[Item]
) -> None:
    users = np.asarray(sorted(events["user_id"].unique())[:150], dtype=object)
    history_rows = fair.bundle.users.to_index(users)
    history = sparse.csr_array(fair.bundle.seen[history_rows])
    by_id = {it.item_id: it.categories for it in items}
    names = fair.bundle.items.to_external(np.arange(len(fair.bundle.items)))
    groups, _ = group_matrix([by_id.get(n, []) for n in names])
    before = np.nanmean(miscalibration(_lists(_plain(fair), users), history, groups))
    after = np.nanmean(miscalibration(_lists(fair, users), history, groups))
    assert after < 0.8 * before


def test_floors_hold_on_served_lists(fair: Pipeline, items: list[Item], small: str) -> None:
    users = np.asarray([f"u{j:04d}" for j in range(60)] + ["nobody"], dtype=object)
    recs = _lists(fair, users)
    in_group = {it.item_id for it in items if small in it.categories}
    names = fair.bundle.items.to_external(np.maximum(recs, 0).ravel()).reshape(recs.shape)
    held = ((recs >= 0) & np.isin(names, list(in_group))).sum(axis=1)
    assert (held >= 2).mean() > 0.9  # candidates hold two of the group for nearly everyone
    plain = _lists(_plain(fair), users)
    plain_names = fair.bundle.items.to_external(np.maximum(plain, 0).ravel()).reshape(recs.shape)
    assert held.mean() > ((plain >= 0) & np.isin(plain_names, list(in_group))).sum(axis=1).mean()


@pytest.mark.parametrize("kind", BACKENDS)
def test_the_watch_sets_gauges_and_boosts_groups_the_log_starved(
    fair: Pipeline, items: list[Item], tmp_path: Path, kind: str
) -> None:
    with open_backend(kind, tmp_path) as (store, _):
        _watch_boosts_what_the_log_starved(fair, items, store)


def _watch_boosts_what_the_log_starved(
    fair: Pipeline, items: list[Item], store: EventStore
) -> None:
    store.upsert_items(items)
    big = _by_size(items)[-1]
    shown = [it.item_id for it in items if it.categories[0] == big][:K]
    store.append_decisions(
        [
            decision(
                f"r{j}",
                unit=f"u{j}",
                unit_kind="user",
                route="recommendations",
                release="v",
                item_ids=shown,
                scores=[1.0] * len(shown),
                sources=[["s"]] * len(shown),
            )
            for j in range(5)
        ]
    )
    metrics = Metrics.create()
    watch = FairnessWatch(store, lambda: fair, metrics.set_exposure)
    assert watch.interval_s == 60
    watch.refresh()
    text = generate_latest(metrics.registry).decode()
    assert f'recsmith_exposure_share{{group="{big}"}} 1.0' in text
    assert "recsmith_exposure_gini" in text
    amortised = fair.reranker.fairness.amortised
    codes = fair.table.category
    shown_code = fair.table.category_names.index(big)
    # the shown group is over-exposed: no boost (and no bury); every other group is lifted
    assert np.all(amortised.log_boost[codes == shown_code] == 0.0)
    assert np.all(amortised.log_boost[(codes >= 0) & (codes != shown_code)] > 0.0)


@pytest.mark.parametrize(
    ("keys", "where"),
    [
        (
            {"exposure": [{"property": "category", "equals": "Garden", "at_least": 0.1}]},
            "rerank.exposure.0",
        ),
        ({"calibration": 0.5, "calibration_property": "colour"}, "rerank.calibration_property"),
    ],
)
def test_a_setting_the_catalogue_cannot_honour_fails_before_fitting(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item], keys: dict, where: str
) -> None:
    """The catalogue files items under lower-case names ("garden") and has no "colour"."""
    cfg = config.model_copy(update={"rerank": config.rerank.model_validate(keys)})
    with pytest.raises(ValidationError, match=where):
        train_pipeline(cfg, events, dict(EventSettings().weights), items=items)


def test_the_default_pipeline_file_builds_no_fairness_stage() -> None:
    """No fairness key set: the re-ranker holds no fairness stage, so lists and cost are as
    before (the rest of the suite pins those lists)."""
    keys = default_pipeline_config().rerank.fairness_keys()
    assert build_fairness(ItemTable.unknown(3), popularity=np.ones(3), **keys) is None
