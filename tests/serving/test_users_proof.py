"""The erasure proof (issue #14): a person with events, a profile, a linked visitor id (alias),
decisions, dead letters, online state and cached lists is erased; then every column of every
table of the store (listed from the database's own catalogue, not from our schema), every key
and value of the Redis test database, the response cache and the served answers hold nothing of
them; a training from the store does not know them; and re-importing an old export of their
events is refused.

On SQLite with in-process state, and on PostgreSQL with Redis (the Redis test database is shared
with other tests, so it is searched, never flushed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli._data import load_events
from recsmith.cli.app import app as cli_app
from recsmith.config import EventSettings, Settings
from recsmith.events.schema import User
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.serving.response_cache import user_tag
from recsmith.store.base import EventStore
from recsmith.testing.backends import redis_url_or_skip

STORES = ("sqlite", "postgres")
VICTIM = "victim-Q7z"  # no other id contains it, so a substring search is exact


@pytest.fixture
def history(training_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The session's training events with user u3 renamed to the victim."""
    return [{**e, "user_id": VICTIM} if e["user_id"] == "u3" else e for e in training_records]


def _train(frame: Any) -> ModelBundle:
    return ModelBundle.train(
        Interactions.from_events(frame, EventSettings().weights), create("itemknn")
    )


def store_hits(store: EventStore, needle: str) -> dict[str, int]:
    """Rows per (table.column) whose text holds ``needle``, over every table the database's
    catalogue lists and every column cast to text."""
    if store.url.startswith("sqlite"):
        conn = store._conn()  # type: ignore[attr-defined]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = [(t, r[1]) for t in tables for r in conn.execute(f'PRAGMA table_info("{t}")')]
        count = 'SELECT COUNT(*) FROM "{}" WHERE instr(CAST("{}" AS TEXT), ?) > 0'
        return _hits(conn.execute, columns, count, needle)
    with store._tx() as cur:  # type: ignore[attr-defined]
        columns = cur.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema()"
        ).fetchall()
        count = 'SELECT COUNT(*) FROM "{}" WHERE strpos(CAST("{}" AS TEXT), %s) > 0'
        return _hits(cur.execute, columns, count, needle)


def _hits(execute: Any, columns: list[tuple[str, str]], count: str, needle: str) -> dict[str, int]:
    assert len(columns) > 20, "the catalogue listed too few columns: the search would prove little"
    found = {f"{t}.{c}": execute(count.format(t, c), (needle,)).fetchone()[0] for t, c in columns}
    return {where: n for where, n in found.items() if n}


def redis_hits(client: redis.Redis, needle: str) -> list[str]:
    """Keys of the Redis test database whose name or value holds ``needle``."""
    found = []
    raw = needle.encode()
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [b"".join(kv) for kv in client.hgetall(key).items()]
        elif kind in (b"set", b"zset"):
            values = list(client.smembers(key)) if kind == b"set" else client.zrange(key, 0, -1)
        else:
            values = []
        if raw in key or any(raw in v for v in values):
            found.append(key.decode(errors="replace"))
    return found


@pytest.fixture
def proof_settings(store_url: str, store_kind: str) -> Settings:
    serving = {"state_url": redis_url_or_skip()} if store_kind == "postgres" else {}
    return Settings(store={"url": store_url}, serving=serving)


