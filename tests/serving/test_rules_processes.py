"""Two real server processes (replicas) over one store: live rules set through one are applied by
the other within a second, and a return to the pipeline's rules too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import live_server
from rules_fixtures import category_of, rules_pipeline

from recsmith.config import Settings
from recsmith.pipeline.artifact import save_pipeline
from recsmith.serving import create_api_key
from recsmith.store.open import open_store

pytestmark = pytest.mark.slow
PROMISE_S = 1.0
EXCLUDE_C0 = {
    "rerank": {"rules": [{"type": "filter", "property": "category", "in": ["c0"], "negate": True}]}
}


def items(base: str, secret: str) -> list[str]:
    response = httpx.get(
        f"{base}/v1/users/u1/recommendations?k=8", headers={"X-API-Key": secret}, timeout=5
    )
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def until(check: Any, limit_s: float = 5.0) -> float:
    """Seconds until ``check()`` held (polled every 20 ms); fails after ``limit_s``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit_s, "never happened"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_put_in_one_replica_is_applied_by_the_other_within_a_second(
    tmp_path: Path, training_records: list[dict[str, Any]]
) -> None:
    model_dir = tmp_path / "model"
    save_pipeline(rules_pipeline(training_records), model_dir)
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    settings = Settings(store={"url": url}, serving={"model_dir": model_dir})
    store = open_store(url)
    _, admin = create_api_key(store, "merchandiser", ["admin"])
    _, read = create_api_key(store, "shop", ["read"])
    (a_dir := tmp_path / "a").mkdir()
    (b_dir := tmp_path / "b").mkdir()
    try:
        with live_server(settings, a_dir) as a, live_server(settings, b_dir) as b:
            baseline = items(b.base, read)
            assert "c0" in {category_of(i) for i in baseline}
            put = httpx.put(
                f"{a.base}/v1/admin/rules", json=EXCLUDE_C0, headers={"X-API-Key": admin}
            )
            assert put.status_code == 200, put.text
            started = time.monotonic()
            assert "c0" not in {category_of(i) for i in items(a.base, read)}  # at once
            took = until(lambda: "c0" not in {category_of(i) for i in items(b.base, read)})
            assert took <= PROMISE_S, took
            assert time.monotonic() - started <= PROMISE_S + 0.1
            gone = httpx.delete(f"{a.base}/v1/admin/rules", headers={"X-API-Key": admin})
            assert gone.status_code == 200
            assert until(lambda: items(b.base, read) == baseline) <= PROMISE_S
    finally:
        store.close()
