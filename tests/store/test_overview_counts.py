"""The store's aggregates behind the console's overview, on SQLite and PostgreSQL: events per
minute of event time inside ``[since, until)`` only, and the dead-letter count with the newest
few, newest first; plus the minute series the overview builds from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recsmith.config import EventSettings
from recsmith.events.schema import FieldError, Rejection
from recsmith.events.validate import validate_events
from recsmith.monitoring.overview import minute_series
from recsmith.store.base import EventStore

#: 12:00:00 UTC on a fixed day, as a minute number (microseconds // 60 s)
NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOON_MINUTE = int(NOON.timestamp()) // 60


def test_events_per_minute_counts_inside_the_window_only(store: EventStore) -> None:
    # seconds after noon: 2 at 12:00, 3 at 12:01 (one on its last microsecond), 1 at 12:02
    # exactly (the window's end: out), 1 at 11:59:59 (before the window: out)
    offsets = [0, 59, 60, 61.5, 119.999999, 120, -1]
    records = [
        {
            "event_id": f"m{n}",
            "user_id": "u",
            "item_id": "i",
            "event_type": "view",
            "timestamp": (NOON + timedelta(seconds=s)).isoformat(),
        }
        for n, s in enumerate(offsets)
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    store.append(frame)
    counts = store.events_per_minute(NOON, NOON + timedelta(minutes=2))
    assert counts == [(NOON_MINUTE, 2), (NOON_MINUTE + 1, 3)]


def test_dead_letter_summary_counts_all_and_lists_the_newest_first(store: EventStore) -> None:
    store.add_dead_letters([Rejection(i, (FieldError("f", f"r{i}"),)) for i in range(4)], "a")
    store.add_dead_letters([Rejection(0, (FieldError("g", "last"),))], "b")
    count, newest = store.dead_letter_summary(datetime.now(UTC) - timedelta(hours=1), 2)
    assert count == 5
    assert [(d.source, d.errors[0]["reason"]) for d in newest] == [("b", "last"), ("a", "r3")]
    later, none = store.dead_letter_summary(datetime.now(UTC) + timedelta(hours=1), 2)
    assert (later, none) == (0, [])


def test_minute_series_puts_the_current_minute_last_and_fills_quiet_minutes() -> None:
    now = NOON + timedelta(minutes=4, seconds=30)  # the current minute is 12:04
    counts = [(NOON_MINUTE, 7), (NOON_MINUTE + 2, 1), (NOON_MINUTE + 4, 3), (NOON_MINUTE - 9, 5)]
    assert minute_series(counts, now, 5) == [7, 0, 1, 0, 3]  # 12:00 … 12:04; 11:51 dropped
