"""Fairness measured on what was actually served: exposure by item group, its Gini, narrowing.

Offline ``evaluate`` judges lists a model *would* serve; these read the decision log
(``EventStore.scan_decisions``: one row per shown item) so the numbers describe production. They
take frames, not a store, so the report, the Prometheus gauges and tests share them.

* **Exposure**: each group's share of the slots served, and the Gini of slots per item over the
  catalogue (items never shown count as zeros, as offline: ``evaluation.fairness.gini``).
* **Narrowing** (the filter-bubble signal): for each unit with at least ``2 · last`` lists, the
  number of distinct item groups in its latest ``last`` lists divided by that in the ``last``
  lists before them. Below 1: what this person is shown is getting narrower. Reported as the share
  of such units under 1 and the median ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsmith.evaluation.fairness import gini

#: The group of an item without one.
NO_GROUP = "(none)"


@dataclass(frozen=True, slots=True)
class LiveExposure:
    """Slots served per group (shares sum to 1), the item Gini and the catalogue share shown."""

    slots: int
    group_share: dict[str, float]
    gini: float
    catalogue_shown: float


def live_exposure(
    shown: pd.DataFrame, item_group: Mapping[str, str], catalogue: int
) -> LiveExposure:
    """Exposure of the items in ``shown`` (``scan_decisions`` rows) over a catalogue of
    ``catalogue`` items; ``item_group`` maps item ids to their group."""
    ids = shown["item_id"].dropna().astype(str)
    per_item = ids.value_counts()
    # one group lookup per distinct item, not per shown row (a window holds millions of rows)
    groups = [item_group.get(i, NO_GROUP) for i in per_item.index]
    share = (per_item.groupby(groups).sum() / len(ids)).sort_index()
    n = max(catalogue, len(per_item))
    counts = np.zeros(n)
    counts[: len(per_item)] = per_item.to_numpy()
    return LiveExposure(
        slots=len(ids),
        group_share={str(g): float(v) for g, v in share.items()},
        gini=gini(counts) if len(ids) else float("nan"),
        catalogue_shown=len(per_item) / n if n else float("nan"),
    )


def narrowing(shown: pd.DataFrame, item_group: Mapping[str, str], last: int = 5) -> pd.Series:
    """Per unit with ``2 · last`` lists or more: distinct groups in its latest ``last`` lists over
    those in the ``last`` before (module docstring), indexed by unit."""
    rows = shown.dropna(subset=["item_id", "unit"])
    if rows.empty:
        return pd.Series(dtype=float)
    lists = rows[["unit", "recommendation_id", "served_at"]].drop_duplicates("recommendation_id")
    lists = lists.sort_values(["unit", "served_at", "recommendation_id"])
    lists["back"] = lists.groupby("unit").cumcount(ascending=False)  # 0 = the latest list
    lists = lists[lists["back"] < 2 * last]
    enough = lists.groupby("unit")["back"].transform("max") >= 2 * last - 1
    lists = lists[enough].assign(recent=lambda f: f["back"] < last)
    joined = rows.merge(lists[["recommendation_id", "recent"]], on="recommendation_id")
    joined = joined.assign(group=joined["item_id"].astype(str).map(item_group).fillna(NO_GROUP))
    distinct = joined.groupby(["unit", "recent"])["group"].nunique().unstack("recent")
    if distinct.empty:
        return pd.Series(dtype=float)
    return (distinct[True] / distinct[False]).rename("narrowing")
