"""The app factory's lifespan: it opens the store and loads the model from settings on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore


def _admin(db_path: Path) -> dict[str, str]:
    setup = SQLiteStore(db_path)
    try:
        _, secret = create_api_key(setup, "admin", ["admin"])
    finally:
        setup.close()
    return {"Authorization": f"Bearer {secret}"}


def test_lifespan_opens_store_and_loads_model(
    settings: Settings, db_path: Path, bundle: ModelBundle, make_event: Any
) -> None:
    headers = _admin(db_path)
    with TestClient(create_app(settings)) as client:
        ready = client.get("/health/ready").json()
        assert ready["model_version"] == bundle.version
        response = client.post("/v1/events", json=[make_event()], headers=headers)
        assert response.json()["accepted"] == 1
    reopened = SQLiteStore(db_path)
    try:
        assert reopened.count_events() == 1
    finally:
        reopened.close()


def test_missing_model_dir_starts_without_model(db_path: Path, tmp_path: Path) -> None:
    settings = Settings(
        store={"url": f"sqlite:///{db_path}"}, serving={"model_dir": tmp_path / "not-trained-yet"}
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health/ready").json()["failed"] == ["model"]


def test_broken_model_dir_fails_startup(db_path: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"format_version": 999}')
    settings = Settings(store={"url": f"sqlite:///{db_path}"}, serving={"model_dir": broken})
    with (
        pytest.raises(ValueError, match="unsupported model format"),
        TestClient(create_app(settings)),
    ):
        pass


class ClosingStore(SQLiteStore):
    closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_only_a_store_the_app_opened_is_closed(
    settings: Settings, bundle: ModelBundle, tmp_path: Path
) -> None:
    given = ClosingStore(tmp_path / "given.sqlite")
    with TestClient(create_app(settings, bundle=bundle, store=given)):
        pass
    assert given.closed == 0  # the caller owns it
    given.close()
