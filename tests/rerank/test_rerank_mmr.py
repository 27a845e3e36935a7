"""MMR: hand-made cases, and agreement with a slow textbook loop on random batches."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from stepwise import StepwiseCategories, reference_category_mmr

from recsmith.rerank import MMR, CategorySimilarity, EmbeddingSimilarity, ItemTable, mmr
from recsmith.rerank.mmr import _WINDOW, _apart, _fewer_than, first_of_each
from recsmith.rerank.placement import distinct_in_queries, first_occurrence
from recsmith.retrieval.candidates import Candidates


def random_batch(rng: np.random.Generator, n_queries: int, n_items: int) -> Candidates:
    q, items, score = [], [], []
    for query in range(n_queries):
        chosen = rng.choice(n_items, size=rng.integers(0, n_items + 1), replace=False)
        q += [query] * len(chosen)
        items += chosen.tolist()
        score += sorted(rng.normal(size=len(chosen)).tolist(), reverse=True)
    n = len(items)
    s = np.asarray(score, np.float32)
    return Candidates(
        n_queries,
        ("a",),
        np.asarray(q, np.int32),
        np.asarray(items, np.int32),
        s,
        s.reshape(-1, 1),
        np.ones((n, 1), np.int16),
    )


def reference_mmr(items: list[int], rel: list[float], sim: np.ndarray, lam: float, k: int) -> list:
    """Carbonell & Goldstein's greedy loop, one query, plain Python."""
    lo, hi = min(rel, default=0.0), max(rel, default=0.0)
    norm = [(r - lo) / (hi - lo) if hi > lo else 1.0 for r in rel]
    picked: list[int] = []
    while len(picked) < min(k, len(items)):
        best, best_score = -1, -np.inf
        for j in range(len(items)):
            if j in picked:
                continue
            penalty = max((sim[items[j], items[p]] for p in picked), default=0.0)
            score = lam * norm[j] - (1 - lam) * penalty
            if score > best_score:
                best, best_score = j, score
        picked.append(best)
    return [items[j] for j in picked]


def test_lambda_one_is_the_relevance_order(make: Callable[..., Candidates]) -> None:
    rng = np.random.default_rng(0)
    cands = random_batch(rng, 20, 12)
    vectors = rng.normal(size=(12, 4))
    for similarity in (EmbeddingSimilarity.cosine(vectors), CategorySimilarity(np.zeros(12, int))):
        out = mmr(cands, k=5, lam=1.0, similarity=similarity)
        top = cands.top(5)
        assert np.array_equal(out.items, top.items) and np.array_equal(out.query, top.query)


def test_lambda_zero_spreads_categories(
    table: ItemTable, make: Callable[..., Candidates], shown: Callable[..., list[str]]
) -> None:
    cands = make([["a", "b", "d", "e", "g"]])  # shoes shoes bags hats hats
    out = mmr(cands, k=5, lam=0.0, similarity=CategorySimilarity(table.category))
    assert shown(out) == ["a", "d", "e", "b", "g"]  # one of each, then ties by relevance
    assert shown(mmr(cands, k=3, lam=0.0, similarity=CategorySimilarity(table.category))) == [
        "a",
        "d",
        "e",
    ]


@pytest.mark.parametrize("kind", ["dense", "sparse", "scaled"])
def test_embedding_similarity(kind: str, make: Callable[..., Candidates]) -> None:
    vectors: Any = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]])
    if kind == "sparse":
        vectors = sparse.csr_array(vectors)
    elif kind == "scaled":
        vectors = vectors * np.array([[3.0], [0.2], [7.0]])  # cosine ignores length
    similarity = EmbeddingSimilarity.cosine(vectors)
    cands = make([[0, 1, 2]], scores=[3.0, 2.0, 1.0])
    assert mmr(cands, k=3, lam=0.5, similarity=similarity).items.tolist() == [0, 2, 1]
    assert mmr(cands, k=3, lam=0.9, similarity=similarity).items.tolist() == [0, 1, 2]


