"""Request coalescing: concurrent requests answered by one pipeline call get exactly what each would
have got alone, and one bad query never fails the others of its batch."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.serving.coalesce import Coalescer, Options, UserQuery
from recsmith.serving.stored_items import StoredItems
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.contracts import event, ingest

QUERIES = [
    UserQuery("u1", [], [], {}),
    UserQuery("u2", ["i3"], [], {"device": "mobile"}),
    UserQuery("visitor-1", [], ["i0", "i1"], {}),
    UserQuery("nobody", [], [], {}),
    UserQuery("u3", [], ["i5"], {"hour": 7}),
]


def _alone(served: Pipeline, q: UserQuery, k: int) -> tuple[list[str], str]:
    answer = served.answer(
        [q.user_id], k, extra_seen=[q.seen], recent=[q.recent], context=[q.context]
    )
    return list(answer.lists.item_ids[0]), answer.tiers[0]


def test_concurrent_queries_share_one_call_and_get_their_own_answers(
    pipeline: Pipeline,
) -> None:
    async def ask_all() -> list[Any]:
        coalescer = Coalescer()
        return await asyncio.gather(*(coalescer.answer(pipeline, q, Options(k=5)) for q in QUERIES))

    slots = asyncio.run(ask_all())
    assert {s.batch_size for s in slots} == {len(QUERIES)}
    assert sum(s.first for s in slots) == 1
    assert len({id(s.answer) for s in slots}) == 1
    for q, slot in zip(QUERIES, slots, strict=True):
        items, tier = _alone(pipeline, q, 5)
        assert list(slot.answer.lists.item_ids[slot.index]) == items
        assert slot.answer.tiers[slot.index] == tier
    tiers = [s.answer.tiers[s.index] for s in slots]
    assert tiers == ["personalised", "personalised", "session", "popular", "personalised"]


def test_different_options_are_separate_calls(pipeline: Pipeline) -> None:
    async def ask() -> list[Any]:
        coalescer = Coalescer()
        return await asyncio.gather(
            coalescer.answer(pipeline, QUERIES[0], Options(k=5)),
            coalescer.answer(pipeline, QUERIES[1], Options(k=3)),
            coalescer.answer(pipeline, QUERIES[2], Options(k=5)),
        )

    short, other, long_ = asyncio.run(ask())
    assert short.answer is long_.answer and short.batch_size == 2
    assert other.batch_size == 1 and len(other.answer.lists.item_ids[0]) == 3


def test_a_failing_query_fails_alone(pipeline: Pipeline) -> None:
    broken = UserQuery("u1", None, [], {})  # type: ignore[arg-type]  # not a list of ids

    async def ask() -> list[Any]:
        coalescer = Coalescer()
        return await asyncio.gather(
            coalescer.answer(pipeline, QUERIES[0], Options(k=5)),
            coalescer.answer(pipeline, broken, Options(k=5)),
            coalescer.answer(pipeline, QUERIES[2], Options(k=5)),
            return_exceptions=True,
        )

    good, bad, visitor = asyncio.run(ask())
    assert isinstance(bad, TypeError)
    assert list(good.answer.lists.item_ids[good.index]) == _alone(pipeline, QUERIES[0], 5)[0]
    assert visitor.answer.tiers[visitor.index] == "session"


def test_a_flush_hands_a_pipeline_the_stored_items_it_read_in_seen_only(
    pipeline: Pipeline, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flush reads u1's stored items (``Coalescer.answer``'s ``stored``) and puts them ahead
    of its ``seen``; a pipeline reads them there and ignores ``history``
    (``Pipeline.reads_history``), so the flush builds no history of them (a list copy a query
    saved): ``answer`` gets the query's own history, and the list is the one asked alone with
    the stored items in ``seen``."""
    ingest(store, [event(f"i{n}", user="u1", h=n) for n in range(4)])
    stored = store.user_items("u1")
    assert stored
    asked: list[dict[str, Any]] = []
    answer = Pipeline.answer

    def noted(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return answer(self, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "answer", noted)
    query = UserQuery("u1", ["i9"], [], {})
    reader = StoredItems(store, lambda: False)
    slot = asyncio.run(Coalescer().answer(pipeline, query, Options(k=5), reader))
    assert slot.stored == stored
    assert asked[0]["extra_seen"] == [[*stored, "i9"]] and asked[0]["history"] == [[]]
    listed = list(slot.answer.lists.item_ids[slot.index])
    assert listed == _alone(pipeline, UserQuery("u1", [*stored, "i9"], [], {}), 5)[0]


def test_concurrent_http_requests_are_answered_correctly(
    settings: Settings,
    pipeline: Pipeline,
    store: SQLiteStore,
    keys: dict[str, dict[str, str]],
) -> None:
    n_requests = 16
    uncached = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"cache_entries": 0})}
    )  # every request must reach the pipeline here
    app = create_app(uncached, bundle=pipeline, store=store)  # type: ignore[arg-type]
    users = [f"u{i % 6}" for i in range(n_requests)]
    paths = [
        f"/v1/users/{u}/recommendations?k=4" + ("&recent=i2" if i % 3 == 0 else "")
        for i, u in enumerate(users)
    ]

    async def run() -> tuple[list[httpx.Response], list[httpx.Response], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                together = await asyncio.gather(
                    *(client.get(p, headers=keys["read"]) for p in paths)
                )
                alone = [await client.get(p, headers=keys["read"]) for p in paths]
                metrics = (await client.get("/metrics", headers=keys["admin"])).text
        return together, alone, metrics

    together, alone, metrics = asyncio.run(run())
    for a, b in zip(together, alone, strict=True):
        assert a.status_code == b.status_code == 200
        assert a.json()["items"] == b.json()["items"] and a.json()["user_id"] == b.json()["user_id"]
    calls = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("recsmith_coalesced_batch_size_count")
    )
    # the concurrent burst took fewer pipeline calls than requests; the sequential ones one each
    assert n_requests < calls < 2 * n_requests


