"""A visitor's items rated 0 or below follow it into the user it logs in as (issue #15).

The online state keeps such an item marked seen (``events.latest.SEEN_MARK``). A link moves the
visitor's recent items into the user's state; it must move the marks too, since the store's read
of the user's items holds none of the visitor's events (they name its session): without them
the user is listed the very item the visitor disliked. An unlink takes the visitor's marks out
again and keeps the user's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from tests.serving.conftest import EventFactory
from tests.serving.test_online_state import REDIS_URL, _shared_redis

from recsmith.events.latest import SEEN_MARK
from recsmith.privacy.identity import link_alias, unlink_alias
from recsmith.serving.online_state import LocalState, OnlineState, RedisState
from recsmith.store.base import EventStore
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.contracts import event, ingest


def test_after_login_the_user_is_not_listed_what_the_visitor_disliked(
    client: TestClient, keys: dict[str, dict[str, str]], make_event: EventFactory
) -> None:
    path = "/v1/users/u3/recommendations?k=5"
    top = client.get(path, headers=keys["read"]).json()["items"][0]["item_id"]
    disliked = make_event(user_id=None, session_id="tab-9", item_id=top, event_type="rating")
    disliked["value"] = -2.0
    assert client.post("/v1/events", json=[disliked], headers=keys["ingest"]).json()["accepted"]
    link = {"session_id": "tab-9"}
    assert client.post("/v1/users/u3/aliases", json=link, headers=keys["ingest"]).json()["changed"]
    after = [i["item_id"] for i in client.get(path, headers=keys["read"]).json()["items"]]
    assert top not in after and len(after) == 5


@pytest.fixture(params=["local", "redis"])
def state(request: pytest.FixtureRequest) -> Iterator[OnlineState]:
    if request.param == "local":
        yield LocalState()
        return
    _shared_redis()
    shared = RedisState(REDIS_URL)
    yield shared
    shared.close()


@contextmanager
def visitor_and_user(state: OnlineState, tmp_path: Path) -> Iterator[tuple[EventStore, str, str]]:
    """A store and a user and visitor id of this run only (the Redis is shared), cleaned up."""
    suffix = uuid.uuid4().hex
    user, visitor = f"user-{suffix}", f"visit-{suffix}"
    store: EventStore = SQLiteStore(tmp_path / "s.sqlite")
    try:
        yield store, user, visitor
    finally:
        store.close()
        if isinstance(state, RedisState):
            redis.Redis.from_url(REDIS_URL).delete(*map(RedisState.key, (user, visitor)))


def test_link_moves_the_visitors_marks_and_unlink_takes_only_them_back(
    state: OnlineState, tmp_path: Path
) -> None:
    with visitor_and_user(state, tmp_path) as (store, user, visitor):
        # oldest first, as ingestion feeds them: the visitor viewed A, rated B -2; the user
        # viewed C, rated D 0
        state.push([(visitor, "A"), (visitor, SEEN_MARK + "B")])
        state.push([(user, "C"), (user, SEEN_MARK + "D")])
        assert link_alias(store, user, visitor, "session", state=state).moved == 1
        assert state.recent_and_seen(user, 10) == (["A", "C"], ["B", "D"])
        assert unlink_alias(store, user, visitor, state=state)
        assert state.recent_and_seen(user, 10) == (["C"], ["D"])


@pytest.mark.parametrize("visitor_on_d", ["D", SEEN_MARK + "D"], ids=["viewed", "rated-low"])
def test_the_users_own_newer_dislike_survives_link_and_unlink(
    state: OnlineState, tmp_path: Path, visitor_on_d: str
) -> None:
    """The visitor viewed (or rated -2) D, then the user viewed C and rated D -2: by hand D stays
    the user's seen item, never a recent anchor, through the link and after the unlink, and C
    stays recent; the visitor's own item A comes and goes."""
    with visitor_and_user(state, tmp_path) as (store, user, visitor):
        ingest(store, [event("C", user=user), event("D", user=user, kind="rating", value=-2.0)])
        state.push([(visitor, "A"), (visitor, visitor_on_d)])
        state.push([(user, "C"), (user, SEEN_MARK + "D")])
        link_alias(store, user, visitor, "session", state=state)
        assert state.recent_and_seen(user, 10) == (["A", "C"], ["D"])
        assert unlink_alias(store, user, visitor, state=state)
        assert state.recent_and_seen(user, 10) == (["C"], ["D"])


def test_an_item_both_viewed_moves_to_the_front_at_login(
    state: OnlineState, tmp_path: Path
) -> None:
    """The user viewed A then C; the visitor (just before login) viewed A: after the link A is
    the newest recent item, as the visitor's browsing is what the user did last; neither side
    disliked it, so no mark holds it back."""
    with visitor_and_user(state, tmp_path) as (store, user, visitor):
        state.push([(user, "A"), (user, "C")])
        state.push([(visitor, "A")])
        assert link_alias(store, user, visitor, "session", state=state).moved == 1
        assert state.recent_and_seen(user, 10) == (["A", "C"], [])
