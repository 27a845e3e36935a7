"""The behaviour every EventStore backend must have, as one pytest suite all backends inherit.

Subclass ``EventStoreContract`` in a ``Test…`` class and give it a ``store`` fixture returning an
empty store, and an ``open_with`` fixture opening more empty stores with a given dead-letter policy
(closed by the fixture); pytest then runs every test below against that backend. Keeping the tests
here, not per backend, is what makes SQLite (development) and PostgreSQL (production)
interchangeable.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import EVENT_COLUMNS, Item, User
from recsmith.events.validate import validate_events
from recsmith.store.base import ApiKey, AppendResult, EventStore, empty_events
from recsmith.store.dead_letters import DeadLetterPolicy
from recsmith.store.ingest import ingest_events

SETTINGS = EventSettings()
#: What the ``open_with`` fixture is: an empty store with this dead-letter policy.
OpenWith = Callable[[DeadLetterPolicy], EventStore]
T0 = datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
T0_US = 1_614_834_367_123_456
HOUR_US = 3_600_000_000


def at(hours: float = 0.0) -> str:
    """An ISO 8601 timestamp ``hours`` after T0."""
    return (T0 + timedelta(hours=hours)).isoformat()


def event(item: str, eid: str | None = None, **fields: Any) -> dict[str, Any]:
    """A raw event record for ``item``: user "u1", a view at T0, unless ``fields`` say otherwise
    (``user=None`` leaves the user out, ``kind`` is the event type, ``h`` hours after T0)."""
    user, kind, h = fields.pop("user", "u1"), fields.pop("kind", "view"), fields.pop("h", 0.0)
    rec: dict[str, Any] = {"item_id": item, "event_type": kind, "timestamp": at(h), **fields}
    if user is not None:
        rec["user_id"] = user
    if eid is not None:
        rec["event_id"] = eid
    return rec


def frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A validated canonical frame; fails loudly if a fixture record is itself invalid."""
    valid, rejected = validate_events(records, SETTINGS)
    assert rejected == [], rejected
    return valid


def ingest(store: EventStore, records: Sequence[Mapping[str, Any]], source: str = "test") -> Any:
    return ingest_events(store, records, SETTINGS, source=source)


def scan_all(store: EventStore, **kwargs: Any) -> pd.DataFrame:
    chunks = list(store.scan(**kwargs))
    return pd.concat(chunks, ignore_index=True) if chunks else empty_events()


def column(df: pd.DataFrame, name: str) -> list[Any]:
    """Values with every missing marker (None, NaN, pd.NA) read as None, for plain comparisons."""
    return [None if pd.isna(v) else v for v in df[name].tolist()]


