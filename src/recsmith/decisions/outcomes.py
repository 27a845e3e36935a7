"""Outcomes per unit: what experiment reports and KPIs are computed from.

One row per (unit, variant): the lists a unit was served, the items shown in them, and the
attributed events by kind (``[decisions] clicks``, ``carts``, ``purchases``; revenue is the sum of
attributed purchases' ``value``). Lists without a unit (popular, trending, item-to-item lists,
which no user asked for) cannot be split by unit and are left out here; KPIs count them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from recsmith.config import DecisionSettings
from recsmith.store.base import EventStore

#: The columns of ``per_unit``, in order (the contract the experiment report relies on).
PER_UNIT_COLUMNS = (
    "unit",
    "variant",
    "decisions",
    "impressions",
    "clicks",
    "carts",
    "purchases",
    "revenue",
    "first_seen",
)
KINDS = ("click", "cart", "purchase")


def shown_and_attributed(
    store: EventStore,
    since: datetime | None,
    until: datetime | None,
    kinds: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shown items of decisions served in ``[since, until)`` (``scan_decisions``), and the
    attributions to those decisions with their outcome ``kind`` (unmapped event types left out),
    ``value`` as revenue (0 where absent) and the ``recommendation_id`` they go to."""
    shown = store.scan_decisions(since, until)
    attributions = store.scan_attributions(since)
    attributions = attributions.assign(kind=attributions["event_type"].map(dict(kinds)))
    in_range = attributions["recommendation_id"].isin(shown["recommendation_id"])
    attributions = attributions[in_range & attributions["kind"].notna()].reset_index(drop=True)
    return shown, attributions


def per_unit(
    store: EventStore,
    since: datetime | None = None,
    until: datetime | None = None,
    experiment: str | None = None,
    *,
    kinds: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per (unit, variant) of the decisions served in ``[since, until)`` (of
    ``experiment`` only, when given), columns ``PER_UNIT_COLUMNS``; ``variant`` is "" outside
    experiments. ``kinds`` maps event types to outcome kinds (default: ``[decisions]``'s)."""
    kinds = DecisionSettings().kinds() if kinds is None else kinds
    shown, attributions = shown_and_attributed(store, since, until, kinds)
    if experiment is not None:
        shown = shown[shown["experiment"] == experiment]
    shown = shown[shown["unit"].notna()].assign(variant=shown["variant"].fillna(""))
    if len(shown) == 0:
        return _empty()
    keys = ["unit", "variant"]
    grouped = shown.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "decisions": grouped["recommendation_id"].nunique(),
            "impressions": grouped["item_id"].count(),  # an empty list shows nothing
            "first_seen": grouped["served_at"].min(),
        }
    )
    owner = shown.drop_duplicates("recommendation_id").set_index("recommendation_id")[keys]
    joined = attributions.join(owner, on="recommendation_id", how="inner")
    counts = joined.pivot_table(index=keys, columns="kind", values="event_id", aggfunc="count")
    counts = counts.reindex(columns=list(KINDS)).reindex(out.index).fillna(0)
    bought = joined[joined["kind"] == "purchase"]
    revenue = bought["value"].fillna(0.0).groupby([bought[k] for k in keys]).sum()
    out["clicks"] = counts["click"].to_numpy(dtype=np.int64)
    out["carts"] = counts["cart"].to_numpy(dtype=np.int64)
    out["purchases"] = counts["purchase"].to_numpy(dtype=np.int64)
    out["revenue"] = revenue.reindex(out.index).fillna(0.0).to_numpy(dtype=np.float64)
    out = out.reset_index()
    out["decisions"] = out["decisions"].astype(np.int64)
    out["impressions"] = out["impressions"].astype(np.int64)
    out["unit"] = out["unit"].astype(object)
    out["variant"] = out["variant"].astype(object)
    out["first_seen"] = out["first_seen"].astype("datetime64[ns, UTC]")
    return out.loc[:, list(PER_UNIT_COLUMNS)]


def _empty() -> pd.DataFrame:
    ints = ("decisions", "impressions", "clicks", "carts", "purchases")
    columns: dict[str, pd.Series] = {
        "unit": pd.Series(dtype=object),
        "variant": pd.Series(dtype=object),
        **{name: pd.Series(dtype=np.int64) for name in ints},
        "revenue": pd.Series(dtype=np.float64),
        "first_seen": pd.Series(dtype="datetime64[ns, UTC]"),
    }
    return pd.DataFrame(columns).loc[:, list(PER_UNIT_COLUMNS)]
