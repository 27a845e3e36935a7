"""Online state: in-process and Redis backends, real-time effect of ingestion, Redis outages.

Redis tests use the server named by RECSMITH_TEST_REDIS_URL (default redis://127.0.0.1:6379/15);
with RECSMITH_REQUIRE_REDIS=1 (CI) an unreachable server fails them instead of skipping. The
outage test starts a private redis-server on a free port and kills that one, never the shared one.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.serving.online_state import LocalState, RedisState
from recsmith.serving.redis_link import RedisLink
from recsmith.serving.response_cache import RedisCache
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port
from recsmith.testing.private_redis import private_redis as own_redis
from recsmith.testing.private_redis import start_redis

REDIS_URL = os.environ.get("RECSMITH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _shared_redis() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("RECSMITH_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis required but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}")


def test_local_state_keeps_latest_distinct_items_newest_first() -> None:
    state = LocalState(per_user=4, max_users=2)
    state.push([("a", "i1"), ("a", "i2"), ("a", "i1"), ("a", "i3")])
    assert state.recent("a", 10) == ["i3", "i1", "i2"]
    state.push([("b", "x"), ("c", "y")])  # a is the least recently updated: forgotten
    assert state.recent("a", 10) == [] and state.recent("c", 1) == ["y"]


def test_redis_state_is_shared_between_instances() -> None:
    _shared_redis()
    user = f"user-{uuid.uuid4().hex}"
    writer, reader = RedisState(REDIS_URL, per_user=3), RedisState(REDIS_URL, per_user=3)
    try:
        writer.push([(user, "i1"), (user, "i2"), (user, "i3"), (user, "i4")])
        assert reader.recent(user, 5) == ["i4", "i3", "i2"]  # trimmed to per_user
        assert not reader.degraded
    finally:
        redis.Redis.from_url(REDIS_URL).delete(RedisState.key(user))
        writer.close()
        reader.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with own_redis(tmp_path) as (url, proc):
        yield url, proc


@pytest.fixture(scope="module")
def session_pipeline(small_pipeline: Callable[[list[dict[str, Any]]], Pipeline]) -> Pipeline:
    return small_pipeline(
        [
            {"name": "knn", "model": "itemknn", "quota": 20},
            {"name": "recent", "model": "itemknn", "use": "recent", "quota": 20},
        ],
    )


def test_ingest_moves_a_visitor_to_the_session_tier_and_survives_a_redis_outage(
    private_redis: tuple[str, subprocess.Popen[bytes]],
    session_pipeline: Pipeline,
    db_path: Path,
    store: SQLiteStore,
    keys: dict[str, dict[str, str]],
    make_event: Any,
) -> None:
    url, proc = private_redis
    settings = Settings(store={"url": f"sqlite:///{db_path}"}, serving={"state_url": url})
    app = create_app(settings, bundle=session_pipeline, store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        before = client.get("/v1/users/visitor-1/recommendations?k=5", headers=keys["read"])
        assert before.json()["tier"] == "popular"
        event = make_event(user_id="visitor-1", item_id="i3")
        assert client.post("/v1/events", json=[event], headers=keys["ingest"]).status_code == 200
        after = client.get("/v1/users/visitor-1/recommendations?k=5", headers=keys["read"])
        assert after.json()["tier"] == "session"  # the very next request follows the new item
        assert "i3" not in {i["item_id"] for i in after.json()["items"]}
        assert redis.Redis.from_url(url).lrange(RedisState.key("visitor-1"), 0, -1) == [b"i3"]
        cached = redis.Redis.from_url(url).keys(RedisCache.PREFIX + "*")
        assert len(cached) == 2  # both lists, shared with any other replica

        proc.kill()  # Redis goes down mid-traffic
        proc.wait()
        event = make_event(user_id="visitor-2", item_id="i4")
        assert client.post("/v1/events", json=[event], headers=keys["ingest"]).status_code == 200
        during = client.get("/v1/users/visitor-2/recommendations?k=5", headers=keys["read"])
        assert during.status_code == 200 and during.json()["tier"] == "session"
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["degraded"] == ["online_state", "response_cache"]
        exposed = client.get("/metrics").text
        assert 'recsmith_degraded{component="online_state"} 1.0' in exposed
        assert 'recsmith_degraded{component="response_cache"} 1.0' in exposed


def test_degraded_holds_from_start_through_idle_time_until_redis_answers(
    monkeypatch: pytest.MonkeyPatch,
    session_pipeline: Pipeline,
    db_path: Path,
    store: SQLiteStore,
    tmp_path: Path,
    keys: dict[str, dict[str, str]],
    make_event: Any,
) -> None:
    """Readiness tells the truth about Redis from start-up to recovery, and what was ingested
    during the outage reaches Redis once it answers (where other replicas read it)."""
    monkeypatch.setattr(RedisLink, "RETRY_S", 0.2)
    port = free_port()  # nothing listens there yet
    settings = Settings(
        store={"url": f"sqlite:///{db_path}"}, serving={"state_url": f"redis://127.0.0.1:{port}/0"}
    )
    app = create_app(settings, bundle=session_pipeline, store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        both = ["online_state", "response_cache"]
        assert client.get("/health/ready").json()["degraded"] == both  # before any request
        time.sleep(0.5)  # idle past the retry time: still down, still said
        assert client.get("/health/ready").json()["degraded"] == both
        assert 'recsmith_degraded{component="online_state"} 1.0' in client.get("/metrics").text
        event = make_event(user_id="visitor-9", item_id="i5")
        assert client.post("/v1/events", json=[event], headers=keys["ingest"]).status_code == 200
        proc = start_redis(port, tmp_path)
        try:
            deadline = time.monotonic() + 10  # a check after the retry time reaches Redis
            while (ready := client.get("/health/ready").json())["degraded"]:
                assert time.monotonic() < deadline, (
                    f"still degraded 10 s after Redis came up: {ready}"
                )
                time.sleep(0.05)
            assert (ready["status"], ready["degraded"]) == ("ok", [])
            assert 'recsmith_degraded{component="online_state"} 0.0' in client.get("/metrics").text
            missed = redis.Redis(port=port).lrange(RedisState.key("visitor-9"), 0, -1)
            assert missed == [b"i5"]  # handed over when Redis came back, no new event needed
        finally:
            proc.kill()
            proc.wait()


def test_the_outage_backlog_keeps_the_newest_100_000_events_for_redis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """README: what is ingested while Redis is down is written to Redis once it answers, up to
    100,000 events per server process. Past that the oldest go: 100,005 events during an outage
    reach Redis as exactly the newest 100,000, and the 5 oldest are lost to every replica —
    this one too, since it reads Redis again once it answers."""
    monkeypatch.setattr(RedisLink, "RETRY_S", 0.05)
    port = free_port()  # nothing listens there yet: down from the start
    state = RedisState(f"redis://127.0.0.1:{port}/0")
    assert state.degraded
    cap = 100_000
    # the 5 oldest events go to "dropped", the 6th to "kept", then 99,999 to 1,000 others
    events = [("dropped", f"d{i}") for i in range(5)] + [("kept", "k0")]
    events += [(f"u{n % 1000}", f"i{n}") for n in range(cap - 1)]
    for start in range(0, len(events), 10_000):  # ingested in batches, as requests arrive
        state.push(events[start : start + 10_000])
    assert state.recent("dropped", 5) == ["d4", "d3", "d2", "d1", "d0"]  # served locally meanwhile

    proc = start_redis(port, tmp_path)
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 30
        while state.degraded:  # the probe that reaches Redis hands the backlog over
            assert time.monotonic() < deadline, "Redis never answered the state again"
            state.probe()
        assert client.lrange(RedisState.key("kept"), 0, -1) == [b"k0"]  # the oldest one kept
        assert client.exists(RedisState.key("dropped")) == 0  # the 5 past the cap: gone
        assert client.dbsize() == 1 + 1000  # "kept" and the 1,000 others
        # u999's events are n = 999, 1999, ..., 98_999: Redis keeps its newest 50, newest first
        newest = [f"i{n}" for n in range(cap - 2, -1, -1) if n % 1000 == 999][:50]
        assert client.lrange(RedisState.key("u999"), 0, -1) == [i.encode() for i in newest]
        assert state.recent("dropped", 5) == []  # Redis answers again: it is the truth now
    finally:
        state.close()
        proc.kill()
        proc.wait()