def test_erased_person_is_nowhere(
    proof_settings: Settings,
    store: EventStore,
    store_url: str,
    tmp_path: Path,
    history: list[dict[str, Any]],
) -> None:
    frame, rejected = validate_events(history, EventSettings())
    assert not rejected
    first = _train(frame)
    assert VICTIM in first.users
    _, secret = create_api_key(store, "admin", ["admin"])
    auth = {"Authorization": f"Bearer {secret}"}
    redis_url = proof_settings.serving.state_url
    rclient = None if redis_url is None else redis.Redis.from_url(redis_url)

    with TestClient(create_app(proof_settings, bundle=first, store=store)) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        # their history: training events in the store, live events, a profile, a dead letter
        assert client.post("/v1/events", json=history, headers=auth).status_code == 200
        live = [
            {"event_id": f"live-{n}", "user_id": VICTIM, "item_id": f"i{n}", "event_type": "view"}
            for n in (1, 2)
        ]
        assert client.post("/v1/events", json=live, headers=auth).json()["accepted"] == 2
        bad = [
            {"user_id": VICTIM, "item_id": "i1", "event_type": "no-such-type", "timestamp": 1.7e9}
        ]
        assert len(client.post("/v1/events", json=bad, headers=auth).json()["rejected"]) == 1
        store.upsert_users([User(user_id=VICTIM, properties={"plan": "gold"})])
        # a visitor id of theirs, browsed anonymously, then linked at login
        tab = f"{VICTIM}-tab"
        visits = [
            {"event_id": f"tab-{n}", "session_id": tab, "item_id": f"i{n}", "event_type": "view"}
            for n in (3, 4)
        ]
        assert client.post("/v1/events", json=visits, headers=auth).json()["accepted"] == 2
        link = client.post(f"/v1/users/{VICTIM}/aliases", json={"session_id": tab}, headers=auth)
        assert link.json()["moved_recent_items"] == 2
        # lists served to them (decisions) and cached
        path = f"/v1/users/{VICTIM}/recommendations"
        before = client.get(path, headers=auth).json()
        assert before["tier"] == "personalised" and before["not_personalised"] is None
        assert client.get(path, headers=auth).json()["items"] == before["items"]  # cache hit
        runtime.decisions.flush()
        export = client.get(f"/v1/users/{VICTIM}/export", headers=auth).json()
        n_events = len(export["events"])
        assert n_events == sum(e["user_id"] == VICTIM for e in history) + 2

        # the searches find them before: they are able to find what they look for
        found = store_hits(store, VICTIM)
        for where in (
            "events.user_id",
            "users.user_id",
            "decisions.unit",
            "dead_letters.payload",
            "aliases.alias",
            "events.session_id",
        ):
            assert where in found, (where, found)
        assert runtime.state.recent(VICTIM, 2) == ["i4", "i3"]  # the visitor's, moved at login
        assert _cache_entries(runtime.cache, VICTIM) >= 1
        if rclient is not None:
            assert f"recsmith:recent:{VICTIM}" in redis_hits(rclient, VICTIM)

        erased = client.delete(f"/v1/users/{VICTIM}", headers=auth)
        assert erased.status_code == 200, erased.text
        removed = erased.json()["removed"]
        assert removed["events"] == n_events + 2 and removed["aliases"] == 1
        assert removed["profile"] == 1
        assert removed["decisions"] == 2 and removed["shown_items"] == 2 * len(before["items"])
        assert removed["dead_letters"] == 1
        # each of their events pushed one recent item, the link two more; the visitor's two
        assert removed["online_state"] == n_events + 2 + 2
        assert removed["response_cache"] >= 1

        # served answers: the anonymous list, saying why, and no decision naming them
        after = client.get(path, headers=auth).json()
        stranger = client.get("/v1/users/never-seen-person/recommendations", headers=auth).json()
        assert after["tier"] == "popular" and after["not_personalised"]
        assert [i["item_id"] for i in after["items"]] == [i["item_id"] for i in stranger["items"]]
        runtime.decisions.flush()
        # their events are refused from now on, with the reason, and leave nothing behind
        again = client.post("/v1/events", json=live[:1], headers=auth).json()
        assert again["accepted"] == 0 and "erased" in again["rejected"][0]["errors"][0]["reason"]

        assert store_hits(store, VICTIM) == {}
        assert runtime.state.recent(VICTIM, 5) == []
        assert _cache_entries(runtime.cache, VICTIM) == 0
        if rclient is not None:
            assert redis_hits(rclient, VICTIM) == []

    # a training from the store does not know them
    retrained = _train(load_events(None, store_url, proof_settings))
    assert VICTIM not in retrained.users and len(retrained.users) == len(first.users) - 1

    # an old export imported again is refused, every record, and stores nothing
    old = tmp_path / "old-export.jsonl"
    old.write_text("".join(json.dumps(e) + "\n" for e in export["events"]))
    result = CliRunner().invoke(cli_app, ["import", str(old), "--store", store_url, "--json"])
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["accepted"] == 0 and counts["rejected"] == n_events, result.output
    assert store_hits(store, VICTIM) == {}


def _cache_entries(cache: Any, user_id: str) -> int:
    """Entries of the user in the response cache: the in-process copy and, with Redis, the
    shared one."""
    local = getattr(cache, "local", cache)
    prefix = f"{user_tag(user_id)}:"
    n = sum(key.startswith(prefix) for key in local._entries)
    link = getattr(cache, "link", None)
    if link is not None:
        n += len(link.run(lambda c: list(c.scan_iter(match=f"{cache.PREFIX}{prefix}*")), []))
    return n
