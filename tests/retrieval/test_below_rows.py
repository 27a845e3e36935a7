"""``append_below``'s compiled pass (``row_kernel.below_rows``) against numpy's path
(``merge._numpy_below``) and a Python walk written here: each query's candidates in their
order, then the extra items it lacks in the extra's order, each scored (floor - 1) - rank/1000
in float64 and cast, the floor the query's lowest score and 0 at most. Drawn batches of the
shapes a request makes (queries grouped or not, extra items held, repeated, past the
candidates' largest item, wide source columns), and the inputs the pass leaves to numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from candidate_rows import same_rows

from recsmith.ranking import row_kernel
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import _numpy_below, append_below
from recsmith.retrieval.sources import Proposals


def _draw(rng: np.random.Generator, n_q: int, width: int, grouped: bool) -> Candidates:
    """Candidates of ``n_q`` queries, each best first (distinct scores and ties), grouped by
    query or its groups shuffled, with ``width`` source columns."""
    n_items = int(rng.integers(5, 400))
    blocks = []
    for q in range(n_q):
        mine = rng.choice(n_items, size=int(rng.integers(0, min(60, n_items))), replace=False)
        score = np.sort(rng.choice([3.0, 1.5, 0.25, -0.5, -2.0], len(mine)).astype(np.float32))
        score[rng.random(len(mine)) < 0.5] += 0.125
        blocks.append((q, mine, np.sort(score)[::-1]))
    if not grouped:
        rng.shuffle(blocks)
    query = np.concatenate([np.full(len(b[1]), b[0]) for b in blocks]).astype(np.int32)
    items = np.concatenate([b[1] for b in blocks]).astype(np.int32)
    score = np.concatenate([b[2] for b in blocks]).astype(np.float32)
    n = len(items)
    scores = rng.standard_normal((n, width)).astype(np.float32)
    scores[rng.random((n, width)) < 0.3] = np.nan
    return Candidates(
        n_q,
        tuple(f"s{i}" for i in range(width)),
        query,
        items,
        score,
        scores,
        rng.integers(0, 300, (n, width)).astype(np.int16),
        distinct=bool(rng.random() < 0.5),
    )


def _extra(rng: np.random.Generator, cands: Candidates, repeat: bool) -> Proposals:
    """Per query a head of ranks 1, 2, ...: items the query holds, items it lacks (some past
    every candidate's item), and with ``repeat`` an item twice."""
    top = int(cands.items.max(initial=0)) + 1
    query, items = [], []
    for q in range(cands.n_queries):
        own = cands.items[cands.query == q]
        picked = list(rng.choice(top + 50, size=int(rng.integers(0, 30)), replace=False))
        if len(own):
            picked += list(rng.choice(own, size=min(len(own), 5), replace=False))
        rng.shuffle(picked)
        if repeat and picked:
            picked.insert(int(rng.integers(len(picked))), picked[0])
        query += [q] * len(picked)
        items += picked
    n = len(items)
    ranks = np.concatenate([np.arange(1, query.count(q) + 1) for q in range(cands.n_queries)])
    return Proposals(
        np.asarray(query, np.int32),
        np.asarray(items, np.int32),
        rng.random(n).astype(np.float32),
        ranks.astype(np.int16),
    )


def _cells(values: list[float]) -> list[float | None]:
    return [None if np.isnan(v) else v for v in values]


def _walk(cands: Candidates, extra: Proposals) -> list[tuple]:
    """The rows, each (query, item, score, its source cells (None: NaN), the new column's
    rank)."""
    out = []
    for q in range(cands.n_queries):
        mine = [r for r in range(len(cands)) if cands.query[r] == q]
        floor = min([0.0, *(float(cands.score[r]) for r in mine)])
        held = {int(cands.items[r]) for r in mine}
        for r in mine:
            cells = [*_cells(cands.source_scores[r].tolist()), None]
            out.append((q, int(cands.items[r]), float(cands.score[r]), cells, 0))
        for j in np.flatnonzero(extra.query == q):
            if int(extra.items[j]) in held:
                continue
            below = float(np.float32(floor - 1.0 - int(extra.ranks[j]) / 1000))
            cells = [None] * len(cands.sources) + [float(extra.scores[j])]
            out.append((q, int(extra.items[j]), below, cells, int(extra.ranks[j])))
    return out


def _rows(out: Candidates) -> list[tuple]:
    """``out``'s rows as ``_walk`` writes them (the other columns' ranks: ``_same``)."""
    return [
        (
            int(out.query[r]),
            int(out.items[r]),
            float(out.score[r]),
            _cells(out.source_scores[r].tolist()),
            int(out.source_ranks[r, -1]),
        )
        for r in range(len(out))
    ]


@pytest.mark.parametrize("seed", range(40))
def test_the_pass_builds_numpys_rows_and_the_walks(library: object, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cands = _draw(rng, int(rng.integers(1, 18)), 1 + seed % 4, grouped=seed % 5 != 4)
    extra = _extra(rng, cands, repeat=seed % 3 == 1)
    built = row_kernel.below_rows(library, cands, extra, "popular")
    assert built is not None  # every drawn batch is one the pass decides
    assert built.sources == (*cands.sources, "popular")
    same_rows(built, _numpy_below(cands, extra, "popular"))
    assert _rows(built) == _walk(cands, extra)


def test_hand_computed_rows(library: object) -> None:
    """Two queries, query 1's rows first; query 0 lacks item 5 (rank 2) and holds 3; query 1
    holds nothing of its extra and gets 9 twice (not distinct then)."""
    cands = Candidates(
        2,
        ("a",),
        np.array([1, 0, 0], np.int32),
        np.array([4, 3, 7], np.int32),
        np.array([0.5, 2.0, -1.5], np.float32),
        np.array([[1.0], [2.0], [3.0]], np.float32),
        np.array([[1], [2], [3]], np.int16),
        distinct=True,
    )
    extra = Proposals(
        np.array([0, 0, 1, 1], np.int32),
        np.array([3, 5, 9, 9], np.int32),
        np.array([0.9, 0.8, 0.7, 0.6], np.float32),
        np.array([1, 2, 1, 2], np.int16),
    )
    out = row_kernel.below_rows(library, cands, extra, "popular")
    assert out is not None
    assert out.query.tolist() == [0, 0, 0, 1, 1, 1]
    assert out.items.tolist() == [3, 7, 5, 4, 9, 9]
    # query 0: floor -1.5, item 5 at rank 2: -2.502; query 1: floor 0, ranks 1 and 2
    assert out.score.tolist() == [
        2.0,
        -1.5,
        float(np.float32(-2.502)),
        0.5,
        float(np.float32(-1.001)),
        float(np.float32(-1.002)),
    ]
    assert out.source_ranks.tolist() == [[2, 0], [3, 0], [0, 2], [1, 0], [0, 1], [0, 2]]
    assert np.isnan(out.source_scores[:, 0]).tolist() == [False, False, True, False, True, True]
    assert (
        out.source_scores[:, 1].tolist()[2::2] == pytest.approx([0.8, 0.7])
        and np.isnan(out.source_scores[[0, 1, 3], 1]).all()
    )
    assert out.distinct is False


def test_rows_that_stand_keep_their_arrays(library: object) -> None:
    """Every extra item held and the rows in order: the rows as they stand, their own arrays,
    one empty column wider; as numpy's path returns them."""
    rng = np.random.default_rng(3)
    cands = _draw(rng, 4, 2, grouped=True)
    extra = Proposals(cands.query, cands.items, cands.score, np.ones(len(cands), np.int16))
    out = row_kernel.below_rows(library, cands, extra, "popular")
    assert out is not None and out.score is cands.score and out.query is cands.query
    same_rows(out, _numpy_below(cands, extra, "popular"))
    assert out.distinct == cands.distinct


def _declined(cands: Candidates, extra: Proposals) -> None:
    assert row_kernel.below_rows(row_kernel.loaded(), cands, extra, "popular") is None
    same_rows(append_below(cands, extra, "popular"), _numpy_below(cands, extra, "popular"))


def test_what_the_pass_leaves_to_numpy(library: object) -> None:
    rng = np.random.default_rng(11)
    cands = _draw(rng, 5, 2, grouped=True)
    extra = _extra(rng, cands, repeat=False)
    with_nan = cands.score.copy()
    with_nan[len(with_nan) // 2] = np.nan
    _declined(dataclasses.replace(cands, score=with_nan), extra)  # numpy sorts NaN last
    late = cands.score.copy()
    late[-1] = late[0] + 1.0  # a query's last row above its first: not best first
    _declined(dataclasses.replace(cands, score=late), extra)
    # an extra head whose ranks fall: its rows would rise, numpy sorts them
    _declined(cands, dataclasses.replace(extra, ranks=extra.ranks[::-1].copy()))
    _declined(dataclasses.replace(cands, items=cands.items.astype(np.int64)), extra)
    _declined(
        dataclasses.replace(cands, source_scores=np.asfortranarray(cands.source_scores)), extra
    )
    _declined(cands, dataclasses.replace(extra, ranks=extra.ranks.astype(np.int32)))
    wrong = extra.query.copy()
    wrong[0] = cands.n_queries  # a query past the batch
    past = dataclasses.replace(extra, query=wrong)
    assert row_kernel.below_rows(library, cands, past, "popular") is None
    short = dataclasses.replace(cands, items=cands.items[:-1])  # lengths that disagree
    assert row_kernel.below_rows(library, short, extra, "popular") is None


def test_append_below_takes_the_pass_once_loaded(library: object, monkeypatch) -> None:
    """The public function answers by the pass where it is loaded (a broken pass shows)."""
    rng = np.random.default_rng(5)
    cands = _draw(rng, 3, 1, grouped=True)
    extra = _extra(rng, cands, repeat=False)
    calls = []
    real = row_kernel.below_rows
    monkeypatch.setattr(row_kernel, "below_rows", lambda *a: calls.append(1) or real(*a))
    same_rows(append_below(cands, extra, "popular"), _numpy_below(cands, extra, "popular"))
    assert calls == [1]


def test_item_ids_past_the_marked_range_are_left_to_numpy(library: object) -> None:
    """The pass marks a byte per item id up to the largest: ids near int32 max would cost 2 GiB
    a call (review rv-ans25), so from 2**24 on it declines and numpy's path answers; just under,
    it answers as numpy does."""
    limit = 1 << 24

    def rows(cand_items: list[int], extra_items: list[int]) -> tuple[Candidates, Proposals]:
        n, m = len(cand_items), len(extra_items)
        cands = Candidates(
            1,
            ("a",),
            np.zeros(n, np.int32),
            np.asarray(cand_items, np.int32),
            np.linspace(2.0, 1.0, n).astype(np.float32),
            np.ones((n, 1), np.float32),
            np.ones((n, 1), np.int16),
            distinct=True,
        )
        extra = Proposals(
            np.zeros(m, np.int32),
            np.asarray(extra_items, np.int32),
            np.ones(m, np.float32),
            np.arange(1, m + 1, dtype=np.int16),
        )
        return cands, extra

    cands, extra = rows([3, limit - 1], [limit - 1, 7, 2])
    got = row_kernel.below_rows(library, cands, extra, "popular")
    assert got is not None and got.items.tolist() == [3, limit - 1, 7, 2]
    same_rows(got, _numpy_below(cands, extra, "popular"))
    _declined(*rows([3, 5], [7, 2**31 - 2]))
    _declined(*rows([limit, 5], [7]))
