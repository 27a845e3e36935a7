"""A store written with one row per shown item (``decision_items``) moved to one row per list.

Before this layout each served list was a ``decisions`` row plus one ``decision_items`` row per
item under two indexes; now its items are packed in ``decisions.items`` (``decisions.rows``).
Both backends run this on the first open of an older store, inside the transaction that holds
the schema: each list's item rows are packed exactly as the writer packs them (the same encoder:
floats by ``repr``, so the stored values survive to the bit), then ``decision_items`` and the
old ``unit`` index are dropped. A failure rolls all of it back: the old tables stay whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

from recsmith.decisions import rows

#: The old item rows, each list's together and in position order.
OLD_ITEMS_SQL = (
    "SELECT recommendation_id, item_id, score, sources, propensity FROM decision_items "
    "ORDER BY recommendation_id, position"
)
#: What goes once the lists are packed: the old rows and the ``unit`` index that
#: ``decisions_unit_served`` replaces. Run after the cursor over the old rows is closed
#: (PostgreSQL refuses to drop a table an open cursor reads).
DROP_OLD_SQL = ("DROP TABLE decision_items", "DROP INDEX IF EXISTS decisions_unit")
#: Lists updated a statement batch (bounds what one batch holds in memory).
BATCH = 1_000

ExecuteMany = Callable[[str, Iterable[Sequence[Any]]], Any]


def packed_lists(item_rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, int, str]]:
    """``(items, size, recommendation_id)`` for each list of ``OLD_ITEMS_SQL``'s rows, ``items``
    as ``rows.pack_items`` writes it (a NaN or infinite score too) and ``size`` its item rows:
    the old SQLite writer lost the row of a NaN item and kept the list's ``size``, so positions
    may have gaps; packed, they run from 1 again, and ``size`` counts what an erasure of the old
    store would have counted. Source lists were stored as JSON text: each distinct text is
    parsed once."""
    parsed: dict[str, list[str]] = {}
    for rid, group in groupby(item_rows, key=itemgetter(0)):
        _, ids, scores, sources, propensities = zip(*group, strict=True)
        lists = [parsed[s] if s in parsed else parsed.setdefault(s, json.loads(s)) for s in sources]
        text = rows.pack(ids, tuple(map(float, scores)), lists, tuple(map(float, propensities)))
        yield text, len(ids), rid


def pack_old_items(item_rows: Iterable[Sequence[Any]], executemany: ExecuteMany, p: str) -> int:
    """Fill ``decisions.items`` from ``item_rows`` (``OLD_ITEMS_SQL``'s, streamed) in the
    caller's transaction (``DROP_OLD_SQL`` to follow); returns the lists packed. A list without
    item rows keeps the column's default, no item, and its ``size`` becomes 0."""
    update = f"UPDATE decisions SET items = {p}, size = {p} WHERE recommendation_id = {p}"
    lists = packed_lists(item_rows)
    packed = 0
    while batch := list(islice(lists, BATCH)):
        executemany(update, batch)
        packed += len(batch)
    empty = f"UPDATE decisions SET size = 0 WHERE size <> 0 AND items = {p}"
    executemany(empty, [(rows.NO_ITEMS,)])
    return packed