def test_zero_vectors_are_like_nothing() -> None:
    grid = np.array([[0, 1], [1, 0]])  # two queries, each proposing both items
    for vectors in (np.array([[0.0, 0.0], [2.0, 0.0]]), sparse.csr_array([[0.0, 0.0], [2.0, 0.0]])):
        block = EmbeddingSimilarity.cosine(vectors).block(grid)
        # against the item in column 1 of each row: item 1 (zero to item 0), then item 0 (zero)
        assert block.against(np.array([1, 1])).tolist() == [[0.0, 1.0], [0.0, 0.0]]


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7])
@pytest.mark.parametrize("sparse_vectors", [False, True])
def test_batched_mmr_matches_the_textbook_loop(lam: float, sparse_vectors: bool) -> None:
    rng = np.random.default_rng(int(lam * 10) + sparse_vectors)
    n_items = 15
    cands = random_batch(rng, 30, n_items)
    vectors = rng.normal(size=(n_items, 5))  # negative cosines too, as with ALS factors
    sim_matrix = (
        EmbeddingSimilarity.cosine(vectors).vectors @ EmbeddingSimilarity.cosine(vectors).vectors.T
    )
    given = sparse.csr_array(vectors) if sparse_vectors else vectors
    out = mmr(cands, k=6, lam=lam, similarity=EmbeddingSimilarity.cosine(given))
    bounds, out_bounds = cands.bounds(), out.bounds()
    for q in range(cands.n_queries):
        rows = slice(bounds[q], bounds[q + 1])
        expected = reference_mmr(
            cands.items[rows].tolist(), cands.score[rows].tolist(), sim_matrix, lam, 6
        )
        assert out.items[out_bounds[q] : out_bounds[q + 1]].tolist() == expected


def test_chunking_does_not_change_the_result() -> None:
    rng = np.random.default_rng(7)
    cands = random_batch(rng, 25, 10)
    sim = EmbeddingSimilarity.cosine(rng.normal(size=(10, 3)))
    kw: dict[str, Any] = {
        "query": cands.query,
        "items": cands.items,
        "relevance": cands.score,
        "is_seed": np.zeros(len(cands), bool),
        "group": np.full(len(cands), -1),
        "cap": None,
        "k": 4,
    }
    whole = MMR(0.4, sim)(**kw)
    assert np.array_equal(MMR(0.4, sim, max_cells=30)(**kw), whole)
    assert np.array_equal(MMR(0.4, sim, max_cells=1)(**kw), whole)


def test_non_finite_scores_rank_last(make: Callable[..., Candidates]) -> None:
    cands = make([[0, 1, 2]], scores=[np.nan, 2.0, 1.0])
    out = mmr(cands, k=3, lam=1.0, similarity=CategorySimilarity(np.full(8, -1)))
    assert out.items.tolist() == [1, 2, 0]


def test_edge_cases(make: Callable[..., Candidates]) -> None:
    sim = CategorySimilarity(np.full(8, -1))
    empty = make([[], []])
    assert len(mmr(empty, k=3, lam=0.5, similarity=sim)) == 0
    assert len(mmr(make([[0, 1]]), k=0, lam=0.5, similarity=sim)) == 0
    with pytest.raises(ValueError):
        MMR(1.5, sim)


@pytest.mark.parametrize("n_rows", [1, 4])
@pytest.mark.parametrize(
    ("shape", "lam", "cap", "codes"),
    [
        ("3 categories, cap 3", 0.8, 3, [5, 6, 7]),  # 9 picks at most, k = 10
        ("1 category, cap 4", 0.8, 4, [12]),  # 4 picks at most
        ("3 categories, λ 0.3", 0.3, None, [0, 1, 2]),  # 3 keyed above 0, the rest below
        ("settles: 3 categories, λ 0.8", 0.8, None, [0, 1, 2]),  # repeats key high enough
        ("settles: 40 categories, cap 3", 0.8, 3, list(range(40))),
    ],
)
def test_windows_that_cannot_give_k_picks_are_not_walked_before_the_full_walk(
    walks: list[tuple[int, int]],
    n_rows: int,
    shape: str,
    lam: float,
    cap: int | None,
    codes: list[int],
) -> None:
    """Rows of 120 columns in relevance order by rank, k = 10 (a window of ``_WINDOW`` + 20
    columns): where a cap or a penalty below λ 0.5 leaves fewer than 10 picks the window could
    settle on, the rows are walked once, in full (BENCHMARKS §110: walking the window first
    cost 1.15-1.43x the re-ranking stage at 1-4 queries); at λ 0.8 a category's repeats can
    key above the bound past the window, and 40 categories fill a cap of 3, so those windows
    walk first and settle. Every list is the textbook loop's."""
    rng = np.random.default_rng(n_rows + len(codes))
    length, k = 120, 10
    category = rng.choice(codes, n_rows * length)  # item i: the batch's row i
    items = np.arange(len(category), dtype=np.int32)
    query = np.repeat(np.arange(n_rows), length).astype(np.int32)
    relevance = np.tile(-np.log1p(np.arange(length)), n_rows)  # by rank, as re-ranking gives
    picked = MMR(lam, CategorySimilarity(category))(
        query=query,
        items=items,
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category,
        cap=cap,
        k=k,
    )
    expected: list[int] = []
    for q in range(n_rows):
        mine = np.flatnonzero(query == q)
        expected += reference_category_mmr(
            items[mine].tolist(), relevance[mine].tolist(), category, lam, k, cap, []
        )
    assert items[picked].tolist() == expected
    settles = shape.startswith("settles")
    assert walks == ([(n_rows, _WINDOW + 2 * k)] if settles else [(n_rows, length)])


