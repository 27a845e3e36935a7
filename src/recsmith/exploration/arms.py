"""``ArmCounts``: what the bandit knows of each arm (an item), as one immutable snapshot.

The server refreshes it from the store (``board``) every few seconds and hands the same object
to every request of that interval, so a request never waits on the store and every worker and
replica reads the same shared counts. Arms are external item ids, sorted, so a batch of lookups
is one ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Outcome kinds the counts keep (``[decisions]`` maps event types to them).
KINDS = ("click", "purchase")


@dataclass(frozen=True, slots=True)
class ArmCounts:
    """``shown[i]`` impressions and ``successes[kind][i]`` attributed outcomes of ``arms[i]``;
    ``version`` changes whenever the numbers may have (it keys cached posterior draws)."""

    arms: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # sorted str
    shown: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    clicks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    purchases: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    version: int = 0

    def lookup(self, item_ids: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(trials, successes) int64 for each id; 0 and 0 for arms never counted. Successes
        are capped at trials (a click attributed before its impression was counted)."""
        trials = np.zeros(len(item_ids), np.int64)
        wins = np.zeros(len(item_ids), np.int64)
        if len(self.arms) and len(item_ids):
            pos = np.searchsorted(self.arms, item_ids).clip(max=len(self.arms) - 1)
            hit = self.arms[pos] == item_ids
            trials[hit] = self.shown[pos[hit]]
            won = self.clicks if kind == "click" else self.purchases
            wins[hit] = won[pos[hit]]
        return trials, np.minimum(wins, trials)
