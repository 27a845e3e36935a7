"""Calibrated re-ranking (Steck, *Calibrated Recommendations*, RecSys 2018), batched.

A list is calibrated when its mix of categories matches the mix of the user's history: someone
who watched 70 % dramas and 30 % comedies should not get ten dramas because dramas score highest.
Steck picks the list greedily, slot by slot, maximising

    (1 − λ) · Σ_{i ∈ list} relevance(i) − λ · KL(p || q̃(list))

where ``p`` is the history's category mix, ``q`` the list's, ``q̃ = (1 − α) q + α p`` (α = 0.01,
as ``evaluation.fairness.miscalibration`` measures it) and relevance is the re-ranking relevance
min-max normalised per query (as MMR normalises it, so λ means the same whatever the score
scale). Each step adds the candidate with the best marginal value
``(1 − λ) · relevance(i) + λ · Σ_g p(g) log q̃_{+i}(g)`` (``−KL`` up to a constant of the user).

Why this is cheap for a batch: adding item i changes ``q̃(g)`` for every g only through the common
denominator ``n + 1``, and the numerator only for i's own groups. So per step the sum over all
groups is computed once per query, and each candidate corrects only its own groups' terms: work
O(queries · groups + candidate memberships), no [queries, candidates, groups] block. An item's
groups share its weight (``p(g|i) = 1/|G_i|``, as in Steck and ``evaluation.fairness``).

A user without history (p empty) has nothing to calibrate to: their list stays in relevance order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from recsmith.evaluation.fairness import ALPHA
from recsmith.fairness.slots import Padded


def normalised_rows(matrix: sparse.csr_array) -> sparse.csr_array:
    """Rows scaled to sum 1 (empty rows stay empty): item → group weights ``p(g|i)``, or a
    history's interaction weights → its mix."""
    m = sparse.csr_array(matrix, dtype=np.float64)
    total = np.asarray(m.sum(axis=1)).ravel()
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    return sparse.csr_array(sparse.diags_array(scale) @ m)


def user_mix(history: sparse.csr_array, item_groups: sparse.csr_array) -> np.ndarray:
    """float [n_queries, n_groups]: each history's group mix ``p(g|u)`` (rows of zeros: no
    history with a group). ``item_groups`` rows already sum to 1 (``normalised_rows``)."""
    mass = sparse.csr_array(history @ item_groups).toarray()  # [queries, groups]: small
    total = mass.sum(axis=1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


@dataclass(slots=True)
class CalibrationScorer:
    """The marginal value of each cell in Steck's greedy (module docstring); a ``slots.Scorer``.

    ``mix`` [n_q, n_groups] is ``p``; ``cell``/``grp``/``weight`` list every (candidate cell,
    group, p(g|i)) membership, cells numbered ``row * width + col`` on ``grid``.
    """

    lam: float
    relevance: np.ndarray  # float [n_q, width], 0..1
    mix: np.ndarray  # float [n_q, n_groups]
    cell: np.ndarray  # int64 [n_pairs]
    grp: np.ndarray  # int64 [n_pairs]
    weight: np.ndarray  # float [n_pairs]
    width: int
    ptr: np.ndarray  # int64 [n_rows + 1]: flat row r's pairs are ptr[r]:ptr[r + 1]
    starts: np.ndarray  # int64 [n_q]: the grid's first flat row of each query
    query: np.ndarray = field(init=False)  # int64 [n_pairs]: the pair's query (grid row)
    mass: np.ndarray = field(init=False)  # float [n_q, n_groups]: Σ p(g|i) over picked items
    picked: np.ndarray = field(init=False)  # float [n_q]: items in each list so far

    def __post_init__(self) -> None:
        self.query = self.cell // self.width
        self.mass = np.zeros_like(self.mix)
        self.picked = np.zeros(len(self.mix))

    @classmethod
    def build(
        cls,
        lam: float,
        grid: Padded,
        items: np.ndarray,
        relevance: np.ndarray,
        mix: np.ndarray,
        item_groups: sparse.csr_array,
    ) -> CalibrationScorer:
        """Memberships of the candidates ``items`` (flat rows on ``grid``) gathered once."""
        block = sparse.csr_array(item_groups[np.asarray(items, np.int64)])
        lengths = np.diff(block.indptr)
        flat = np.repeat(np.arange(len(items)), lengths)
        cell = grid.row[flat] * grid.shape[1] + grid.col[flat]
        return cls(
            lam,
            grid.spread(relevance, 0.0),
            mix,
            cell,
            block.indices.astype(np.int64),
            block.data.astype(np.float64),
            grid.shape[1],
            block.indptr.astype(np.int64),
            grid.starts,
        )

    def _log_term(self, mass: np.ndarray, p: np.ndarray, n: np.ndarray) -> np.ndarray:
        """``p log q̃`` for list mass ``mass`` of ``n`` >= 1 items (0 where p = 0; where p > 0,
        q̃ >= α p > 0, so the log is always finite)."""
        q = (1.0 - ALPHA) * mass / n + ALPHA * p
        return np.where(p > 0, p * np.log(np.where(p > 0, q, 1.0)), 0.0)

    def scores(self) -> np.ndarray:
        n_q = len(self.mix)
        n = (self.picked + 1.0)[:, None]
        base = self._log_term(self.mass, self.mix, n)  # every group, as if one more item joined
        q = self.query
        p = self.mix[q, self.grp]
        grown = self._log_term(self.mass[q, self.grp] + self.weight, p, n[q, 0])
        correction = np.bincount(
            self.cell, weights=grown - base[q, self.grp], minlength=n_q * self.width
        ).reshape(n_q, self.width)
        fit = base.sum(axis=1)[:, None] + correction  # Σ_g p log q̃ with the cell in the list
        return (1.0 - self.lam) * self.relevance + self.lam * fit

    def absorb(self, rows: np.ndarray, cols: np.ndarray) -> None:
        flat = self.starts[rows] + cols
        lo, n = self.ptr[flat], self.ptr[flat + 1] - self.ptr[flat]
        hit = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())  # every pick's pairs
        np.add.at(self.mass, (self.query[hit], self.grp[hit]), self.weight[hit])
        self.picked[rows] += 1.0
