"""The catalogue's content vectors (TF-IDF over categories, tags and text) for the served item
index, kept so that the index can grow without tokenising the whole catalogue again.

Two things read them: content similarity in re-ranking (``rerank.similarity = "content"``), and
the ``/similar`` list of an item created after training, which no model knows. Growing appends the
new items' token counts (new tokens get new columns) and recomputes the weights in one vectorised
pass, so a sync batch with a few new items costs their tokens, not the catalogue's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.events.schema import Item
from recsmith.features.items import ItemCatalog, tfidf_from_counts, token_counts
from recsmith.ids import IdMap


@dataclass(frozen=True, slots=True)
class CatalogContent:
    """Raw token counts [n_items, n_tokens], their vocabulary, and the TF-IDF rows."""

    counts: sparse.csr_array
    vocab: pd.Index
    vectors: sparse.csr_array

    @classmethod
    def of(cls, items: Sequence[Item], ids: IdMap) -> CatalogContent:
        """Content of the records ``items`` for the items of ``ids`` (others: all-zero rows)."""
        catalog = ItemCatalog.from_items(items)
        counts, vocab = token_counts(catalog, ids.to_index(catalog.item_ids), len(ids))
        return cls(counts, vocab, tfidf_from_counts(counts))

    def grown(self, items: Sequence[Item], ids: IdMap) -> CatalogContent:
        """This content with rows for ``ids`` past its own, counted from ``items`` (their
        records)."""
        catalog = ItemCatalog.from_items(items)
        added, vocab = token_counts(catalog, ids.to_index(catalog.item_ids), len(ids), self.vocab)
        old = self.counts
        indptr = np.concatenate(
            [old.indptr, np.full(len(ids) - old.shape[0], old.indptr[-1], old.indptr.dtype)]
        )
        widened = sparse.csr_array((old.data, old.indices, indptr), shape=added.shape)
        counts = sparse.csr_array(widened + added)
        return CatalogContent(counts, vocab, tfidf_from_counts(counts))

    def neighbours(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows closest (cosine) to ``row``, best first, and their similarities;
        nothing in common is no neighbour, and the row itself is none."""
        scores = np.asarray((self.vectors[[row]] @ self.vectors.T).todense()).ravel()
        scores[row] = 0.0
        ranked = np.flatnonzero(scores > 0)
        top = ranked[np.lexsort((ranked, -scores[ranked]))][:k]
        return top, scores[top].astype(np.float32)
