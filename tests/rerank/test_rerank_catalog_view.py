"""ItemTable: catalogue attributes aligned to model indices, with predictable gaps."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.events.schema import Item
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable

A, B, C, D, E, F, G, X = range(8)


def test_availability_known_and_unknown(table: ItemTable, item_ids: IdMap) -> None:
    assert table.n_items == len(item_ids)
    assert table.available.tolist() == [True, True, False, True, True, True, True, True]
    assert table.known.tolist() == [True] * 7 + [False]
    strict = ItemTable.from_items([], item_ids, unknown_available=False)
    assert not strict.available.any()


def test_first_category_and_membership(table: ItemTable) -> None:
    names = table.category_names
    assert names == ("bags", "hats", "shoes")
    assert [names[c] if c >= 0 else None for c in table.category] == [
        "shoes",
        "shoes",
        "bags",
        "bags",
        "hats",
        None,
        "hats",
        None,
    ]
    items = np.arange(8)
    assert table.in_any("category", items, ["shoes"]).tolist() == [
        True,
        True,
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert table.in_any("tag", items, ["new", "unknown-tag"]).tolist() == [i == D for i in items]
    assert not table.in_any("category", items, []).any()


def test_numeric_is_nan_for_absent_text_and_bool(table: ItemTable) -> None:
    price = table.numeric("price")
    assert price[[A, B, D, F, G]].tolist() == [20.0, 60.0, 45.0, 10.0, 15.5]
    assert np.isnan(price[[E, X]]).all()  # "cheap" is a label; x has no metadata
    featured = table.numeric("featured")
    assert np.isnan(featured[F]) and featured[G] == 1.0  # True is not the number 1
    assert np.isnan(table.numeric("nope")).all()
    assert table.numeric("price") is price  # built once, cached
    with pytest.raises(ValueError):
        price[0] = 1.0  # frozen view


def test_categorical_and_codes(table: ItemTable) -> None:
    brand = table.categorical("brand")
    assert brand.tolist() == ["acme", "zed", "acme", "zed", None, None, None, None]
    codes, lookup = table.codes("featured")
    assert codes[F] != codes[G]  # True and 1 are different values
    assert codes[X] == -1 and len(lookup) == 2
    assert table.property_names() == {"price", "brand", "featured"}


def test_duplicates_last_wins_and_foreign_ids_skipped() -> None:
    ids = IdMap(["p", "q"])
    table = ItemTable.from_items(
        [
            Item(item_id="p", categories=["old"], available=True),
            Item(item_id="zzz", categories=["ghost"]),
            Item(item_id="p", categories=["new"], available=False, properties={"n": 3}),
        ],
        ids,
    )
    assert table.category_names == ("new",)  # the overwritten and the foreign categories are gone
    assert table.category.tolist() == [0, -1]
    assert table.available.tolist() == [False, True]
    assert table.numeric("n").tolist()[0] == 3.0


def test_unknown_table_behaves_like_empty_catalogue() -> None:
    table = ItemTable.unknown(4)
    assert table.n_items == 4 and table.available.all() and (table.category == -1).all()
    assert np.isnan(table.numeric("price")).all()
    assert (table.codes("brand")[0] == -1).all()
    assert not table.in_any("category", np.arange(4), ["x"]).any()
