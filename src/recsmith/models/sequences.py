"""Users' item sequences in time order, as the sequence-aware models (SASRec, the two-tower
model's recent-items pooling) read the events."""

from __future__ import annotations

import numpy as np

from recsmith.features.interactions import Interactions


def user_sequences(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, item ids + 1) of every user's positive events in time order; ties keep event
    order (lexsort is stable) and an item repeated back to back (view, then purchase) counts once,
    since "next item = the same item" teaches nothing that serving (which excludes seen) uses."""
    positive = data.event_weights > 0
    users, items = data.event_users[positive], data.event_items[positive]
    order = np.lexsort((data.event_ts[positive], users))
    users, items = users[order], items[order]
    new = np.r_[True, (users[1:] != users[:-1]) | (items[1:] != items[:-1])]
    users, items = users[new], items[new]
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=data.n_users))]
    return indptr, items.astype(np.int64) + 1


def windows(indptr: np.ndarray, values: np.ndarray, n_rows: int, length: int) -> np.ndarray:
    """[n_rows, length] int64: each CSR-like row's last ``length`` values, right-aligned, 0-padded
    in front, so position length-1 always holds the most recent item."""
    out = np.zeros((n_rows, length), dtype=np.int64)
    sizes = np.diff(indptr)
    rows = np.repeat(np.arange(n_rows), sizes)
    cols = np.arange(len(values)) - np.repeat(indptr[:-1] + sizes, sizes) + length
    keep = cols >= 0
    out[rows[keep], cols[keep]] = values[keep]
    return out
