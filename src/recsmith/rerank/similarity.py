"""Item-to-item similarity for diversity, asked the way MMR needs it: in blocks.

MMR holds a batch as a grid — one query per row, its candidates along the columns — and at every
greedy step asks "how similar is each candidate to the item just picked in its own row?". A
``Similarity`` prepares a block for a grid of item indices once (gathering embedding rows costs more
than the arithmetic, so it must not happen at every step), and the block answers that question for
all rows at once. Dense vectors answer with one batched ``einsum``, O(rows · width · dim) per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse


class SimilarityBlock(Protocol):
    """Similarities within a prepared grid of items [n_queries, width]."""

    def against(self, picked: np.ndarray) -> np.ndarray:
        """float [n_queries, width]: similarity of every cell to cell ``picked[q]`` of its row."""
        ...


class Similarity(Protocol):
    """Anything that can prepare a block: category, embeddings, or a custom measure."""

    def block(self, items: np.ndarray) -> SimilarityBlock:
        """Prepare the int grid ``items`` [n_queries, width] (padding cells hold a valid item)."""
        ...


@dataclass(frozen=True, slots=True)
class _CodesBlock:
    codes: np.ndarray  # [n_queries, width]

    def against(self, picked: np.ndarray) -> np.ndarray:
        code = np.take_along_axis(self.codes, picked[:, None], axis=1)
        return ((self.codes == code) & (code >= 0)).astype(np.float64)


@dataclass(frozen=True, slots=True)
class CategorySimilarity:
    """1 when two items share a primary category, else 0; items without one are like nothing."""

    category: np.ndarray  # int32 [n_items], -1 = none (``ItemTable.category``)

    def block(self, items: np.ndarray) -> SimilarityBlock:
        return _CodesBlock(self.category[items])


@dataclass(frozen=True, slots=True)
class _DenseBlock:
    vectors: np.ndarray  # [n_queries, width, dim]

    def against(self, picked: np.ndarray) -> np.ndarray:
        chosen = self.vectors[np.arange(len(picked)), picked]
        return np.einsum("qwd,qd->qw", self.vectors, chosen)


@dataclass(frozen=True, slots=True)
class _SparseBlock:
    rows: sparse.csr_array  # [n_queries * width, dim]
    shape: tuple[int, int]

    def against(self, picked: np.ndarray) -> np.ndarray:
        n_queries, width = self.shape
        chosen = self.rows[np.arange(n_queries) * width + picked]
        spread = chosen[np.repeat(np.arange(n_queries), width)]
        sims = np.asarray(self.rows.multiply(spread).sum(axis=1)).ravel()
        return sims.reshape(n_queries, width)


@dataclass(frozen=True, slots=True)
class EmbeddingSimilarity:
    """Cosine similarity of item vectors: dense (ALS factors) or sparse rows (TF-IDF). Build with
    ``cosine`` so rows are normalised once; all-zero rows are like nothing. float32 vectors stay
    float32 (half the memory traffic, which is what MMR's cost is made of)."""

    vectors: np.ndarray | sparse.csr_array  # [n_items, dim], rows of norm 1 or 0

    @classmethod
    def cosine(cls, vectors: np.ndarray | sparse.sparray | sparse.spmatrix) -> EmbeddingSimilarity:
        dtype = np.float32 if vectors.dtype == np.float32 else np.float64
        if sparse.issparse(vectors):
            v = sparse.csr_array(vectors, dtype=dtype)
            norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
            scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            return cls((sparse.diags_array(scale) @ v).astype(dtype).tocsr())
        dense = np.asarray(vectors, dtype)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        return cls(np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0))

    def block(self, items: np.ndarray) -> SimilarityBlock:
        if isinstance(self.vectors, np.ndarray):
            return _DenseBlock(self.vectors[items])
        return _SparseBlock(self.vectors[items.ravel()].tocsr(), items.shape)
