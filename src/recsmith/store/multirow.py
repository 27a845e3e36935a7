"""Rows inserted many to a statement: ``INSERT ... VALUES (?, ...), (?, ...), ...``.

``executemany`` steps its statement once per row, and Python's ``sqlite3`` binds each row and
releases and retakes the GIL around every step. The decision log's writer stores ten item rows a
served list this way (BENCHMARKS §41, §50); one statement of ``ROWS_PER_STATEMENT`` rows binds the
same values in the same order and inserts them in one step: ~9 µs of the writer's ~70 µs a list
less on a standalone store (§50). Each row keeps its own outcome (``OR IGNORE`` skips a row, not
the statement), so the rows stored are the ones ``executemany`` stores.

The rows come as columns (``decisions.rows.item_columns``) and are never built as tuples: the
columns are laid into one list of values by slice assignment, in C (§56).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

#: Rows per statement: far under SQLite's bound of variables (999 before 3.32) for any table here.
ROWS_PER_STATEMENT = 50


def insert_columns(conn: sqlite3.Connection, head: str, columns: Sequence[list[Any]]) -> None:
    """``conn.executemany(head + "VALUES (?, ...)", zip(*columns))`` with ``ROWS_PER_STATEMENT``
    rows a statement and the rest in one more; ``head`` is the statement up to ``VALUES``, one
    list of values per column. Columns of unequal length are refused (``ValueError``, from the
    slice assignment) before anything is stored."""
    width, count = len(columns), len(columns[0])
    values: list[Any] = [None] * (width * count)
    for at, column in enumerate(columns):
        values[at::width] = column
    group = f"({', '.join('?' * width)})"
    full = count - count % ROWS_PER_STATEMENT
    if full:
        step = ROWS_PER_STATEMENT * width
        conn.executemany(
            f"{head} VALUES {', '.join([group] * ROWS_PER_STATEMENT)}",
            (values[start : start + step] for start in range(0, full * width, step)),
        )
    if full < count:
        conn.execute(f"{head} VALUES {', '.join([group] * (count - full))}", values[full * width :])
