"""Group commit: requests in flight together share one validation and one store transaction, and
each still gets exactly its own counts and rejection indices (hand-built expectations below)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.errors import StoreUnavailable
from recsmith.events.latest import latest_items, latest_of_rows
from recsmith.events.schema import IngestResult
from recsmith.serving import create_app
from recsmith.serving.group_commit import GroupCommit
from recsmith.store.postgres import PostgresStore
from recsmith.store.sqlite import SQLiteStore

NOW = time.time() - 60


def ev(eid: str, item: str, **fields: Any) -> dict[str, Any]:
    base = {"event_id": eid, "user_id": "u1", "item_id": item, "event_type": "view"}
    return base | {"timestamp": NOW} | fields


def commit_times(db_path: Path) -> list[int]:
    """The distinct ``received_at`` of stored events: one value per store transaction."""
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT DISTINCT received_at FROM events ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def outcome(result: IngestResult) -> tuple[int, int, list[tuple[int, list[str]]]]:
    return (
        result.accepted,
        result.duplicates,
        [(r.index, [e.field for e in r.errors]) for r in result.rejected],
    )


def test_each_request_of_a_group_gets_its_own_result(tmp_path: Path) -> None:
    db_path = tmp_path / "group.sqlite"
    store = SQLiteStore(db_path)
    seen: list[list[tuple[str, str]]] = []
    old = ev("old", "i0")
    commit = GroupCommit(store, EventSettings(), source="test", on_stored=seen.append)
    requests: list[list[Any]] = [
        [ev("a1", "i1"), ev("bad", "i9", event_type="teleport"), ev("a2", "i2")],
        [ev("a1", "i1"), 5, ev("b1", "i3")],  # a1 again, same content: a duplicate
        [old, ev("a2", "i7"), ev("c1", "i4")],  # a2 again with another item: a reused id
        [ev("d1", "i5")],
        [],
    ]

    async def run() -> list[IngestResult]:
        await commit.ingest([old])  # stored before the group
        return await asyncio.gather(*(commit.ingest(r) for r in requests))

    results = asyncio.run(run())
    assert [outcome(r) for r in results] == [
        (2, 0, [(1, ["event_type"])]),
        (1, 1, [(1, ["record"])]),
        (1, 1, [(1, ["event_id"])]),
        (1, 0, []),
        (0, 0, []),
    ]
    stored = {e for frame in store.scan() for e in frame["event_id"]}
    assert stored == {"old", "a1", "a2", "b1", "c1", "d1"}
    assert len(commit_times(db_path)) == 2  # the lone first request, then the group: one each
    assert len(seen) == 2  # the online state hears of each commit once
    # the group's events handed to the store (duplicates too; not a2's reuse), as (actor, item)
    assert sorted(seen[1]) == [("u1", i) for i in ["i0", "i1", "i1", "i2", "i3", "i4", "i5"]]
    letters = sorted((d.record_index, d.errors[0]["field"]) for d in store.dead_letters())
    assert letters == [(1, "event_id"), (1, "event_type"), (1, "record")]
    store.close()


def test_a_request_that_breaks_the_commit_fails_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "alone.sqlite")
    commit = GroupCommit(store, EventSettings(), source="test")
    # a lone UTF-16 surrogate cannot be encoded for the store: today the append raises
    hostile = [ev("h1", "i1", user_id="a\ud800")]

    async def run() -> list[Any]:
        return await asyncio.gather(
            commit.ingest([ev("g1", "i1")]),
            commit.ingest(hostile),
            commit.ingest([ev("g2", "i2"), ev("g3", "i3")]),
            return_exceptions=True,
        )

    good, bad, more = asyncio.run(run())
    assert outcome(good) == (1, 0, []) and outcome(more) == (2, 0, [])
    # a failure of its own (or, once validation refuses it, a rejection of its record 0)
    assert isinstance(bad, UnicodeError) or outcome(bad)[2] == [(0, ["user_id"])]
    assert sorted(e for f in store.scan() for e in f["event_id"]) == ["g1", "g2", "g3"]
    store.close()


def test_a_store_that_is_down_fails_every_request_of_the_group() -> None:
    store = PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    commit = GroupCommit(store, EventSettings(), source="test")

    async def run() -> list[Any]:
        batches = [[ev("x1", "i1")], [ev("x2", "i2")], [ev("x3", "i3")]]
        return await asyncio.gather(*(commit.ingest(b) for b in batches), return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    store.close()


def test_concurrent_http_requests_share_commits_and_get_their_own_answers(
    settings: Settings, bundle: ModelBundle, store: SQLiteStore, db_path: Path, keys: Any
) -> None:
    n = 16
    bodies = [[ev(f"h{k}", f"i{k}")] for k in range(n)]
    bodies[3] = [ev("h3", "i3"), ev("h3x", "i3", timestamp="soon")]  # one bad record, index 1
    bodies[7] = [ev("h0", "i0")]  # the same event as request 0: one of them is the duplicate
    app = create_app(settings, bundle=bundle, store=store)

    async def run() -> tuple[list[httpx.Response], httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                post = lambda body: client.post("/v1/events", json=body, headers=keys["ingest"])  # noqa: E731
                together = await asyncio.gather(*(post(b) for b in bodies))
                alone = await post([ev("late", "i1")])
        return together, alone

    together, alone = asyncio.run(run())
    assert all(r.status_code == 200 for r in [*together, alone])
    answers = [r.json() for r in together]
    for k, answer in enumerate(answers):
        if k == 3:
            assert (answer["accepted"], answer["duplicates"]) == (1, 0)
            assert [(r["index"], r["errors"][0]["field"]) for r in answer["rejected"]] == [
                (1, "timestamp")
            ]
        elif k not in (0, 7):
            assert answer == {
                "accepted": 1,
                "duplicates": 0,
                "rejected": [],
                "timestamped_by_server": 0,
                "attributed": [],
            }, (k, answer)
    pair = sorted((answers[0]["accepted"], answers[7]["accepted"]))
    assert pair == [0, 1] and answers[0]["duplicates"] + answers[7]["duplicates"] == 1
    assert alone.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [],
        "timestamped_by_server": 0,
        "attributed": [],
    }
    assert store.count_events() == (n - 1) + 1  # the burst's distinct events, then "late"
    assert 2 <= len(commit_times(db_path)) < n  # fewer commits than requests


def test_latest_items_are_oldest_first_with_visitors_by_session() -> None:
    """What the online state is fed after each commit: (actor, item) in time order, ties kept in
    arrival order, an anonymous visitor named by their session_id (hand-written expectation)."""
    columns = {
        "user_id": ["u1", None, "u2", "u1"],
        "session_id": ["s1", "s9", None, None],
        "item_id": ["a", "b", "c", "d"],
        "ts": [30, 10, 30, 20],
    }
    frame = pd.DataFrame(columns).assign(event_type="view", value=None)
    expected = [("s9", "b"), ("u1", "d"), ("u1", "a"), ("u2", "c")]
    assert latest_items(frame, EventSettings().weights) == expected
    # the same events as a small group's plain rows (``EVENT_COLUMNS`` order): the same pairs
    rows = [
        ("e", user, session, item, "view", None, ts, None, None, None)
        for user, session, item, ts in zip(*columns.values(), strict=True)
    ]
    assert latest_of_rows(rows, EventSettings().weights) == expected