@pytest.mark.parametrize("seed", range(4))
def test_the_count_of_picks_by_the_codes_span_is_never_below_the_grouped_count(
    seed: int,
) -> None:
    """``_fewer_than`` bounds the distinct codes by their span: whenever it says fewer than
    ``k``, ``each`` times the distinct codes (a grouped count) plus the cells without one
    are fewer than ``k`` too; whenever ``_apart`` says the first and last codes' span alone
    reaches ``k``, the whole span does (so ``_fewer_than`` would say no: it is not needed);
    codes dense or spread, with and without -1 cells."""
    rng = np.random.default_rng(seed)
    said = apart = 0
    for _ in range(400):
        low, spread = int(rng.integers(0, 50)), int(rng.integers(1, 6))
        codes = rng.integers(low, low + spread, int(rng.integers(1, 40)))
        codes[rng.random(len(codes)) < rng.choice([0.0, 0.1, 0.5, 1.0])] = -1
        each, k = int(rng.integers(1, 5)), int(rng.integers(1, 30))
        named, none = codes[codes >= 0], int((codes < 0).sum())
        exact = each * len(np.unique(named)) + none
        if _fewer_than(k, codes, each):
            said += 1
            assert exact < k, (codes.tolist(), each, k)
        if _apart(k, each, codes[0], codes[-1]):  # the span alone reaches k
            apart += 1
            assert each * (int(named.max()) - int(named.min()) + 1) >= k, (codes.tolist(), each)
            assert not _fewer_than(k, codes, each)
    assert said > 20 and apart > 20  # each does say so, often


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.8, 1.0])
@pytest.mark.parametrize("cap", [None, 1, 2])
def test_category_mmr_matches_the_textbook_loop(lam: float, cap: int | None) -> None:
    """The closed-form category order and the step loop give the textbook loop's lists, seeds,
    caps, uncategorised items and tied relevance included."""
    rng = np.random.default_rng(int(lam * 10) * 7 + (cap or 0))
    n_items = 14
    category = rng.integers(-1, 4, size=n_items)  # -1: uncategorised, like nothing
    cands = random_batch(rng, 40, n_items)
    relevance = np.round(cands.score, 1)  # ties, as rank-based relevance after boosts has
    is_seed = rng.random(len(cands)) < 0.15
    kw: dict[str, Any] = {
        "query": cands.query,
        "items": cands.items,
        "relevance": relevance,
        "is_seed": is_seed,
        "group": category[cands.items],
        "cap": cap,
        "k": 6,
    }
    closed = MMR(lam, CategorySimilarity(category))(**kw)
    stepwise = MMR(lam, StepwiseCategories(CategorySimilarity(category)))(**kw)
    bounds = cands.bounds()
    expected: list[int] = []
    for q in range(cands.n_queries):
        lo, hi = bounds[q], bounds[q + 1]
        seeds = np.flatnonzero(is_seed[lo:hi]).tolist()
        expected += reference_category_mmr(
            cands.items[lo:hi].tolist(), relevance[lo:hi].tolist(), category, lam, 6, cap, seeds
        )
    assert cands.items[closed].tolist() == expected
    assert cands.items[stepwise].tolist() == expected
    assert np.array_equal(cands.query[closed], np.sort(cands.query[closed]))


