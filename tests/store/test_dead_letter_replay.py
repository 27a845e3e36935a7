"""Dead letters listed by time and reason, and replayed after a config fix: what now passes is
stored once (a second replay stores nothing), what still fails stays, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from recsmith.config import EventSettings
from recsmith.store.base import EventStore
from recsmith.store.dead_letter_replay import replay_dead_letters
from recsmith.store.ingest import ingest_event_batches, ingest_events
from recsmith.testing.contracts import scan_all

BEFORE = EventSettings()  # no "wishlist" type
AFTER = EventSettings(weights={**BEFORE.weights, "wishlist": 2.0})
T0 = time.time() - 3600


def wish(n: int, **fields: Any) -> dict[str, Any]:
    record = {
        "event_id": f"w{n}",
        "user_id": "u1",
        "item_id": f"i{n}",
        "event_type": "wishlist",
        "timestamp": T0 + n,
    }
    return {**record, **fields}


def refuse_some(store: EventStore) -> tuple[float, float]:
    """Five refused records from a file and a live batch; returns when the live one arrived."""
    file_records = [
        wish(0),
        wish(1, event_id=None),  # no id: replayed under its content id
        wish(2, user_id=7),  # a number as an id: still wrong after the fix
        {**wish(3), "context": {"note": "x" * 5000}},  # kept as a marker only
        {"event_id": "v4", "user_id": "u1", "item_id": "i4", "event_type": "view"},  # no time
    ]
    result = ingest_events(store, [r for r in file_records], BEFORE, source="upload.jsonl")
    assert result.accepted == 0 and len(result.rejected) == 5
    before = time.time()
    live = {"event_id": "w5", "user_id": "u2", "item_id": "i5", "event_type": "wishlist"}
    (res,) = ingest_event_batches(store, [[live]], BEFORE, source="http:/v1/events")
    assert res.accepted == 0 and len(res.rejected) == 1
    return before, time.time()


def test_dead_letters_filter_by_reason_time_and_page(store: EventStore) -> None:
    refuse_some(store)
    everything = store.dead_letters()
    assert [d.record_index for d in everything] == [0, 1, 2, 3, 4, 0]
    unknown = store.dead_letters(reason="unknown event type")
    assert [(d.source[:4], d.record_index) for d in unknown] == [
        ("uplo", 0),
        ("uplo", 1),
        ("uplo", 2),
        ("uplo", 3),  # its payload is a marker, its errors whole
        ("http", 0),
    ]
    assert [d.record_index for d in store.dead_letters(reason="must be a string")] == [2]
    assert store.dead_letters(reason="UNKNOWN EVENT TYPE") == []  # case-sensitive, both stores
    page = store.dead_letters(2)
    rest = store.dead_letters(100, after_id=page[-1].letter_id)
    assert [d.letter_id for d in page + rest] == [d.letter_id for d in everything]
    later = datetime.now(UTC) + timedelta(seconds=1)
    assert store.dead_letters(since=later) == []
    assert len(store.dead_letters(since=datetime.now(UTC) - timedelta(minutes=5))) == 6


def test_replay_after_adding_the_type_stores_what_passes_once(store: EventStore) -> None:
    live_from, live_to = refuse_some(store)
    nothing = replay_dead_letters(store, BEFORE)  # no fix yet: nothing changes
    assert (nothing.examined, nothing.stored) == (6, 0)
    assert len(store.dead_letters()) == 6

    done = replay_dead_letters(store, AFTER)
    assert done.to_json() == {
        "examined": 6,
        "stored": 3,  # w0, the one without an id, and the live w5
        "duplicates": 0,
        "refused_again": 0,
        "not_kept_whole": 1,
        "still_refused": 2,
        "still_refused_by_reason": {
            "user_id: must be a string (quote numeric ids)": 1,
            "timestamp: required": 1,
        },
    }
    events = scan_all(store).set_index("item_id")
    assert sorted(events.index) == ["i0", "i1", "i5"]
    assert events.loc["i0", "event_id"] == "w0"
    # the live event had no timestamp: it gets the time it was received, as it would have then
    stamped = events.loc["i5", "ts"] / 1e6
    assert live_from - 1e-3 <= stamped <= live_to + 1e-3
    left = store.dead_letters()
    assert sorted(d.record_index for d in left) == [2, 3, 4]

    again = replay_dead_letters(store, AFTER)
    assert (again.examined, again.stored, again.duplicates) == (3, 0, 0)
    assert len(scan_all(store)) == 3


def test_a_replay_cut_short_stores_nothing_twice(store: EventStore) -> None:
    """Stored, then the process died before the letters went: the next replay finds the events
    already there (duplicates), stores none again, and removes the letters."""
    ingest_events(store, [wish(0), wish(1, event_id=None)], BEFORE, source="f")
    ingest_events(store, [wish(0), wish(1, event_id=None)], AFTER, source="f")  # as if replayed
    assert len(scan_all(store)) == 2
    result = replay_dead_letters(store, AFTER)
    assert (result.stored, result.duplicates) == (0, 2)
    assert len(scan_all(store)) == 2 and store.dead_letters() == []


def test_a_reused_event_id_is_dead_lettered_again_with_that_reason(store: EventStore) -> None:
    ingest_events(store, [wish(0)], BEFORE, source="f")
    ingest_events(store, [{**wish(0), "event_type": "view"}], BEFORE, source="g")  # takes w0
    result = replay_dead_letters(store, AFTER)
    assert (result.stored, result.refused_again) == (0, 1)
    (letter,) = store.dead_letters()
    assert letter.source == "f" and letter.errors[0]["field"] == "event_id"
    assert letter.payload["event_type"] == "wishlist"


def test_replay_only_touches_the_selected_letters(store: EventStore) -> None:
    refuse_some(store)
    result = replay_dead_letters(store, AFTER, since=datetime.fromtimestamp(time.time() + 60, UTC))
    assert result.examined == 0
    only_live = replay_dead_letters(store, AFTER, reason="unknown event type (known")
    assert only_live.stored == 3
    assert len(store.dead_letters()) == 3


@pytest.mark.parametrize("size", [1, 40])  # the per-record path, and the column checks
def test_replay_keeps_the_live_rule_for_numbers_sent_as_strings(
    store: EventStore, size: int
) -> None:
    """``"value": "5"`` was refused live (a client's bug), so its replay refuses it again with
    the same reason; a file's letter reads its text as the import does, and is stored."""
    texts = [wish(n, value="5") for n in range(size)]
    (live,) = ingest_event_batches(store, [texts], BEFORE, source="http:/v1/events")
    assert live.accepted == 0
    from_file = [wish(n, event_id=f"f{n}", value="5") for n in range(size)]
    assert ingest_events(store, from_file, BEFORE, source="upload.jsonl").accepted == 0
    done = replay_dead_letters(store, AFTER)
    assert (done.examined, done.stored) == (2 * size, size)
    assert done.still_refused == {"value: must be a number, got the string '5'": size}
    events = scan_all(store)
    assert sorted(events["event_id"]) == sorted(f"f{n}" for n in range(size))
    assert events["value"].tolist() == [5.0] * size
    assert {d.source for d in store.dead_letters()} == {"http:/v1/events"}
