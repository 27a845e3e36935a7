"""The served users' stored items (``serving.stored_items``), on a real SQLite and PostgreSQL
store, held to an oracle outside the code under test (``testing.items_oracle``: each user's
``SELECT DISTINCT`` run alone). SQLite reads a coalesced group at a time: concurrent requests
mixing users with and without items, a user asked twice and an unknown user get what each would
read alone, by one query; a store that fails fails its group at once (the route then answers
``degraded: ["store"]``), another error only its own request. PostgreSQL reads each request
alone in the thread pool, so a slow read holds up no other request's."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import psycopg
import pytest

from recsmith.config import Settings
from recsmith.errors import StoreUnavailable
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import coalesce, create_app
from recsmith.serving.stored_items import StoredItems
from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest
from recsmith.testing.items_oracle import items_alone

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

#: with items (several, repeated), twice, none stored, unknown, an id quoting would break
ASKED = ["u1", "u2", "u1", "no-items", "nobody", "u3", "q\"uo'te", "u2"]


def fill(store: EventStore) -> None:
    events = [event(f"i{n % 9}", user=f"u{1 + n % 3}", h=n / 10) for n in range(30)]
    events += [event("odd", user="q\"uo'te"), event("anon", user=None, session_id="s")]
    ingest(store, events)


class Counted:
    """The real store, its ``users_items`` calls counted (which users each call read; a single
    ``user_items`` read as the user alone) and a failure injected for a group holding
    ``failing_for``: a store down for that one query."""

    def __init__(self, store: EventStore, failing_for: str | None = None) -> None:
        self.store, self.local, self.failing_for = store, store.local, failing_for
        self.calls: list[list[str] | str] = []

    def users_items(self, user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        self.calls.append(list(user_ids))
        if self.failing_for in user_ids:
            raise StoreUnavailable("read", OSError("disk I/O error"))
        return self.store.users_items(user_ids, by_time=by_time)

    def user_items(self, user_id: str, *, by_time: bool = False) -> list[str]:
        self.calls.append(user_id)
        return self.store.user_items(user_id, by_time=by_time)


def crowded() -> bool:
    """``company`` under load: requests arrive together (the coalescer's latest flush)."""
    return True


def alone_now() -> bool:
    """``company`` on an idle server."""
    return False


def embedded(store: EventStore) -> None:
    """Only an embedded store gathers (module docstring of ``serving.stored_items``)."""
    if not store.local:
        pytest.skip("a networked store reads each request alone (the tests of networked_)")


def gathered(reader: StoredItems, user_ids: Sequence[Any]) -> list[Any]:
    """``reader.of`` for every user at once, as concurrent requests ask (exceptions returned)."""

    async def ask() -> list[Any]:
        return await asyncio.gather(*(reader.of(u) for u in user_ids), return_exceptions=True)

    return asyncio.run(ask())


def test_concurrent_users_are_read_by_one_query_each_as_alone(store: EventStore) -> None:
    embedded(store)
    fill(store)
    counted = Counted(store)
    got = gathered(StoredItems(counted, crowded), ASKED)  # type: ignore[arg-type]
    assert counted.calls == [ASKED]  # one query, in the order asked
    assert [sorted(items) for items in got] == items_alone(store, ASKED)
    assert got[0] == got[2] != [] and got[3] == got[4] == [] and got[6] == ["odd"]
    assert got[0] is not got[2]  # each request its own list to extend


def test_on_an_idle_server_each_request_reads_its_user_alone_at_once(store: EventStore) -> None:
    """Without company, by ``user_items`` (no group query, no hand-off), even when several
    ask: an embedded store answers before the next request starts, so none ever waits."""
    fill(store)
    counted = Counted(store)
    reader = StoredItems(counted, alone_now)  # type: ignore[arg-type]
    got = [gathered(reader, [u])[0] for u in ("u3", "nobody")]
    assert [sorted(items) for items in got] == items_alone(store, ["u3", "nobody"])
    burst = gathered(reader, ["u1", "u2"])
    assert [sorted(items) for items in burst] == items_alone(store, ["u1", "u2"])
    if store.local:  # each read ends before the next request starts
        assert counted.calls == ["u3", "nobody", "u1", "u2"]
    else:  # a networked store's reads run in the thread pool: the burst's two start in any order
        assert counted.calls[:2] == ["u3", "nobody"] and sorted(counted.calls[2:]) == ["u1", "u2"]


def test_a_request_joins_a_group_already_waiting_whatever_the_load(store: EventStore) -> None:
    """One request gathers (``company`` said so when it asked), the load then drops: a request
    of the same turn joins its group rather than read alone and overtake it."""
    embedded(store)
    fill(store)
    counted = Counted(store)
    load = iter([True, False, False])
    reader = StoredItems(counted, lambda: next(load))  # type: ignore[arg-type]
    got = gathered(reader, ["u1", "u2"])
    assert counted.calls == [["u1", "u2"]]
    assert [sorted(items) for items in got] == items_alone(store, ["u1", "u2"])


def test_a_store_failing_for_one_group_fails_that_group_at_once(store: EventStore) -> None:
    """Groups of three: the second group's query fails as a store outage; its three requests
    get ``StoreUnavailable`` (no read per user: it would fail again), the others their lists."""
    embedded(store)
    fill(store)
    counted = Counted(store, failing_for="no-items")
    reader = StoredItems(counted, crowded, max_batch=3)  # type: ignore[arg-type]
    got = gathered(reader, ASKED)
    assert counted.calls == [ASKED[:3], ASKED[3:6], ASKED[6:]]
    assert all(isinstance(out, StoreUnavailable) for out in got[3:6])
    kept = [*range(3), *range(6, len(ASKED))]
    assert [sorted(got[i]) for i in kept] == items_alone(store, [ASKED[i] for i in kept])


def test_another_error_is_retried_user_by_user_and_fails_its_request_only(
    store: EventStore,
) -> None:
    """An id that is not a string fails the group's query (a bug, not an outage; PostgreSQL
    would read a list as several users and shift the group's lists): each user is then read
    alone, and only the request that sent it fails."""
    embedded(store)
    fill(store)
    counted = Counted(store)
    asked: list[Any] = ["u1", ["not", "an id"], "u2"]
    got = gathered(StoredItems(counted, crowded), asked)  # type: ignore[arg-type]
    assert counted.calls == [asked, ["u1"], [asked[1]], ["u2"]]
    assert isinstance(got[1], TypeError)
    assert [sorted(got[0]), sorted(got[2])] == items_alone(store, ["u1", "u2"])


def test_networked_reads_are_each_request_s_own_even_in_company(store: EventStore) -> None:
    """PostgreSQL: a burst under load is read user by user (``user_items``, in the pool), no
    group query, each list what its user has."""
    if store.local:
        pytest.skip("an embedded store gathers in company (the tests above)")
    fill(store)
    counted = Counted(store)
    got = gathered(StoredItems(counted, crowded), ASKED)  # type: ignore[arg-type]
    assert sorted(counted.calls) == sorted(ASKED)  # type: ignore[type-var]
    assert [sorted(items) for items in got] == items_alone(store, ASKED)


#: a user whose read takes tens of milliseconds on PostgreSQL (~4 ms a 1,000 items)
HEAVY = 30_000


def test_networked_slow_read_holds_up_no_other_request(store: EventStore) -> None:
    """PostgreSQL, under load: a 1-item user asks 2 ms after a user with 30,000 items began to
    be read; its read is answered first, whatever the slow one takes, not after it (as when
    each group waited for the read in flight: 0.8 -> 125 ms, BENCHMARKS §103, correction)."""
    if store.local:
        pytest.skip("an embedded store's read blocks the event loop, gathered or not")
    ingest(store, [event("a", user="small")])
    ingest(store, [event(f"h{k}", user="heavy") for k in range(HEAVY)])
    reader = StoredItems(store, crowded)
    done: list[str] = []

    async def read(user_id: str, after: float) -> list[str]:
        await asyncio.sleep(after)
        items = await reader.of(user_id)
        done.append(user_id)
        return items

    async def both() -> list[list[str]]:
        return await asyncio.gather(read("heavy", 0), read("small", 0.002))

    heavy, small = asyncio.run(both())
    assert done == ["small", "heavy"]
    assert small == ["a"] and sorted(heavy) == sorted(f"h{k}" for k in range(HEAVY))


def test_networked_outage_fails_the_read_then_clears(store: EventStore) -> None:
    """PostgreSQL: the store's connections killed by the server (``pg_terminate_backend``):
    the requests then reading get ``StoreUnavailable`` or, on a fresh connection, their list;
    the next reads all get their lists."""
    if store.local:
        pytest.skip("killing connections is a server's outage")
    fill(store)
    reader = StoredItems(store, crowded)
    users = ["u1", "u2", "u3"]

    async def each() -> list[Any]:
        return await asyncio.gather(*(reader.of(u) for u in users), return_exceptions=True)

    def kill_connections() -> None:
        pids = [conn.info.backend_pid for conn, _ in store._all]  # type: ignore[attr-defined]
        with psycopg.connect(store._conninfo, autocommit=True) as admin:  # type: ignore[attr-defined]
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))

    async def rounds() -> list[list[Any]]:  # one loop: the same pool threads, their connections
        before = await each()
        kill_connections()
        return [before, await each(), await each()]

    before, during, after = asyncio.run(rounds())
    had = items_alone(store, users)
    assert [sorted(items) for items in before] == had == [sorted(items) for items in after]
    assert any(isinstance(out, StoreUnavailable) for out in during)
    for out, own in zip(during, had, strict=True):
        assert isinstance(out, StoreUnavailable) or sorted(out) == own


