"""The bandit counts through Redis (``exploration.redis_arms``), with a real Redis and a real
SQLite store: boards share counts through the Redis copy, the store holds the same totals (the
source of truth), reads come from the copy until it expires and is rebuilt from the store, a
flushed Redis (a restart without persistence) loses nothing, and an unreachable Redis leaves the
store alone working."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import redis

from recsmith.exploration.board import BanditBoard
from recsmith.exploration.redis_arms import KEYS, RedisArms, open_arms
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.backends import redis_url_or_skip

KINDS = {"click": "click", "purchase": "purchase"}


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[SQLiteStore, str, redis.Redis]]:
    url = redis_url_or_skip()
    client = redis.Redis.from_url(url, decode_responses=True)
    client.delete(*KEYS)
    store = SQLiteStore(tmp_path / "s.sqlite")
    yield store, url, client
    client.delete(*KEYS)
    client.close()
    store.close()


def clicks(*items: str) -> pd.DataFrame:
    return pd.DataFrame({"item_id": list(items), "event_type": "click"})


def test_boards_share_counts_through_redis_and_the_store_keeps_the_truth(shared) -> None:  # type: ignore[no-untyped-def]
    store, url, client = shared
    one, two = RedisArms(url, store, reseed_s=30), RedisArms(url, store, reseed_s=30)
    first, second = BanditBoard(store, KINDS, one), BanditBoard(store, KINDS, two)
    first.sync()  # no copy yet: the store's (empty) totals seed it
    assert client.exists(KEYS[0]) and 0 < client.ttl(KEYS[0]) <= 30
    first.shown(["a", "b"], [True, True])
    first.sync()
    second.sync()
    second.attributed(clicks("a", "a"))
    second.shown(["a"], [False])  # a known arm: a trial
    second.sync()
    first.sync()
    for board in (first, second):
        assert board.counts.arms.tolist() == ["a", "b"]
        assert board.counts.shown.tolist() == [2, 1] and board.counts.clicks.tolist() == [2, 0]
    assert client.hgetall(KEYS[1]) == {"a": "2", "b": "1"}
    truth = store.arm_counts()
    assert truth.shown.tolist() == [2, 1] and truth.clicks.tolist() == [2, 0]
    # reads come from the copy: a count written to the store alone is not seen …
    store.add_arm_counts([("c", 5, 1, 0)])
    first.sync()
    assert "c" not in first.counts.arms.tolist()
    # … until the copy expires and the next reader rebuilds it from the store
    client.expire(KEYS[0], 1)
    time.sleep(1.1)
    first.sync()
    second.sync()
    assert first.counts.arms.tolist() == second.counts.arms.tolist() == ["a", "b", "c"]
    assert second.counts.shown.tolist() == [2, 1, 5]
    one.close()
    two.close()


def test_a_flushed_redis_loses_nothing(shared) -> None:  # type: ignore[no-untyped-def]
    store, url, client = shared
    arms = RedisArms(url, store)
    board = BanditBoard(store, KINDS, arms)
    board.sync()
    board.shown(["a"], [True])
    board.sync()
    board.attributed(clicks("a"))
    board.sync()
    client.delete(*KEYS)  # Redis restarted without persistence
    fresh = BanditBoard(store, KINDS, RedisArms(url, store))  # and so did the server
    fresh.sync()
    assert fresh.counts.shown.tolist() == [1] and fresh.counts.clicks.tolist() == [1]
    assert client.hgetall(KEYS[2]) == {"a": "1"}  # the copy is rebuilt from the store
    # an add while no copy exists reaches the store only (a copy is never built from adds)
    client.delete(*KEYS)
    fresh.shown(["a"], [False])
    fresh.flush()
    assert not client.exists(KEYS[1]) and store.arm_counts().shown.tolist() == [2]
    arms.close()


def test_an_unreachable_redis_leaves_the_store_alone_working(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    arms = open_arms("redis://127.0.0.1:1/0", store)  # nothing listens on port 1
    assert isinstance(arms, RedisArms)
    board = BanditBoard(store, KINDS, arms)
    board.shown(["a"], [True])
    board.sync()
    assert board.counts.shown.tolist() == [1] and store.arm_counts().shown.tolist() == [1]
    assert open_arms(None, store) is None and open_arms("memory", store) is None
    arms.close()
    store.close()
