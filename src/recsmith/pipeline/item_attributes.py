"""Item attributes the pipeline needs, aligned to the model's item indices: category codes (for
features), price, creation time (for 'new arrivals' and item age), and the declared properties the
ranker uses (``features.properties``: brand, a price band, …; at training only, the feature state
keeps what serving needs). Category codes are the catalogue view's (``ItemTable.category``, the
primary category), so features, caps and diversity all speak of the same categories."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from recsmith.events.schema import Item
from recsmith.features.properties import PropertyColumns, price_bands, property_columns
from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable


@dataclass(frozen=True, slots=True)
class ItemAttributes:
    category: np.ndarray  # int32 [n_items], -1 = none
    category_names: np.ndarray  # str [n_categories]
    price: np.ndarray  # float32 [n_items], NaN = unknown
    created_ts: np.ndarray  # int64 [n_items] µs, -1 = unknown
    properties: PropertyColumns | None = None  # ranker property columns (training only)

    @classmethod
    def from_items(cls, items: list[Item], ids: IdMap, max_properties: int = 0) -> ItemAttributes:
        """``max_properties``: how many declared properties become ranker columns (the most
        frequent; ``price`` is a feature of its own and gives ``price_band`` instead)."""
        n = len(ids)
        price = np.full(n, np.nan, np.float32)
        created = np.full(n, -1, np.int64)
        if not items:
            return cls(np.full(n, -1, np.int32), np.zeros(0, dtype=str), price, created)
        table = ItemTable.from_items(items, ids)
        _fill(price, created, items, ids)
        return cls(
            table.category.astype(np.int32),
            np.asarray(table.category_names, dtype=str),
            price,
            created,
            _properties(items, ids, price, max_properties),
        )

    def with_new_items(self, items: list[Item], ids: IdMap, table: ItemTable) -> ItemAttributes:
        """These attributes grown to ``ids`` (the served index, extended by items first seen after
        training): price and creation time of the new rows from their records ``items``,
        category codes from ``table`` (the grown catalogue view), so 'new arrivals' can rank an
        item nobody has touched yet."""
        n_old, n = len(self.price), len(ids)
        price = np.concatenate([self.price, np.full(n - n_old, np.nan, np.float32)])
        created = np.concatenate([self.created_ts, np.full(n - n_old, -1, np.int64)])
        _fill(price, created, items, ids)
        return ItemAttributes(
            table.category.astype(np.int32),
            np.asarray(table.category_names, dtype=str),
            price,
            created,
        )

    def taken(self, items: np.ndarray | None) -> ItemAttributes:
        """These attributes of the items ``items`` (indices here), in that order: aligned to a
        validation past that numbers its items its own way (``Interactions.own_item_order``);
        themselves where ``items`` is None."""
        if items is None:
            return self
        props = self.properties
        return ItemAttributes(
            self.category[items],
            self.category_names,
            self.price[items],
            self.created_ts[items],
            None if props is None else replace(props, values=props.values[items]),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "category": self.category,
            "category_names": self.category_names,
            "price": self.price,
            "created_ts": self.created_ts,
        }


def _properties(items: list[Item], ids: IdMap, price: np.ndarray, cap: int) -> PropertyColumns:
    """The property columns of the items ``ids`` knows, aligned to ``ids`` (no record: NaN)."""
    records: list[dict[str, object] | None] = [None] * len(ids)
    idx = ids.to_index([it.item_id for it in items])
    for at, item in zip(idx.tolist(), items, strict=True):
        if at >= 0:
            records[at] = dict(item.properties)
    for at, band in enumerate(price_bands(price.astype(np.float64))):
        if band is not None:
            records[at] = {**(records[at] or {}), "price_band": band}
    return property_columns(records, cap, skip=frozenset({"price"}))


def _fill(price: np.ndarray, created: np.ndarray, items: list[Item], ids: IdMap) -> None:
    """Set the price and creation time (µs) of each of ``items`` that ``ids`` knows."""
    idx = ids.to_index([it.item_id for it in items])
    ok = idx >= 0
    prices = np.asarray([_number(it.properties.get("price")) for it in items], dtype=np.float64)
    price[idx[ok]] = prices[ok]
    stamps = np.asarray(
        [-1 if it.created_at is None else int(it.created_at.timestamp() * 1e6) for it in items],
        dtype=np.int64,
    )
    created[idx[ok]] = stamps[ok]


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
