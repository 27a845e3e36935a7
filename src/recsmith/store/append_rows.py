"""A small group's events appended from the plain rows validation made, not read out of a frame.

A group commit of single events holds a handful of rows, and pulling them back out of a pandas
frame (a column access, ``to_numpy``, ``isna`` and ``tolist`` per column, a ``duplicated`` pass, a
frame sort) cost ~0.7 ms per group, more than the INSERT itself. ``events.validate_small_rows``
already has each event as a tuple in ``EVENT_COLUMNS`` order, so a store that binds rows
(``executemany``) takes them as they are: the same rows ``base.event_rows`` would give, in the
same id order, with the same outcome per row.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

#: ``EVENT_COLUMNS`` places of the two columns whose type a row must fix (``base.event_rows``
#: gives floats for ``value``, with NULL for NaN, and ints for ``ts``).
_VALUE, _TS = 5, 6


def first_of_each(ids: Sequence[str]) -> np.ndarray:
    """``base.first_of_each_id`` for a list of ids: the first row of each id is the one stored."""
    seen: set[str] = set()
    first = np.zeros(len(ids), dtype=bool)
    for n, event_id in enumerate(ids):
        if event_id not in seen:
            seen.add(event_id)
            first[n] = True
    return first


def fresh_of(ids: Sequence[str], first: np.ndarray, stored: Collection[str]) -> np.ndarray:
    """The rows to insert: first of their id in the group, and not stored already."""
    return first & np.fromiter((i not in stored for i in ids), bool, len(ids))


def insert_rows(
    rows: Sequence[tuple[Any, ...]], fresh: np.ndarray, received_us: int
) -> list[tuple[Any, ...]]:
    """The ``fresh`` rows in id order (stable, as the frame sort was), ready for the INSERT:
    ``value`` a float or NULL, ``ts`` an int, ``received_at`` appended."""
    picked = sorted((rows[n] for n in np.flatnonzero(fresh).tolist()), key=lambda r: r[0])
    return [_bindable(row, received_us) for row in picked]


def _bindable(row: tuple[Any, ...], received_us: int) -> tuple[Any, ...]:
    value = row[_VALUE]
    value = None if value is None or math.isnan(value) else float(value)
    return (*row[:_VALUE], value, int(row[_TS]), *row[_TS + 1 :], received_us)
