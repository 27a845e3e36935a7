"""A small hand-made catalogue whose right answers are easy to read off; a Candidates builder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from recsmith.events.schema import Item
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable
from recsmith.retrieval.candidates import Candidates

#: Model item order; "x" is known from events only (no catalogue entry).
IDS = ["a", "b", "c", "d", "e", "f", "g", "x"]

ITEMS = [
    Item(item_id="a", categories=["shoes"], properties={"price": 20, "brand": "acme"}),
    Item(item_id="b", categories=["shoes"], properties={"price": 60.0, "brand": "zed"}),
    Item(
        item_id="c", categories=["bags"], properties={"price": 30, "brand": "acme"}, available=False
    ),
    Item(item_id="d", categories=["bags"], tags=["new"], properties={"price": 45, "brand": "zed"}),
    Item(item_id="e", categories=["hats", "shoes"], properties={"price": "cheap"}),
    Item(item_id="f", properties={"price": 10, "featured": True}),
    Item(item_id="g", categories=["hats"], properties={"price": 15.5, "featured": 1}),
    Item(item_id="not-in-model", categories=["hats"]),
]


def candidates(
    per_query: Sequence[Sequence[str | int]],
    scores: Sequence[float] | None = None,
    n_items: int = len(IDS),
) -> Candidates:
    """Candidates with rows as listed (best first); ids are looked up in ``IDS``. Scores default to
    a descending sequence; pass ``scores`` (flat, in row order) to override."""
    q, items = [], []
    for query, row in enumerate(per_query):
        for it in row:
            q.append(query)
            items.append(IDS.index(it) if isinstance(it, str) else it)
    n = len(items)
    score = np.asarray(scores if scores is not None else np.arange(n, 0, -1), np.float32)
    src = score.reshape(-1, 1).copy()
    ranks = np.ones((n, 1), np.int16)
    return Candidates(
        len(per_query),
        ("a",),
        np.asarray(q, np.int32),
        np.asarray(items, np.int32),
        score,
        src,
        ranks,
    )


def names(cands: Candidates, query: int = 0) -> list[str]:
    """The item ids shown to ``query``, in order."""
    return [IDS[i] for i in cands.items[cands.query == query]]


@pytest.fixture(scope="session")
def item_ids() -> IdMap:
    return IdMap(IDS)


@pytest.fixture(scope="session")
def table(item_ids: IdMap) -> ItemTable:
    return ItemTable.from_items(ITEMS, item_ids)


@pytest.fixture(scope="session")
def make() -> Callable[..., Candidates]:
    return candidates


@pytest.fixture(scope="session")
def shown() -> Callable[..., list[str]]:
    return names