@pytest.mark.parametrize("lam", [0.3, 0.8, 1.0])
@pytest.mark.parametrize("cap", [None, 1, 3])
def test_long_rows_walked_from_their_head_match_the_textbook_loop(
    lam: float, cap: int | None
) -> None:
    """Rows far longer than the head of the order the closed form walks first (``_HEAD`` +
    2k): rows of many categories fill their list within it; rows of one big category under a
    cap do not, and are walked in full: both give the textbook loop's lists."""
    rng = np.random.default_rng(int(lam * 10) + 3 * (cap or 0))
    n_items = 400
    category = np.where(rng.random(n_items) < 0.5, 0, rng.integers(-1, 60, n_items))
    query, items, relevance = [], [], []
    for q in range(6):
        mine = rng.choice(np.flatnonzero(category != 0), size=120, replace=False)
        rel = rng.random(120)
        if q % 2:  # its best items mostly of one category: a cap skips most of the head
            mine[:100] = rng.choice(np.flatnonzero(category == 0), size=100, replace=False)
            rel = np.r_[0.5 + rng.random(100) / 2, rng.random(20) * 0.4]
        query += [q] * len(mine)
        items += mine.tolist()
        relevance += rel.tolist()
    query_a = np.asarray(query, np.int32)
    items_a = np.asarray(items, np.int32)
    relevance_a = np.round(np.asarray(relevance), 2)
    is_seed = rng.random(len(items_a)) < 0.02
    kw: dict[str, Any] = {
        "query": query_a,
        "items": items_a,
        "relevance": relevance_a,
        "is_seed": is_seed,
        "group": category[items_a],
        "cap": cap,
        "k": 8,
    }
    closed = MMR(lam, CategorySimilarity(category))(**kw)
    expected: list[int] = []
    for q in range(6):
        rows = np.flatnonzero(query_a == q)
        seeds = np.flatnonzero(is_seed[rows]).tolist()
        expected += reference_category_mmr(
            items_a[rows].tolist(), relevance_a[rows].tolist(), category, lam, 8, cap, seeds
        )
    assert items_a[closed].tolist() == expected


@pytest.mark.parametrize("max_cells", [1 << 22, 0])  # the dense table, and the grouped count
@pytest.mark.parametrize("seed", range(6))
def test_first_of_each_is_a_walk_with_a_seen_set(seed: int, max_cells: int) -> None:
    """``first_of_each`` (the category penalty's first items in ``_after_first``) against a
    walk over the rows remembering each (row, code) pair seen; -1 codes never count."""
    rng = np.random.default_rng(seed)
    row = np.sort(rng.integers(0, int(rng.integers(1, 12)), int(rng.integers(0, 300))))
    code = rng.integers(-1, int(rng.integers(1, 30)), len(row))
    seen: set[tuple[int, int]] = set()
    expected = []
    for i, (r, c) in enumerate(zip(row.tolist(), code.tolist(), strict=True)):
        if c >= 0 and (r, c) not in seen:
            seen.add((r, c))
            expected.append(i)
    got = first_of_each(row, code, max_cells)
    assert sorted(got.tolist()) == expected


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("size", [200, 3000])  # 3000: past DISTINCT_CHECK_ROWS
@pytest.mark.parametrize("layout", ["distinct", "repeats", "ungrouped", "wide ids"])
def test_first_occurrence_is_a_walk_with_a_seen_set(seed: int, size: int, layout: str) -> None:
    """``first_occurrence`` (with ``distinct_in_queries``'s shortcut) against a walk remembering
    each (query, item) pair: grouped rows without a repeat, with repeats (a repeat's later
    rows are not firsts), rows out of query order, and ids past 32 bits."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, size))
    query = np.sort(rng.integers(0, 8, n))
    items = rng.permutation(2 * size)[:n].astype(np.int64)  # distinct everywhere
    if layout == "repeats" and n > 1:
        items[rng.integers(0, n, 3)] = items[rng.integers(0, n, 3)]
        items[-1] = items[np.flatnonzero(query == query[-1])[0]]  # one within a query, surely
    if layout == "ungrouped":
        query = rng.permutation(query)
        items = rng.integers(0, 5, n)
    if layout == "wide ids":
        items = items + (1 << 40) * rng.integers(0, 2, n)
    seen: set[tuple[int, int]] = set()
    expected = []
    for q, i in zip(query.tolist(), items.tolist(), strict=True):
        expected.append((q, i) not in seen)
        seen.add((q, i))
    assert first_occurrence(query, items).tolist() == expected
    if distinct_in_queries(query, items):  # never claimed where a pair repeats
        assert all(expected)
    if layout in ("distinct", "wide ids"):  # and found where none does
        assert distinct_in_queries(query, items)


def test_ids_past_32_bits_are_not_wrapped_into_the_padding() -> None:
    """An id that a 32-bit grid would wrap onto the padding (2^33 - 1 beside a least id of
    2^32) still counts as the repeat it is."""
    query = np.zeros(3, np.int64)
    items = np.asarray([2**32, 2**33 - 1, 2**33 - 1], np.int64)
    assert not distinct_in_queries(query, items)
    assert first_occurrence(query, items).tolist() == [True, True, False]


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The shapes (rows, width) of the grids ``MMR._walk`` walks, call by call: which walks
    ran, over how many rows. Batches of a few queries walked by the compiled
    walk (``rerank.few_queries``) take numpy's walks here, the path these tests follow."""
    monkeypatch.setattr(sys.modules["recsmith.rerank.mmr"], "FEW_QUERIES", 0)
    seen: list[tuple[int, int]] = []
    walk = MMR._walk

    def spy(self: MMR, grid: Any, *args: Any) -> Any:
        seen.append(grid.shape)
        return walk(self, grid, *args)

    monkeypatch.setattr(MMR, "_walk", spy)
    return seen


