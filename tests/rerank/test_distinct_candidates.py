"""``Candidates.distinct``: re-ranking skips its duplicate check only for rows known to hold each
(query, item) pair once. The oracle is a Python set of the pairs shown, and the hand-read lists
of the small catalogue (``conftest``): a pair that reaches re-ranking twice, through a filler
that ranks an item twice, is still shown once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsmith.ids import IdMap
from recsmith.rerank import ItemTable
from recsmith.rerank.plan import RulePlan
from recsmith.retrieval.candidates import KEY_SORT_ROWS, Candidates
from recsmith.retrieval.merge import append_below, merge
from recsmith.retrieval.sources import Proposals

Make = Callable[..., Candidates]
Shown = Callable[..., list[str]]


def _proposals(ids: IdMap, rows: list[tuple[int, str]]) -> Proposals:
    """(query, item id) rows, ranked 1, 2, ... within each query in the order given."""
    query = np.array([q for q, _ in rows], np.int32)
    rank = [sum(1 for p, _ in rows[:i] if p == q) + 1 for i, (q, _) in enumerate(rows)]
    return Proposals(
        query,
        ids.to_index(np.array([i for _, i in rows], dtype=object)).astype(np.int32),
        np.linspace(1.0, 0.5, len(rows)).astype(np.float32),
        np.array(rank, np.int16),
    )


def _pairs(c: Candidates) -> list[tuple[int, int]]:
    return list(zip(c.query.tolist(), c.items.tolist(), strict=True))


def test_merge_marks_its_rows_distinct_and_reorderings_keep_it(item_ids: IdMap, make: Make) -> None:
    ids = item_ids
    # "a" proposed by both sources for query 0: one row
    one = _proposals(ids, [(0, "a"), (0, "b"), (1, "d")])
    two = _proposals(ids, [(0, "a"), (1, "g")])
    merged = merge([one, two], ["one", "two"], 2, len(ids), ordered=False)
    assert merged.distinct and len(set(_pairs(merged))) == len(merged) == 4
    score = np.arange(len(merged), dtype=np.float32)
    assert merged.with_scores(score).distinct and merged.rescored(score).distinct
    assert merged.reordered(np.arange(len(merged))[::-1]).distinct
    assert not merged.take(np.arange(len(merged))).distinct  # a taking (rows may repeat): unknown
    keep = np.array([True, False, True, True])
    kept = merged.where(keep)  # some rows, each once: still distinct
    assert kept.distinct and _pairs(kept) == [
        p for p, k in zip(_pairs(merged), keep, strict=True) if k
    ]
    assert merged.top(1).distinct and len(merged.top(1)) == 2
    assert not make([["a", "b"]]).distinct  # built by hand: unknown


def test_rescored_keeps_it_past_the_key_sort_rows() -> None:
    """A batch's rows (16 requests: ~4,700) take ``rescored``'s one-sort path, not the two
    lexsorts of a lone request's few hundred: it too is a reordering of every row. Scores drawn
    from three values leave tie runs, which that path sorts again by the fused score."""
    rng = np.random.default_rng(0)
    n_items, n_queries, per_query = 100_000, 8, 80
    query = np.repeat(np.arange(n_queries, dtype=np.int32), per_query)
    items = np.concatenate([rng.permutation(n_items)[:per_query] for _ in range(n_queries)])
    rank = np.tile(np.arange(1, per_query + 1, dtype=np.int16), n_queries)
    props = Proposals(query, items.astype(np.int32), rng.random(len(query), np.float32), rank)
    other = Proposals(query[::2], items[::2].astype(np.int32), props.scores[::2], rank[::2])
    merged = merge([props, other], ["one", "two"], n_queries, n_items, ordered=False)
    assert len(merged) == n_queries * per_query >= KEY_SORT_ROWS and merged.distinct
    got = merged.rescored(rng.integers(0, 3, len(merged)).astype(np.float32))
    assert got.distinct
    assert len(set(_pairs(got))) == len(got) == len(merged)
    assert set(_pairs(got)) == set(zip(query.tolist(), items.tolist(), strict=True))


def test_append_below_keeps_it_only_for_a_filler_that_adds_each_pair_once(
    item_ids: IdMap, make: Make
) -> None:
    ids = item_ids
    merged = merge([_proposals(ids, [(0, "a"), (1, "d")])], ["one"], 2, len(ids), ordered=False)
    ranked = merged.with_scores(merged.score)
    once = append_below(ranked, _proposals(ids, [(0, "a"), (0, "b"), (1, "g")]), "popular")
    assert once.distinct and len(set(_pairs(once))) == len(once)
    twice = append_below(ranked, _proposals(ids, [(0, "b"), (0, "b"), (1, "g")]), "popular")
    assert not twice.distinct and len(set(_pairs(twice))) == len(twice) - 1
    by_hand = append_below(make([["a"], ["d"]]), _proposals(ids, [(1, "g")]), "popular")
    assert not by_hand.distinct


def test_a_pair_added_twice_is_shown_once(table: ItemTable, item_ids: IdMap, shown: Shown) -> None:
    """The filler ranks "b" twice for query 0: re-ranking must still drop the second."""
    ids = item_ids
    merged = merge([_proposals(ids, [(0, "a"), (1, "d")])], ["one"], 2, len(ids), ordered=False)
    ranked = merged.with_scores(merged.score)
    filled = append_below(ranked, _proposals(ids, [(0, "b"), (0, "b"), (0, "g")]), "popular")
    final = RulePlan().apply(filled, table, 5)
    assert shown(final, 0) == ["a", "b", "g"] and shown(final, 1) == ["d"]


def test_distinct_rows_are_reranked_as_unknown_ones(table: ItemTable, item_ids: IdMap) -> None:
    """Skipping the check changes nothing where it would have found nothing."""
    ids, every = item_ids, item_ids.to_external(np.arange(len(item_ids))).tolist()
    rng = np.random.default_rng(4)
    for _ in range(30):
        rows = [(q, every[i]) for q in range(3) for i in rng.permutation(len(every))[:5].tolist()]
        merged = merge([_proposals(ids, rows)], ["one"], 3, len(ids), ordered=True)
        unknown = merged.take(np.arange(len(merged)))
        for k in (1, 3, 8):
            want = _pairs(RulePlan().apply(unknown, table, k))
            assert _pairs(RulePlan().apply(merged, table, k)) == want
