"""A second file over stored events: which of its rows are re-sends (duplicates), which reuse a
stored event_id for other content (rejected, naming ``event_id``), and which are new, on SQLite
and PostgreSQL. Each row's outcome is written here by hand from the two files' text, including
the cases an id-for-id comparison can get wrong: a value one ulp away, a missing value against 0,
a context spelled otherwise, a repeat inside one chunk that differs from the stored event where
its first copy does not, and one second of difference in time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.store.base import EventStore

FIRST = [
    "a,u1,i1,rating,1.0,1704103200,",
    "b,u1,i2,view,,1704103200,",
    "c,u2,i3,view,,1704103200,",
    'd,u2,i4,view,,1704103200,"{""k"": 1, ""j"": ""x""}"',
    "e,u3,i5,view,,1704103200,",
    "f,u3,i6,view,,1704103200,",
]
#: the second file (chunks of 3 rows) and each row's outcome
SECOND = [
    ("a,u1,i1,rating,1.0,1704103200,", "duplicate"),
    ("b,u1,i2,view,0,1704103200,", "reused"),  # missing value before, 0 now
    ("n1,u9,i1,view,,1704103200,", "new"),
    ('d,u2,i4,view,,1704103200,"{""j"":""x"",""k"":1}"', "duplicate"),  # same JSON, respelled
    ("c,u2,i3,view,,1704103200,", "duplicate"),
    ("c,u2,i7,view,,1704103200,", "reused"),  # same chunk, its first copy was a re-send
    ("a,u1,i1,rating,1.0000000000000002,1704103200,", "reused"),  # one ulp above 1.0
    ("e,u3,i5,view,,1704103201,", "reused"),  # one second later
    ("n2,u9,i2,view,,1704103200,", "new"),
    ("n2,u9,i2,view,,1704103200,", "duplicate"),  # a repeat of a new id in the same chunk
    ("f,u3,i6,view,,1704103200,", "duplicate"),
    ("n3,u9,i3,view,,1704103200,", "new"),
]


def test_a_second_file_over_stored_events(
    any_store: EventStore, events_csv: Callable[[str, list[str]], Path]
) -> None:
    settings = EventSettings()
    first = read_source("events", events_csv("first.csv", FIRST), chunk_rows=3)
    assert import_source(any_store, first, settings).accepted == 6
    assert float.fromhex("0x1.0000000000001p+0") == 1.0000000000000002  # the ulp, written out

    second = read_source("events", events_csv("second.csv", [r for r, _ in SECOND]), 3)
    result = import_source(any_store, second, settings)

    outcomes = [o for _, o in SECOND]
    assert (result.accepted, result.duplicates) == (3, 5)
    assert result.rejected_count == 4 == outcomes.count("reused")
    assert [r.index for r in result.rejected] == [1, 5, 6, 7]
    assert all(r.errors[0].field == "event_id" for r in result.rejected)
    assert all("already used by a different event" in r.reason for r in result.rejected)
    assert any_store.count_events() == 9

    stored = pd.concat(list(any_store.scan()), ignore_index=True).set_index("event_id")
    # the stored events are the first file's, untouched by the rejected rows
    assert stored.loc["a", "value"] == 1.0
    assert pd.isna(stored.loc["b", "value"])
    assert stored.loc["c", "item_id"] == "i3"
    assert stored.loc["e", "ts"] == 1704103200 * 1_000_000
    assert sorted(stored.index) == ["a", "b", "c", "d", "e", "f", "n1", "n2", "n3"]
    assert sorted(d.payload["event_id"] for d in any_store.dead_letters()) == ["a", "b", "c", "e"]