@pytest.mark.parametrize("lam", [0.3, 0.8, 1.0])
@pytest.mark.parametrize("cap", [None, 1, 3])
@pytest.mark.parametrize("seed", range(3))
def test_rows_in_relevance_order_walked_within_a_window_match_the_textbook_loop(
    lam: float, cap: int | None, seed: int, walks: list[tuple[int, int]]
) -> None:
    """A batch as re-ranking hands it over (rows in relevance order, no pins; ties kept) takes
    the window of the first ``_WINDOW`` + 2k columns: rows of many categories end there; rows
    whose window holds three categories only, before new ones (at λ = 0.3 any first item of
    a category outranks every repeat: the window's k picks are not the list), and rows of one
    big category under a cap are walked in full (on a grid of those rows only). Both give the
    textbook loop's lists, and both walks ran."""
    rng = np.random.default_rng(seed * 31 + int(lam * 10) + 7 * (cap or 0))
    n_items, k = 600, 8
    category = rng.integers(-1, 80, n_items)
    category[:150] = 0  # one big category
    category[150:300] = rng.integers(1, 4, 150)  # three small ones
    query, items, relevance = [], [], []
    for q in range(30):
        kind, length = q % 3, int(rng.integers(20, 200))
        mine = rng.choice(np.arange(300, n_items), size=length, replace=False)
        head = min(length, 60)
        if kind == 1:  # the head from one big category
            mine[:head] = rng.choice(150, size=head, replace=False)
        if kind == 2:  # the head from three categories only
            mine[:head] = rng.choice(np.arange(150, 300), size=head, replace=False)
        query += [q] * length
        items += mine.tolist()
        relevance += sorted(np.round(rng.random(length), 2).tolist(), reverse=True)
    query_a = np.asarray(query, np.int32)
    items_a = np.asarray(items, np.int32)
    relevance_a = np.asarray(relevance)
    closed = MMR(lam, CategorySimilarity(category))(
        query=query_a,
        items=items_a,
        relevance=relevance_a,
        is_seed=np.zeros(len(items_a), bool),
        group=category[items_a],
        cap=cap,
        k=k,
    )
    expected: list[int] = []
    for q in range(30):
        rows = np.flatnonzero(query_a == q)
        expected += reference_category_mmr(
            items_a[rows].tolist(), relevance_a[rows].tolist(), category, lam, k, cap, []
        )
    assert items_a[closed].tolist() == expected
    assert walks[0] == (30, _WINDOW + 2 * k)  # the window first
    if lam < 1.0 or cap is not None:  # three categories' repeats, or a capped one: in full
        assert len(walks) == 2 and walks[1][0] <= 30
        assert _WINDOW + 2 * k < walks[1][1] <= int(np.bincount(query_a).max())
    else:
        assert walks[1:] == []


