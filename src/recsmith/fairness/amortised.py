"""Amortised exposure: item groups shown less than their share so far get a boost.

A floor per list (``exposure.py``) guarantees a group a place in *every* list; amortised fairness
asks for less and costs less: over time, each group's share of the slots served should approach
its share of the (available) catalogue. Groups under-exposed so far get a log boost

    boost(g) = γ · log(target(g) / shown(g))   when shown(g) < target(g), else 0,

capped at ``γ · log(MAX_RATIO)``, where ``shown(g)`` is g's share of the slots in the decision log
over the window (smoothed: one slot spread by target share, so a group never shown gets the cap,
not infinity) and ``target(g)`` its share of available catalogue items. Over-exposed groups are
not buried: the boost only lifts what the log says was starved.

The boost changes with the log, not with each request: ``AmortisedExposure.refresh`` recomputes it
from slot counts (a background task reads the log every ``refresh_s``) and swaps one array, which
requests read without a lock (one reference assignment is atomic).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsmith.rerank.catalog_view import ItemTable

#: The largest ratio target / shown that still increases the boost.
MAX_RATIO = 10.0


class AmortisedExposure:
    """The per-item log boost from exposure so far (module docstring). ``group`` [n_items] is each
    item's group code (-1: none, never boosted)."""

    def __init__(self, group: np.ndarray, available: np.ndarray, strength: float) -> None:
        if strength < 0:
            raise ValueError(f"amortised strength must be >= 0, got {strength}")
        self.group = np.asarray(group, np.int64)
        self.strength = float(strength)
        n_groups = int(self.group.max(initial=-1)) + 1
        has = self.group >= 0
        stock = np.bincount(self.group[has & available], minlength=n_groups).astype(np.float64)
        self.target = stock / max(stock.sum(), 1.0)
        self.log_boost = np.zeros(len(self.group))
        self.group_boost = np.zeros(n_groups)

    @classmethod
    def of(cls, table: ItemTable, config: AmortisedConfig) -> AmortisedExposure:
        """Groups by the items' primary category or by a property's values, as ``config`` says."""
        group = table.category if config.property == "category" else table.codes(config.property)[0]
        return cls(group, table.available, config.strength)

    def refresh(self, slots_per_item: np.ndarray) -> None:
        """Recompute the boost from slot counts per item over the window."""
        slots = np.asarray(slots_per_item, np.float64)
        has = self.group >= 0
        counts = np.bincount(
            self.group[has], weights=slots[has], minlength=len(self.target)
        ).astype(np.float64)
        shown = (counts + self.target) / (counts.sum() + 1.0)
        with np.errstate(divide="ignore"):
            ratio = np.where(self.target > 0, self.target / shown, 1.0)
        boost = self.strength * np.log(np.clip(ratio, 1.0, MAX_RATIO))
        self.group_boost = boost
        self.log_boost = np.where(has, boost[np.maximum(self.group, 0)], 0.0)


class AmortisedConfig(BaseModel):
    """``[rerank.amortised]``: which groups, how strong a boost, over which window of the log::

    [rerank.amortised]
    property = "brand"     # or "category" (an item's primary category)
    strength = 0.5         # γ above; 0 = off
    window_days = 1        # slots served over this window count as "so far" (a server reads
                           # it whole at start, then only what is new: decisions.window)
    refresh_s = 300        # how often the server reads what is new in the log
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    property: str = Field("category", min_length=1)
    strength: float = Field(0.5, ge=0, le=4)
    window_days: float = Field(1.0, gt=0, le=365)
    refresh_s: float = Field(300.0, ge=10, le=86_400)
