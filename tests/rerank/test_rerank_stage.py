"""The whole stage: rules, then MMR, then caps and pins, cut to k (order from plan.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from recsmith.ids import IdMap
from recsmith.rerank import (
    BlocklistRule,
    CapPerCategoryRule,
    ExcludeRule,
    FilterRule,
    ItemTable,
    PinRule,
    Reranker,
    apply_rules,
    rerank,
)
from recsmith.retrieval.candidates import Candidates

Make = Callable[..., Candidates]
Shown = Callable[..., list[str]]
ROWS = ["a", "b", "d", "e", "g"]  # shoes shoes bags hats hats


def test_no_diversity_is_apply_rules(table: ItemTable, item_ids: IdMap, make: Make) -> None:
    cands = make([["a", "b", "c", "d", "e", "f", "g", "x"], ["g", "a"]])
    rules = [CapPerCategoryRule(max=1), PinRule(item="g", position=2)]
    expected = apply_rules(cands, rules, table, item_ids, 4)
    for diversity in (None, 0.0):
        got = rerank(cands, k=4, table=table, item_ids=item_ids, rules=rules, diversity=diversity)
        assert np.array_equal(got.items, expected.items)
        assert np.array_equal(got.query, expected.query)


def test_pins_are_seeds_for_diversity(
    table: ItemTable, item_ids: IdMap, make: Make, shown: Shown
) -> None:
    out = rerank(
        make([ROWS]),
        k=5,
        table=table,
        item_ids=item_ids,
        diversity=1.0,
        rules=[PinRule(item="b", position=2)],
    )
    # b (shoes) is held for slot 2 and counts as picked: MMR opens with bags and hats, not shoes
    assert shown(out) == ["d", "b", "e", "a", "g"]


def test_diversity_with_cap_and_filter(
    table: ItemTable, item_ids: IdMap, make: Make, shown: Shown
) -> None:
    rules = [CapPerCategoryRule(max=1), FilterRule(property="brand", equals="acme", negate=True)]
    out = rerank(
        make([[*ROWS, "f", "x"]]), k=10, table=table, item_ids=item_ids, rules=rules, diversity=0.5
    )
    assert shown(out) == ["b", "d", "e", "f", "x"]  # a filtered; one per category


def test_embedding_similarity_from_vectors(
    table: ItemTable, item_ids: IdMap, make: Make, shown: Shown
) -> None:
    vectors = np.zeros((8, 2))
    vectors[:, 0] = 1.0
    vectors[[5, 6], :] = [[0.0, 1.0], [0.0, 1.0]]  # f and g point elsewhere
    out = rerank(
        make([["a", "b", "d", "f", "g"]]),
        k=3,
        table=table,
        item_ids=item_ids,
        diversity=0.5,
        similarity=vectors,
    )
    assert shown(out) == ["a", "f", "b"]
    with pytest.raises(ValueError, match="vectors"):
        rerank(
            make([["a"]]),
            k=1,
            table=table,
            item_ids=item_ids,
            diversity=0.5,
            similarity=vectors[:3],
        )


def test_bad_arguments(table: ItemTable, item_ids: IdMap, make: Make) -> None:
    with pytest.raises(ValueError, match="diversity"):
        rerank(make([["a"]]), k=1, table=table, item_ids=item_ids, diversity=1.5)
    with pytest.raises(ValueError, match="ids"):
        rerank(make([["a"]]), k=1, table=table, item_ids=IdMap(["a"]))
    with pytest.raises(ValueError, match="similarity"):
        rerank(
            make([["a"]]), k=1, table=table, item_ids=item_ids, diversity=0.5, similarity="cosine"
        )  # type: ignore[arg-type]


def test_reranker_adds_request_rules_to_config(
    table: ItemTable, item_ids: IdMap, make: Make, shown: Shown
) -> None:
    stage = Reranker(
        table, item_ids, rules=(BlocklistRule(items=("b",)), PinRule(item="g", position=1))
    )
    cands = make([["a", "b", "d", "e", "g"]])
    assert shown(stage.rerank(cands, 10)) == ["g", "a", "d", "e"]
    request = [ExcludeRule(items=("a",)), PinRule(item="e", position=1), CapPerCategoryRule(max=1)]
    assert shown(stage.rerank(cands, 10, rules=request)) == ["g", "d"]  # e loses slot 1 and cap
    request = [PinRule(item="e", position=2)]
    assert shown(stage.rerank(cands, 10, rules=request)) == ["g", "e", "a", "d"]
    assert shown(stage.rerank(cands, 10)) == ["g", "a", "d", "e"]  # request rules did not stick
