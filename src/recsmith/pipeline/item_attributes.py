"""Item attributes the pipeline needs, aligned to the model's item indices: category codes (for
features), price, creation time (for 'new arrivals' and item age). Category codes are the
catalogue view's (``ItemTable.category``, the primary category), so features, caps and diversity
all speak of the same categories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.events.schema import Item
from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable


@dataclass(frozen=True, slots=True)
class ItemAttributes:
    category: np.ndarray  # int32 [n_items], -1 = none
    category_names: np.ndarray  # str [n_categories]
    price: np.ndarray  # float32 [n_items], NaN = unknown
    created_ts: np.ndarray  # int64 [n_items] µs, -1 = unknown

    @classmethod
    def from_items(cls, items: list[Item], ids: IdMap) -> ItemAttributes:
        n = len(ids)
        price = np.full(n, np.nan, np.float32)
        created = np.full(n, -1, np.int64)
        if not items:
            return cls(np.full(n, -1, np.int32), np.zeros(0, dtype=str), price, created)
        table = ItemTable.from_items(items, ids)
        idx = ids.to_index([it.item_id for it in items])
        ok = idx >= 0
        prices = np.asarray([_number(it.properties.get("price")) for it in items], dtype=np.float64)
        price[idx[ok]] = prices[ok]
        stamps = np.asarray(
            [-1 if it.created_at is None else int(it.created_at.timestamp() * 1e6) for it in items],
            dtype=np.int64,
        )
        created[idx[ok]] = stamps[ok]
        return cls(
            table.category.astype(np.int32),
            np.asarray(table.category_names, dtype=str),
            price,
            created,
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "category": self.category,
            "category_names": self.category_names,
            "price": self.price,
            "created_ts": self.created_ts,
        }


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