class EventStoreContract:
    """Shared tests; subclasses provide a ``store`` fixture yielding an empty store."""

    def test_is_an_event_store_that_answers(self, store: EventStore) -> None:
        assert isinstance(store, EventStore)
        assert store.ping() is True

    def test_round_trip_keeps_ids_values_and_timestamps(self, store: EventStore) -> None:
        ctx = {"pos": 3, "page": "home"}
        second = event(
            "café ☕ 書", "e-002", user="ユーザー", kind="rating", value=4.5, context=ctx
        )
        second |= {"session_id": "s-1", "timestamp": "2021-03-04T05:06:08.000001Z"}
        third = event("1e5", "e-003", user=None, kind="play", value=0, session_id="anon-7")
        third["timestamp"] = 1614834369
        result = ingest(store, [event("0739079891", "e-001", user="00042"), second, third])
        assert (result.accepted, result.duplicates, result.rejected) == (3, 0, ())
        out = scan_all(store)
        assert list(out.columns) == list(EVENT_COLUMNS)
        assert out["ts"].dtype == "int64"
        assert column(out, "event_id") == ["e-001", "e-002", "e-003"]
        assert column(out, "item_id") == ["0739079891", "café ☕ 書", "1e5"]
        assert all(type(v) is str for v in out["item_id"])
        assert column(out, "user_id") == ["00042", "ユーザー", None]
        assert column(out, "session_id") == [None, "s-1", "anon-7"]
        assert column(out, "event_type") == ["view", "rating", "play"]
        assert out["ts"].tolist() == [T0_US, 1_614_834_368_000_001, 1_614_834_369_000_000]
        values = out["value"].tolist()
        assert math.isnan(values[0]) and values[1:] == [4.5, 0.0]
        assert column(out, "context") == [None, '{"page":"home","pos":3}', None]

    def test_same_batch_twice_inserts_nothing_the_second_time(self, store: EventStore) -> None:
        batch = frame([event("a", "a"), event("b", "b"), event("c", "c")])
        assert store.append(batch) == AppendResult(3, 0)
        assert store.append(batch) == AppendResult(0, 3)
        assert store.count_events() == 3

    def test_repeats_inside_a_batch_count_as_duplicates(self, store: EventStore) -> None:
        one, five = (event("x", "a", kind="rating", value=v) for v in (1, 5))
        first = frame([one, event("y", "b"), five])
        assert store.append(first) == AppendResult(2, 1)
        second = frame([event("y", "b"), event("z", "c"), event("z", "c")])
        assert store.append(second) == AppendResult(1, 2)
        out = scan_all(store)
        assert sorted(column(out, "event_id")) == ["a", "b", "c"]
        assert out.loc[out["event_id"] == "a", "value"].tolist() == [1.0]  # first one wins

    def test_append_marks_exactly_the_rows_it_stored(self, store: EventStore) -> None:
        # what group commit splits per request: the first of each new id, nothing else
        first = store.append(frame([event("x", "a"), event("y", "b"), event("x", "a")]))
        assert first.new.tolist() == [True, True, False]
        second = store.append(frame([event("z", "c"), event("y", "b"), event("z", "c")]))
        assert second.new.tolist() == [True, False, False]
        assert store.append(empty_events()).new.tolist() == []
        # rows out of id order (a store may insert them sorted): the mask follows the input
        third = store.append(frame([event("w", "d"), event("v", "b"), event("u", "0")]))
        assert third.new.tolist() == [True, False, True]

    def test_events_without_ids_are_idempotent(self, store: EventStore) -> None:
        records = [event("i1", h=1), event("i2", user="u2", kind="purchase")]
        assert ingest(store, records).as_counts() == {"accepted": 2, "rejected": 0, "duplicates": 0}
        assert ingest(store, records).as_counts() == {"accepted": 0, "rejected": 0, "duplicates": 2}
        assert store.count_events() == 2

    def test_events_by_id(self, store: EventStore) -> None:
        many = [event(f"i{k}", f"e{k}", h=k) for k in range(1200)]  # past one IN (…) of ids
        ctx = event("c", "ctx", kind="rating", value=2.5, context={"b": 1, "a": "x"})
        ingest(store, [*many, ctx])
        got = store.events_by_id(["e3", "nope", "ctx", *(f"e{k}" for k in range(600, 1200))])
        assert sorted(column(got, "event_id")) == sorted(
            ["e3", "ctx", *(f"e{k}" for k in range(600, 1200))]
        )
        assert list(got.columns) == list(EVENT_COLUMNS)
        row = got[got["event_id"] == "ctx"].iloc[0]
        assert (row["item_id"], row["value"], row["ts"]) == ("c", 2.5, T0_US)
        assert store.events_by_id([]).empty

    def test_contexts_by_id(self, store: EventStore) -> None:
        ctx = event("c", "ctx", context={"b": 1, "a": "x"})
        ingest(store, [*(event(f"i{k}", f"e{k}", h=k) for k in range(1200)), ctx])
        got = store.contexts_by_id(
            ["e3", "nope", "ctx", "e3", *(f"e{k}" for k in range(600, 1200))]
        )
        assert got == {
            "e3": None,
            "ctx": '{"a":"x","b":1}',
            **{f"e{k}": None for k in range(600, 1200)},
        }
        assert store.contexts_by_id([]) == {}

    def test_an_event_id_reused_for_other_content_is_rejected_not_dropped(
        self, store: EventStore
    ) -> None:
        first = event("i1", "e1", context={"a": 1, "b": 2})
        same = {**first, "context": {"b": 2, "a": 1}, "timestamp": T0_US // 1_000_000 + 0.123456}
        other = event("i2", "e1")  # the same id, another item
        result = ingest(store, [first, event("i3", "e2"), other, same])
        assert (result.accepted, result.duplicates) == (2, 1)  # `same` is a re-send
        assert [(r.index, r.errors[0].field) for r in result.rejected] == [(2, "event_id")]
        assert "already used by a different event" in result.rejected[0].reason
        later = ingest(store, [same, event("i1", "e2", kind="purchase"), event("i4", "e3")])
        assert (later.accepted, later.duplicates) == (1, 1)
        assert [r.index for r in later.rejected] == [1]
        assert sorted(column(scan_all(store), "item_id")) == ["i1", "i3", "i4"]
        assert sorted(d.payload["item_id"] for d in store.dead_letters()) == ["i1", "i2"]

    def test_empty_append_and_empty_store(self, store: EventStore) -> None:
        assert store.append(empty_events()) == AppendResult(0, 0)
        assert list(store.scan()) == []
        assert store.count_events() == 0

    def _ten_hours(self, store: EventStore) -> None:
        order = [7, 2, 9, 0, 5, 3, 8, 1, 6, 4]  # stored out of order on purpose
        types = ["view", "click"]
        ingest(store, [event(f"i{k}", f"e{k}", h=k, kind=types[k % 2]) for k in order])

    def test_scan_returns_time_order(self, store: EventStore) -> None:
        self._ten_hours(store)
        out = scan_all(store)
        assert column(out, "event_id") == [f"e{k}" for k in range(10)]
        assert out["ts"].tolist() == [T0_US + k * HOUR_US for k in range(10)]

    def test_scan_filters_by_time_and_type(self, store: EventStore) -> None:
        self._ten_hours(store)

        def ids(**kwargs: Any) -> list[Any]:
            return column(scan_all(store, **kwargs), "event_id")

        def h(hours: int) -> datetime:
            return T0 + timedelta(hours=hours)

        assert ids(since=h(2), until=h(5)) == ["e2", "e3", "e4"]  # until is exclusive
        assert ids(until=h(1)) == ["e0"]
        assert ids(since=h(8)) == ["e8", "e9"]
        assert ids(since=h(8) + timedelta(microseconds=1)) == ["e9"]
        assert ids(types={"click"}) == ["e1", "e3", "e5", "e7", "e9"]
        assert ids(since=h(4), types=["click", "purchase"]) == ["e5", "e7", "e9"]
        assert ids(types=["purchase"]) == []

    def test_scan_breaks_time_ties_by_event_id(self, store: EventStore) -> None:
        ingest(store, [event("i", e, h=1) for e in ("b", "a", "B", "c")] + [event("i", "z")])
        assert column(scan_all(store), "event_id") == ["z", "B", "a", "b", "c"]  # byte order

    def test_scan_yields_chunks_of_batch_size(self, store: EventStore) -> None:
        self._ten_hours(store)
        chunks = list(store.scan(batch_size=4))
        assert [len(c) for c in chunks] == [4, 4, 2]
        assert all(list(c.columns) == list(EVENT_COLUMNS) for c in chunks)
        assert [e for c in chunks for e in column(c, "event_id")] == [f"e{k}" for k in range(10)]
        assert [len(c) for c in store.scan(batch_size=10)] == [10]

    def test_other_calls_while_a_scan_is_open(self, store: EventStore) -> None:
        self._ten_hours(store)
        seen: list[str] = []
        for chunk in store.scan(batch_size=3):
            seen.extend(column(chunk, "event_id"))
            assert store.count_events() == 10
            assert store.user_items("u1") != []
        assert seen == [f"e{k}" for k in range(10)]

    def test_user_items(self, store: EventStore) -> None:
        anonymous = event("w", user=None, session_id="anon")
        ingest(
            store,
            [
                event("x"),
                event("007", h=1),
                event("x", h=2, kind="purchase"),
                event("z", user="u2"),
                anonymous,
            ],
        )
        assert sorted(store.user_items("u1")) == ["007", "x"]
        assert store.user_items("u2") == ["z"]
        assert store.user_items("nobody") == []

    def test_user_items_with_ids_json_writes_escaped(self, store: EventStore) -> None:
        """Ids a JSON array must escape or could misread (quotes, backslashes, non-ASCII,
        digits, ``null``) come back as ingested, each once (the SQLite store reads them as one
        JSON array)."""
        ids = ['say "hi"', "back\\slash", "naïve ☃ 🎁", "007", "1e3", "null", "[]", "a\u2028b"]
        ingest(
            store,
            [
                event(i, h=n % 3, kind="purchase" if n % 2 else "view")
                for n, i in enumerate([*ids, *reversed(ids)])
            ],
        )
        got = store.user_items("u1")
        assert sorted(got) == sorted(ids) and all(type(i) is str for i in got)

    def test_concurrent_appends_from_threads(self, store: EventStore) -> None:
        ranges = [range(t * 50, t * 50 + 100) for t in range(4)]  # each overlaps the next
        batches = [frame([event(f"i{i}", f"e{i:03d}", h=i / 100) for i in r]) for r in ranges]
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(store.append, batches))
        assert sum(r.inserted for r in results) == 250
        assert sum(r.inserted + r.duplicates for r in results) == 400
        assert store.count_events() == 250

    def test_items_round_trip_every_field(self, store: EventStore) -> None:
        item = Item(
            item_id="0739079891",
            categories=["books", "fiction"],
            tags=["a", "ü"],
            text="Ünïcode — text",
            available=False,
            properties={"price": 9.99, "brand": "acme", "pages": 320, "signed": True, "isbn": None},
            created_at=datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        )
        assert store.upsert_items([item]) == 1
        got = store.get_item("0739079891")
        assert got == item
        assert got is not None and type(got.properties["pages"]) is int
        assert store.get_item("739079891") is None
        assert store.items() == [item]

    def test_upsert_items_replaces_but_keeps_created_at(self, store: EventStore) -> None:
        created = datetime(2020, 1, 2, tzinfo=UTC)
        old = Item(item_id="b", tags=["old"], text="old", created_at=created)
        store.upsert_items([old, Item(item_id="a")])
        store.upsert_items([Item(item_id="b", categories=["new"], available=False)])
        new = Item(item_id="b", categories=["new"], available=False, created_at=created)
        assert store.get_item("b") == new
        assert [i.item_id for i in store.items()] == ["a", "b"]
        store.upsert_items([Item(item_id="B")])
        assert [i.item_id for i in store.items()] == ["B", "a", "b"]  # byte order

    def test_items_changed_since_a_stamp(self, store: EventStore) -> None:
        assert store.items_changed_since(0) == []
        store.upsert_items([Item(item_id="a"), Item(item_id="b")])
        everything = store.items_changed_since(0)
        assert sorted(i.item_id for i, _ in everything) == ["a", "b"]
        first = max(stamp for _, stamp in everything)
        time.sleep(0.002)  # write times are the store's clock, in microseconds
        store.upsert_items([Item(item_id="b", available=False)])
        changed = store.items_changed_since(first + 1)
        assert [i for i, _ in changed] == [Item(item_id="b", available=False)]
        assert changed[0][1] > first
        assert store.items_changed_since(changed[0][1] + 1) == []
        seen = {item.item_id: stamp for item, stamp in everything}
        assert store.items_changed_since(0, seen) == changed  # "a" is unchanged, "b" was rewritten

    def test_users(self, store: EventStore) -> None:
        pro = User(user_id="u1", properties={"age": 30, "plan": "pro"})
        assert store.upsert_users([pro, User(user_id="0042")]) == 2
        assert store.get_user("u1") == pro
        assert store.get_user("0042") == User(user_id="0042")
        store.upsert_users([User(user_id="u1", properties={"plan": "free"})])
        assert store.get_user("u1") == User(user_id="u1", properties={"plan": "free"})
        assert store.get_user("42") is None
        assert store.users() == [
            User(user_id="0042"),
            User(user_id="u1", properties={"plan": "free"}),
        ]

    def test_delete_user_removes_events_and_profile(self, store: EventStore) -> None:
        anonymous = event("x", user=None, session_id="s")
        ingest(
            store, [event("x"), event("y", h=1), event("z", h=2), event("x", user="u2"), anonymous]
        )
        store.upsert_users([User(user_id="u1"), User(user_id="u2")])
        assert store.delete_user("u1") == 3
        assert store.get_user("u1") is None
        assert store.get_user("u2") == User(user_id="u2")
        assert store.count_events() == 2
        assert store.user_items("u1") == []
        assert "u1" not in column(scan_all(store), "user_id")
        assert store.delete_user("u1") == 0

    def test_dead_letters_round_trip(self, store: EventStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        records = [
            event("ok"),
            {**event("x"), "user_id": 7},
            {"user_id": "u3", "event_type": "teleport", "timestamp": at()},
        ]
        result = ingest_events(store, records, SETTINGS, source="upload.csv", offset=100)
        assert (result.accepted, len(result.rejected)) == (1, 2)
        letters = store.dead_letters()
        assert [d.record_index for d in letters] == [101, 102]
        assert {d.source for d in letters} == {"upload.csv"}
        reason = "must be a string (quote numeric ids)"
        assert letters[0].errors == [{"field": "user_id", "reason": reason}]
        assert letters[0].payload == {**event("x"), "user_id": 7}
        assert {e["field"] for e in letters[1].errors} == {"item_id", "event_type"}
        expected = [{"field": e.field, "reason": e.reason} for e in result.rejected[1].errors]
        assert letters[1].errors == expected
        assert letters[1].payload == {"user_id": "u3", "event_type": "teleport", "timestamp": at()}
        assert all(before <= d.received_at <= datetime.now(UTC) for d in letters)
        assert [d.record_index for d in store.dead_letters(limit=1)] == [101]
        store.add_dead_letters([], "nothing")
        assert len(store.dead_letters()) == 2

    def test_a_lone_surrogate_is_dead_lettered_readably_beside_stored_neighbours(
        self, store: EventStore
    ) -> None:
        """SQLite and PostgreSQL text is UTF-8: the refused record's own dead letter must fit."""
        lone = "a\ud800"  # what json.loads makes of the escape "a\\ud800"
        records = [event("ok-1"), {**event(lone), "x\udc00": [lone]}, event("ok-2")]
        result = ingest_events(store, records, SETTINGS, source="http")
        assert (result.accepted, [r.index for r in result.rejected]) == (2, [1])
        assert sorted(scan_all(store)["item_id"]) == ["ok-1", "ok-2"]
        (letter,) = store.dead_letters()
        assert letter.errors == [
            {"field": "item_id", "reason": "not valid Unicode (lone surrogate)"},
            {
                "field": "x\\udc00",
                "reason": "unknown field (valid: context, event_id, event_type, item_id, position, "
                "recommendation_id, session_id, timestamp, user_id, value)",
            },
        ]
        assert letter.payload == {**event("a\\ud800"), "x\\udc00": ["a\\ud800"]}

    def test_api_keys(self, store: EventStore) -> None:
        key = ApiKey("k1", "ci", ("ingest", "read"), datetime(2024, 5, 6, 7, 8, 9, 123456, UTC))
        revoked = ApiKey("k2", "old", ("admin",), datetime(2023, 1, 1, tzinfo=UTC), revoked=True)
        store.add_api_key(key, "hash-1")
        store.add_api_key(revoked, "hash-2")
        assert store.find_api_key("hash-1") == key
        assert store.find_api_key("hash-2") == revoked
        assert store.find_api_key("hash-3") is None
        assert store.find_api_key("k1") is None  # looked up by hash, never by id
        found = store.find_api_key("hash-2")
        assert found is not None and not found.allows("read")

    def test_count_events(self, store: EventStore) -> None:
        assert store.count_events() == 0
        ingest(store, [event(f"i{k}", h=k) for k in range(4)])
        assert store.count_events() == 4
        ingest(store, [event("i0")])
        assert store.count_events() == 4

    def test_a_large_refused_payload_is_kept_capped_with_its_size(
        self, open_with: OpenWith
    ) -> None:
        store = open_with(DeadLetterPolicy(max_payload_bytes=1024))
        small = {**event("small"), "user_id": 7}
        huge = {**event("huge"), "user_id": 8, "context": {"blob": "x" * 100_000, "é": "ü"}}
        ingest(store, [small, huge])
        whole, capped = store.dead_letters()
        assert whole.payload == small
        text = json.dumps(huge)  # ASCII: "é" is written \u00e9, so characters are bytes
        assert len(text) > 100_000
        assert capped.payload == {
            "truncated": True,
            "original_bytes": len(text),
            "head": text[:1024],
        }
        assert {e["field"] for e in capped.errors} == {"user_id", "context"}  # errors whole

    def test_dead_letters_past_retention_are_pruned_at_most_once_per_interval(
        self, open_with: OpenWith
    ) -> None:
        def refused(item: str) -> dict[str, Any]:
            return {**event(item), "user_id": 7}

        def kept(store: EventStore) -> list[str]:
            return [d.payload["item_id"] for d in store.dead_letters()]

        pruned = open_with(DeadLetterPolicy(retention_s=0.2, prune_every_s=0.0))
        ingest(pruned, [refused("old")])
        time.sleep(0.3)
        ingest(pruned, [refused("new")])
        assert kept(pruned) == ["new"]
        throttled = open_with(DeadLetterPolicy(retention_s=0.2, prune_every_s=3600.0))
        ingest(throttled, [refused("a")])  # the first write prunes (nothing is old yet)
        time.sleep(0.3)
        ingest(throttled, [refused("b")])  # the next prune is an hour away: "a" stays
        assert kept(throttled) == ["a", "b"]