def test_rows_out_of_relevance_order_or_with_pins_are_walked_in_full(
    walks: list[tuple[int, int]],
) -> None:
    """The window's proof needs rows in relevance order and no seeds: a batch with either is
    walked in full from the start (and still gives the textbook loop's lists)."""
    rng = np.random.default_rng(5)
    category = rng.integers(-1, 10, 500)
    query = np.repeat(np.arange(10), 50).astype(np.int32)
    items = np.concatenate([rng.choice(500, 50, replace=False) for _ in range(10)])
    ordered = np.concatenate([np.sort(rng.random(50))[::-1] for _ in range(10)])
    for relevance, is_seed in (
        (rng.random(500), np.zeros(500, bool)),  # out of order
        (ordered, np.arange(500) % 50 == 7),  # a pin in every row
    ):
        walks.clear()
        closed = MMR(0.5, CategorySimilarity(category))(
            query=query,
            items=items,
            relevance=relevance,
            is_seed=is_seed,
            group=category[items],
            cap=2,
            k=6,
        )
        expected: list[int] = []
        for q in range(10):
            rows = np.flatnonzero(query == q)
            seeds = np.flatnonzero(is_seed[rows]).tolist()
            expected += reference_category_mmr(
                items[rows].tolist(), relevance[rows].tolist(), category, 0.5, 6, 2, seeds
            )
        assert items[closed].tolist() == expected
        assert walks == [(10, 50)]


def test_a_window_whose_last_pick_keys_below_the_next_column_is_walked_in_full() -> None:
    """Hand-made, λ = 0.8, k = 2 (a window of ``_WINDOW`` + 4 columns): each row's window holds
    one category (first item at relevance 1, repeats from 0.99 down: keys 0.8 · 0.99 - 0.2 =
    0.592 and below), the column past it a new category at 0.75 (key 0.6). The list is the
    first item, then that one, though the window alone yields two picks."""
    width = _WINDOW + 4
    rel = np.r_[1.0, 0.99 - 0.001 * np.arange(width - 1), 0.75, np.linspace(0.7, 0.0, 9)]
    cats = np.r_[np.zeros(width, np.int64), np.arange(1, 11)]
    n_rows = 8
    category = np.tile(cats, n_rows)  # item i is row i // len(rel)'s column i % len(rel)
    items = np.arange(len(category), dtype=np.int32)
    query = np.repeat(np.arange(n_rows), len(rel)).astype(np.int32)
    picked = MMR(0.8, CategorySimilarity(category))(
        query=query,
        items=items,
        relevance=np.tile(rel, n_rows),
        is_seed=np.zeros(len(items), bool),
        group=category[items],
        cap=None,
        k=2,
    )
    assert (picked % len(rel)).tolist() == [0, width] * n_rows


def test_only_the_rows_the_window_does_not_settle_are_walked_again(
    walks: list[tuple[int, int]],
) -> None:
    """Hand-made, λ = 0.8, k = 2 (a window of ``_WINDOW`` + 4 columns), 8 rows in relevance
    order: "mixed" rows (60 columns, every item its own category: the window's first two
    columns are the list, keyed above anything past it), a short row (within the window),
    and two "repeat" rows as in the test above (the window holds one category; the list is
    its first item, then the new category past the window). The window walks all 8 rows,
    then a grid of the two repeat rows alone, as wide as they are (30, not 60); every list
    is the textbook loop's."""
    width = _WINDOW + 4
    repeat_rel = np.r_[1.0, 0.99 - 0.001 * np.arange(width - 1), 0.75, np.linspace(0.7, 0.0, 9)]
    repeat_cat = np.r_[np.zeros(width, np.int64), np.arange(1, 11)]
    mixed_rel, mixed_cat = np.linspace(1.0, 0.0, 60), np.arange(100, 160)
    rows = {
        "mixed": (mixed_rel, mixed_cat),
        "short": (mixed_rel[:10], mixed_cat[:10]),
        "repeat": (repeat_rel, repeat_cat),
    }
    kinds = ["mixed", "repeat", "mixed", "short", "repeat", "mixed", "mixed", "mixed"]
    relevance = np.concatenate([rows[kind][0] for kind in kinds])
    category = np.concatenate([rows[kind][1] for kind in kinds])  # item i: the batch's row i
    items = np.arange(len(category), dtype=np.int32)
    query = np.repeat(np.arange(len(kinds)), [len(rows[kind][0]) for kind in kinds])
    picked = MMR(0.8, CategorySimilarity(category))(
        query=query.astype(np.int32),
        items=items,
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category,
        cap=None,
        k=2,
    )
    expected: list[int] = []
    for q in range(len(kinds)):
        mine = np.flatnonzero(query == q)
        expected += reference_category_mmr(
            items[mine].tolist(), relevance[mine].tolist(), category, 0.8, 2, None, []
        )
    assert items[picked].tolist() == expected
    starts = np.searchsorted(query, np.arange(len(kinds)))
    assert (items[picked] - starts[query[picked]]).tolist() == [
        c for kind in kinds for c in ([0, width] if kind == "repeat" else [0, 1])
    ]
    assert walks == [(8, width), (2, len(repeat_rel))]


