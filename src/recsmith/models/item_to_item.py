"""What every model that scores a history as ``history @ M`` shares: a sparse items × items
matrix ``M`` of each item's best neighbours, built block by block, and the serving around it.

Item-kNN (shrunk cosine) and RP3beta (a popularity-penalised random walk) differ only in how a
block of ``M`` is computed from two sparse factors; co-occurrence (and the sequential rules built
on it) only in how ``M`` is counted. Keeping, storing, scoring with and listing similar items from
``M`` is this module's, so a fix to serving reaches all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
from scipy import sparse

from recsmith.features.interactions import Interactions, binarize
from recsmith.models.base import Recommender, sparse_from_arrays, sparse_to_arrays
from recsmith.models.topk import top_k

#: Dense product cells per block: bounds memory (~80 MB of float32) whatever the catalogue.
_BLOCK_CELLS = 20_000_000

#: Scales a dense block (rows ``start:stop`` of ``left @ right``) in place before the top-k.
BlockScale = Callable[[np.ndarray, int, int], None]


def top_k_of_product(
    left: sparse.csr_array, right: sparse.csc_array, k: int, scale: BlockScale
) -> sparse.csr_array:
    """Each row's ``k`` largest positive entries of ``scale(left @ right)`` (square: n × n),
    never the diagonal (an item is not its own neighbour), as a sparse matrix (``top_k_of_rows``
    over blocks of the product)."""

    def rows(start: int, stop: int) -> np.ndarray:
        dots = np.asarray((left[start:stop] @ right).todense(), dtype=np.float32)
        scale(dots, start, stop)
        return dots

    return top_k_of_rows(left.shape[0], rows, k)


def top_k_of_rows(n: int, rows: Callable[[int, int], np.ndarray], k: int) -> sparse.csr_array:
    """Each row's ``k`` largest positive entries of the square n × n matrix whose rows
    ``start:stop`` ``rows`` computes densely (a fresh array: it is written to), never the
    diagonal, as a sparse matrix.

    Computed block by block of rows (each block made dense, then an argpartition top-k), so the
    full n × n matrix never exists: memory stays bounded and no global sort is needed.
    """
    block = max(1, _BLOCK_CELLS // max(n, 1))
    kept_rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        dots = rows(start, stop)
        dots[np.arange(stop - start), np.arange(start, stop)] = 0.0
        dots[dots <= 0] = -np.inf
        top = top_k(dots, k)
        r, c = np.nonzero(top.ids >= 0)
        kept_rows.append(r + start)
        cols.append(top.ids[r, c])
        vals.append(top.scores[r, c])
    return sparse.csr_array(
        (np.concatenate(vals), (np.concatenate(kept_rows), np.concatenate(cols))),
        shape=(n, n),
        dtype=np.float32,
    )


def history_weights(data: Interactions, binary: bool) -> sparse.csr_array:
    """The users × items weights a model walks or compares: 1 per interacted pair when
    ``binary``, else the interactions' summed weights."""
    return binarize(data.matrix) if binary else data.matrix.astype(np.float32)


class ItemToItem(Recommender):
    """Score(u, j) = Σ_i x_ui · M[i, j] over the user's items i; subclasses' ``fit`` sets M
    (the attribute ``matrix_name`` names, which each subclass annotates: it is also the saved
    array's name, so releases written before this class existed still load) and
    ``user_items_`` (x)."""

    matrix_name: ClassVar[str] = "similarity_"
    user_items_: sparse.csr_array

    @property
    def n_items(self) -> int:
        return int(self.item_to_item.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._score_history(self.user_items_[users])

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        return np.asarray((history @ self.item_to_item).todense(), dtype=np.float32)

    @property
    def item_to_item(self) -> sparse.csr_array:
        matrix: sparse.csr_array = getattr(self, self.matrix_name)
        return matrix

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.item_to_item[items].todense(), dtype=np.float32)
        scores[scores == 0] = -np.inf  # only real neighbours (or real associations) count
        return scores

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            **sparse_to_arrays(self.matrix_name, self.item_to_item),
            **sparse_to_arrays("user_items_", self.user_items_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        setattr(self, self.matrix_name, sparse_from_arrays(self.matrix_name, arrays))
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
