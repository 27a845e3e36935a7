"""An import's per-row outcomes and stored rows on SQLite and PostgreSQL, through the bulk paths
(PostgreSQL's COPY text, indexes deferred into an empty store, set-based id checks), against
expectations computed here from the file's text, and a re-import that changes nothing."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import psycopg
import pytest

from recsmith.config import EventSettings
from recsmith.events.importers import import_source, read_source
from recsmith.store.base import DEFERRED_EVENT_INDEXES, EventStore
from recsmith.store.open import open_store
from recsmith.testing.backends import BACKENDS, open_backend

HEADER = "event_id,user_id,item_id,event_type,value,timestamp,context"
#: file rows (0-based) and what must become of each; chunks of 4 put repeats in later chunks
ROWS = [
    (",u1,i1,view,,1704103200,", "new"),
    (",u1,i2,rating,4.5,1704103200,", "new"),
    (",u1,i1,view,,1704103200,", "duplicate"),  # row 0 again, content id
    ('e1,u2,i3,view,,1704103200,"{""b"": 2, ""a"": ""x\\\\y\\ty""}"', "new"),
    ('e1,u2,i3,view,,1704103200,"{""a"": ""x\\\\y\\ty"", ""b"": 2}"', "duplicate"),  # keys swapped
    ("e1,u9,i3,view,,1704103200,", "reused"),  # e1 names another event
    (",u3,i4,view,,yesterday,", "invalid"),
    (",u3,i4,view,,1704103200,,extra", "malformed"),
    (",u\\4,i5,rating,-0.0,1704103201,", "new"),  # a backslash: COPY must escape it
    ('e2,u5,i6,click,,1704103202,"{""q"": ""tab\\tnew\\nline""}"', "new"),
    ('e1,u2,i3,view,,1704103200,"{""a"": ""other""}"', "reused"),  # only the context differs
]
#: many plain rows after those, so there are more chunks than one
PLAIN = [f",p{k % 7},i{k},view,,{1704200000 + k}," for k in range(30)]
REJECTED = {
    5: "event_id: already used by a different event",
    6: "timestamp: not a date-time",
    7: "record: expected 7 fields, found 8",
    10: "event_id: already used by a different event",
}


def _content_id(user: str, item: str, kind: str, value: str, ts_us: int) -> str:
    """The id of an event sent without one, written out from its definition."""
    text = "\x1f".join((user, "", item, kind, value, str(ts_us)))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _expected_rows() -> set[tuple[object, ...]]:
    """(event_id, user, item, type, value, ts, context) of every event the file must store."""
    us = 1_000_000
    rows = {
        (
            _content_id("u1", "i1", "view", "", 1704103200 * us),
            "u1",
            "i1",
            "view",
            None,
            1704103200 * us,
            None,
        ),
        (
            _content_id("u1", "i2", "rating", "4.5", 1704103200 * us),
            "u1",
            "i2",
            "rating",
            4.5,
            1704103200 * us,
            None,
        ),
        ("e1", "u2", "i3", "view", None, 1704103200 * us, '{"a":"x\\\\y\\ty","b":2}'),
        (
            _content_id("u\\4", "i5", "rating", "-0.0", 1704103201 * us),
            "u\\4",
            "i5",
            "rating",
            -0.0,
            1704103201 * us,
            None,
        ),
        ("e2", "u5", "i6", "click", None, 1704103202 * us, '{"q":"tab\\tnew\\nline"}'),
    }
    for k in range(30):
        ts = (1704200000 + k) * us
        rows.add(
            (
                _content_id(f"p{k % 7}", f"i{k}", "view", "", ts),
                f"p{k % 7}",
                f"i{k}",
                "view",
                None,
                ts,
                None,
            )
        )
    return rows


def _stored(store: EventStore) -> set[tuple[object, ...]]:
    frame = pd.concat(list(store.scan()), ignore_index=True)
    columns = ["event_id", "user_id", "item_id", "event_type", "value", "ts", "context"]
    return {
        tuple(None if isinstance(v, float) and v != v else v for v in row)
        for row in frame[columns].itertuples(index=False, name=None)
    }


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    path.write_text("\n".join([HEADER, *(r for r, _ in ROWS), *PLAIN]) + "\n")
    return path


def test_each_row_gets_its_outcome_and_a_reimport_changes_nothing(
    backend: tuple[EventStore, str], path: Path
) -> None:
    store, _ = backend
    settings = EventSettings()
    new = sum(outcome == "new" for _, outcome in ROWS) + len(PLAIN)
    for attempt in ("fresh", "again"):
        result = import_source(store, read_source("events", path, chunk_rows=4), settings)
        if attempt == "fresh":
            assert (result.accepted, result.duplicates) == (new, 2)
        else:  # every event the file holds is stored now, the refused rows refused again
            assert (result.accepted, result.duplicates) == (0, new + 2)
        assert result.rejected_count == len(REJECTED)
        assert {r.index: r.reason for r in result.rejected}.keys() == REJECTED.keys()
        for rejection in result.rejected:
            assert rejection.reason.startswith(REJECTED[rejection.index]), rejection.reason
        assert store.count_events() == new
        assert _stored(store) == _expected_rows()


def _event_indexes(store: EventStore, url: str) -> set[str]:
    """The names of the events table's indexes, read on a connection of the test's own."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"
            return {name for (name,) in conn.execute(query)}
    schema = parse_qs(urlsplit(url).query)["schema"][0]
    base_url = url.split("?")[0]
    with psycopg.connect(base_url) as conn:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'events'"
        return {name for (name,) in conn.execute(query, (schema,))}


def test_indexes_are_built_at_the_end_only_into_an_empty_store(
    backend: tuple[EventStore, str], path: Path
) -> None:
    store, url = backend
    deferred = set(DEFERRED_EVENT_INDEXES)
    assert store.count_events() == 0  # (PostgreSQL creates its tables on first use)
    assert deferred <= _event_indexes(store, url)
    seen: list[set[str]] = []

    def look(_: int) -> None:
        seen.append(_event_indexes(store, url))

    settings = EventSettings()
    import_source(store, read_source("events", path, chunk_rows=4), settings, on_progress=look)
    assert len(seen) > 3 and all(not (deferred & names) for names in seen)
    assert deferred <= _event_indexes(store, url)

    seen.clear()  # the store holds events now: its indexes stay while another file comes in
    import_source(store, read_source("events", path, chunk_rows=4), settings, on_progress=look)
    assert seen and all(deferred <= names for names in seen)


def test_indexes_come_back_after_a_failed_import_and_after_a_killed_one(
    backend: tuple[EventStore, str], path: Path
) -> None:
    store, url = backend

    def fail(_: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        source = read_source("events", path, chunk_rows=4)
        import_source(store, source, EventSettings(), on_progress=fail)
    assert store.count_events() > 0  # the first chunk was committed before the failure
    assert set(DEFERRED_EVENT_INDEXES) <= _event_indexes(store, url)

    # an import killed while the indexes were gone: the next store opened builds them
    store.close()
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for name in DEFERRED_EVENT_INDEXES:
                conn.execute(f"DROP INDEX {name}")
    else:
        schema = parse_qs(urlsplit(url).query)["schema"][0]
        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            for name in DEFERRED_EVENT_INDEXES:
                conn.execute(f'DROP INDEX "{schema}".{name}')
    assert not set(DEFERRED_EVENT_INDEXES) & _event_indexes(store, url)
    reopened = open_store(url)
    try:
        assert reopened.count_events() > 0
        assert set(DEFERRED_EVENT_INDEXES) <= _event_indexes(reopened, url)
    finally:
        reopened.close()