async def pipeline_calls(client: httpx.AsyncClient, keys: dict[str, dict[str, str]]) -> float:
    """The coalesced pipeline calls so far (``/metrics``)."""
    text = (await client.get("/metrics", headers=keys["admin"])).text
    prefix = "recsmith_coalesced_batch_size_count"
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def test_concurrent_requests_exclude_each_user_s_own_stored_items(
    settings: Settings, pipeline: Pipeline, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    """Through the app: a burst mixing users with and without stored items, one twice, one
    unknown, asks every item (k=50); each list leaves out exactly its user's stored items
    (the oracle), lists every other item its user may get, and matches the list asked alone."""
    uncached = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"cache_entries": 0})}
    )
    app = create_app(uncached, bundle=pipeline, store=store)  # type: ignore[arg-type]
    # events stored after training: items the model does not know the user has
    ingest(store, [event(f"i{n}", user=f"u{n % 4}", h=n) for n in range(12)])
    users = ["u0", "u1", "fresh-visitor", "u0", "u2", "nobody", "u3", "u1"]
    paths = [f"/v1/users/{u}/recommendations?k=50" for u in users]

    async def run() -> tuple[list[httpx.Response], list[httpx.Response], list[float]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                calls = [await pipeline_calls(client, keys)]
                for _ in range(2):  # the first burst reads alone (an idle server), the next not
                    burst = await asyncio.gather(
                        *(client.get(p, headers=keys["read"]) for p in paths)
                    )
                    calls.append(await pipeline_calls(client, keys))
                one_by_one = [await client.get(p, headers=keys["read"]) for p in paths]
        return burst, one_by_one, calls

    burst, one_by_one, calls = asyncio.run(run())
    per_burst = [b - a for a, b in itertools.pairwise(calls)]
    if store.local:  # each burst one pipeline call: gathering the reads never splits its group
        assert per_burst == [1, 1]
    else:  # reads (and key look-ups) end in the thread pool at their own times: no one group
        assert all(1 <= n <= len(paths) for n in per_burst)
    for user, had, together, solo in zip(
        users, items_alone(store, users), burst, one_by_one, strict=True
    ):
        assert together.status_code == solo.status_code == 200
        body = together.json()
        listed = {item["item_id"] for item in body["items"]}
        assert not listed & set(had), user
        # not degraded by the store (a small shop's lists may be popularity filled: popular_fill)
        assert "store" not in body["degraded"] and body["user_id"] == user
        assert body["items"] == solo.json()["items"]
        assert body["degraded"] == solo.json()["degraded"]
    # a user whose stored items are not all in training: the store's read is what removed them
    assert {"i0", "i4", "i8"} <= set(items_alone(store, ["u0"])[0])


def watch_reads(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, before: Callable[[list[str] | str], None]
) -> None:
    """The store's group reads (the users, a list) and lone reads (the user) go through
    ``before`` first, which notes them or raises as a failing store would."""
    users_items, user_items = store.users_items, store.user_items

    def group_read(user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        before(list(user_ids))
        return users_items(user_ids, by_time=by_time)

    def lone_read(user_id: str, *, by_time: bool = False) -> list[str]:
        before(user_id)
        return user_items(user_id, by_time=by_time)

    monkeypatch.setattr(store, "users_items", group_read)
    monkeypatch.setattr(store, "user_items", lone_read)


def test_through_the_app_a_lone_request_reads_alone_a_burst_by_one_query(
    settings: Settings,
    pipeline: Pipeline,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule the group read rests on: on an idle server each request, one after another,
    reads its user alone (``user_items``); a burst on a busy one is read by one query for
    several users; once the server has been quiet for ``CROWD_FADES_S`` a lone request reads
    alone again (a response-cache hit never flushes: the latest flush alone never would)."""
    embedded(store)
    uncached = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"cache_entries": 0})}
    )
    reads: list[list[str] | str] = []
    watch_reads(store, monkeypatch, reads.append)
    app = create_app(uncached, bundle=pipeline, store=store)  # type: ignore[arg-type]
    burst = [f"/v1/users/u{n}/recommendations?k=5" for n in range(6)]

    async def run() -> list[list[list[str] | str]]:
        seen = []
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                async def asked(paths: list[str]) -> list[list[str] | str]:
                    reads.clear()
                    got = await asyncio.gather(
                        *(client.get(p, headers=keys["read"]) for p in paths)
                    )
                    assert [r.status_code for r in got] == [200] * len(paths)
                    return list(reads)

                for user in ("a", "b"):  # one after another on an idle server
                    seen.append(await asked([f"/v1/users/{user}/recommendations?k=5"]))
                seen += [await asked(burst), await asked(burst)]
                await asyncio.sleep(coalesce.CROWD_FADES_S * 1.2)
                seen.append(await asked(["/v1/users/c/recommendations?k=5"]))
        return seen

    first, second, _, busy, quiet = asyncio.run(run())
    assert first == ["a"] and second == ["b"] and quiet == ["c"]
    assert any(isinstance(read, list) and len(read) > 1 for read in busy), busy


def test_through_the_app_a_burst_s_read_failing_fails_only_its_own_request(
    settings: Settings,
    pipeline: Pipeline,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the response cache off the coalescer's flush reads a burst's stored items
    (``Coalescer.answer``'s ``stored``). A read failing for one user otherwise than an outage
    (a decode error: a ``ValueError``, which the route answers 422 when the pipeline raises it)
    fails that request as its own read failed before, a 500, and no other: the others are
    answered, each list without its user's stored items (the oracle). A store outage in the
    next burst answers every request without them, ``degraded: ["store"]``, as a lone read's
    outage does."""
    embedded(store)
    ingest(store, [event(f"i{n}", user=f"u{n % 4}", h=n) for n in range(12)])
    uncached = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"cache_entries": 0})}
    )
    broken = {"user": "u2", "outage": False}
    read: list[str] = []

    def failing(users: list[str] | str) -> None:
        if broken["outage"]:
            raise StoreUnavailable("read", OSError("disk I/O error"))
        users = [users] if isinstance(users, str) else users
        read.extend(users)
        if broken["user"] in users:
            raise ValueError("a stored list that is not JSON")

    watch_reads(store, monkeypatch, failing)
    # the path: no request reads before its list (``StoredItems.of``), the flush reads them all
    asked_first: list[str] = []
    of = StoredItems.of

    async def noted_of(self: StoredItems, user_id: str) -> list[str]:
        asked_first.append(user_id)
        return await of(self, user_id)

    monkeypatch.setattr(StoredItems, "of", noted_of)
    app = create_app(uncached, bundle=pipeline, store=store)  # type: ignore[arg-type]
    users = ["u0", "u1", "u2", "u3", "nobody"]
    paths = [f"/v1/users/{u}/recommendations?k=50" for u in users]

    async def run() -> tuple[list[httpx.Response], list[httpx.Response]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

                async def burst() -> list[httpx.Response]:
                    return list(
                        await asyncio.gather(*(client.get(p, headers=keys["read"]) for p in paths))
                    )

                failing = await burst()
                broken["outage"] = True
                return failing, await burst()

    failing, outage = asyncio.run(run())
    assert asked_first == [] and set(read) == set(users)
    assert [r.status_code for r in failing] == [200, 200, 500, 200, 200]
    for user, had, answer in zip(users, items_alone(store, users), failing, strict=True):
        if user == "u2":
            continue
        body = answer.json()
        assert "store" not in body["degraded"]
        assert not {i["item_id"] for i in body["items"]} & set(had)
    assert [r.status_code for r in outage] == [200] * len(users)
    assert all(r.json()["degraded"][0] == "store" for r in outage)
