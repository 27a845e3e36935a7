"""MMR's compiled walk of a served batch's queries (``rerank.few_queries``, ``ranking.row_kernel``'s
``mmr_walk``) against the textbook loop, numpy's path and the Python cell walk it replaced: the
same rows, and numpy's path wherever the walk cannot decide (the same cases as the cell walk)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
from stepwise import cell_walk, reference_category_mmr, textbook_lists

from recsmith.rerank import MMR, CategorySimilarity
from recsmith.rerank.few_queries import FEW_QUERIES, walked_few
from recsmith.serving.coalesce import MAX_COALESCED

MMR_MODULE = sys.modules["recsmith.rerank.mmr"]  # the package exports a function ``mmr``
WINDOW = MMR_MODULE._WINDOW


pytestmark = pytest.mark.usefixtures("library")  # every test here is about the walk


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per ``walked_few`` call: whether it answered (False: numpy's path did)."""
    seen: list[bool] = []

    def spy(*args: Any) -> np.ndarray | None:
        out = walked_few(*args)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(MMR_MODULE, "walked_few", spy)
    return seen


def _batch(
    rng: np.random.Generator, n_items: int, n_queries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_queries`` queries of 0-119 rows in relevance order (ties: values rounded to 1-3
    decimals), as re-ranking hands them over: query, items, relevance."""
    query, items, relevance = [], [], []
    for q in range(n_queries):
        length = min(int(rng.integers(0, 120)), n_items)
        query += [q] * length
        items += rng.choice(n_items, length, replace=False).tolist()
        rel = np.round(rng.random(length), int(rng.integers(1, 4)))
        relevance += sorted(rel.tolist(), reverse=True)
    return np.asarray(query, np.int32), np.asarray(items, np.int32), np.asarray(relevance)


def _n_queries(rng: np.random.Generator) -> int:
    """A request's queries: 1-4 mostly (an open loop's batches), now and then up to
    ``FEW_QUERIES`` (a coalesced batch), or one past it (numpy's path)."""
    draw = rng.random()
    if draw < 0.85:
        return int(rng.integers(1, 5))
    return int(rng.integers(5, FEW_QUERIES + 1)) if draw < 0.97 else FEW_QUERIES + 1


def _numpys(mmr: MMR, **kw: Any) -> np.ndarray:
    """``mmr``'s picks by numpy's path alone."""
    few = MMR_MODULE.FEW_QUERIES
    MMR_MODULE.FEW_QUERIES = 0
    try:
        return mmr(**kw)
    finally:
        MMR_MODULE.FEW_QUERIES = few


@pytest.mark.parametrize("seed", range(40))
def test_a_few_queries_walked_cell_by_cell_are_the_textbook_loops_lists(seed: int) -> None:
    """1-4 queries, now and then up to 65 (``_n_queries``; some empty, some within the window,
    most past it), ties, uncategorised
    items, few or many categories, caps and λ of every kind, relevance by rank (as re-ranking
    gives it) or drawn: the picks are the textbook loop's and numpy's path's, row for row
    (int64, as numpy's), whichever answered (a cap of 1 over 2 categories leaves the window
    short: numpy's full walk)."""
    rng = np.random.default_rng(seed)
    lam = [0.0, 0.3, 0.8, 1.0][seed % 4]
    cap = [None, 1, 2, 4][seed // 4 % 4]
    k = int(rng.integers(1, 12))
    n_items = int(rng.integers(30, 400))
    category = rng.integers(-1, [2, 6, 40][seed % 3], n_items)
    for _ in range(6):
        query, items, relevance = _batch(rng, n_items, _n_queries(rng))
        if not len(query):
            continue
        if rng.random() < 0.3:  # rank relevance: -log(1 + rank), distinct within a query
            relevance = -np.log1p(np.arange(len(query)) - np.searchsorted(query, query))
        kw: dict[str, Any] = {
            "query": query,
            "items": items,
            "relevance": relevance,
            "is_seed": np.zeros(len(query), bool),
            "group": category[items],
            "cap": cap,
            "k": k,
        }
        mmr = MMR(lam, CategorySimilarity(category))
        picked = mmr(**kw)
        expected: list[int] = []
        for q in range(int(query[-1]) + 1):
            rows = np.flatnonzero(query == q)
            expected += reference_category_mmr(
                items[rows].tolist(), relevance[rows].tolist(), category, lam, k, cap, []
            )
        assert items[picked].tolist() == expected
        numpys = _numpys(mmr, **kw)
        assert picked.dtype == numpys.dtype and picked.tolist() == numpys.tolist()


@pytest.mark.parametrize("n_queries", [1, 2, 3, 4, 8, 16, MAX_COALESCED])
def test_requests_as_the_shop_makes_them_are_walked_by_the_kernel(
    n_queries: int, answered: list[bool]
) -> None:
    """1-4, 8, 16 or ``MAX_COALESCED`` queries (an open loop's batches, the coalescer's largest)
    of 260 rows by rank, 40 categories, cap 4, λ 0.8, k 10 (the shop's re-ranking): the
    compiled walk answers, with the textbook loop's lists."""
    rng = np.random.default_rng(n_queries)
    category = rng.integers(-1, 40, 5000)
    query = np.repeat(np.arange(n_queries), 260).astype(np.int32)
    items = np.concatenate([rng.choice(5000, 260, replace=False) for _ in range(n_queries)])
    relevance = np.tile(-np.log1p(np.arange(260)), n_queries)
    picked = MMR(0.8, CategorySimilarity(category))(
        query=query,
        items=items.astype(np.int32),
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category[items],
        cap=4,
        k=10,
    )
    expected: list[int] = []
    for q in range(n_queries):
        rows = slice(260 * q, 260 * (q + 1))
        expected += reference_category_mmr(
            items[rows].tolist(), relevance[rows].tolist(), category, 0.8, 10, 4, []
        )
    assert items[picked].tolist() == expected
    assert answered == [True]


def test_a_hand_made_query(library: Any) -> None:
    """λ 0.5, k 3, cap 1 (hand values): relevance 1.0, 0.9, 0.8, 0.2, 0.0 scales to itself
    (first 1, last 0); categories 0, 0, 1, 0, 2 key 0.5, 0.45 − 0.5, 0.4, 0.1 − 0.5, 0 — the
    order rows 0, 2, 4, 1, 3; rows 1 and 3 are refused by the cap anyway: rows 0, 2, 4."""
    category = np.array([0, 0, 1, 0, 2])
    kw: dict[str, Any] = {
        "query": np.zeros(5, np.int32),
        "items": np.arange(5, dtype=np.int32),
        "relevance": np.array([1.0, 0.9, 0.8, 0.2, 0.0]),
        "is_seed": np.zeros(5, bool),
        "group": category,
        "cap": 1,
    }
    walked = walked_few(
        library,
        0.5,
        CategorySimilarity(category),
        WINDOW,
        np.array([0, 5]),
        kw["items"],
        kw["relevance"],
        kw["is_seed"],
        kw["group"],
        1,
        3,
    )
    assert walked is not None and walked.tolist() == [0, 2, 4]
    # without the cap, k 4: the repeat of category 0 at 0.9 (key −0.05) before the one at 0.2
    # (−0.4)
    uncapped = MMR(0.5, CategorySimilarity(category))(**{**kw, "cap": None}, k=4)
    assert uncapped.tolist() == [0, 2, 4, 1]


def test_a_window_that_does_not_settle_is_left_to_numpy(answered: list[bool]) -> None:
    """One query whose window holds one category (first item at relevance 1, repeats from 0.99
    down: keys 0.8 · 0.99 − 0.2 = 0.592 and below), the column past it a new category at 0.75
    (key 0.6), λ 0.8, k 2: the window's two picks are not the list; numpy's full walk gives
    the first item, then that one."""
    width = WINDOW + 4
    relevance = np.r_[1.0, 0.99 - 0.001 * np.arange(width - 1), 0.75, np.linspace(0.7, 0, 9)]
    category = np.r_[np.zeros(width, np.int64), np.arange(1, 11)]
    items = np.arange(len(category), dtype=np.int32)
    picked = MMR(0.8, CategorySimilarity(category))(
        query=np.zeros(len(items), np.int32),
        items=items,
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category,
        cap=None,
        k=2,
    )
    assert picked.tolist() == [0, width]
    # a row exactly one cell longer than the window (rv-b1_23): one category across the window
    # (keys 0.5 · x − 0.5, below 0 past the first), the cell past it a new category at the
    # row's minimum (key 0): the window's second pick keys below it, numpy's walk takes it
    relevance = np.r_[1.0, np.linspace(0.9, 0.5, width - 1), 0.0]
    category = np.r_[np.zeros(width, np.int64), 1]
    assert _one_query(relevance, category, 0.5, 2) == [0, width]
    assert answered == [False, False]


@pytest.mark.parametrize(
    "case",
    [
        "seeds",
        "other groups",
        "other groups past the first",
        "infinite relevance",
        "span past double",
        "more queries than a served batch",
        "out of order",
    ],
)
def test_batches_outside_the_walks_premises_are_numpys(case: str, answered: list[bool]) -> None:
    """Pins (seeds), cap groups other than the penalty's categories (from the first cell, or
    the categories there and others later), a non-finite relevance at a query's end, finite
    ends ±1.7e308 apart (their span overflows: keys NaN), more than ``FEW_QUERIES`` queries,
    rows out of relevance order: the compiled walk does not answer (or is not asked), numpy's
    path does, and the picks are its picks."""
    rng = np.random.default_rng(3)
    category = rng.integers(-1, 8, 200)
    query, items, relevance = _batch(rng, 200, 2)
    while not len(query) or np.bincount(query).min() < 3:
        query, items, relevance = _batch(rng, 200, 2)
    kw: dict[str, Any] = {
        "query": query,
        "items": items,
        "relevance": relevance,
        "is_seed": np.zeros(len(query), bool),
        "group": category[items],
        "cap": 2,
        "k": 5,
    }
    if case == "seeds":
        kw["is_seed"] = np.arange(len(query)) == 1
    elif case == "other groups":
        kw["group"] = rng.integers(-1, 3, 200)[items]
    elif case == "other groups past the first":  # each query's first cell keeps its category
        kw["group"] = np.where(np.r_[True, query[1:] != query[:-1]], category[items], 50)
    elif case == "span past double":
        ends = np.r_[True, query[1:] != query[:-1]]
        kw["relevance"] = np.where(ends, 1.7e308, np.where(np.r_[ends[1:], True], -1.7e308, 0.0))
    elif case == "infinite relevance":
        kw["relevance"] = np.r_[relevance[:-1], -np.inf]
    elif case == "more queries than a served batch":  # the first query's rows, once a query
        rows = query == 0
        for name in ("items", "relevance", "group"):
            kw[name] = np.tile(kw[name][rows], FEW_QUERIES + 1)
        kw["query"] = np.repeat(np.arange(FEW_QUERIES + 1, dtype=np.int32), rows.sum())
        kw["is_seed"] = np.zeros(len(kw["query"]), bool)
    else:
        kw["relevance"] = relevance[::-1].copy()
    mmr = MMR(0.6, CategorySimilarity(category))
    picked = mmr(**kw)
    assert not any(answered)
    assert picked.tolist() == _numpys(mmr, **kw).tolist()


def _one_query(
    relevance: np.ndarray, category: np.ndarray, lam: float, k: int, query: np.ndarray | None = None
) -> list[int]:
    """The picks of MMR(λ, category) over rows ``i`` = item ``i``, no cap."""
    items = np.arange(len(relevance), dtype=np.int32)
    return MMR(lam, CategorySimilarity(category))(
        query=np.zeros(len(items), np.int32) if query is None else query,
        items=items,
        relevance=relevance,
        is_seed=np.zeros(len(items), bool),
        group=category,
        cap=None,
        k=k,
    ).tolist()


def test_windows_that_settle_are_answered_here(answered: list[bool]) -> None:
    """Hand-made windows of k = 2 (``_WINDOW`` + 4 columns) that settle, each answered by the
    compiled walk (numpy's path would give the same lists: these pin where the walk stops).
    A tie at the bound: λ 1, relevance 1 then 0.5 to past the window: the second pick keys 0.5,
    as the first column past it: settled. A bound read from the first column past the window,
    not the last inside: one category to column 20 (repeats from 0.99 down: the second pick
    keys 0.8 · 0.99 − 0.2 = 0.592), its last column at 0.75 (0.6 had it been the bound), the
    next a new category at 0.7 (0.56). Constant relevance (no span: every cell scales to 1),
    every cell its own category: keys 0.8, the bound 0.8. An empty query between two."""
    width = WINDOW + 4
    assert _one_query(np.r_[1.0, np.full(width + 5, 0.5), 0.0], np.arange(width + 7), 1.0, 2) == [
        0,
        1,
    ]
    relevance = np.r_[1.0, 0.99 - 0.001 * np.arange(width - 2), 0.75, 0.7, np.zeros(5)]
    category = np.r_[np.zeros(width, np.int64), np.arange(1, 7)]
    assert _one_query(relevance, category, 0.8, 2) == [0, 1]
    assert _one_query(np.full(40, 0.3), np.arange(40), 0.8, 2) == [0, 1]
    query = np.repeat(np.array([0, 2], np.int32), 30)
    assert _one_query(np.tile(np.linspace(1, 0, 30), 2), np.arange(60), 0.8, 2, query) == [
        0,
        1,
        30,
        31,
    ]
    assert answered == [True] * 4


def test_constant_relevance_past_the_window_is_numpys() -> None:
    """Constant relevance (every cell scales to 1: keys 0.8 for a category's first cell, 0.6
    for a repeat), λ 0.8, k 2, one category across the window, new ones past it: the second
    pick is the first cell past the window (0.8 above the window's repeats)."""
    width = WINDOW + 4
    category = np.r_[np.zeros(width, np.int64), np.arange(1, 6)]
    assert _one_query(np.full(width + 5, 0.3), category, 0.8, 2) == [0, width]


def _fuzzed(
    rng: np.random.Generator,
) -> tuple[dict[str, Any], np.ndarray, float, np.ndarray | None]:
    """A random request for ``MMR.__call__``: 1-65 queries (``_n_queries``) of 0-70 rows in
    relevance order (ties: 1-2 decimals, or constant, or by rank), float32 or float64; 1-40
    categories, some items none (-1); caps None, 0, 1, 2, 5; λ 0, 0.3, 0.5, 0.8, 1 or drawn;
    k 1-12; now and then a seed, cap groups other than the categories, or an end of a query at
    ±inf or NaN. Returns the call's arguments, the categories, λ and the cap groups by item
    where they are not the categories."""
    n_items = int(rng.integers(70, 300))
    category = rng.integers(-1, [1, 2, 3, 6, 40][int(rng.integers(5))], n_items)
    category = category.astype([np.int32, np.int64][int(rng.integers(2))])
    query, items, relevance = [], [], []
    n_queries = _n_queries(rng)
    for q in range(n_queries):
        length = int(rng.integers(0, 70))
        shape = rng.random()
        if shape < 0.1:
            rel = np.full(length, 0.5)
        elif shape < 0.3:
            rel = -np.log1p(np.arange(length))
        else:
            rel = np.sort(np.round(rng.random(length), int(rng.integers(1, 3))))[::-1]
        if length and rng.random() < 0.05:  # a non-finite end: numpy's path answers
            rel = rel.copy()
            rel[[0, -1][int(rng.integers(2))]] = [np.inf, -np.inf, np.nan][int(rng.integers(3))]
        query += [q] * length
        items += rng.choice(n_items, length, replace=False).tolist()
        relevance += rel.tolist()
    items_ = np.asarray(items, np.int32)
    groups = rng.integers(-1, 3, n_items) if rng.random() < 0.05 else None
    group = category[items_] if groups is None else groups[items_]
    is_seed = np.zeros(len(items), bool)
    if len(items) and rng.random() < 0.03:
        is_seed[int(rng.integers(len(items)))] = True
    lam = [0.0, 0.3, 0.5, 0.8, 1.0, float(rng.random())][int(rng.integers(6))]
    kw = {
        "query": np.asarray(query, np.int32),
        "items": items_,
        "relevance": np.asarray(relevance, [np.float32, np.float64][int(rng.integers(2))]),
        "is_seed": is_seed,
        "group": group,
        "cap": [None, 0, 1, 2, 5][int(rng.integers(5))],
        "k": int(rng.integers(1, 13)),
    }
    return kw, category, lam, groups


def test_thousands_of_random_requests_kernel_cell_walk_numpy_and_textbook_agree(
    library: Any,
) -> None:
    """3,000 random requests (``_fuzzed``): the compiled walk answers exactly where the Python
    cell walk did, with the same rows (int64), and the other requests None; ``MMR.__call__``
    (the compiled walk first) gives numpy's path's rows, and the textbook loop's where every
    relevance is finite and the cap groups are the categories (the closed form's premise). Both
    kinds of answer occur by the hundred (windows that settle, and windows that do not, caps,
    ties, premises that fail)."""
    rng = np.random.default_rng(2323)
    outcomes = {True: 0, False: 0}
    for _ in range(3000):
        kw, category, lam, groups = _fuzzed(rng)
        if not len(kw["query"]):
            continue
        query, items, relevance = kw["query"], kw["items"], kw["relevance"]
        bounds = np.searchsorted(query, np.arange(int(query[-1]) + 2))
        similarity = CategorySimilarity(category)
        walk = (lam, similarity, WINDOW, bounds, items, relevance, kw["is_seed"], kw["group"])
        walked = walked_few(library, *walk, kw["cap"], kw["k"])
        oracle = cell_walk(*walk, kw["cap"], kw["k"])
        assert (walked is None) == (oracle is None)
        if walked is not None:
            assert walked.dtype == np.int64 and walked.tolist() == oracle.tolist()
        outcomes[walked is not None] += 1
        mmr = MMR(lam, similarity)
        picked = mmr(**kw)
        assert picked.tolist() == _numpys(mmr, **kw).tolist()
        if groups is None and np.isfinite(relevance).all():
            assert items[picked].tolist() == textbook_lists(kw, category, lam)
    assert outcomes[True] > 500 and outcomes[False] > 500, outcomes


@pytest.mark.parametrize("bad", [5, -1])
def test_an_item_outside_the_categories_is_left_to_numpy(bad: int, library: Any) -> None:
    """An item one past the similarity's 5 categories (or -1) in a query's window: the compiled
    walk reads no category for it and answers None; numpy's path raises as numpy indexing does
    (past the end) or wraps (-1: the last item's category). The sanitized rerun aborts on a
    read one past the categories."""
    category = np.array([0, 1, 2, 0, 1], np.int32)
    items = np.array([2, bad, 3], np.int64)
    relevance = np.array([1.0, 0.5, 0.0])
    is_seed, group = np.zeros(3, bool), category[items % len(category)]
    args = (CategorySimilarity(category), WINDOW, np.array([0, 3]), items, relevance, is_seed)
    assert walked_few(library, 0.5, *args, group, None, 2) is None
    mmr = MMR(0.5, CategorySimilarity(category))
    kw = {"query": np.zeros(3, np.int32), "items": items, "relevance": relevance}
    kw |= {"is_seed": is_seed, "group": group, "cap": None, "k": 2}
    if bad < 0:
        assert mmr(**kw).tolist() == [0, 1]
    else:
        with pytest.raises(IndexError):
            mmr(**kw)


def test_a_numpy_float_lambda_keys_in_float64(answered: list[bool]) -> None:
    """λ handed over as a numpy float32 (``rerank(diversity=np.float32(..))``) is kept as a
    Python float, so neither path keys in float32 (NEP 50: float32 · Python float is float32):
    near-tied relevance (1e-9 apart, equal in float32) in 300 batches, cap 2, gives the textbook
    loop's lists in float64 from the compiled walk and numpy's path alike."""
    lam = np.float32(0.7)
    assert type(MMR(lam, CategorySimilarity(np.zeros(1, np.int64))).lam) is float
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n = 40
        relevance = np.sort(np.round(rng.random(n), 7) + rng.integers(0, 2, n) * 1e-9)[::-1]
        category = rng.integers(-1, 4, n)
        kw: dict[str, Any] = {
            "query": np.zeros(n, np.int32),
            "items": np.arange(n, dtype=np.int32),
            "relevance": relevance,
            "is_seed": np.zeros(n, bool),
            "group": category,
            "cap": 2,
            "k": int(rng.integers(1, 10)),
        }
        mmr = MMR(lam, CategorySimilarity(category))
        expected = reference_category_mmr(
            list(range(n)), relevance.tolist(), category, float(lam), kw["k"], 2, []
        )
        assert mmr(**kw).tolist() == expected == _numpys(mmr, **kw).tolist()
    assert sum(answered) > 200  # the compiled walk answered most


def test_uncapped_calls_are_walked_whatever_their_groups(answered: list[bool]) -> None:
    """Without a cap the groups play no part (``mmr()`` passes -1 for all): the compiled walk
    answers from the categories, with the textbook loop's lists; with a cap over those groups
    it does not (numpy's path: the same lists as the textbook loop's over them)."""
    rng = np.random.default_rng(5)
    category = rng.integers(-1, 6, 300)
    query, items, relevance = _batch(rng, 300, 3)
    bounds = np.searchsorted(query, np.arange(int(query[-1]) + 2))
    uncapped = np.full(len(query), -1)
    for cap, group in [(None, uncapped), (None, category[items] + 1), (2, uncapped)]:
        kw: dict[str, Any] = {"query": query, "items": items, "relevance": relevance}
        kw |= {"is_seed": np.zeros(len(query), bool), "group": group, "cap": cap, "k": 6}
        picked = MMR(0.6, CategorySimilarity(category))(**kw)
        expected: list[int] = []
        for q in range(len(bounds) - 1):
            rows = slice(bounds[q], bounds[q + 1])
            groups = np.full(300, -1)  # by item: every one uncapped
            expected += reference_category_mmr(
                items[rows].tolist(), relevance[rows].tolist(), category, 0.6, 6, cap, [], groups
            )
        assert items[picked].tolist() == expected
    assert answered == [True, True, False]


def test_an_item_the_cap_refuses_is_not_shown_before_its_category(answered: list[bool]) -> None:
    """Categories 0, 0, 1, 2, cap groups 7, -1, 7, -1, cap 0, λ 0.5, k 3 (hand values): rows 0
    and 2 are refused (group 7), so row 1 is the first of category 0 shown, no repeat: keys 0.5
    · (0.9 − 0.7) / 0.3 = 0.333 for row 1, 0 for row 3: rows 1, 3 (numpy's closed form once
    counted row 1 a repeat: rows 3, 1)."""
    category = np.array([0, 0, 1, 2])
    kw: dict[str, Any] = {
        "query": np.zeros(4, np.int32),
        "items": np.arange(4, dtype=np.int32),
        "relevance": np.array([1.0, 0.9, 0.8, 0.7]),
        "is_seed": np.zeros(4, bool),
        "group": np.array([7, -1, 7, -1]),
        "cap": 0,
        "k": 3,
    }
    mmr = MMR(0.5, CategorySimilarity(category))
    assert mmr(**kw).tolist() == [1, 3] == _numpys(mmr, **kw).tolist()
    assert answered == [False]


def test_caps_over_groups_other_than_the_categories_are_the_textbook_loops() -> None:
    """2,000 random requests (``_fuzzed``'s) whose cap groups are drawn apart from the categories
    (0-3 groups, some items none, caps 0, 1, 2, 5, seeds now and then): ``MMR.__call__`` and
    numpy's path alone give the textbook loop's lists, the cap counted over those groups."""
    rng = np.random.default_rng(77)
    checked = 0
    for _ in range(2000):
        kw, category, lam, _ = _fuzzed(rng)
        query, items, relevance = kw["query"], kw["items"], kw["relevance"]
        if not len(query) or not np.isfinite(relevance).all():
            continue
        groups = rng.integers(-1, int(rng.integers(1, 4)), len(category))
        kw |= {"group": groups[items], "cap": [0, 1, 2, 5][int(rng.integers(4))]}
        expected = textbook_lists(kw, category, lam, groups)
        mmr = MMR(lam, CategorySimilarity(category))
        assert items[mmr(**kw)].tolist() == expected
        assert items[_numpys(mmr, **kw)].tolist() == expected
        checked += 1
    assert checked > 1500
