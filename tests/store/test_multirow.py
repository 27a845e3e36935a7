"""``multirow.insert_columns`` stores exactly what ``executemany`` of one row a statement stores:
the same rows, values and types, conflicts skipped row by row, at every count around the
statement size; columns of unequal length store nothing."""

from __future__ import annotations

import sqlite3

import pytest

from recsmith.store.multirow import ROWS_PER_STATEMENT, insert_columns

_TABLE = "CREATE TABLE t (k TEXT, n INTEGER, x REAL, s TEXT, PRIMARY KEY (k, n)) WITHOUT ROWID"
_HEAD = "INSERT OR IGNORE INTO t (k, n, x, s)"


def _stored(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT k, n, x, typeof(x), s, typeof(s) FROM t ORDER BY k, n").fetchall()


@pytest.mark.parametrize("count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 123])
def test_rows_stored_as_executemany_stores_them(count: int) -> None:
    rows = [
        (f"r{n % 13}", n % 3, None if n % 7 == 0 else n / 3 + 0.1, None if n % 11 == 0 else "[]")
        for n in range(count)
    ]  # (k, n) repeats every 39 rows, with other values: the first of each is the one kept
    one, many = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    for conn in (one, many):
        conn.execute(_TABLE)
        conn.execute("INSERT INTO t VALUES ('r1', 1, -1.5, 'there before')")
    one.executemany(f"{_HEAD} VALUES (?, ?, ?, ?)", rows)
    insert_columns(many, _HEAD, [[row[at] for row in rows] for at in range(4)])
    assert _stored(many) == _stored(one)
    assert many.total_changes == one.total_changes
    kept = {(k, n) for k, n, *_ in rows} | {("r1", 1)}
    assert len(_stored(many)) == len(kept)
    if count > 1:
        assert ("r1", 1, -1.5, "real", "there before", "text") in _stored(many)


def test_columns_of_unequal_length_store_nothing() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(_TABLE)
    columns = [["a", "b"], [1, 2], [0.5, 1.5], ["x"]]  # the last column is one value short
    with pytest.raises(ValueError):
        insert_columns(conn, _HEAD, columns)
    assert _stored(conn) == []
