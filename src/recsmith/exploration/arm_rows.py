"""The bandit counts as rows of the stores' ``bandit_arms`` table (one place for both backends).

Increments are *added* by an UPSERT, never written as totals, so every worker and replica can add
what it saw without reading first, and the table is the shared state that survives a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recsmith.exploration.arms import ArmCounts

#: ``bandit_arms`` columns: the arm (an item id), its impressions and attributed outcomes.
ARM_COLUMNS = ("arm", "shown", "clicks", "purchases")
UPSERT_ARMS_SQL = (
    "INSERT INTO bandit_arms (arm, shown, clicks, purchases) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (arm) DO UPDATE SET shown = bandit_arms.shown + excluded.shown, "
    "clicks = bandit_arms.clicks + excluded.clicks, "
    "purchases = bandit_arms.purchases + excluded.purchases"
)
SELECT_ARMS_SQL = "SELECT arm, shown, clicks, purchases FROM bandit_arms ORDER BY arm"


def arm_counts(rows: Sequence[Sequence[Any]], version: int) -> ArmCounts:
    """An ``ArmCounts`` from rows ``SELECT_ARMS_SQL`` returned (sorted by arm)."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(ARM_COLUMNS))
    arms = frame["arm"].to_numpy(dtype=object)
    order = np.argsort(arms.astype(str), kind="stable")  # the collation's order is not numpy's
    return ArmCounts(
        arms[order],
        frame["shown"].to_numpy(np.int64)[order],
        frame["clicks"].to_numpy(np.int64)[order],
        frame["purchases"].to_numpy(np.int64)[order],
        version,
    )