def _ordered_batch(
    rng: np.random.Generator, n_items: int, ties: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """12 queries of 1-79 rows (short ones within the window, long ones past it) in relevance
    order: query, items, relevance (rounded to one decimal when ``ties``, else distinct)."""
    query, items, relevance = [], [], []
    for q in range(12):
        length = int(rng.integers(1, 80))
        query += [q] * length
        items += rng.choice(n_items, size=length, replace=False).tolist()
        rel = rng.random(length)
        relevance += sorted((np.round(rel, 1) if ties else rel).tolist(), reverse=True)
    return np.asarray(query, np.int32), np.asarray(items, np.int32), np.asarray(relevance)


@pytest.mark.parametrize("lam", [0.3, 0.8, 1.0])
@pytest.mark.parametrize("cap", [1, 2])
def test_rows_in_order_capped_by_their_categories_match_the_textbook_loop(
    lam: float, cap: int
) -> None:
    """Rows in relevance order without seeds (ties included), capped by their categories given
    as an equal array (not the similarity's own): one count of each category's cells along
    the columns serves the penalty and the cap; the textbook loop's lists."""
    rng = np.random.default_rng(int(lam * 10) + 5 * cap)
    n_items, k = 300, 6
    category = rng.integers(-1, 6, n_items)
    query, items, relevance = _ordered_batch(rng, n_items, ties=True)
    picked = MMR(lam, CategorySimilarity(category))(
        query=query,
        items=items,
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category.copy()[items],
        cap=cap,
        k=k,
    )
    expected: list[int] = []
    for q in range(12):
        rows = np.flatnonzero(query == q)
        expected += reference_category_mmr(
            items[rows].tolist(), relevance[rows].tolist(), category, lam, k, cap, []
        )
    assert items[picked].tolist() == expected


@pytest.mark.parametrize("lam", [0.3, 0.8, 1.0])
@pytest.mark.parametrize("cap", [1, 2])
def test_cap_groups_other_than_the_categories_are_counted_in_key_order(
    lam: float, cap: int
) -> None:
    """Capped by other groups than the penalty's categories (no caller passes such groups
    today: re-ranking caps by the categories; both paths differ from the textbook loop here,
    BENCHMARKS §110), rows in relevance order count the cap in the walk's key order, as rows
    handed over out of order do: the same lists either way (distinct relevance, so order
    within a row decides no tie)."""
    rng = np.random.default_rng(int(lam * 10) + 5 * cap + 99)
    n_items, k = 300, 6
    category = rng.integers(-1, 6, n_items)
    groups = rng.integers(-1, 3, n_items)
    query, items, relevance = _ordered_batch(rng, n_items, ties=False)
    shuffled = np.concatenate([rng.permutation(np.flatnonzero(query == q)) for q in range(12)])
    lists = []
    for rows in (np.arange(len(items)), shuffled):
        picked = MMR(lam, CategorySimilarity(category))(
            query=query[rows],
            items=items[rows],
            relevance=relevance[rows],
            is_seed=np.zeros(len(items), bool),
            group=groups[items[rows]],
            cap=cap,
            k=k,
        )
        lists.append(items[rows][picked].tolist())
    assert lists[0] == lists[1]
