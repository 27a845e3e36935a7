"""Off-policy estimate of a candidate model or pipeline from the decision log (``recsmith ope
replay``): what it would have earned on the requests the served policy answered.

The log side is ``decisions.ope_log``: one row per shown item with the served policy's logged
propensity (1 for deterministic lists, the exploring policy's own under ``[explore]``) and the
item's attributed reward. The target side is a replay: the candidate is asked for each logged
unit's list (``recommend``, the length of the longest list logged for it), and each logged round
gets the candidate's item at each position with probability 1 (a deterministic candidate).
Estimates are ``ope.estimate``'s, per impression, beside the served policy's observed value.

What the replay does not rebuild (the decision log does not hold it): each request's own
exclusions, recent items, context and request rules, and the time it was asked; the candidate
answers each unit once, from its own training data. Lists that no unit asked for (item-to-item,
trending) are left out. With a deterministic served policy the candidate is supported only where
its item matches the logged one at a position: ``estimate`` reports that as unsupported mass and
warns; an exploring served policy is what makes the estimate informative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsmith.decisions.ope_log import Reward, ope_log
from recsmith.ope.evaluate import OpeReport, estimate

#: Asked once for all logged units: (unit ids, k) -> one list of item ids per unit.
Candidate = Callable[[np.ndarray, int], list[list[str]]]


@dataclass(frozen=True, slots=True)
class Replay:
    """The candidate's estimates and the served policy's observed reward per impression."""

    report: OpeReport
    observed: float
    lists: int
    units: int


def replay_target(shown: pd.DataFrame, candidate: Candidate) -> pd.DataFrame:
    """The candidate's distribution over the logged rounds (``ope.inputs`` target layout:
    ``round``, ``position``, ``action``, ``probability``), from ``shown`` as
    ``scan_decisions`` returns it, units only."""
    items = shown[shown["item_id"].notna() & shown["unit"].notna()]
    sizes = items.groupby("recommendation_id").agg(
        unit=("unit", "first"), size=("item_id", "count")
    )
    units = sizes["unit"].astype(str).unique()
    k = int(sizes["size"].max())
    answers = candidate(units, k)
    per_unit = pd.DataFrame(
        {
            "unit": np.repeat(units, [len(a) for a in answers]),
            "position": np.concatenate([np.arange(1, len(a) + 1) for a in answers] or [[]]),
            "action": [item for a in answers for item in a],
        }
    )
    rounds = sizes.reset_index().assign(unit=sizes["unit"].astype(str).to_numpy())
    joined = rounds.merge(per_unit, on="unit")
    joined = joined[joined["position"] <= joined["size"]]
    return pd.DataFrame(
        {
            "round": joined["recommendation_id"].astype(str).to_numpy(),
            "position": joined["position"].astype(np.int64).astype(str).to_numpy(),
            "action": joined["action"].astype(str).to_numpy(),
            "probability": 1.0,
        }
    )


def replay(
    shown: pd.DataFrame,
    attributions: pd.DataFrame,
    candidate: Candidate,
    reward: Reward,
    estimators: tuple[str, ...],
    **options: object,
) -> Replay:
    """Estimate ``candidate`` on the logged lists of units (see module docstring); ``options``
    go to ``ope.estimate`` (clip, bootstrap, seed, …)."""
    with_unit = shown[shown["unit"].notna()]
    log = ope_log(with_unit, attributions, reward)
    target = replay_target(with_unit, candidate)
    report = estimate(log, target, estimators, **options)  # type: ignore[arg-type]
    return Replay(
        report,
        observed=float(log["reward"].mean()),
        lists=int(log["round"].nunique()),
        units=int(with_unit["unit"].nunique()),
    )


def served_candidate(bundle: object) -> Candidate:
    """A trained model or pipeline directory's ``recommend`` as a ``Candidate``."""

    def ask(units: np.ndarray, k: int) -> list[list[str]]:
        found = bundle.recommend(units, k)  # type: ignore[attr-defined]
        return [list(map(str, row)) for row in found.item_ids]

    return ask
