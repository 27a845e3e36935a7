"""Group performance parity: is some group of users served worse than another?

The accuracy ``evaluate`` already computes per user (``ModelResult.per_user``) is broken down by a
user group — activity buckets by default, or any property of the user profiles — with each group's
mean, a bootstrap 95% interval of it (``significance.bootstrap_ci``), and the gap between the best-
and worst-served group with Welch's test of it (``significance.two_sample_test``). A gap measured on
a handful of users is noise, so the result carries a note saying when a group is too small or the
gap too uncertain to conclude anything, and how many users it would take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recsmith.evaluation.significance import bootstrap_ci, two_sample_test

#: Activity buckets, lightest first.
ACTIVITY = ("light", "medium", "heavy")
#: A group with fewer evaluated users than this is flagged: its mean is too uncertain to rank.
MIN_GROUP_USERS = 30
#: Level the gap is tested at.
GAP_ALPHA = 0.05
#: Label of users whose profile lacks the grouping property.
MISSING = "(none)"


def activity_groups(counts: np.ndarray) -> tuple[np.ndarray, str]:
    """Bucket users by training activity into terciles: light ``c <= t1``, medium ``t1 < c <= t2``,
    heavy ``c > t2`` with ``t1, t2`` the 1/3 and 2/3 quantiles (numpy's linear rule) of ``counts``.
    Thresholds, not ranks, so two users with the same count always share a bucket (with many ties
    the buckets are unequal, and one may be empty). Returns the labels and the cut in words."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or len(c) == 0:
        raise ValueError("counts must be a non-empty 1-D array")
    t1, t2 = np.quantile(c, [1 / 3, 2 / 3])
    labels = np.asarray(ACTIVITY, dtype=object)[(c > t1).astype(int) + (c > t2)]
    cut = (
        f"activity terciles of distinct training items: light <= {t1:g} < medium <= {t2:g} < heavy"
    )
    return labels, cut


def property_groups(
    user_ids: Sequence[str], properties: Mapping[str, Mapping[str, Any]], name: str
) -> np.ndarray:
    """Each user's value of profile property ``name`` as a label (``MISSING`` when the user has no
    profile or the profile lacks it)."""
    labels = [str(properties.get(u, {}).get(name, MISSING)) for u in user_ids]
    return np.asarray(labels, dtype=object)


@dataclass(frozen=True, slots=True)
class GroupScore:
    """One user group: its size, mean of every accuracy metric, and the interval of the parity
    metric's mean (NaN with fewer than 2 users)."""

    name: str
    users: int
    metrics: dict[str, float]
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class GroupParity:
    """Accuracy by user group and the gap between the best- and worst-served group on ``metric``
    (``gap_*`` NaN and ``best``/``worst`` ``None`` when fewer than two groups have 2+ users)."""

    by: str
    cut: str
    metric: str
    groups: tuple[GroupScore, ...]
    best: str | None
    worst: str | None
    gap: float
    gap_ci_low: float
    gap_ci_high: float
    gap_p_value: float
    users_needed: int | None  # per group, to detect a gap this large at GAP_ALPHA, 80% power
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def group_parity(
    per_user: Mapping[str, np.ndarray],
    labels: np.ndarray,
    *,
    by: str,
    cut: str = "",
    metric: str = "ndcg",
) -> GroupParity:
    """Break ``per_user`` metrics (aligned with ``labels``) down by group; groups sorted by name
    (activity buckets lightest first)."""
    if metric not in per_user:
        raise ValueError(f"metric {metric!r} is not among the per-user metrics {sorted(per_user)}")
    labels = np.asarray(labels, dtype=object)
    names, codes = np.unique(labels, return_inverse=True)
    if by == "activity":  # lightest first, not alphabetical
        order = {a: n for n, a in enumerate(ACTIVITY)}
        perm = sorted(range(len(names)), key=lambda g: order.get(names[g], len(order)))
        position = np.empty(len(names), dtype=np.int64)
        position[perm] = np.arange(len(names))
        names, codes = names[perm], position[codes]
    sizes = np.bincount(codes, minlength=len(names))
    means = {
        m: np.bincount(codes, weights=np.asarray(v, np.float64), minlength=len(names)) / sizes
        for m, v in per_user.items()
    }
    target = np.asarray(per_user[metric], dtype=np.float64)
    scores = []
    for g, name in enumerate(names):  # one interval per group; groups are few
        values = target[codes == g]
        low, high = bootstrap_ci(values) if len(values) >= 2 else (float("nan"), float("nan"))
        scores.append(
            GroupScore(
                str(name),
                int(sizes[g]),
                {m: float(v[g]) for m, v in means.items()},
                low,
                high,
            )
        )
    testable = [g for g in range(len(names)) if sizes[g] >= 2]
    small = [f"{names[g]} ({sizes[g]})" for g in range(len(names)) if sizes[g] < MIN_GROUP_USERS]
    notes = (
        [f"fewer than {MIN_GROUP_USERS} users in {', '.join(small)}: too few to rank"]
        if small
        else []
    )
    if len(testable) < 2:
        notes.append("fewer than two groups with 2+ users: no gap to measure")
        return GroupParity(
            by,
            cut,
            metric,
            tuple(scores),
            None,
            None,
            *(float("nan"),) * 4,
            None,
            "; ".join(notes),
        )
    best = max(testable, key=lambda g: means[metric][g])
    worst = min(testable, key=lambda g: means[metric][g])
    test = two_sample_test(target[codes == best], target[codes == worst])
    smaller = int(min(sizes[best], sizes[worst]))
    if test.p_value >= GAP_ALPHA:
        need = (
            f"; telling them apart would take about {test.users_needed:,} users per group"
            if test.users_needed is not None and test.users_needed > smaller
            else ""
        )
        notes.append(
            f"the gap between {names[best]} and {names[worst]} is not significant "
            f"(Welch p = {test.p_value:.2g}){need}"
        )
    return GroupParity(
        by,
        cut,
        metric,
        tuple(scores),
        str(names[best]),
        str(names[worst]),
        test.mean_diff,
        test.ci_low,
        test.ci_high,
        test.p_value,
        test.users_needed,
        "; ".join(notes) or None,
    )
