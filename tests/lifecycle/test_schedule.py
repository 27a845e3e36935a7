"""Scheduled retrains: due by the registry's record, one run at a time across processes, and
started by a server that follows the registry."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from fastapi.testclient import TestClient
from grown_shop import grown_shop

from recsmith.config import Settings
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.registry_lock import registry_lock
from recsmith.lifecycle.schedule import LAST_RUN, due, try_retrain
from recsmith.serving import create_app


def _settings(url: str, registry: Path, every: str) -> Settings:
    return Settings(
        store={"url": url},
        serving={"registry": registry},
        lifecycle={"retrain_every": every, "retrain_gates": ["ndcg@10 >= 0.5 * current"]},
    )


def test_due_reads_the_registry_record(tmp_path: Path) -> None:
    assert due(tmp_path, 3600)  # never ran
    (tmp_path / LAST_RUN).write_text("1000.0\n")
    assert not due(tmp_path, 3600, now=1000.0 + 3599)
    assert due(tmp_path, 3600, now=1000.0 + 3600)


def test_one_run_at_a_time_and_only_when_due(events: pd.DataFrame, tmp_path: Path) -> None:
    url, registry = grown_shop(tmp_path, events, "popular")
    models = ModelRegistry(registry)
    before = models.current()
    settings = _settings(url, registry, "1h")
    with registry_lock(registry, "retrain"):  # another replica is retraining
        assert try_retrain(settings) is False
    assert models.current() == before and len(models.releases()) == 1
    assert try_retrain(settings) is True
    assert models.current() != before and models.history() == [before]
    assert try_retrain(settings) is False  # ran within the hour: not due
    assert len(models.releases()) == 2


def test_a_server_runs_the_schedule(events: pd.DataFrame, tmp_path: Path) -> None:
    url, registry = grown_shop(tmp_path, events, "popular")
    models = ModelRegistry(registry)
    before = models.current()
    with TestClient(create_app(_settings(url, registry, "1s"))):
        deadline = time.monotonic() + 90
        while models.current() == before and time.monotonic() < deadline:
            time.sleep(0.2)
    assert models.current() != before