@pytest.mark.parametrize("wait_ms", [0.0, 1.5])
def test_the_wait_setting_reaches_the_served_coalescer(
    settings: Settings, pipeline: Pipeline, store: SQLiteStore, wait_ms: float
) -> None:
    """``serving.coalesce_max_wait_ms`` is the served coalescer's bound (0: no hold at all, the
    flush on its loop turns as before dynamic batching)."""
    held = Settings(
        store=settings.store,
        serving={**settings.serving.model_dump(), "coalesce_max_wait_ms": wait_ms},
    )
    app = create_app(held, bundle=pipeline, store=store)  # type: ignore[arg-type]
    with TestClient(app):
        policy = app.state.runtime.coalescer._gatherer.policy
    assert (policy.max_wait_s if policy is not None else 0.0) == pytest.approx(wait_ms / 1000)


@pytest.mark.parametrize("wait_ms", [-0.5, 10.5])
def test_the_wait_is_bounded(wait_ms: float) -> None:
    with pytest.raises(ValidationError, match="coalesce_max_wait_ms"):
        Settings(serving={"coalesce_max_wait_ms": wait_ms})


def test_the_served_coalescers_holds_are_counted_on_metrics(
    settings: Settings, pipeline: Pipeline, store: SQLiteStore, keys: dict[str, dict[str, str]]
) -> None:
    """The served gatherer reports each held flush to ``/metrics``: two holds of 1.5 and 2 ms are
    2 holds and 3.5 ms held (none before)."""
    held = Settings(
        store=settings.store,
        serving={**settings.serving.model_dump(), "coalesce_max_wait_ms": 2.0},
    )
    app = create_app(held, bundle=pipeline, store=store)  # type: ignore[arg-type]

    def value(text: str, name: str) -> float:
        return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    with TestClient(app) as client:
        before = client.get("/metrics", headers=keys["admin"]).text
        report = app.state.runtime.coalescer._gatherer._on_hold
        report(0.0015)
        report(0.002)
        after = client.get("/metrics", headers=keys["admin"]).text
    assert value(before, "recsmith_coalesce_holds_total") == 0.0
    assert value(after, "recsmith_coalesce_holds_total") == 2.0
    assert value(after, "recsmith_coalesce_hold_seconds_total") == pytest.approx(0.0035)
