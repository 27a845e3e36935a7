"""A server on a store open read-only (``?mode=ro``: a production copy looked at) answers reads,
and refuses writes with a 503 that says the store is read-only: no ``Retry-After`` (retrying will
not make it writable), and no outage logged, since the store is not down."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.serving.app import create_app
from recsmith.store.open import open_store


def test_a_write_on_a_read_only_store_is_a_503_without_retry_after(
    tmp_path: Path,
    bundle_dir: Path,
    bundle: ModelBundle,
    make_event: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "copy.sqlite"
    writable = open_store(f"sqlite:///{path}")
    _, secret = create_api_key(writable, "ops", ["ingest", "read"])
    writable.close()
    url = f"sqlite:///{path}?mode=ro"
    store = open_store(url)
    settings = Settings(store={"url": url}, serving={"model_dir": bundle_dir})
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
            listed = client.get("/v1/users/u1/recommendations?k=3", headers=headers)
            assert listed.status_code == 200, listed.text
            with caplog.at_level(logging.WARNING, logger="recsmith.store"):
                posted = client.post("/v1/events", json=[make_event()], headers=headers)
    finally:
        store.close()
    assert posted.status_code == 503, posted.text
    assert "retry-after" not in posted.headers
    body = posted.json()
    assert body["detail"] == "the event store is open read-only: this server cannot write to it"
    assert f"{path} is open read-only (opened with ?mode=ro)" in body["cause"]
    assert not [r for r in caplog.records if "unavailable" in r.getMessage()]
