"""Ranker features from declared item properties and user profiles (#15).

An item's categorical property (brand, price band) enters as the user's affinity for its value:
the share of the user's past events on items with the same value, as ``user_category_share`` does
for categories; a numeric one as is. A user's categorical profile property (gender, occupation)
enters as the item's popularity within the user's segment: the share of the segment's events on
that item; a numeric one (age) as is. Aggregates come from the same events as every other feature
(the past before a label window, or all training events for serving), all vectorised.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.features.properties import PropertyColumns, feature_label
from recsmith.sparse_rows import DENSE_CELLS, row_values, rows_grid


def code_shares(
    owners: np.ndarray, codes: np.ndarray, n_owners: int, n_codes: int
) -> sparse.csr_array:
    """[n_owners, n_codes]: each owner's share of their events (row e of ``codes`` [n_events, p]
    is event e's code in each column) whose code is each value; NaN codes count in the total
    only."""
    totals = np.bincount(owners, minlength=n_owners).astype(np.float64)
    rows = np.repeat(owners, codes.shape[1])
    flat = codes.ravel()
    ok = np.isfinite(flat)
    counts = sparse.csr_array(
        (np.ones(int(ok.sum()), np.float32), (rows[ok], flat[ok].astype(np.int64))),
        shape=(n_owners, max(n_codes, 1)),
    )
    counts.sum_duplicates()
    return (sparse.diags_array(1.0 / np.maximum(totals, 1.0)) @ counts).astype(np.float32).tocsr()


def user_affinities(data: Interactions, items: PropertyColumns) -> sparse.csr_array:
    """[n_users, n_codes]: each user's share of past events on items with each categorical
    value (numeric columns give nothing here)."""
    codes = np.where(items.categorical, items.values, np.nan)[data.event_items]
    return code_shares(data.event_users, codes, data.n_users, items.n_codes)


def segment_popularity(data: Interactions, profiles: PropertyColumns) -> sparse.csr_array:
    """[n_segment_codes, n_items]: within each segment (a value of a categorical profile
    property), the share of the segment's events on each item."""
    n_codes = max(profiles.n_codes, 1)
    codes = np.where(profiles.categorical, profiles.values, np.nan)[data.event_users]
    segment = codes.T.ravel()  # per (column, event)
    item = np.tile(data.event_items, codes.shape[1])
    ok = np.isfinite(segment)
    seg = segment[ok].astype(np.int64)
    counts = sparse.csr_array(
        (np.ones(len(seg), np.float32), (seg, item[ok])), shape=(n_codes, data.n_items)
    )
    counts.sum_duplicates()
    totals = np.bincount(seg, minlength=n_codes).astype(np.float64)
    return (sparse.diags_array(1.0 / np.maximum(totals, 1.0)) @ counts).astype(np.float32).tocsr()


def property_names(
    item_names: np.ndarray,
    item_categorical: np.ndarray,
    profile_names: np.ndarray,
    profile_categorical: np.ndarray,
) -> list[str]:
    """Feature names of the property columns, in ``property_values`` order."""
    return [
        *(
            f"user_affinity_{feature_label(n)}" if c else f"item_{feature_label(n)}"
            for n, c in zip(item_names.tolist(), item_categorical.tolist(), strict=True)
        ),
        *(
            f"segment_popularity_{feature_label(n)}" if c else f"user_{feature_label(n)}"
            for n, c in zip(profile_names.tolist(), profile_categorical.tolist(), strict=True)
        ),
    ]


def property_values(
    out: np.ndarray,
    query: np.ndarray,
    query_users: np.ndarray,
    items: np.ndarray,
    item_values: np.ndarray,
    item_categorical: np.ndarray,
    affinity: sparse.csr_array,
    user_values: np.ndarray,
    profile_categorical: np.ndarray,
    segments: sparse.csr_array,
) -> None:
    """Writes ``out`` [len(items), p + q] (float32) for candidate rows (their query; each
    query's user index, -1 unknown; item index): per item property its value or the user's
    affinity for it, per profile property the user's value or the item's popularity within the
    user's segment; NaN where the item, the user or their profile lacks it."""
    at = item_values.shape[1]
    item_property_values(
        out[:, :at], query, query_users, items, item_values, item_categorical, affinity
    )
    profile_values(
        out[:, at:], query, query_users, items, user_values, profile_categorical, segments
    )


def item_property_values(
    out: np.ndarray,
    query: np.ndarray,
    query_users: np.ndarray,
    items: np.ndarray,
    item_values: np.ndarray,
    item_categorical: np.ndarray,
    affinity: sparse.csr_array,
) -> None:
    """``property_values``' item property columns, ``out`` [len(items), p]."""
    # the candidates' item values in one gather; the users' affinity rows spread into one grid
    # that every categorical property reads (``affinity_cells``), not one per property
    values = item_values.take(items, axis=0)
    grid = affinity_cells(affinity, query_users) if item_categorical.any() else None
    base = query.astype(np.int64) * int(affinity.shape[1])  # each row's query's first cell
    known = np.flatnonzero(query_users[query] >= 0)
    for p in range(item_values.shape[1]):
        value = values[:, p]
        if not item_categorical[p]:
            out[:, p] = value
        elif grid is not None:  # a row without the value, or an unknown user: the NaN cell
            cell = np.where(np.isfinite(value), base + value, len(grid) - 1)
            out[:, p] = grid.take(cell.astype(np.int64))
        else:
            rows = known[np.isfinite(value[known])]
            out[:, p] = np.nan
            codes = value[rows].astype(np.int64)
            out[rows, p] = row_values(affinity, query_users, query[rows], codes, DENSE_CELLS)


def profile_values(
    out: np.ndarray,
    query: np.ndarray,
    query_users: np.ndarray,
    items: np.ndarray,
    user_values: np.ndarray,
    profile_categorical: np.ndarray,
    segments: sparse.csr_array,
) -> None:
    """``property_values``' profile property columns, ``out`` [len(items), q]."""
    users = query_users[query]
    known = np.flatnonzero(users >= 0)
    for j in range(user_values.shape[1]):
        value = np.full(len(items), np.nan, np.float32)
        value[known] = user_values[users[known], j]
        if not profile_categorical[j]:
            out[:, j] = value
            continue
        rows = np.flatnonzero(np.isfinite(value))
        out[:, j] = np.nan
        out[rows, j] = _lookup(segments, value[rows], items[rows])


def affinity_cells(affinity: sparse.csr_array, query_users: np.ndarray) -> np.ndarray | None:
    """The queries' users' affinity rows as one flat grid (query ``i``'s row at ``i × codes``,
    ``rows_grid``), NaN in an unknown user's row, and one last NaN cell, that a row whose item
    lacks the value reads; None past ``DENSE_CELLS``. Each categorical property's column is then
    one gather of every row, instead of picking the known rows with a value, gathering their
    codes and writing them back by index."""
    grid = rows_grid(affinity, query_users, DENSE_CELLS)
    if grid is None:
        return None
    width = int(affinity.shape[1])
    out = np.full(len(grid) + 1, np.nan, np.float32)
    out[:-1] = grid
    out[:-1].reshape(-1, width)[query_users < 0] = np.nan
    return out


def _lookup(matrix: sparse.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[k], cols[k]]`` for every k, as a dense 1-D array (scipy answers an empty
    selection with a sparse matrix)."""
    if len(rows) == 0:
        return np.zeros(0, np.float32)
    return np.asarray(matrix[rows.astype(np.int64), cols.astype(np.int64)]).ravel()
