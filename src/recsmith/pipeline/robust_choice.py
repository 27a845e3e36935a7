"""Choosing between configurations scored on several validation protocols at once.

Each protocol has its own scale (NDCG@10 after a time cut is several times that of each user's
latest item), so a configuration is read as its *share* of the best single source on each
protocol, and judged by its worst share: the maximin choice, the one furthest from failing on
whichever protocol the data will be judged by. On one protocol this is the plain mean against
the best single source. A richer choice replaces a simpler one only if the paired bootstrap
interval of the worst-share difference (users resampled within each protocol, the same draws for
both) lies above zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsmith.pipeline.config import PipelineConfig

#: Bootstrap resamples behind every interval (seeded: the same data gives the same choice).
RESAMPLES = 1000


@dataclass(frozen=True, slots=True)
class Tried:
    """One configuration scored on validation: the pipeline configuration that would ship it and
    its per-user NDCG@10 on each protocol (in the order of the validation splits)."""

    name: str
    config: PipelineConfig
    per_user: tuple[np.ndarray, ...]

    @property
    def means(self) -> tuple[float, ...]:
        return tuple(float(p.mean()) for p in self.per_user)


def best_means(singles: Sequence[Tried]) -> tuple[float, ...]:
    """The best single source's mean on each protocol (each protocol's own best)."""
    return tuple(float(m) for m in np.max([t.means for t in singles], axis=0))


def worst_share(t: Tried, refs: Sequence[float]) -> float:
    """``t``'s lowest share of ``refs`` over the protocols (a protocol where ``refs`` is 0 gives
    every configuration the share 1: nothing there tells them apart)."""
    return float(min(_share(m, r) for m, r in zip(t.means, refs, strict=True)))


def _share(mean: np.ndarray | float, ref: float) -> np.ndarray | float:
    return mean / ref if ref > 0 else np.ones_like(mean)


def worst_share_gap(
    rich: Tried, simple: Tried, refs: Sequence[float], seed: int
) -> tuple[float, float, float]:
    """(difference, low, high): ``rich``'s worst share minus ``simple``'s and its 95 % paired
    bootstrap interval, users resampled within each protocol."""
    rng = np.random.default_rng(seed)
    worst_rich = np.full(RESAMPLES, np.inf)
    worst_simple = np.full(RESAMPLES, np.inf)
    for a, b, ref in zip(rich.per_user, simple.per_user, refs, strict=True):
        draw = rng.integers(0, len(a), size=(RESAMPLES, len(a)))
        worst_rich = np.minimum(worst_rich, _share(a[draw].mean(axis=1), ref))
        worst_simple = np.minimum(worst_simple, _share(b[draw].mean(axis=1), ref))
    low, high = np.quantile(worst_rich - worst_simple, [0.025, 0.975])
    gap = worst_share(rich, refs) - worst_share(simple, refs)
    return gap, float(low), float(high)


def prefer(
    simple: Tried, reason: str, rich: Tried, refs: Sequence[float], seed: int
) -> tuple[Tried, str]:
    """``rich`` replaces ``simple`` only if its worst share beats ``simple``'s beyond noise
    (the lower end of the paired interval above zero)."""
    gap, low, high = worst_share_gap(rich, simple, refs, seed)
    said = f"{gap:+.3f} [{low:+.3f}, {high:+.3f}] of the best single source's score"
    if low > 0:
        return rich, f"beats {simple.name} by {said}"
    return simple, f"{reason}; {rich.name} not better by more than noise ({said})"
