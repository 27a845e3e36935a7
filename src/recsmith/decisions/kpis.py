"""Business KPIs of what was served: read from the decision log and the attributions.

Definitions (the README repeats them):

- ``impressions``: items shown; ``lists``: lists served; ``users``: distinct units shown a list.
- ``ctr``: attributed clicks / impressions; ``ctr_at_k``: the same for positions 1..k only.
- ``cart_rate``: attributed add-to-carts / impressions.
- ``conversion``: users with at least one attributed purchase / users.
- ``revenue_per_user``, ``revenue_per_impression``: attributed purchase value over those.
- ``coverage``: distinct items shown / items in the catalogue (None without a catalogue).

A group with fewer than ``FEW_IMPRESSIONS`` impressions says so in ``note``: its rates are noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from recsmith.decisions.outcomes import shown_and_attributed
from recsmith.store.base import EventStore

By = Literal["release", "variant", "placement", "day"]
BY: tuple[str, ...] = ("release", "variant", "placement", "day")
#: Below this many impressions a rate's 95 % interval is wider than most effects worth reading.
FEW_IMPRESSIONS = 1000
COLUMNS = (
    "group",
    "lists",
    "impressions",
    "users",
    "clicks",
    "carts",
    "purchases",
    "revenue",
    "ctr",
    "ctr_at_k",
    "cart_rate",
    "conversion",
    "revenue_per_user",
    "revenue_per_impression",
    "coverage",
    "note",
)


def kpis(
    store: EventStore,
    kinds: Mapping[str, str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: By | None = None,
    k: int = 10,
    catalogue_size: int | None = None,
) -> pd.DataFrame:
    """One row per group (one row, group "all", without ``by``), columns ``COLUMNS``."""
    shown, attributions = shown_and_attributed(store, since, until, kinds)
    shown = shown.assign(group=_group(shown, by))
    group_of = shown.drop_duplicates("recommendation_id").set_index("recommendation_id")["group"]
    attributions = attributions.join(group_of, on="recommendation_id", how="inner")
    top = shown["position"].le(k).fillna(False).to_numpy(dtype=bool)
    rows = []
    for name, part in shown.groupby("group", sort=True):
        mine = attributions[attributions["group"] == name]
        rows.append(_row(str(name), part, top[part.index], mine, k, catalogue_size))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _group(shown: pd.DataFrame, by: By | None) -> pd.Series:
    if by is None:
        return pd.Series("all", index=shown.index, dtype=object)
    if by == "day":
        return shown["served_at"].dt.strftime("%Y-%m-%d")
    return shown[by].fillna("(none)").astype(object)


def _row(
    name: str,
    shown: pd.DataFrame,
    top: np.ndarray,
    attributions: pd.DataFrame,
    k: int,
    catalogue_size: int | None,
) -> dict[str, object]:
    items = shown["item_id"].notna().to_numpy()
    impressions = int(items.sum())
    users = int(shown["unit"].dropna().nunique())
    kind = attributions["kind"]
    clicks = int((kind == "click").sum())
    carts = int((kind == "cart").sum())
    bought = attributions[kind == "purchase"]
    revenue = float(bought["value"].fillna(0.0).sum())
    top_clicks = int(((kind == "click") & attributions["position"].le(k).fillna(False)).sum())
    top_impressions = int((top & items).sum())
    buyers = _buyers(bought, shown)
    distinct = int(shown["item_id"].dropna().nunique())
    return {
        "group": name,
        "lists": int(shown["recommendation_id"].nunique()),
        "impressions": impressions,
        "users": users,
        "clicks": clicks,
        "carts": carts,
        "purchases": len(bought),
        "revenue": revenue,
        "ctr": _ratio(clicks, impressions),
        "ctr_at_k": _ratio(top_clicks, top_impressions),
        "cart_rate": _ratio(carts, impressions),
        "conversion": _ratio(buyers, users),
        "revenue_per_user": _ratio(revenue, users),
        "revenue_per_impression": _ratio(revenue, impressions),
        "coverage": _ratio(distinct, catalogue_size or 0),
        "note": (
            f"only {impressions} impressions (< {FEW_IMPRESSIONS}): rates are noisy"
            if impressions < FEW_IMPRESSIONS
            else None
        ),
    }


def _buyers(bought: pd.DataFrame, shown: pd.DataFrame) -> int:
    """Distinct units of the lists that attributed purchases went to."""
    unit_of = shown.drop_duplicates("recommendation_id").set_index("recommendation_id")["unit"]
    return int(unit_of.reindex(bought["recommendation_id"]).dropna().nunique())


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def catalogue_size(store: EventStore) -> int | None:
    """Available items in the store's catalogue (None when it holds none: coverage is then
    unknown rather than a division by an invented number)."""
    return sum(1 for item in store.items() if item.available) or None
