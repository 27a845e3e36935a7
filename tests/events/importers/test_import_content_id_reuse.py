"""Rows sent without an event_id get a content id (a hash of everything compared but the
context), and their re-sends are checked by comparing the context only (``reused_ids``). Here a
second file over stored events, on SQLite and PostgreSQL, with each row's outcome written by hand
from the two files' text: content-id re-sends, a context added, dropped or respelled, a repeat in
one chunk, rows with ids of their own in the same chunks, a bad row, and a row whose own id is
another row's content id (the whole batch is then compared field by field). Then the short path
against the full comparison on random batches."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.store.base import EventStore
from recsmith.store.ingest import check_events
from recsmith.store.reused_ids import reused_ids

#: the content id of ``,u7,i7,view,,1704103200,``, from the bytes ``content_event_ids`` hashes
U7 = hashlib.blake2b(
    "\x1f".join(["u7", "", "i7", "view", "", "1704103200000000"]).encode(), digest_size=16
).hexdigest()
FIRST = [
    ",u1,i1,view,,1704103200,",
    ',u1,i2,view,,1704103200,"{""k"":1}"',
    ",u2,i3,view,,1704103200,",
    "x,u3,i4,view,,1704103200,",
]
#: the second file (chunks of 4 records) and each row's outcome
SECOND = [
    (',u1,i1,view,,1704103200,"{""k"":2}"', "reused"),  # stored without a context
    (",u1,i2,view,,1704103200,", "reused"),  # stored with a context, sent without
    (",u4,,view,,1704103200,", "bad"),  # no item_id
    ("x,u3,i4,view,,1704103200,", "duplicate"),
    (",u1,i1,view,,1704103200,", "duplicate"),
    (',u1,i2,view,,1704103200,"{ ""k"" : 1 }"', "duplicate"),  # the same context respelled
    (",u5,i9,view,,1704103200,", "new"),
    (',u5,i9,view,,1704103200,"{""k"":3}"', "reused"),  # its first copy, a row above, had none
    ("x,u3,i4,view,,1704103201,", "reused"),  # an id of its own, one second later
    (",u2,i3,view,,1704103200,", "duplicate"),
    (",u2,i3,view,,1704103200,", "duplicate"),
    ("y,u6,i1,view,,1704103200,", "new"),
    (",u7,i7,view,,1704103200,", "new"),
    (f'{U7},u7,i7,view,,1704103200,"{{""k"":1}}"', "reused"),  # the row above's id, sent
]


def test_a_second_file_of_content_ids_over_stored_events(
    any_store: EventStore, events_csv: Callable[[str, list[str]], Path]
) -> None:
    settings = EventSettings()
    first = read_source("events", events_csv("first.csv", FIRST), chunk_rows=4)
    assert import_source(any_store, first, settings).accepted == 4

    second = read_source("events", events_csv("second.csv", [r for r, _ in SECOND]), 4)
    result = import_source(any_store, second, settings)

    outcomes = [o for _, o in SECOND]
    assert (result.accepted, result.duplicates) == (3, 5)
    assert [r.index for r in result.rejected] == [
        n for n, o in enumerate(outcomes) if o in ("reused", "bad")
    ]
    for rejection in result.rejected:
        field = "item_id" if outcomes[rejection.index] == "bad" else "event_id"
        assert rejection.errors[0].field == field
    assert sum("already used by a different event" in r.reason for r in result.rejected) == 5
    assert any_store.count_events() == 7

    stored = pd.concat(list(any_store.scan()), ignore_index=True)
    assert stored["event_id"].str.len().tolist().count(32) == 5  # x and y are their own
    by_item = stored.set_index("item_id")
    # the stored events are the first file's (and the new ones), untouched by rejected rows
    assert pd.isna(by_item.loc["i1"].set_index("user_id").loc["u1", "context"])
    assert by_item.loc["i2", "context"] == '{"k":1}'
    assert pd.isna(by_item.loc["i9", "context"])
    assert by_item.loc["i7", "event_id"] == U7
    assert pd.isna(by_item.loc["i7", "context"])
    assert by_item.loc["i4", "ts"] == 1704103200 * 1_000_000
    assert sorted(stored["user_id"]) == ["u1", "u1", "u2", "u3", "u5", "u6", "u7"]
    letters = any_store.dead_letters()
    assert len(letters) == 6
    assert sorted(d.record_index for d in letters) == [0, 1, 2, 7, 8, 13]


def _records(n: int, seed: int) -> pd.DataFrame:
    """Events as a CSV chunk reads them: few users and items (so content ids repeat), a third
    with ids of their own (some shared), contexts present, absent or respelled."""
    rng = np.random.default_rng(seed)
    contexts = np.array([None, '{"a":1}', '{ "a": 1 }', '{"a":2}'], dtype=object)
    ids = np.array([f"e{k}" for k in rng.integers(0, n // 4, n)], dtype=object)
    return pd.DataFrame(
        {
            "event_id": np.where(rng.random(n) < 0.33, ids, None),
            "user_id": [f"u{k}" for k in rng.integers(0, 4, n)],
            "item_id": [f"i{k}" for k in rng.integers(0, 5, n)],
            "event_type": "view",
            "timestamp": [str(1704103200 + k) for k in rng.integers(0, 3, n)],
            "context": contexts[rng.integers(0, len(contexts), n)],
        },
        dtype=object,
    )


def test_comparing_contexts_only_finds_the_reuses_a_full_comparison_finds(
    any_store: EventStore,
) -> None:
    settings = EventSettings()
    earlier = check_events(_records(300, 1), settings)
    any_store.append(earlier.valid)
    for seed in range(2, 6):
        checked = check_events(_records(300, seed), settings)
        assert checked.content_ids is not None and 0 < checked.content_ids.sum() < 300
        full = reused_ids(any_store, checked.valid, checked.stamped)
        short = reused_ids(any_store, checked.valid, checked.stamped, checked.content_ids)
        assert full.any() and (~full).any()
        np.testing.assert_array_equal(short, full)
        without_sent_ids = ~checked.content_ids
        content_only = checked.valid[checked.content_ids].reset_index(drop=True)
        np.testing.assert_array_equal(
            reused_ids(any_store, content_only, None, np.ones(len(content_only), dtype=bool)),
            reused_ids(any_store, content_only),
        )
        assert without_sent_ids.any()
