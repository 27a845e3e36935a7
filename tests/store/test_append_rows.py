"""A small group appended from its plain rows (``store.append_rows``) against the same group
appended from its frame, the oracle: for many generated groups over a store that already holds
some of their ids, the same outcome per row and the same stored rows, cell for cell and type for
type, in the same order (``received_at`` aside: each append stamps its own time)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsmith.config import EventSettings
from recsmith.events.validate_small import frame_of_rows, validate_small_rows
from recsmith.store.sqlite import SQLiteStore

NOW = 1_760_000_000.0
SETTINGS = EventSettings()
#: every column, with SQLite's type of each cell, in insertion order
STORED = (
    "SELECT event_id, user_id, session_id, item_id, event_type, value, typeof(value), ts, "
    "typeof(ts), context, recommendation_id, position, typeof(position) FROM events "
    "WHERE user_id LIKE '{case}-%' OR session_id LIKE '{case}-%' ORDER BY rowid"
)

event = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["u1", "u2", None]),
        "item_id": st.sampled_from(["i1", "i2", "é"]),
        "event_type": st.sampled_from(["view", "rating", "play"]),  # rating: value required
        "value": st.one_of(st.none(), st.integers(0, 5), st.floats(0, 5), st.just("2.5")),
        "timestamp": st.one_of(st.floats(min_value=8e8, max_value=NOW), st.integers(9e8, 1e9)),
    },
    optional={
        # few ids, so groups repeat them and meet the ones stored; absent: a content id
        "event_id": st.sampled_from(["a", "b", "c", "ä", "B", "a1"]),
        "session_id": st.just("s1"),
        "context": st.sampled_from([{"page": "home"}, '{"n": 1}']),
        "recommendation_id": st.just("r1"),
        "position": st.sampled_from([1, 2.0, "3"]),
    },
).filter(lambda r: r["user_id"] is not None or "session_id" in r)


def _appended(store: SQLiteStore, group: list[dict], *, from_rows: bool) -> list[bool]:
    rows, _, _ = validate_small_rows(group, SETTINGS, now=NOW, stamp_missing=True)
    result = store.append(frame_of_rows(rows), rows if from_rows else None)
    return [result.inserted, result.duplicates, *result.new.tolist()]


def test_rows_are_stored_as_the_frame_stores_them(tmp_path: Path) -> None:
    """Both stores stay open across the generated cases (opening one costs ~0.3 s); each case's
    ids carry its own prefix, and content ids its own user, so cases never meet."""
    paths = [tmp_path / "frame.sqlite", tmp_path / "rows.sqlite"]
    stores = [SQLiteStore(path) for path in paths]
    cases = iter(range(10**6))
    filled: list[int] = []  # rows each case stored

    @settings(
        max_examples=60,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(earlier=st.lists(event, max_size=4), group=st.lists(event, min_size=1, max_size=8))
    def same(earlier: list[dict], group: list[dict]) -> None:
        case = next(cases)

        def own(records: list[dict]) -> list[dict]:
            return [
                {
                    k: f"{case}-{v}" if k in ("event_id", "user_id", "session_id") and v else v
                    for k, v in r.items()
                }
                for r in records
            ]

        stored = []
        for store, path in zip(stores, paths, strict=True):
            if earlier:
                _appended(store, own(earlier), from_rows=False)
            outcome = _appended(store, own(group), from_rows=store is stores[1])
            with sqlite3.connect(path) as conn:
                rows = conn.execute(STORED.format(case=case)).fetchall()
            stored.append((outcome, rows))
        assert stored[1] == stored[0]
        filled.append(len(stored[0][1]))

    same()
    assert sum(n > 0 for n in filled) > 35  # the generator is worth its cases
    for store in stores:
        store.close()


def test_a_group_of_stored_and_repeated_ids_is_counted_per_row(tmp_path: Path) -> None:
    """Written out by hand: ``b`` stored before, ``a`` sent twice, ``c`` new."""
    store = SQLiteStore(tmp_path / "events.sqlite")
    base = {"user_id": "u", "item_id": "i", "event_type": "view", "timestamp": NOW}
    _appended(store, [{**base, "event_id": "b"}], from_rows=True)
    ids = ["c", "b", "a", "a"]
    outcome = _appended(store, [{**base, "event_id": i} for i in ids], from_rows=True)
    assert outcome == [2, 2, True, False, True, False]
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:
        assert [r[0] for r in conn.execute("SELECT event_id FROM events ORDER BY rowid")] == [
            "b",
            "a",
            "c",
        ]
    store.close()
