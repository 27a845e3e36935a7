"""What an experiment report does when its traffic was adaptive (``allocation = "thompson"``).

Why the usual report is not enough: its tests (Welch intervals, the always-valid mSPRT p, the
sample-ratio check) assume every unit had the same fixed chance of each variant. Under Thompson
allocation the chance moved with the data, so a variant's plain mean is biased (a variant that
had a lucky start gets more traffic while its mean regresses; an unlucky one is cut off while
low) and the sample ratio is meant to drift. What stays valid is inverse-propensity weighting
with the propensities the server logged when it drew each variant (``assignment_propensity``):
they are known at decision time, so IPS is unbiased for "every request got variant v" and SNIPS
consistent, adaptive or not. The estimates reuse ``recsmith.ope`` with one round per list, the
variant as the action and the KPI per impression of that list as the reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsmith.experiments.adaptive import KPI_KIND
from recsmith.experiments.spec import Experiment
from recsmith.ope.evaluate import estimate

#: The estimators the report shows; its verdict reads SNIPS (lower variance, weights ≤ 1/floor).
ESTIMATORS = ("ips", "snips")


@dataclass(frozen=True, slots=True)
class OffPolicy:
    """Per variant: the KPI per impression had every request got it, by each estimator, as
    (value, (lo, hi)) with a 95 % bootstrap interval over lists; ``lists``: lists used, and
    ``unlogged``: lists of the experiment without a logged assignment propensity (left out)."""

    values: dict[str, dict[str, tuple[float, tuple[float, float]]]]
    lists: int
    unlogged: int


def list_rewards(
    experiment: Experiment, shown: pd.DataFrame, attributions: pd.DataFrame
) -> pd.DataFrame:
    """One row per non-empty list of ``experiment``: ``round`` (its recommendation id),
    ``action`` (the variant), ``propensity`` (its logged assignment propensity, NaN when
    none) and ``reward``: the KPI's attributed successes per impression (each slot counts once).
    ``shown`` and ``attributions`` as ``decisions.outcomes.shown_and_attributed`` gives them."""
    mine = shown[(shown["experiment"] == experiment.name) & shown["item_id"].notna()]
    kind = KPI_KIND[experiment.kpi]
    hits = attributions[
        (attributions["kind"] == kind)
        & attributions["recommendation_id"].isin(mine["recommendation_id"])
    ]
    slots = hits.drop_duplicates(["recommendation_id", "position"])
    wins = slots.groupby("recommendation_id").size()
    lists = mine.groupby("recommendation_id", sort=True).agg(
        action=("variant", "first"),
        propensity=("assignment_propensity", "first"),
        impressions=("item_id", "count"),
    )
    successes = wins.reindex(lists.index).fillna(0).to_numpy(np.float64)
    return pd.DataFrame(
        {
            "round": lists.index.astype(str),
            "action": lists["action"].astype(str).to_numpy(),
            "propensity": lists["propensity"].to_numpy(np.float64),
            "reward": successes / lists["impressions"].to_numpy(np.float64),
        }
    )


def off_policy(experiment: Experiment, rewards: pd.DataFrame, seed: int = 0) -> OffPolicy | None:
    """The IPS and SNIPS estimates of every variant from ``list_rewards``; None with fewer than
    two lists that logged their propensity (``ope.estimate`` cross-fits its reward model, which
    IPS and SNIPS do not use, over at least two folds)."""
    logged = rewards[rewards["propensity"].notna()].reset_index(drop=True)
    if len(logged) < 2:
        return None
    values = {}
    for v in experiment.variants:
        target = pd.DataFrame({"round": logged["round"], "action": v.name, "probability": 1.0})
        found = estimate(
            logged, target, ESTIMATORS, folds=min(5, len(logged)), bootstrap=500, seed=seed
        )
        values[v.name] = {n: (found.values[n], found.intervals[n]) for n in ESTIMATORS}
    return OffPolicy(values, len(logged), len(rewards) - len(logged))


def adaptive_verdict(
    experiment: Experiment, treatment: str, found: OffPolicy | None, failed: list[str]
) -> str:
    """One line for ``treatment`` from the SNIPS intervals: promote when its interval lies above
    control's, stop when below (or a guardrail failed), else keep running. Disjoint intervals
    are a stricter test than an interval on the difference: the verdict errs towards waiting."""
    if found is None:
        return f"{treatment}: keep running: under two lists with a logged assignment propensity"
    t_value, (t_lo, t_hi) = found.values[treatment]["snips"]
    c_value, (c_lo, c_hi) = found.values[experiment.control]["snips"]
    text = (
        f"{experiment.kpi} {t_value:.4g} [{t_lo:.4g}, {t_hi:.4g}] vs control {c_value:.4g} "
        f"[{c_lo:.4g}, {c_hi:.4g}] (SNIPS, adaptive allocation)"
    )
    if failed:
        return f"stop {treatment}: guardrail {', '.join(failed)} failed ({text})"
    if not all(np.isfinite([t_lo, t_hi, c_lo, c_hi])):
        return f"keep running: {treatment}: too few lists for intervals ({text})"
    if t_lo > c_hi:
        return f"promote {treatment}: {text}"
    if t_hi < c_lo:
        return f"stop {treatment}: {text}"
    return f"keep running: {treatment}: intervals overlap ({text})"


ADAPTIVE_NOTE = (
    "traffic was adaptive (Thompson sampling on {kpi}, drawn per request, floor {floor:.0%} per "
    "variant, {burn_in} impressions per variant at the weights first): the fixed-weight tests "
    "below (CI, p, always-valid p) assume fixed assignment chances and are shown for reference "
    "only; the sample-ratio check is skipped (the ratio is meant to move); the verdict compares "
    "per-variant IPS/SNIPS estimates from the logged assignment propensities"
)
