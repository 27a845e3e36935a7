"""A batch stored but never acknowledged (its consumer died between the two) is delivered to
another consumer, and storing it again changes nothing: same events, same items, same dead
letters. Real brokers, real stores; the oracle is what the test published, written out by hand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.store.base import EventStore
from recsmith.store.dead_letter_replay import replay_dead_letters
from recsmith.streaming.broker import Broker, StreamMessage
from recsmith.streaming.ingest import ingest_messages
from recsmith.testing.backends import BACKENDS, open_backend

NOW = time.time()


def _event(n: int, **extra: object) -> tuple[str, bytes]:
    record = {
        "event_id": f"e{n}",
        "user_id": f"u{n % 3}",
        "item_id": f"i{n % 4}",
        "event_type": "view",
        "timestamp": NOW - n,
        **extra,
    }
    return "event", json.dumps(record).encode()


def _published() -> list[tuple[str, bytes]]:
    """12 good events (2 without a timestamp: the server stamps them), 1 item, 3 bad records."""
    good = [_event(n) for n in range(10)]
    stamped = [
        ("event", json.dumps({"event_id": f"s{n}", "user_id": "u9", "item_id": "i1",
                              "event_type": "view"}).encode())
        for n in range(2)
    ]  # fmt: skip
    item = [("item", json.dumps({"item_id": "new", "categories": ["shoes"]}).encode())]
    bad = [
        _event(99, event_type="teleport"),  # unknown event type
        ("event", b"{not json"),
        ("gadget", b"{}"),  # unknown kind
    ]
    return [*good, *stamped, *item, *bad]


def _events(store: EventStore) -> pd.DataFrame:
    frame = pd.concat(list(store.scan()), ignore_index=True)
    return frame.sort_values("event_id").reset_index(drop=True)


def _fetch_all(broker: Broker, n: int) -> list[StreamMessage]:
    got: list[StreamMessage] = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        got += broker.fetch(n - len(got), 0.5)
    assert len(got) == n, f"fetched {len(got)} of {n}"
    return got


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_redelivered_after_a_crash_before_its_ack_is_a_no_op(
    stream, backend: str, tmp_path: Path
) -> None:
    messages = _published()
    ids = stream.publish(messages)
    settings = EventSettings()
    with open_backend(backend, tmp_path) as (store, _):
        first = stream.broker("c1", claim_idle_s=0.5)
        batch = _fetch_all(first, len(messages))
        assert not any(m.redelivered for m in batch)
        done = ingest_messages(store, batch, settings, label=first.label)
        assert (done.events_stored, done.items_stored, done.rejected) == (12, 1, 3)
        # the consumer dies here: stored, never acknowledged
        events_before = _events(store)
        letters_before = store.dead_letters(100)
        assert first.lag().pending == len(messages)

        time.sleep(0.6)  # past the claim timeout: another consumer of the group takes them
        second = stream.broker("c2", claim_idle_s=0.5)
        again = _fetch_all(second, len(messages))
        assert sorted(m.id for m in again) == sorted(ids)
        assert all(m.redelivered for m in again)
        redone = ingest_messages(store, again, settings, label=second.label)
        second.ack(again)

        assert (redone.events_stored, redone.events_duplicate) == (0, 12)
        assert (redone.rejected, redone.already_rejected) == (0, 3)
        assert _events(store).equals(events_before)  # the stamped two kept their first time too
        assert [(d.letter_id, d.source) for d in store.dead_letters(100)] == [
            (d.letter_id, d.source) for d in letters_before
        ]
        assert {d.source for d in letters_before} == {stream.source(i) for i in ids[-3:]}
        assert store.get_item("new") is not None
        assert second.lag().pending == 0 and not second.lag().unconsumed
        first.close()
        second.close()


def test_refused_records_name_their_message_and_why(stream, tmp_path: Path) -> None:
    ids = stream.publish(_published())
    with open_backend("sqlite", tmp_path) as (store, _):
        broker = stream.broker("c1", claim_idle_s=5)
        batch = _fetch_all(broker, len(ids))
        ingest_messages(store, batch, EventSettings(), label=broker.label)
        broker.ack(batch)
        letters = {d.source: d for d in store.dead_letters(100)}
        teleport, not_json, gadget = (letters[stream.source(i)] for i in ids[-3:])
        assert [e["field"] for e in teleport.errors] == ["event_type"]
        assert teleport.payload["event_id"] == "e99"
        assert not_json.errors[0]["field"] == "record"
        assert not_json.errors[0]["reason"].startswith("not valid JSON")
        assert not_json.payload == {"body": "{not json"}
        reason = "unknown kind 'gadget': a message carries one event or item"
        assert gadget.errors == [{"field": "kind", "reason": reason}]
        assert {d.record_index for d in letters.values()} == {0}
        broker.close()


def test_a_refused_stream_event_replays_after_the_fix_keeping_its_time(
    stream, tmp_path: Path
) -> None:
    """A stream event is live like an HTTP one: refused without a timestamp but with an id, its
    replay stamps it with the time its dead letter was received (``dead_letter_replay``)."""
    record = {"event_id": "w1", "user_id": "u1", "item_id": "i1", "event_type": "wishlist"}
    stream.publish([("event", json.dumps(record).encode())])
    with open_backend("sqlite", tmp_path) as (store, _):
        broker = stream.broker("c1", claim_idle_s=5)
        batch = _fetch_all(broker, 1)
        assert ingest_messages(store, batch, EventSettings(), label=broker.label).rejected == 1
        broker.ack(batch)
        broker.close()
        (letter,) = store.dead_letters(10)
        fixed = EventSettings(weights={**EventSettings().weights, "wishlist": 2.0})
        assert replay_dead_letters(store, fixed).stored == 1
        (ts,) = _events(store)["ts"].tolist()
        assert ts == round(letter.received_at.timestamp() * 1_000_000)


def test_the_lag_counts_a_batch_acknowledged_as_soon_as_ack_returns(stream) -> None:
    """``ack`` returns once the broker applied it, so a lag read straight after counts none of the
    batch pending. JetStream queues acknowledgements and applies them apart from the connection
    reading them: a flush only said they had arrived, and 1 read in 15-70 still counted the batch
    (the redelivery test's pending=3 of a fresh-clone CI). Rounds, because it was a race."""
    broker = stream.broker("c1", claim_idle_s=30)
    try:
        for n in range(100):
            stream.publish([_event(16 * n + i) for i in range(16)])
            batch = _fetch_all(broker, 16)
            broker.ack(batch)
            lag = broker.lag()
            assert (lag.pending, lag.unconsumed) == (0, 0), f"round {n}"
    finally:
        broker.close()  # a failed round must not leave a connection on a loop gc closes later
