"""ItemTable: catalogue attributes as columns aligned to the model's item indices.

Business rules ask questions of the catalogue ("is it available?", "is the price 10..50?") about
hundreds of candidate rows per request. Answering them from ``Item`` objects would cost a Python
call per row; this view turns the catalogue into arrays indexed by the model's dense item index once
(when the model or catalogue changes), so each request pays only for numpy gathers.

Items with no catalogue entry (the model knows them from events only) behave predictably: they are
available unless ``unknown_available=False``, have no category (-1), no tags, NaN for every numeric
property and None for every categorical one, so a property filter never lets them through by
accident. Property columns are built on first use and cached: a catalogue may carry dozens of
properties while rules touch two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import sparse

from recsmith.events.schema import Item
from recsmith.features.items import ItemCatalog
from recsmith.ids import IdMap

#: A property value as it appears in ``Item.properties``.
PropertyValue = str | float | int | bool | None


def value_key(value: object) -> tuple[bool, object]:
    """How categorical values are compared: Python equality, except that booleans never equal
    numbers (``True == 1`` in Python, but a rule ``equals = true`` must not match a count of 1)."""
    return (isinstance(value, bool), value)


def _members(
    lists: Sequence[Sequence[str]], rows: np.ndarray, n_items: int
) -> tuple[tuple[str, ...], sparse.csr_array, np.ndarray]:
    """Names (sorted), a bool membership matrix [n_items, n_names] and each item's first code."""
    names = tuple(sorted({name for values in lists for name in values}))
    code = {name: c for c, name in enumerate(names)}
    r = np.repeat(rows, [len(values) for values in lists]).astype(np.int64)
    c = np.fromiter((code[name] for values in lists for name in values), np.int64, len(r))
    matrix = sparse.csr_array(
        (np.ones(len(c), bool), (r, c)), shape=(n_items, len(names)), dtype=bool
    )
    matrix.sum_duplicates()
    first = np.full(n_items, -1, np.int32)
    has = np.fromiter((len(values) > 0 for values in lists), bool, len(lists))
    first[rows[has]] = [code[values[0]] for values, h in zip(lists, has, strict=True) if h]
    return names, matrix, first


