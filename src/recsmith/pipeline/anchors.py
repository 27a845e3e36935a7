"""Which of a user's recent items led an item-to-item source to an item: the anchor a reason
names ("because you viewed i42") instead of a generic "similar to what you viewed".

An item-to-item model (item-kNN, co-occurrence: ``Recommender.item_to_item``) scores a history as
``history @ M``, so the recent item ``r`` that contributed most to candidate ``i`` is the one with
the largest ``M[r, i]``. Computed for the final lists only (k rows per query), in one vectorised
pass over (candidate, recent item) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import sparse

from recsmith.ranking import row_kernel
from recsmith.retrieval.candidates import Candidates
from recsmith.sparse_rows import entry_values, gather_rows


def anchor_items(
    final: Candidates,
    recent: sparse.csr_array,
    matrices: Mapping[str, sparse.csr_array],
    *,
    compiled: bool = True,
) -> np.ndarray:
    """int64 [len(final)]: per final row, the index of the recent item of its query that most
    supports it through the first item-to-item source that proposed it (``matrices`` by source
    name), or -1 (no such source, or no recent item points there). Searched by the compiled
    pass (``ranking.row_kernel.strongest``: ~0.4 of numpy's CPU at batch 16, §132) once it is
    built and where it reads the matrix; ``compiled=False`` keeps numpy's ``_strongest``."""
    out = np.full(len(final), -1, np.int64)
    library = row_kernel.loaded() if compiled else None
    for name, matrix in matrices.items():
        if name not in final.sources:
            continue
        column = final.sources.index(name)
        rows = np.flatnonzero((final.source_ranks[:, column] > 0) & (out < 0))
        if not len(rows):
            continue
        query, items = final.query[rows], final.items[rows]
        found = (
            None if library is None else row_kernel.strongest(library, query, items, recent, matrix)
        )
        out[rows] = _strongest(query, items, recent, matrix) if found is None else found
    return out


def _strongest(
    query: np.ndarray, items: np.ndarray, recent: sparse.csr_array, matrix: sparse.csr_array
) -> np.ndarray:
    """Per (query, item): the recent item ``r`` of the query with the largest ``matrix[r, item]``
    (> 0; ties: the last of them in the query's row of ``recent``), else -1. A NaN among a
    pair's weights leaves it -1, as the session start's sort by weight (NaN last) did."""
    pair, anchors = gather_rows(recent, query)  # (row, recent item), grouped by row
    anchors = anchors.astype(np.int64)
    # items that joined the index after training are in no model's matrix: they support nothing
    known = anchors < matrix.shape[0]
    pair, anchors = pair[known], anchors[known]
    out = np.full(len(query), -1, np.int64)
    if len(pair) == 0:
        return out
    weight = entry_values(matrix, anchors, items[pair])
    # each row's largest weight, and the last pair holding it: two grouped reductions over the
    # pairs as they come, where a sort by (row, weight) cost ~4 times as much
    first = np.concatenate(([True], pair[1:] != pair[:-1]))
    starts = np.flatnonzero(first)
    best = np.maximum.reduceat(weight, starts)
    holds = weight == best[np.cumsum(first) - 1]
    last = np.maximum.reduceat(np.where(holds, np.arange(len(pair)), -1), starts)
    # a NaN weight makes its row's maximum NaN, which no pair holds (-1): no anchor, as the
    # start's sort by weight (NaN last) chose, never position -1's pair of another row
    last = last[(last >= 0) & (weight[last] > 0)]
    out[pair[last]] = anchors[last]
    return out
