"""Plackett–Luce (softmax) ranking: sample a list without replacement, and the propensity of
every sampled item at its position.

A Plackett–Luce draw with weights ``w`` picks position 1 with probability ``w_x / W``, then
position 2 among the rest, and so on. Adding independent Gumbel noise to ``log w`` and sorting is
exactly that draw (the Gumbel-top-k trick), so a whole batch is one sort.

Propensities (the marginal probability that item ``x`` lands at position ``j``):

- position 1: exact, ``w_x / W``;
- position j > 1: the marginal sums over every ordered prefix of ``j − 1`` items, which is
  exponential in ``j``. It is estimated by a Rao–Blackwellised Monte Carlo with a fixed number of
  samples: draw ``N`` independent Plackett–Luce prefixes and average
  ``[x not in prefix] · w_x / (W − w(prefix))`` — the exact probability of ``x`` at ``j`` given
  each prefix. Unbiased, never above 1, and far less noisy than counting how often ``x`` lands at
  ``j``; at ``j = 1`` it reduces to the exact value. ``tests/exploration`` checks it against
  brute-force enumeration. An item almost always drawn earlier can get an estimate of 0 from
  few samples, which no importance weight survives; the estimate is therefore floored at the
  exact probability of the prefix actually drawn followed by the item — a lower bound of the
  marginal that is never 0 (so the estimate is biased upwards only where it was 0 or below it).
"""

from __future__ import annotations

import numpy as np


def normalised(logw: np.ndarray) -> np.ndarray:
    """Weights ``exp(logw)`` scaled so each row's largest is 1 (padding ``-inf`` gives 0)."""
    top = np.max(logw, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.exp(logw - top)


def sample_order(logw: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Column indices per row in sampled order (``logw`` [n, m], ``-inf`` = not an option,
    sorted last; ``noise`` standard Gumbel of the same shape)."""
    keys = logw + noise
    return np.argsort(-keys, axis=-1, kind="stable")


def propensities(logw: np.ndarray, order: np.ndarray, k: int, noise: np.ndarray) -> np.ndarray:
    """float64 [n, k]: the probability that the item ``order[:, j]`` is drawn at position ``j``.

    ``noise`` is standard Gumbel [n, samples, m], independent of the draw that made ``order``
    (see module docstring). Columns past a row's options are NaN."""
    n, m = logw.shape
    k = min(k, m)
    w = normalised(logw)
    total = w.sum(axis=-1)  # [n]
    keys = logw[:, None, :] + noise  # [n, N, m]
    drawn = np.argsort(-keys, axis=-1, kind="stable")[..., :k]  # [n, N, k]
    samples = drawn.shape[1]
    # where each option landed in each sample (k: not in the first k)
    landed = np.full((n, samples, m), k, np.int64)
    np.put_along_axis(landed, drawn, np.broadcast_to(np.arange(k), drawn.shape), axis=-1)
    taken = np.take_along_axis(np.broadcast_to(w[:, None, :], keys.shape), drawn, axis=-1)
    before = np.cumsum(taken, axis=-1) - taken  # weight of the prefix ahead of position j
    shown = order[:, :k]  # [n, k]
    w_shown = np.take_along_axis(w, shown, axis=-1)  # [n, k]
    at = np.take_along_axis(landed, np.broadcast_to(shown[:, None, :], (n, samples, k)), axis=-1)
    free = at >= np.arange(k)  # the shown item is not in the sample's prefix of length j
    left = np.maximum(total[:, None, None] - before, 1e-300)
    p = np.where(free, w_shown[:, None, :] / left, 0.0).mean(axis=1)
    p[:, 0] = w_shown[:, 0] / np.maximum(total, 1e-300)  # exact, not estimated
    # the drawn path's own probability up to each position: a lower bound, never 0
    ahead = np.cumsum(w_shown, axis=1) - w_shown
    path = np.cumprod(w_shown / np.maximum(total[:, None] - ahead, 1e-300), axis=1)
    p = np.maximum(p, path)
    return np.where(w_shown > 0, p, np.nan)
