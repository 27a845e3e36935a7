"""A batch's events as a database compares them with the events it stores under the same ids.

``reused_ids`` must tell a re-sent event (a no-op) from an ``event_id`` reused for other content
(refused). Reading every stored event back to compare it in pandas cost ~1 s of CPU per re-imported
chunk of 100,000, all of them identical; the stores instead compare in SQL
(``EventStore.events_differing``) and hand back only the stored events that differ. This module
is what both stores send and the condition they test.

The SQL comparison is exact, value for value: text byte for byte, ``ts`` as an integer, ``value``
as a double (sent in a form the database reads back to the same double; tested at one ulp), NULL
only equal to NULL. It may say "differs" where ``reused_ids`` then says "same" (a context spelled
otherwise, a server-stamped time); it never says "same" where a value differs, so the stored events
it leaves out are the same event as every row sent with their id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: What makes two records the same event (``event_id`` aside).
CONTENT = ("user_id", "session_id", "item_id", "event_type", "value", "ts", "context")


@dataclass(frozen=True, slots=True)
class SentContent:
    """The columns a store is sent: ``event_id`` first, then each content column that holds a
    value in some row. A column NULL in every row (no sessions, no contexts, no values: most
    exports) is not sent; it is ``absent``, and a stored event differs where it is not NULL."""

    columns: tuple[str, ...]
    #: one list per column of ``columns``, rows in event_id order (an index is probed in order)
    values: tuple[list[Any], ...]
    absent: tuple[str, ...]

    def rows(self) -> list[tuple[Any, ...]]:
        return list(zip(*self.values, strict=True))

    def differs(self, is_distinct: str, sent: str = "s", stored: str = "e") -> str:
        """The SQL condition "the stored event is not the sent one": ``is_distinct`` is the
        NULL-safe inequality (``IS NOT`` in SQLite, ``IS DISTINCT FROM`` in PostgreSQL)."""
        tests = [f"{stored}.{c} {is_distinct} {sent}.{c}" for c in self.columns[1:]]
        tests += [f"{stored}.{c} IS NOT NULL" for c in self.absent]
        return " OR ".join(tests)


def sent_content(events: pd.DataFrame) -> SentContent:
    """``events`` (a validated frame, repeated ids included: a stored event must match each row
    sent with its id) as plain values, column by column: NaN and missing become None, ``ts``
    ints, ``value`` floats."""
    order = np.argsort(events["event_id"].to_numpy(dtype=object), kind="stable")
    columns: list[str] = ["event_id"]
    values: list[list[Any]] = [events["event_id"].to_numpy(dtype=object)[order].tolist()]
    absent: list[str] = []
    for name in CONTENT:
        if name == "ts":
            column: np.ndarray = events[name].to_numpy(dtype=np.int64)
            missing = np.zeros(len(column), dtype=bool)
        else:
            column = events[name].to_numpy(dtype=np.float64 if name == "value" else object)
            missing = pd.isna(column)
        if missing.all() and len(column):
            absent.append(name)
            continue
        columns.append(name)
        values.append(np.where(missing, None, column)[order].tolist())
    return SentContent(tuple(columns), tuple(values), tuple(absent))
