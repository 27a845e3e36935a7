"""Thompson sampling over a pool of arms with Beta–Bernoulli posteriors, as a bank of draws.

The policy: per request, pick one of ``M`` posterior draws banked for the current counts, and
rank the eligible arms by it. Sampling one banked draw uniformly is a Thompson sample from the
posterior as ``M`` grows, and it makes the propensity exact *for the policy actually run*:
the share of banked draws in which the shown arm ranks where it was shown among the arms this
request could take. An analytic win probability over a changing eligible set has no closed
form; a bank makes it a vectorised count.

The bank is redrawn when the counts change (``ArmCounts.version``) or the pool does, from a seed
derived from both, so the same counts and pool give the same bank in every worker and test.
"""

from __future__ import annotations

import hashlib

import numpy as np


def posterior_bank(
    trials: np.ndarray, successes: np.ndarray, prior: tuple[float, float], size: int, seed: int
) -> np.ndarray:
    """float64 [size, arms]: ``size`` independent draws of every arm's
    Beta(alpha + successes, beta + failures) posterior."""
    rng = np.random.default_rng(seed)
    a = prior[0] + successes
    b = prior[1] + np.maximum(trials - successes, 0)
    return rng.beta(a, b, size=(size, len(trials)))


def bank_seed(version: int, pool_ids: np.ndarray) -> int:
    """A seed from the counts' version and the pool's ids (equal inputs, equal bank)."""
    text = "\x1f".join([str(version), *map(str, pool_ids.tolist())])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def rank_shares(bank: np.ndarray, eligible: np.ndarray, arm: np.ndarray, depth: int) -> np.ndarray:
    """float64 [len(arm), depth]: for each (request row of ``eligible`` [E, P], arm index), the
    share of banked draws in which the arm is the 0-, 1-, … (depth-1)-th best of that row's
    eligible arms."""
    values = bank[:, arm].T  # [E, M]: the arm's value in each draw
    above = (bank[None, :, :] > values[:, :, None]) & eligible[:, None, :]  # [E, M, P]
    rank = above.sum(axis=-1)  # [E, M]
    return (rank[:, :, None] == np.arange(depth)).mean(axis=1)
