"""Rate limits shared through Redis: two bucket holders (two processes' worth) draw on one bucket,
two real server processes over one Redis together admit what one would, and a Redis that does not
answer leaves each process its own bucket and says so in readiness."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from recsmith.access.rate_limit import Rate
from recsmith.access.shared_rate_limit import PREFIX, SharedTokenBuckets
from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.governance.keys import create_api_key
from recsmith.serving import create_app
from recsmith.store.open import open_store
from recsmith.testing.backends import redis_url_or_skip

#: A port nothing listens on: a Redis that is down.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


def test_two_holders_share_one_bucket(redis_url: str) -> None:
    """Five a second: holder A takes the five, so holder B (another process) must wait; the
    wait is what Redis's bucket says, about 1/5 s less the refill since."""
    rates = {"read": Rate(5, 1.0)}
    a, b = SharedTokenBuckets(redis_url, rates), SharedTokenBuckets(redis_url, rates)
    key = uuid.uuid4().hex
    assert [a.admit(key, "read") for _ in range(5)] == [0.0] * 5
    wait = b.admit(key, "read")
    assert 0.15 < wait <= 0.2
    assert a.admit(key, "ingest") == 0.0  # a scope without a rate is never limited
    assert b.admit(uuid.uuid4().hex, "read") == 0.0  # another key has its own bucket
    time.sleep(wait + 0.01)
    assert b.admit(key, "read") == 0.0  # refilled by Redis's clock
    ttl = a.link.client.pttl(f"{PREFIX}{key}:read")
    assert 0 < ttl <= 2200  # an idle bucket goes once it would be full again (plus a second)
    assert not a.degraded and not b.degraded


def test_without_redis_each_process_keeps_its_own_bucket() -> None:
    buckets = SharedTokenBuckets(DEAD_REDIS, {"read": Rate(3, 60.0)})
    assert buckets.degraded
    assert [buckets.admit("k", "read") for _ in range(3)] == [0.0] * 3
    assert buckets.admit("k", "read") == pytest.approx(20.0, rel=0.01)  # a token per 20 s


def test_readiness_names_the_fallback(
    settings: Settings, bundle: ModelBundle, store_url: str
) -> None:
    def degraded(rate_limits: dict[str, str]) -> list[str]:
        served = settings.model_copy(
            update={
                "serving": settings.serving.model_copy(update={"state_url": DEAD_REDIS}),
                "auth": settings.auth.model_copy(update={"rate_limits": rate_limits}),
            }
        )
        with TestClient(create_app(served, bundle=bundle)) as client:
            return client.get("/health/ready").json()["degraded"]

    assert "rate_limits" in degraded({"read": "10/s"})
    assert "rate_limits" not in degraded({})  # nothing limited: nothing to share
    del store_url


@pytest.mark.slow
def test_two_servers_over_one_redis_admit_the_rate_once(
    bundle_dir: Path, tmp_path: Path, redis_url: str
) -> None:
    """20 a minute (a token every 3 s): 30 requests alternating between two replicas within a
    few seconds get 20 answers, or 21 if a token came back meanwhile. Unshared, each replica
    would have let its 15 through (30)."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    settings = Settings(
        store={"url": url},
        serving={"model_dir": bundle_dir, "state_url": redis_url},
        auth={"rate_limits": {"read": "20/min"}},
    )
    store = open_store(url)
    (a_dir := tmp_path / "a").mkdir()
    (b_dir := tmp_path / "b").mkdir()
    try:
        _, secret = create_api_key(store, "busy", ["read"])
        with live_server(settings, a_dir) as a, live_server(settings, b_dir) as b:
            codes: dict[str, list[int]] = {a.base: [], b.base: []}
            started = time.monotonic()
            with httpx.Client(headers={"X-API-Key": secret}, timeout=5) as http:
                for n in range(30):
                    base = (a.base, b.base)[n % 2]
                    codes[base].append(http.get(f"{base}/v1/popular").status_code)
            elapsed = time.monotonic() - started
    finally:
        store.close()
    every = codes[a.base] + codes[b.base]
    assert set(every) == {200, 429}
    refills = int(elapsed / 3.0)
    assert 20 <= every.count(200) <= 20 + refills, (elapsed, codes)
    assert 429 in codes[a.base] and 429 in codes[b.base]  # both replicas refuse
