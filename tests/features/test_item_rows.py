"""The stacked per-item table ``candidate_features`` gathers from (``ranking.item_rows``): each
item's row holds exactly its state's values (checked against the state's own arrays), and a
state whose arrays change gets a table of its own, never the one remembered for another."""

from __future__ import annotations

import dataclasses
import gc

import numpy as np
from scipy import sparse

from recsmith.ranking import item_rows
from recsmith.ranking.features import FeatureState

N_ITEMS = 50


def _state(rng: np.random.Generator, properties: int) -> FeatureState:
    values = rng.random((N_ITEMS, properties)).astype(np.float32)
    values[rng.random((N_ITEMS, properties)) < 0.3] = np.nan  # items without the property
    empty = sparse.csr_array((4, 3), dtype=np.float32)
    return FeatureState(
        reference_ts=0,
        item_popularity=rng.random(N_ITEMS).astype(np.float32),
        item_trend=rng.random(N_ITEMS).astype(np.float32),
        item_age_days=rng.random(N_ITEMS).astype(np.float32),
        item_price=np.where(rng.random(N_ITEMS) < 0.2, np.nan, rng.random(N_ITEMS)).astype(
            np.float32
        ),
        item_category=rng.integers(-1, 7, N_ITEMS).astype(np.int32),  # -1: none
        user_events=np.zeros(4, np.float32),
        user_category_share=empty,
        user_category_last=empty,
        item_properties=values if properties else np.zeros((0, 0), np.float32),
    )


def _check(state: FeatureState, items: np.ndarray) -> None:
    """Each gathered row against the state's arrays, bit for bit (NaN where they hold NaN)."""
    rows, category = item_rows.item_rows(state, items)
    assert rows.shape[1] in (8, 16)  # a power of two: no row straddles a cache line
    for r, item in enumerate(items.tolist()):
        for j, name in enumerate(item_rows.ITEM_COLUMNS):
            np.testing.assert_array_equal(rows[r, j], getattr(state, name)[item])
        assert category[r] == state.item_category[item]
        p = state.item_properties.shape[1]
        got = rows[r, item_rows.PROPERTIES : item_rows.PROPERTIES + p]
        np.testing.assert_array_equal(got, state.item_properties[item] if p else got[:0])
    assert category.dtype == np.int32


def test_rows_hold_each_items_values() -> None:
    rng = np.random.default_rng(0)
    items = rng.integers(0, N_ITEMS, 200)
    for properties in (0, 2, 5, 12):  # widths 8, 8, 16 and past 16 columns (17)
        state = _state(rng, properties)
        if properties == 12:
            assert item_rows.item_table(state).shape[1] == item_rows.PROPERTIES + 12
            continue
        _check(state, items)


def test_a_state_with_other_arrays_gets_its_own_table() -> None:
    rng = np.random.default_rng(1)
    items = np.arange(N_ITEMS)
    state = _state(rng, 2)
    table = item_rows.item_table(state)
    assert item_rows.item_table(state) is table  # remembered
    # a grown or retrained state: the first column the same object, another one not
    for name in ("item_price", "item_category", "item_properties"):
        changed = getattr(state, name).copy()
        changed[3] = 5  # item 3's value differs (its category too)
        other = dataclasses.replace(state, **{name: changed})
        _check(other, items)
        _check(state, items)


def test_a_dropped_states_table_is_dropped() -> None:
    state = _state(np.random.default_rng(2), 2)
    item_rows.item_table(state)
    key = id(state.item_popularity)
    assert key in item_rows._tables
    del state
    gc.collect()
    assert key not in item_rows._tables
