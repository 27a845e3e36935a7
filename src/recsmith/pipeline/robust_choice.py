"""Choosing between configurations scored on several validation protocols at once.

Each protocol has its own scale (NDCG@10 after a time cut is several times that of each user's
latest item), so a configuration is read as its *share* of the best single source on each
protocol, and judged by its worst share: the maximin choice, the one furthest from failing on
whichever protocol the data will be judged by. On one protocol this is the plain mean against
the best single source. A richer choice replaces a simpler one only if it lifts the simpler one's
weakest protocol by more than noise (a paired bootstrap interval over that protocol's users above
zero) and its own worst share is not lower: the simpler choice's weakest protocol is where its
guarantee is thinnest, and a noisy protocol where both do about as well (a time cut holds ~100
users) must not veto a gain measured beyond noise on the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsmith.evaluation.significance import bootstrap_ci
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


def prefer(
    simple: Tried, reason: str, rich: Tried, refs: Sequence[float], seed: int
) -> tuple[Tried, str]:
    """``rich`` replaces ``simple`` only if it lifts the protocol where ``simple`` is weakest
    (its lowest share) by more than noise — the lower end of the paired bootstrap interval of
    the per-user difference there above zero — and its own worst share is not lower. On one
    protocol this is the plain rule: better beyond noise."""
    weakest = int(np.argmin([_share(m, r) for m, r in zip(simple.means, refs, strict=True)]))
    diff = rich.per_user[weakest] - simple.per_user[weakest]
    low, high = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=seed)
    shares = f"worst share {worst_share(rich, refs):.3f} vs {worst_share(simple, refs):.3f}"
    said = f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}] on protocol {weakest + 1}, {shares}"
    if low > 0 and worst_share(rich, refs) >= worst_share(simple, refs):
        return rich, f"beats {simple.name} by {said}"
    return simple, f"{reason}; {rich.name} not better by more than noise ({said})"