def _grown_members(
    names: tuple[str, ...],
    matrix: sparse.csr_array,
    lists: Sequence[Sequence[str]],
    rows: np.ndarray,
    n_items: int,
) -> tuple[tuple[str, ...], sparse.csr_array, np.ndarray]:
    """``_members`` for rows added after the table was built: names new to ``names`` are appended
    (sorted), the old rows keep their codes, and the new ``rows`` (all past ``matrix``'s) get
    the memberships ``lists``. Returns the names, the membership matrix [n_items, n_names] and
    each new row's first code (-1 elsewhere)."""
    known = set(names)
    names = names + tuple(sorted({v for values in lists for v in values} - known))
    code = {name: c for c, name in enumerate(names)}
    r = np.repeat(rows, [len(values) for values in lists]).astype(np.int64)
    c = np.fromiter((code[v] for values in lists for v in values), np.int64, len(r))
    added = sparse.csr_array(
        (np.ones(len(c), bool), (r - matrix.shape[0], c)),
        shape=(n_items - matrix.shape[0], len(names)),
        dtype=bool,
    )
    added.sum_duplicates()
    widened = sparse.csr_array(
        (matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], len(names))
    )
    first = np.full(n_items, -1, np.int32)
    has = np.fromiter((len(values) > 0 for values in lists), bool, len(lists))
    first[rows[has]] = [code[values[0]] for values, h in zip(lists, has, strict=True) if h]
    return names, sparse.csr_array(sparse.vstack([widened, added], format="csr")), first


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, slots=True, eq=False)
class ItemTable:
    """A frozen, columnar view of the catalogue for ``n_items`` model items (see module docstring).

    ``category`` is an item's *first* (primary) category: what caps and category diversity count.
    ``category_sets`` / ``tag_sets`` hold every category / tag, for rules like ``category in
    [...]`` that should match an item filed under several categories.
    """

    available: np.ndarray  # bool [n_items]
    known: np.ndarray  # bool [n_items]: the item has a catalogue entry
    category: np.ndarray  # int32 [n_items]: first category code, -1 = none
    category_names: tuple[str, ...]
    category_sets: sparse.csr_array  # bool [n_items, n_categories]
    tag_names: tuple[str, ...]
    tag_sets: sparse.csr_array  # bool [n_items, n_tags]
    _rows: np.ndarray  # int64 [n_entries]: model index of each catalogue entry kept
    _props: tuple[Mapping[str, Any], ...]  # properties of each catalogue entry kept
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_catalog(
        cls,
        catalog: ItemCatalog,
        item_ids: IdMap,
        *,
        properties: Sequence[Mapping[str, PropertyValue]] | None = None,
        unknown_available: bool = True,
    ) -> ItemTable:
        """Align ``catalog`` (and ``properties``, one mapping per catalogue row) to ``item_ids``.

        Catalogue items the model does not know are skipped (nothing could score them); when an id
        appears twice the last entry wins, as an upsert would.
        """
        if properties is not None and len(properties) != len(catalog):
            raise ValueError(f"properties: {len(properties)} rows for {len(catalog)} items")
        n = len(item_ids)
        order = item_ids.to_index(catalog.item_ids).astype(np.int64)
        rev = np.flatnonzero(order >= 0)[::-1]
        _, last = np.unique(order[rev], return_index=True)
        entries = np.sort(rev[last])
        rows = order[entries]
        available = np.full(n, unknown_available, bool)
        available[rows] = catalog.available[entries]
        known = np.zeros(n, bool)
        known[rows] = True
        cat_names, cat_sets, first = _members([catalog.categories[e] for e in entries], rows, n)
        tag_names, tag_sets, _ = _members([catalog.tags[e] for e in entries], rows, n)
        props = tuple(properties[e] for e in entries) if properties is not None else ()
        return cls(
            _frozen(available),
            _frozen(known),
            _frozen(first),
            cat_names,
            cat_sets,
            tag_names,
            tag_sets,
            rows if props else rows[:0],
            props,
        )

    @classmethod
    def from_items(
        cls, items: Sequence[Item], item_ids: IdMap, *, unknown_available: bool = True
    ) -> ItemTable:
        """The usual entry: catalogue records (as ingested) and the model's item ids."""
        return cls.from_catalog(
            ItemCatalog.from_items(items),
            item_ids,
            properties=[it.properties for it in items],
            unknown_available=unknown_available,
        )

    def with_updates(self, items: Sequence[Item], item_ids: IdMap) -> ItemTable:
        """A new table in which ``items`` (whole records, as a store upsert replaces them) set
        each item's availability and properties; the last record of an id wins. Categories and
        tags stay as the release was trained: the ranker's features and the category tiers were
        built on them, so they change with the next release. Items the model does not know are
        skipped (nothing could score them)."""
        rows = item_ids.to_index(np.asarray([it.item_id for it in items], dtype=object))
        available, known = self.available.copy(), self.known.copy()
        entry = np.full(self.n_items, -1, np.int64)
        entry[self._rows] = np.arange(len(self._rows))
        props, added = list(self._props), []
        for row, item in zip(rows.tolist(), items, strict=True):  # an update batch, not a request
            if row < 0:
                continue
            available[row], known[row] = item.available, True
            if entry[row] < 0:
                entry[row] = len(props)
                props.append(item.properties)
                added.append(row)
            else:
                props[entry[row]] = item.properties
        return replace(
            self,
            available=_frozen(available),
            known=_frozen(known),
            _rows=np.concatenate([self._rows, np.asarray(added, np.int64)]),
            _props=tuple(props),
            _cache={},
        )

    def with_new_items(self, items: Sequence[Item], item_ids: IdMap) -> ItemTable:
        """This table grown to ``item_ids`` (the served index, extended past this table's items by
        items first seen after training): the new rows take their categories and tags from
        ``items`` (their records; the last of an id wins) and then, like every record,
        availability and properties (``with_updates``). Category and tag names new to the table
        are appended, so the codes the release was trained with (ranker features, caps) keep
        their meaning."""
        n_old, n = self.n_items, len(item_ids)
        rows = item_ids.to_index(np.asarray([it.item_id for it in items], dtype=object))
        fresh = rows >= n_old
        latest = [it for it, f in zip(items, fresh, strict=True) if f]
        rows = rows[fresh].astype(np.int64)
        rev = np.arange(len(rows))[::-1]
        _, last = np.unique(rows[rev], return_index=True)
        entries = np.sort(rev[last])
        rows, latest = rows[entries], [latest[e] for e in entries]
        cat_names, cat_sets, first = _grown_members(
            self.category_names, self.category_sets, [it.categories for it in latest], rows, n
        )
        tag_names, tag_sets, _ = _grown_members(
            self.tag_names, self.tag_sets, [it.tags for it in latest], rows, n
        )
        category = np.concatenate([self.category, np.full(n - n_old, -1, np.int32)])
        has = first[rows] >= 0
        category[rows[has]] = first[rows[has]]
        grown = replace(
            self,
            available=_frozen(np.concatenate([self.available, np.ones(n - n_old, bool)])),
            known=_frozen(np.concatenate([self.known, np.zeros(n - n_old, bool)])),
            category=_frozen(category),
            category_names=cat_names,
            category_sets=cat_sets,
            tag_names=tag_names,
            tag_sets=tag_sets,
            _cache={},
        )
        return grown.with_updates(latest, item_ids)

    @classmethod
    def unknown(cls, n_items: int, *, unknown_available: bool = True) -> ItemTable:
        """A table for a deployment without a catalogue: every item unknown."""
        no_sets = sparse.csr_array((n_items, 0), dtype=bool)
        none = np.zeros(0, np.int64)
        return cls(
            _frozen(np.full(n_items, unknown_available, bool)),
            _frozen(np.zeros(n_items, bool)),
            _frozen(np.full(n_items, -1, np.int32)),
            (),
            no_sets,
            (),
            no_sets,
            none,
            (),
        )

    @property
    def n_items(self) -> int:
        return len(self.available)

    def property_names(self) -> set[str]:
        """Every property name some catalogue item carries."""
        return {name for props in self._props for name in props}

    def numeric(self, name: str) -> np.ndarray:
        """Property ``name`` as float64 [n_items]; NaN where absent or not a number (strings and
        booleans are not numbers here: ``"12"`` is a label, not a price)."""
        key = ("numeric", name)
        if key not in self._cache:
            col = np.full(self.n_items, np.nan)
            vals = (p.get(name) for p in self._props)
            col[self._rows] = np.fromiter(
                (
                    v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                    for v in vals
                ),
                np.float64,
                len(self._props),
            )
            self._cache[key] = _frozen(col)
        return self._cache[key]  # type: ignore[no-any-return]

    def categorical(self, name: str) -> np.ndarray:
        """Property ``name`` as object [n_items], values as given; None where absent."""
        key = ("categorical", name)
        if key not in self._cache:
            col = np.full(self.n_items, None, dtype=object)
            col[self._rows] = [p.get(name) for p in self._props]
            self._cache[key] = _frozen(col)
        return self._cache[key]  # type: ignore[no-any-return]

    def codes(self, name: str) -> tuple[np.ndarray, dict[tuple[bool, object], int]]:
        """Property ``name`` factorised: int32 codes [n_items] (-1 = absent) and the code of each
        ``value_key``. Rules then compare small integers instead of Python objects per row."""
        key = ("codes", name)
        if key not in self._cache:
            lookup: dict[tuple[bool, object], int] = {}
            col = self.categorical(name)
            vals = col[self._rows]
            codes = np.full(self.n_items, -1, np.int32)
            codes[self._rows] = np.fromiter(
                (-1 if v is None else lookup.setdefault(value_key(v), len(lookup)) for v in vals),
                np.int32,
                len(vals),
            )
            self._cache[key] = (_frozen(codes), lookup)
        return self._cache[key]  # type: ignore[no-any-return]

    def in_any(self, kind: str, items: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """bool [len(items)]: the item is filed under any of ``names`` (``kind`` is "category" or
        "tag"). Gathers only the candidates' rows: O(rows + their memberships), not O(n_items)."""
        matrix, all_names = (
            (self.category_sets, self.category_names)
            if kind == "category"
            else (self.tag_sets, self.tag_names)
        )
        key = ("names", kind)
        if key not in self._cache:
            self._cache[key] = {name: c for c, name in enumerate(all_names)}
        code: dict[str, int] = self._cache[key]
        wanted = np.asarray([code[n] for n in names if n in code], np.int32)
        items = np.asarray(items, np.int64)
        hit = np.zeros(len(items), bool)
        if len(wanted) == 0 or len(items) == 0:
            return hit
        start, stop = matrix.indptr[items], matrix.indptr[items + 1]
        lengths = stop - start
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        member = matrix.indices[np.repeat(start, lengths) + offsets]
        row = np.repeat(np.arange(len(items)), lengths)
        hit[row[np.isin(member, wanted)]] = True
        return hit
