"""GF-CF's ideal low-pass filter (Shen et al., CIKM 2021, "How Powerful is Graph Convolution for
Recommendation?"), as a second signal beside EASE's scores.

With R̃ = D_u^−1/2 X D_i^−1/2 (X binary users × items, D_u / D_i their history lengths and item
popularities) and V_k R̃'s top-k right singular vectors, the filter scores a history x as
x · D_i^−1/2 V_k V_kᵀ D_i^1/2: a rank-k smoothing of the normalised co-occurrence, which reaches
items that never co-occur with the history — what EASE's full-rank weights, shrunk hard on a
sparse matrix, cannot. GF-CF itself (its linear filter R̃ᵀR̃ plus this one) was 0.98–1.13× of
tuned EASE on the simulated marketplace shape and below it on the short shape; summed with
EASE's scores (each divided by its row's standard deviation, so neither signal's scale decides)
it beat tuned EASE on validation and held on unread seeds (BENCHMARKS §92). Kept factored
(items × k and k × items): a history costs 2·k multiply-adds an item, not n_items.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg


def low_pass_factors(x: sparse.csr_array, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` — items × k and k × items, float32 — whose product is GF-CF's filter
    D_i^−1/2 V_k V_kᵀ D_i^1/2 for the binary matrix ``x`` (k = min(rank, items)). V_k are the top
    eigenvectors of R̃ᵀR̃ (R̃'s right singular vectors), found from the item × item Gram, so the
    cost does not grow with the users; an item nobody has gets a zero row and column."""
    x = sparse.csr_array(x, dtype=np.float64)
    user_len = np.asarray(x.sum(axis=1)).ravel()
    pop = np.asarray(x.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, np.sqrt(user_len), out=np.zeros_like(user_len), where=user_len > 0)
    inv_i = np.divide(1.0, np.sqrt(pop), out=np.zeros_like(pop), where=pop > 0)
    normed = sparse.diags_array(inv_u) @ x @ sparse.diags_array(inv_i)
    gram = (normed.T @ normed).toarray()
    vectors = top_eigenvectors(gram, min(rank, gram.shape[0]))
    left = vectors * inv_i[:, None]
    right = vectors.T * np.sqrt(pop)[None, :]
    return left.astype(np.float32), np.ascontiguousarray(right, dtype=np.float32)


def row_scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its standard deviation (a row with none left as it is): two signals
    of different scales summed per user with one weight, whatever the user's history length."""
    spread = scores.std(axis=1, keepdims=True)
    return scores / np.where(spread > 0, spread, 1.0)


def blended(ease: np.ndarray, low: np.ndarray, weight: float) -> np.ndarray:
    """EASE's scores plus ``weight`` × the filter's, each row-scaled (``row_scaled``)."""
    return (row_scaled(ease) + weight * row_scaled(low)).astype(np.float32)


def top_eigenvectors(gram: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` eigenvectors of the symmetric ``gram`` with the largest eigenvalues (columns).
    ARPACK (a fixed start vector: the same matrix gives the same filter on every fit) costs a few
    hundred products with ``gram``, where the dense solver reduces all of it; the dense one serves
    where ARPACK cannot (k ≥ n − 1, a small catalogue) or does not converge."""
    n = gram.shape[0]
    if k < n - 1:
        try:
            return sparse_linalg.eigsh(gram, k=k, which="LA", v0=np.ones(n) / np.sqrt(n))[1]
        except sparse_linalg.ArpackNoConvergence:
            pass
    return scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])[1]
