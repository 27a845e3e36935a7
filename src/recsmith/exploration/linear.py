"""A contextual bandit over a few arms (retrieval sources, variants, list formats) whose reward is
linear in a small context vector: LinUCB and linear Thompson sampling, batched.

Model (Li et al. 2010, "A contextual-bandit approach to personalized news article
recommendation", disjoint LinUCB): per arm k, A_k = λI + Σ x xᵀ and b_k = Σ r x over the rounds it
was shown, θ_k = A_k⁻¹ b_k.

* **LinUCB** shows argmax_k θ_kᵀx + α √(xᵀ A_k⁻¹ x) (ties: the lower arm). The choice is a
  function of the state and the context, so its logged propensity is 1: exact, and a reminder
  that a LinUCB log cannot evaluate other policies off-line (no other arm has support).
* **Linear Thompson** (Agrawal & Goyal 2013) shows argmax_k θ̃_kᵀx with θ̃_k ~ N(θ_k, v² A_k⁻¹).
  As for the Thompson slots (``thompson``), a request takes one of ``M`` posterior draws banked
  per state, so its propensity is exact for the policy run: the share of the M banked draws in
  which the shown arm wins for this request's context. It tends to the true Thompson
  probability as M grows (``BANK`` = 256 by default: ±0.06 at two standard errors).

Why sums: A and b only ever grow by additions, so every worker and replica can add what it saw
to shared totals (as ``board`` does for the Beta counts) without reading first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Posterior draws banked per state for linear Thompson (the propensity's denominator).
BANK = 256
#: The fixed columns of ``context_vector``, in order.
CONTEXT_NAMES = ("bias", "log1p_history", "known_user", "hour_sin", "hour_cos")


@dataclass(frozen=True, slots=True)
class LinearState:
    """``a`` [arms, d, d] = λI + Σ x xᵀ and ``b`` [arms, d] = Σ r x per arm."""

    a: np.ndarray
    b: np.ndarray

    @classmethod
    def empty(cls, arms: int, dim: int, ridge: float = 1.0) -> LinearState:
        """No data: A = λI (the ridge is the prior's precision), b = 0."""
        if ridge <= 0:
            raise ValueError("ridge must be > 0 (A must stay invertible)")
        return cls(
            np.broadcast_to(ridge * np.eye(dim), (arms, dim, dim)).copy(), np.zeros((arms, dim))
        )

    def add(self, arms: np.ndarray, contexts: np.ndarray, rewards: np.ndarray) -> LinearState:
        """A new state with rounds (arm shown, context [n, d], reward) added; one batched update."""
        a, b = self.a.copy(), self.b.copy()
        np.add.at(a, arms, contexts[:, :, None] * contexts[:, None, :])
        np.add.at(b, arms, contexts * rewards[:, None])
        return LinearState(a, b)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(θ [arms, d], A⁻¹ [arms, d, d])."""
        inverse = np.linalg.inv(self.a)
        return np.einsum("kij,kj->ki", inverse, self.b), inverse


def linucb(state: LinearState, contexts: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(arm [n], upper confidence bounds [n, arms]) for contexts [n, d]; propensity 1 each."""
    theta, inverse = state.posterior()
    mean = contexts @ theta.T
    width = np.sqrt(np.einsum("nd,kde,ne->nk", contexts, inverse, contexts))
    bound = mean + alpha * width
    return np.argmax(bound, axis=1), bound


def thompson_bank(state: LinearState, scale: float, size: int, seed: int) -> np.ndarray:
    """[size, arms, d]: ``size`` draws of every arm's θ̃ ~ N(θ, scale² A⁻¹)."""
    theta, inverse = state.posterior()
    root = np.linalg.cholesky(inverse)  # [arms, d, d]
    noise = np.random.default_rng(seed).standard_normal((size, *theta.shape))
    return theta[None] + scale * np.einsum("kij,mkj->mki", root, noise)


def linear_thompson(
    bank: np.ndarray, contexts: np.ndarray, picks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(arm [n], propensity [n]): request q shows the best arm of banked draw ``picks[q]`` for its
    context; its propensity is the share of banked draws whose best arm for that context is the
    shown one."""
    winners = np.argmax(np.einsum("nd,mkd->nmk", contexts, bank), axis=2)  # [n, M]
    arm = winners[np.arange(len(contexts)), picks]
    return arm, (winners == arm[:, None]).mean(axis=1)


def context_vector(
    history: np.ndarray, known: np.ndarray, hour: np.ndarray, placement: np.ndarray, places: int
) -> np.ndarray:
    """[n, 5 + places] features of a request (``CONTEXT_NAMES``, then one column per placement):
    a bias, log(1 + the user's history length), 1 for a known user (0 for a visitor), the hour
    of day on the circle (sin, cos: 23 h is next to 0 h), and a one-hot of the placement's index
    (-1: no placement)."""
    angle = 2 * np.pi * np.asarray(hour, float) / 24
    onehot = np.zeros((len(history), places))
    has = np.asarray(placement) >= 0
    onehot[np.flatnonzero(has), np.asarray(placement)[has]] = 1.0
    return np.column_stack(
        [
            np.ones(len(history)),
            np.log1p(np.asarray(history, float)),
            np.asarray(known, float),
            np.sin(angle),
            np.cos(angle),
            onehot,
        ]
    )
