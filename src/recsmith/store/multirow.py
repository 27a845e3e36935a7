"""Rows inserted many to a statement: ``INSERT ... VALUES (?, ...), (?, ...), ...``.

``executemany`` steps its statement once per row, and Python's ``sqlite3`` binds each row and
releases and retakes the GIL around every step. The decision log's writer stores ten item rows a
served list this way (BENCHMARKS §41, §50); one statement of ``ROWS_PER_STATEMENT`` rows binds the
same values in the same order and inserts them in one step: ~9 µs of the writer's ~70 µs a list
less on a standalone store (§50). Each row keeps its own outcome (``OR IGNORE`` skips a row, not
the statement), so the rows stored are the ones ``executemany`` stores.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

#: Rows per statement: far under SQLite's bound of variables (999 before 3.32) for any table here.
ROWS_PER_STATEMENT = 50


def insert_many(
    conn: sqlite3.Connection, head: str, rows: Sequence[tuple[Any, ...]], width: int
) -> None:
    """``conn.executemany(head + "VALUES (?, ...)", rows)`` with ``ROWS_PER_STATEMENT`` rows a
    statement; ``head`` is the statement up to ``VALUES``, every row ``width`` values."""
    group = f"({', '.join('?' * width)})"
    full = len(rows) - len(rows) % ROWS_PER_STATEMENT
    if full:
        conn.executemany(
            f"{head} VALUES {', '.join([group] * ROWS_PER_STATEMENT)}",
            (
                tuple(chain.from_iterable(rows[start : start + ROWS_PER_STATEMENT]))
                for start in range(0, full, ROWS_PER_STATEMENT)
            ),
        )
    if full < len(rows):
        rest = rows[full:]
        conn.execute(
            f"{head} VALUES {', '.join([group] * len(rest))}", tuple(chain.from_iterable(rest))
        )
