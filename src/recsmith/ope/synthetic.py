"""A contextual bandit whose truth is known, to check the estimators (tests and benchmarks).

Logging policy: uniform over the actions. Context x ∈ {0, …, C − 1}, uniform. Rewards are
Bernoulli with mean ``means[x, a]``. Target: deterministic, ``target_action[x]``. Every seed's
simulation is drawn at once (numpy arrays of shape seeds × rounds); :func:`logs` turns one seed
into the two frames ``estimate`` reads, with the context as one numeric ``x_0`` column."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class Bandit:
    means: np.ndarray  # (contexts, actions) Bernoulli means
    target_action: np.ndarray  # (contexts,) the target's action in each context

    @property
    def true_value(self) -> float:
        """The target's expected reward per round: the mean over contexts of its action's mean."""
        return float(self.means[np.arange(len(self.target_action)), self.target_action].mean())


def logs(
    bandit: Bandit, seeds: int, rounds: int, seed: int = 0
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """(log, target) frames for each of ``seeds`` independent runs of ``rounds`` rounds."""
    contexts, actions = bandit.means.shape
    rng = np.random.default_rng(seed)
    x = rng.integers(0, contexts, size=(seeds, rounds))
    action = rng.integers(0, actions, size=(seeds, rounds))
    reward = (rng.random((seeds, rounds)) < bandit.means[x, action]).astype(float)
    chosen = bandit.target_action[x]
    ids = np.array([f"r{k}" for k in range(rounds)])
    for s in range(seeds):
        log = pd.DataFrame(
            {
                "round": ids,
                "action": action[s].astype(str),
                "reward": reward[s],
                "propensity": 1.0 / actions,
                "x_0": x[s].astype(float),
            }
        )
        yield log, pd.DataFrame({"round": ids, "action": chosen[s].astype(str), "probability": 1.0})
