"""``append_below``: the fallback's items join each query's list under every candidate it has, in
the fallback's order, once (an item already a candidate of that query keeps its place)."""

from __future__ import annotations

import numpy as np

from recsmith.retrieval.merge import append_below, merge
from recsmith.retrieval.sources import Proposals


def _p(query: list[int], items: list[int], ranks: list[int]) -> Proposals:
    return Proposals(
        np.array(query, np.int32),
        np.array(items, np.int32),
        np.array([1.0 / r for r in ranks], np.float32),
        np.array(ranks, np.int16),
    )


def test_fallback_items_go_under_each_querys_candidates_once() -> None:
    cands = merge([_p([0, 0, 1], [7, 5, 5], [1, 2, 1])], ["a"], n_queries=3, n_items=10)
    popular = _p([0, 0, 0, 1, 1, 2, 2], [7, 2, 5, 9, 5, 5, 3], [1, 2, 3, 1, 2, 1, 2])
    out = append_below(cands, popular, "popular")
    rows = list(zip(out.query.tolist(), out.items.tolist(), strict=True))
    # query 0 had 7, 5 (not in item order): only 2 is new; query 1 had 5: 9; query 2 nothing
    assert rows == [(0, 7), (0, 5), (0, 2), (1, 5), (1, 9), (2, 5), (2, 3)]
    assert out.sources == ("a", "popular")
    assert out.source_ranks[:, 1].tolist() == [0, 0, 2, 0, 1, 1, 2]  # the fallback's own ranks
    assert (out.score[[2, 4]] < out.score[[1, 3]]).all()  # below the query's last candidate
