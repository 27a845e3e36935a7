"""The watches' decision window read incrementally answers what a full read answers, row for row,
on SQLite and PostgreSQL: when it moves forward, when a late write or a delete lands in the span it
kept, and when it widens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from recsmith.decisions.record import Decision, decision
from recsmith.decisions.window import DecisionWindow
from recsmith.store.base import EventStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def shown(rid: str, minute: float, items: list[str]) -> Decision:
    return decision(
        rid,
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=items,
        scores=[1.0] * len(items),
        sources=[("als",)] * len(items),
        served_at=T0 + timedelta(minutes=minute),
    )


def at(minute: float) -> datetime:
    return T0 + timedelta(minutes=minute)


def rows(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["recommendation_id"], frame["item_id"], strict=True))


def test_a_moving_window_reads_only_new_rows_and_equals_a_full_read(store: EventStore) -> None:
    store.append_decisions([shown("a", 0, ["i1", "i2"]), shown("b", 10, ["i3"])])
    window = DecisionWindow(store, settle_s=60)
    assert rows(window.scan(at(0), now=at(11))) == [("a", "i1"), ("a", "i2"), ("b", "i3")]
    store.append_decisions([shown("c", 10.5, ["i4"]), shown("d", 20, ["i5", "i1"])])
    # the window now starts at minute 5: "a" fell out, "c" (served before the last read but
    # stored after it, within the settle time) and "d" are new
    got = window.scan(at(5), now=at(21))
    assert rows(got) == [("b", "i3"), ("c", "i4"), ("d", "i5"), ("d", "i1")]
    pd.testing.assert_frame_equal(got, store.scan_decisions(at(5)))
    assert window.full_reads == 1  # the second answer came from the kept rows and a short read


def test_a_late_write_or_a_delete_in_the_kept_span_makes_it_read_the_window_again(
    store: EventStore,
) -> None:
    store.append_decisions([shown("a", 1, ["i1"]), shown("b", 10, ["i2"])])
    window = DecisionWindow(store, settle_s=0)
    window.scan(at(0), now=at(11))
    store.append_decisions([shown("late", 2, ["i9"])])  # served long before the last read
    got = window.scan(at(0), now=at(12))
    assert rows(got) == [("a", "i1"), ("late", "i9"), ("b", "i2")]
    pd.testing.assert_frame_equal(got, store.scan_decisions(at(0)))
    assert window.full_reads == 2
    store.delete_decisions_before(at(1.5))  # retention takes "a"
    got = window.scan(at(0), now=at(13))
    assert rows(got) == [("late", "i9"), ("b", "i2")]
    assert window.full_reads == 3


def test_a_wider_window_reads_only_what_is_before_the_kept_one(store: EventStore) -> None:
    store.append_decisions([shown("a", 1, ["i1"]), shown("b", 10, ["i2"])])
    window = DecisionWindow(store, settle_s=0)
    assert rows(window.scan(at(5), now=at(11))) == [("b", "i2")]
    store.append_decisions([shown("c", 11.5, ["i3", "i4"])])
    got = window.scan(at(0), now=at(12))
    assert rows(got) == [("a", "i1"), ("b", "i2"), ("c", "i3"), ("c", "i4")]
    pd.testing.assert_frame_equal(got, store.scan_decisions(at(0)))
    assert window.full_reads == 1
    store.append_decisions([shown("late", 0.5, ["i9"])])  # before the kept span: counted
    assert rows(window.scan(at(0), now=at(13)))[0] == ("late", "i9")
    assert window.full_reads == 2
