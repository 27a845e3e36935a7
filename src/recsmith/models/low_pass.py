"""GF-CF's ideal low-pass filter (Shen et al., CIKM 2021, "How Powerful is Graph Convolution for
Recommendation?"), as a second signal beside EASE's scores.

With R̃ = D_u^−1/2 X D_i^−1/2 (X users × items as EASE fits it: 0/1, or weighted counts with
``binary = false``; D_u / D_i its row and column sums: history lengths and item popularities)
and V_k R̃'s top-k right singular vectors, the filter scores a history x as
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
from scipy.sparse import csgraph
from scipy.sparse import linalg as sparse_linalg

#: Up to this many items the dense eigen-solver (an items × items float64 Gram, 32 MB at 2,000)
#: may serve; above it only ARPACK's matrix-free products do (a dense Gram at 20,000 items is
#: 3.2 GB, and ARPACK's products with it cost 29 CPU s at 8,000 items against ~1 matrix-free).
DENSE_ITEMS = 2000


def low_pass_factors(x: sparse.csr_array, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """``(left, right)`` — items × k and k × items, float32 — whose product is GF-CF's filter
    D_i^−1/2 V_k V_kᵀ D_i^1/2 for the interaction matrix ``x`` (0/1, or weighted counts when EASE
    fits with ``binary = false``; k = min(rank, the main component's items)). V_k are the top
    eigenvectors of R̃ᵀR̃ (R̃'s right singular vectors), found from products with R̃ and R̃ᵀ, so
    no items × items matrix is built.

    Only the largest connected component of the user–item graph is filtered: every component
    gives R̃ᵀR̃ an eigenvalue of exactly 1, so a few isolated (user, item) pairs would fill the
    top-k eigenspace with vectors of their own, and which of the tied ones a solver returns
    would decide the filter. Items elsewhere (and items nobody has) get zero rows and columns."""
    x = sparse.csr_array(x, dtype=np.float64)
    user_len = np.asarray(x.sum(axis=1)).ravel()
    pop = np.asarray(x.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, np.sqrt(user_len), out=np.zeros_like(user_len), where=user_len > 0)
    inv_i = np.divide(1.0, np.sqrt(pop), out=np.zeros_like(pop), where=pop > 0)
    items = main_component_items(x)
    normed = (sparse.diags_array(inv_u) @ x @ sparse.diags_array(inv_i)).tocsc()[:, items]
    vectors = np.zeros((x.shape[1], min(rank, len(items))))
    vectors[items] = top_right_singular_vectors(sparse.csr_array(normed), vectors.shape[1])
    left = vectors * inv_i[:, None]
    right = vectors.T * np.sqrt(pop)[None, :]
    return left.astype(np.float32), np.ascontiguousarray(right, dtype=np.float32)


def main_component_items(x: sparse.csr_array) -> np.ndarray:
    """Sorted indices of the items in the user–item graph's connected component with the most
    items (the lowest-labelled one on a tie, so the choice does not depend on a solver)."""
    n_users, n_items = x.shape
    graph = sparse.block_array([[None, x], [x.T, None]], format="csr")
    labels = csgraph.connected_components(graph, directed=False)[1][n_users:]
    has = np.bincount(x.indices, minlength=n_items) > 0
    if not has.any():
        return np.empty(0, np.int64)
    sizes = np.bincount(labels[has], minlength=labels.max() + 1)
    return np.flatnonzero(has & (labels == np.argmax(sizes)))


def row_scaled(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its standard deviation (a row with none left as it is): two signals
    of different scales summed per user with one weight, whatever the user's history length."""
    spread = scores.std(axis=1, keepdims=True)
    return scores / np.where(spread > 0, spread, 1.0)


def blended(ease: np.ndarray, low: np.ndarray, weight: float) -> np.ndarray:
    """EASE's scores plus ``weight`` × the filter's, each row-scaled (``row_scaled``)."""
    return (row_scaled(ease) + weight * row_scaled(low)).astype(np.float32)


def top_right_singular_vectors(a: sparse.csr_array, k: int) -> np.ndarray:
    """The ``k`` eigenvectors of aᵀa with the largest eigenvalues (columns). ARPACK multiplies by
    aᵀa as ``v ↦ aᵀ(a v)`` (a fixed start vector: the same matrix gives the same filter on every
    fit); the dense solver on the Gram serves where ARPACK cannot (k ≥ n − 1, which the rank's
    bound of 1,024 keeps to a small catalogue) or does not converge on up to ``DENSE_ITEMS``
    items. Above that, ARPACK retries with a wider Krylov space before giving up."""
    n = a.shape[1]
    if k == 0:
        return np.empty((n, 0))
    if k < n - 1:
        gram = sparse_linalg.LinearOperator(
            (n, n), matvec=lambda v: a.T @ (a @ v), matmat=lambda v: a.T @ (a @ v), dtype=a.dtype
        )
        start = np.ones(n) / np.sqrt(n)
        try:
            return sparse_linalg.eigsh(gram, k=k, which="LA", v0=start)[1]
        except sparse_linalg.ArpackNoConvergence:
            if n > DENSE_ITEMS:
                wider = min(n, 4 * k + 32)
                return sparse_linalg.eigsh(
                    gram, k=k, which="LA", v0=start, ncv=wider, maxiter=100 * n
                )[1]
    return scipy.linalg.eigh((a.T @ a).toarray(), subset_by_index=[n - k, n - 1])[1]
