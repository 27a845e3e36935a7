"""A feature state's per-item columns stacked into one table, a row per item, so that a batch's
candidates read all of them with one gather.

Why: ``candidate_features`` read each per-item array (popularity, trend, age, price, category,
the item properties) with its own gather over the candidates' items: six or more random reads
per candidate, each from its own catalogue-wide array, which a served request finds cold in
the cache (1.4 % + 1.0 % of a served worker's event-loop thread, BENCHMARKS §118). One row of
this table holds them all in 32 bytes (for up to three properties): one read per candidate.
The candidates' rows (the [candidates, width] result) are then copied out column by column, a
strided read of a block the gather has just written.

The table is built on the first batch a state sees (~1 ms for 100,000 items) and remembered
for as long as the state's arrays live (held weakly: a state the caller drops frees its table
with it); a state whose arrays are other objects (a grown catalogue's, another model's) gets
its own. What stays assumed, as for the other request-path memos (``sparse_rows``): nobody
writes into a state's arrays in place once its features are computed (``FeatureState`` is
frozen; nothing in src does).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from recsmith.ranking.features import FeatureState

#: ``FeatureState``'s per-item float32 columns, in ``feature_names``' order: the table's first
ITEM_COLUMNS = ("item_popularity", "item_trend", "item_age_days", "item_price")
#: the table's column holding ``item_category``'s int32 bits (read back by a view, exact)
CATEGORY = len(ITEM_COLUMNS)
#: the table's first column of ``item_properties``
PROPERTIES = CATEGORY + 1


class _Held(NamedTuple):
    """A built table and the arrays it was built from (held weakly)."""

    sources: tuple[weakref.ref, ...]
    table: np.ndarray


_tables: dict[int, _Held] = {}
_lock = threading.Lock()


def _sources(state: FeatureState) -> tuple[np.ndarray, ...]:
    """The arrays the table is built from, the first of them its key."""
    columns = tuple(getattr(state, name) for name in ITEM_COLUMNS)
    return (*columns, state.item_category, state.item_properties)


def item_table(state: FeatureState) -> np.ndarray:
    """float32 [n_items, width]: per item its ``ITEM_COLUMNS``, its category's int32 bits at
    ``CATEGORY``, its properties from ``PROPERTIES``; ``width`` rounded up to a power of two
    (up to 16 columns) so that a row never straddles a cache line."""
    sources = _sources(state)
    held = _tables.get(id(sources[0]))
    if held is not None and all(
        ref() is array for ref, array in zip(held.sources, sources, strict=True)
    ):
        return held.table
    table = _stacked(state)
    refs = tuple(weakref.ref(array) for array in sources)
    key = id(sources[0])
    with _lock:
        _tables[key] = _Held(refs, table)
    # dropped with the first column: a later array may reuse its id, which the check above
    # would then reject, but the entry would hold the table until then
    weakref.finalize(sources[0], _forget, key, refs)
    return table


def _forget(key: int, refs: tuple[weakref.ref, ...]) -> None:
    """Drops the table built from ``refs`` (not a newer one built under the same id)."""
    with _lock:
        held = _tables.get(key)
        if held is not None and held.sources is refs:
            del _tables[key]


def _stacked(state: FeatureState) -> np.ndarray:
    """The table ``item_table`` describes, built anew."""
    n_items = len(state.item_popularity)
    width = PROPERTIES + state.item_properties.shape[1]
    if width <= 16:
        width = 1 << (width - 1).bit_length()
    table = np.zeros((n_items, width), np.float32)
    for j, name in enumerate(ITEM_COLUMNS):
        table[:, j] = getattr(state, name)
    table.view(np.int32)[:, CATEGORY] = state.item_category
    if state.item_properties.shape[1]:  # none: [0, 0] in a state built without them
        table[:, PROPERTIES : PROPERTIES + state.item_properties.shape[1]] = state.item_properties
    return table


def item_rows(state: FeatureState, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The items' rows of ``item_table`` ([len(items), width], C order) and their categories
    (int32, a strided view into those rows)."""
    rows = item_table(state).take(items, axis=0)
    return rows, rows[:, CATEGORY].view(np.int32)
