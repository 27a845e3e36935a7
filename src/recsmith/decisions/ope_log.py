"""The decision log as ``recsmith ope estimate``'s LOG file: one row per shown item.

``round`` is the recommendation id, ``position`` where the item was shown, ``action`` the item,
``propensity`` the probability the serving policy showed it there (1 for deterministic lists,
the exploring policy's own for ``[explore]`` pipelines), and ``reward`` the attributed outcome of
that item in that list: a click (0/1), a purchase (0/1) or the revenue of its purchases.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Reward = Literal["click", "purchase", "revenue"]
OPE_COLUMNS = ("round", "position", "action", "reward", "propensity")


def ope_log(shown: pd.DataFrame, attributions: pd.DataFrame, reward: Reward) -> pd.DataFrame:
    """``shown`` as ``scan_decisions`` returns it, ``attributions`` with their outcome ``kind``
    (``outcomes.shown_and_attributed``); empty lists (no item) are left out."""
    items = shown[shown["item_id"].notna()]
    kind = "purchase" if reward == "revenue" else reward
    hits = attributions[attributions["kind"] == kind]
    values = hits["value"].fillna(0.0) if reward == "revenue" else pd.Series(1.0, hits.index)
    keys = [hits["recommendation_id"], hits["position"].astype(np.int64)]
    per_slot = values.groupby(keys).sum()
    if reward != "revenue":
        per_slot = per_slot.clip(upper=1.0)  # a click is a click, however many events say it
    index = pd.MultiIndex.from_arrays(
        [items["recommendation_id"], items["position"].astype(np.int64)]
    )
    return pd.DataFrame(
        {
            "round": items["recommendation_id"].astype(str).to_numpy(),
            "position": items["position"].astype(np.int64).astype(str).to_numpy(),
            "action": items["item_id"].astype(str).to_numpy(),
            "reward": per_slot.reindex(index).fillna(0.0).to_numpy(np.float64),
            "propensity": items["propensity"].to_numpy(np.float64),
        }
    )
