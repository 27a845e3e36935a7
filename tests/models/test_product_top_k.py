"""``product_top_k`` (an item-to-item source's top ``k`` of ``history @ M``) against independent
oracles:

- scipy's own ``history @ M``, then a per-row Python sort (score from high to low, then item):
  the same entries, the sums bit for bit (scipy adds each cell's terms in the history's stored
  order; a float64 side upcasts), explicit zeros and dropped items never listed;
- a dense numpy accumulation (each history entry's dense row of ``M``, weighted, added in stored
  order) and a stable argsort of every row: the lists a co-occurrence source proposes, through
  ``sparse_from_items`` and ``ModelSource.retrieve``.

The accumulator is kept between calls, so calls follow each other with different batches (a
cell left behind would show in the next), each way of summing a batch is taken (``GRID_CELLS``:
the whole catalogue's cells, the touched columns' cells, a sort) and rows wider than a sort piece
are reduced piece by piece (``SORT_WIDTH``); the accumulator's size and its zeros after an
interrupted call are asserted."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsmith import sparse_rows
from recsmith.models import product_top_k as module
from recsmith.models.cooccurrence import Cooccurrence
from recsmith.models.product_top_k import product_flat_top, product_top_k
from recsmith.models.topk import FlatTop, TopK
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import ModelSource


def _lists(top: TopK) -> list[list[tuple[int, int]]]:
    """Each row as (item, score bits), padding left out; the padding must sit at the end."""
    out = []
    for ids, scores in zip(top.ids, top.scores, strict=True):
        listed = ids >= 0
        assert not listed[np.argmin(listed) :].any() or listed.all(), "padding inside a row"
        assert np.isneginf(scores[~listed]).all()
        out.append(
            list(zip(ids[listed].tolist(), scores[listed].view(np.int32).tolist(), strict=True))
        )
    return out


def _by_scipy(
    history: sparse.csr_array, matrix: sparse.csr_array, k: int, drop: list[sparse.csr_array]
) -> list[list[tuple[int, int]]]:
    """scipy's product, then each row's nonzero entries outside ``drop`` (finite as float32)
    sorted in Python by (score descending, item)."""
    product = sparse.csr_array(history @ matrix)
    out = []
    for q in range(history.shape[0]):
        gone = {int(c) for d in drop for c in d.indices[d.indptr[q] : d.indptr[q + 1]]}
        span = slice(product.indptr[q], product.indptr[q + 1])
        row = [
            (np.float32(s), int(c))
            for c, s in zip(product.indices[span], product.data[span], strict=True)
            if s != 0 and c not in gone and np.isfinite(np.float32(s))
        ]
        row.sort(key=lambda e: (-e[0], e[1]))
        out.append([(c, int(s.view(np.int32))) for s, c in row[:k]])
    return out


def _by_dense(
    history: sparse.csr_array, matrix: sparse.csr_array, k: int, drop: list[sparse.csr_array]
) -> list[list[tuple[int, int]]]:
    """Dense float32 rows: each history entry's row of ``matrix`` times its weight, added in
    stored order (scipy's order, so the sums are bit-identical); dropped items and cells no
    entry reaches are out; a stable sort of the negated row puts ties in item order."""
    dense = np.asarray(matrix.todense(), np.float32)
    reached = dense != 0
    out = []
    for q in range(history.shape[0]):
        span = slice(history.indptr[q], history.indptr[q + 1])
        total = np.zeros(matrix.shape[1], np.float32)
        touched = np.zeros(matrix.shape[1], bool)
        for item, weight in zip(history.indices[span], history.data[span], strict=True):
            total += np.float32(weight) * dense[item]
            touched |= reached[item]
        for d in drop:
            total[d.indices[d.indptr[q] : d.indptr[q + 1]]] = -np.inf
        order = np.argsort(-total, kind="stable")
        order = order[touched[order] & np.isfinite(total[order]) & (total[order] != 0)][:k]
        out.append([(int(c), int(total[c].view(np.int32))) for c in order])
    return out


#: negative weights (scores below zero, sums that cancel to 0) and explicit zeros as well
weights = st.sampled_from([1.0, 0.5, 0.25, 0.1, 0.3, 2.0, 0.7, -1.0, -0.5, 0.0])


def _csr(
    entries: list[tuple[int, int, float]], shape: tuple[int, int], dtype: type
) -> sparse.csr_array:
    """Entries stored as given (row by row, each row's entries in list order, duplicates kept)."""
    entries = sorted(entries, key=lambda e: e[0])  # stable: list order within a row
    rows = np.asarray([r for r, _, _ in entries], np.int64)
    return sparse.csr_array(
        (
            np.asarray([w for _, _, w in entries], dtype),
            np.asarray([c for _, c, _ in entries], np.int32),
            np.searchsorted(rows, np.arange(shape[0] + 1)),
        ),
        shape=shape,
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), weights), max_size=12),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), weights), max_size=50),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), weights), max_size=8),
    st.booleans(),
    st.sampled_from([1, 3, 20]),
)
def test_lists_are_scipys_product_sorted(
    left: list[tuple[int, int, float]],
    right: list[tuple[int, int, float]],
    excluded: list[tuple[int, int, float]],
    wide: bool,
    k: int,
) -> None:
    """Duplicate history entries (not canonical), a float64 side, explicit zeros in ``M``,
    excluded items that no entry reaches: scipy's sums, bit for bit, in scipy's order of terms."""
    history = _csr(left, (4, 8), np.float64 if wide else np.float32)
    matrix = _csr(right, (8, 8), np.float32)
    matrix.sum_duplicates()
    exclude = _csr(excluded, (4, 8), np.float32)
    for drop in ([], [exclude], [history, exclude]):
        got = product_top_k(history, matrix, k, drop)
        assert got.ids.shape == (4, k) and got.ids.dtype == np.int32
        assert _lists(got) == _by_scipy(history, matrix, k, drop)


def _association(rng: np.random.Generator, n_items: int, per_row: int) -> sparse.csr_array:
    """A co-occurrence-like matrix: each item's ``per_row`` neighbours, scores from a short list
    (ties everywhere) and a few arbitrary floats (sums that depend on the order of terms)."""
    rows = np.repeat(np.arange(n_items), per_row)
    cols = rng.integers(0, n_items, len(rows))
    values = rng.choice(np.array([0.5, 0.25, 1 / 3, 0.1, 0.2], np.float32), len(rows))
    odd = rng.random(len(rows)) < 0.3
    values[odd] = rng.random(int(odd.sum())).astype(np.float32)
    matrix = sparse.csr_array((values, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)
    matrix.sum_duplicates()
    return matrix


def _batch(
    rng: np.random.Generator, n: int, n_items: int, recent: int
) -> tuple[sparse.csr_array, sparse.csr_array]:
    """Each query's recent items (weight 1, some queries none) and what it excludes (its recent
    items and others)."""
    q = np.repeat(np.arange(n), rng.integers(0, recent + 1, n))
    items = rng.integers(0, n_items, len(q))
    history = sparse.csr_array(
        (np.ones(len(q), np.float32), (q, items)), shape=(n, n_items), dtype=np.float32
    )
    history.sum_duplicates()
    history.data[:] = 1
    eq = np.repeat(np.arange(n), 6)
    exclude = sparse.csr_array(
        (
            np.ones(len(eq) + len(q), np.float32),
            (np.r_[eq, q], np.r_[rng.integers(0, n_items, len(eq)), items]),
        ),
        shape=(n, n_items),
    )
    exclude.sum_duplicates()
    return history, exclude


@pytest.mark.parametrize("seed", range(6))
def test_batches_follow_each_other_as_the_dense_oracle_says(seed: int) -> None:
    """Batches of 1 to 70 queries in a row (the accumulator is reused: a cell left over from
    one would show in the next), with and without the history's own items."""
    rng = np.random.default_rng(seed)
    matrix = _association(rng, 400, 40)
    for n in (1, 70, 16, 3):
        history, exclude = _batch(rng, n, 400, 6)
        for k in (1, 10, 50):
            expected = _by_dense(history, matrix, k, [history, exclude])
            assert _lists(product_top_k(history, matrix, k, [history, exclude])) == expected
        assert _lists(product_top_k(history, matrix, 30, [])) == _by_dense(history, matrix, 30, [])


def test_slices_and_pieces_give_the_same_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch summed by a sort (a small ``GRID_CELLS``) and rows reduced in pieces of 8 keys
    (several passes at k = 3, one pass where ``2 k`` is the piece) list what the accumulator and
    one sort list."""
    rng = np.random.default_rng(7)
    matrix = _association(rng, 300, 30)
    history, exclude = _batch(rng, 40, 300, 8)
    for k in (3, 12, 100):
        expected = _by_dense(history, matrix, k, [history, exclude])
        assert _lists(product_top_k(history, matrix, k, [history, exclude])) == expected
        with monkeypatch.context() as patched:
            patched.setattr(module, "GRID_CELLS", 300 * 7)
            patched.setattr(module, "SORT_WIDTH", 8)
            assert _lists(product_top_k(history, matrix, k, [history, exclude])) == expected


def test_threads_each_sum_in_their_own_accumulator() -> None:
    """Two threads scoring different batches at once get their own lists."""
    rng = np.random.default_rng(3)
    matrix = _association(rng, 500, 50)
    batches = [_batch(rng, 32, 500, 6) for _ in range(2)]
    expected = [_by_dense(h, matrix, 20, [h, e]) for h, e in batches]
    got: dict[int, list] = {}

    def score(i: int) -> None:
        h, e = batches[i]
        got[i] = [_lists(product_top_k(h, matrix, 20, [h, e])) for _ in range(30)]

    threads = [threading.Thread(target=score, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert all(lists == expected[i] for lists in got[i])


def test_a_cooccurrence_source_proposes_the_dense_oracles_lists() -> None:
    """``ModelSource.retrieve`` of a co-occurrence model (``use = "recent"``): each query's
    recent items scored against the association, its exclusions and own items dropped; the
    queries without recent items propose nothing."""
    rng = np.random.default_rng(11)
    model = Cooccurrence()
    model.association_ = _association(rng, 600, 60)
    history, exclude = _batch(rng, 64, 600, 5)
    queries = Queries(
        users=np.full(64, -1),
        recent=history,
        exclude=exclude,
        context=tuple({} for _ in range(64)),
    )
    got = ModelSource("together", model, use="recent").retrieve(queries, 25)
    expected = _by_dense(history, model.association_, 25, [history, exclude])
    for q in range(64):
        mine = got.query == q
        assert (
            list(
                zip(got.items[mine].tolist(), got.scores[mine].view(np.int32).tolist(), strict=True)
            )
            == (expected[q])
        )
        assert got.ranks[mine].tolist() == list(range(1, mine.sum() + 1))


def test_an_auto_source_scores_recent_items_of_visitors_only() -> None:
    """``use = "auto"``: known users are answered from their history, so their recent items
    change nothing (the same proposals with their recent rows emptied); each visitor's rows are
    the dense oracle's list of its recent items."""
    rng = np.random.default_rng(5)
    model = Cooccurrence()
    model.association_ = _association(rng, 300, 30)
    model.user_items_, _ = _batch(rng, 20, 300, 8)
    history, exclude = _batch(rng, 24, 300, 5)
    users = np.where(rng.random(24) < 0.5, rng.integers(0, 20, 24), -1)
    source = ModelSource("together", model, use="auto")

    def proposals(recent: sparse.csr_array) -> list[list[tuple[int, int]]]:
        """Each query's (item, score bits), rank order checked."""
        got = source.retrieve(Queries(users, recent, exclude, tuple({} for _ in range(24))), 15)
        out = []
        for q in range(24):
            mine = got.query == q
            assert got.ranks[mine].tolist() == list(range(1, mine.sum() + 1))
            bits = got.scores[mine].view(np.int32).tolist()
            out.append(list(zip(got.items[mine].tolist(), bits, strict=True)))
        return out

    mine = proposals(history)
    expected = _by_dense(history, model.association_, 15, [history, exclude])
    visitors, known = np.flatnonzero(users < 0), np.flatnonzero(users >= 0)
    assert [mine[q] for q in visitors] == [expected[q] for q in visitors]
    assert any(mine[q] for q in known)
    visitors_only = sparse.csr_array(history * (users < 0)[:, None].astype(np.float32))
    visitors_only.eliminate_zeros()
    again = proposals(visitors_only)
    assert [again[q] for q in known] == [mine[q] for q in known]


def test_a_drop_matrix_of_another_shape_is_refused() -> None:
    """A drop matrix must be shaped like the product: a narrower one (items the model never saw
    cut off, or rows of another batch) would land its entries in other queries' cells."""
    rng = np.random.default_rng(2)
    matrix = _association(rng, 50, 5)
    history, exclude = _batch(rng, 4, 50, 3)
    with pytest.raises(ValueError, match=r"drop: a matrix of shape \(4, 40\), not the product's"):
        product_top_k(history, matrix, 5, [exclude[:, :40]])


def _grids() -> list[np.ndarray]:
    """This thread's kept accumulators (one per dtype)."""
    kept = sparse_rows._scratch.__dict__.get("kept", {})
    return [array for (name, _), array in kept.items() if name == "grid"]


@pytest.mark.parametrize("path", ["catalogue", "touched", "sorted"])
def test_each_way_of_summing_lists_the_dense_oracles_lists(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The three ways a batch is summed, chosen by ``GRID_CELLS`` against this batch's sizes:
    cells over the whole catalogue, cells over the columns the batch touches (renumbered, the
    dropped items of other columns left out), no grid at all (a sort of the cells). Batches
    follow each other, so the column slots hold stale numbers from the one before."""
    rng = np.random.default_rng(13)
    matrix = _association(rng, 900, 4)
    sparse_rows._scratch.__dict__.pop("kept", None)  # this thread's accumulator from scratch
    largest = 0
    for n in (30, 5, 30):
        history, exclude = _batch(rng, n, 900, 6)
        reached = np.unique(
            matrix.indices[
                module.spans(
                    matrix.indptr[history.indices], np.diff(matrix.indptr)[history.indices]
                )
            ]
        )
        cap = {"catalogue": n * 900, "touched": n * len(reached), "sorted": n * len(reached) - 1}
        monkeypatch.setattr(module, "GRID_CELLS", cap[path])
        largest = max(largest, cap[path])
        for k in (5, 40):
            got = product_top_k(history, matrix, k, [history, exclude])
            assert _lists(got) == _by_dense(history, matrix, k, [history, exclude])
        assert all(len(g) <= largest and not g.any() for g in _grids())


def test_a_wide_catalogue_sums_in_a_grid_of_the_touched_columns() -> None:
    """At 2,000,000 items a batch of 64 touches a few hundred columns: the accumulator holds
    64 rows of those (no slices of a few rows of the whole catalogue), within ``GRID_CELLS``;
    the lists are scipy's."""
    rng = np.random.default_rng(17)
    n_items = 2_000_000
    rows = np.repeat(rng.choice(n_items, 400, replace=False), 3)
    matrix = sparse.csr_array(
        (
            rng.choice([0.5, 0.25, 1.0], len(rows)).astype(np.float32),
            (rows, rng.integers(0, n_items, len(rows))),
        ),
        shape=(n_items, n_items),
    )
    matrix.sum_duplicates()
    q = np.repeat(np.arange(64), 4)
    history = sparse.csr_array(
        (np.ones(len(q), np.float32), (q, rng.choice(rows, len(q)))), shape=(64, n_items)
    )
    history.sum_duplicates()
    history.data[:] = 1
    sparse_rows._scratch.__dict__.pop("kept", None)  # this thread's accumulator from scratch
    got = product_top_k(history, matrix, 10, [history])
    assert _lists(got) == _by_scipy(history, matrix, 10, [history])
    touched = len(np.unique((history @ matrix).indices))
    assert [len(g) for g in _grids()] == [64 * touched]
    assert 64 * touched < module.GRID_CELLS


def test_the_accumulator_stays_within_grid_cells() -> None:
    """An offline batch whose queries × touched columns exceed ``GRID_CELLS`` (3,000 queries
    over ~6,000 columns) is summed without the accumulator, which keeps its size: its memory
    is bounded whatever the batch. The lists are scipy's."""
    rng = np.random.default_rng(19)
    matrix = _association(rng, 6000, 4)
    history, exclude = _batch(rng, 3000, 6000, 4)
    sparse_rows._scratch.__dict__.pop("kept", None)
    product_top_k(history[:8], matrix, 5, [history[:8]])  # a small batch first
    before = [len(g) for g in _grids()]
    got = product_top_k(history, matrix, 8, [history, exclude])
    assert [len(g) for g in _grids()] == before
    assert all(len(g) <= module.GRID_CELLS for g in _grids())
    assert _lists(got) == _by_scipy(history, matrix, 8, [history, exclude])


def test_nan_and_infinite_sums_are_never_listed() -> None:
    """A weight of NaN or ±inf (a corrupt history): its sums are NaN or infinite, listed by
    neither scipy's oracle nor the start (only finite scores rank); finite sums still are."""
    history = _csr(
        [(0, 0, np.nan), (0, 1, 1.0), (1, 2, np.inf), (1, 1, 0.5), (2, 3, -np.inf), (2, 1, 2.0)],
        (3, 6),
        np.float32,
    )
    matrix = _csr(
        [(0, 4, 1.0), (1, 5, 1.0), (2, 4, 1.0), (3, 4, 0.5), (1, 3, 0.25)], (6, 6), np.float32
    )
    got = _lists(product_top_k(history, matrix, 4, []))
    assert got == _by_scipy(history, matrix, 4, [])
    f = lambda x: int(np.float32(x).view(np.int32))  # noqa: E731
    assert got == [
        [(5, f(1.0)), (3, f(0.25))],
        [(5, f(0.5)), (3, f(0.125))],
        [(5, f(2.0)), (3, f(0.5))],
    ]


def _float64_sums() -> tuple[sparse.csr_array, sparse.csr_array]:
    """A float64 history whose product sums 1 + 4e-8 + 4e-8 on item 7 (row 0) and ±1e-50 on
    items 5 and 6 (row 1), over a float32 matrix."""
    history = _csr(
        [(0, 0, 1.0), (0, 1, 4e-8), (0, 2, 4e-8), (1, 3, -1e-50), (1, 4, 1e-50), (1, 0, 2.0)],
        (2, 8),
        np.float64,
    )
    matrix = _csr(
        [(0, 7, 1.0), (1, 7, 1.0), (2, 7, 1.0), (3, 5, 1.0), (4, 6, 1.0)], (8, 8), np.float32
    )
    return history, matrix


def test_a_float64_product_is_summed_in_float64_then_cast() -> None:
    """Weights 1 + 4e-8 + 4e-8 on one column: summed in float64 and cast, 1.00000008 rounds up
    to float32's next value above 1 (1 + 2**-23); summed in float32 each 4e-8 is lost (1.0). A
    float64 sum of ±1e-50 is nonzero (listed) but casts to ±0.0: the sign is kept, as the start
    listed it (−0.0 and 0.0 tie, in item order)."""
    history, matrix = _float64_sums()
    got = product_top_k(history, matrix, 3, [])
    assert got.ids.tolist() == [[7, -1, -1], [7, 5, 6]]
    bits = got.scores.view(np.uint32)
    assert bits[0, 0] == np.float32(1 + 2**-23).view(np.uint32) != np.float32(1).view(np.uint32)
    assert bits[1].tolist() == [np.float32(2).view(np.uint32), 0x80000000, 0]
    assert _lists(got) == _by_scipy(history, matrix, 3, [])


def test_a_minus_zero_in_the_last_column_leaves_the_next_querys_padding_alone() -> None:
    """Query 0's float64 sum of -1e-50 in the last column (7) is listed as -0.0; query 1 lists
    one item and pads two slots with id -1. The sign goes back by (query, item) cell, and a
    cell numbered ``query * n_cols + id`` would make query 1's padding (1 * 8 - 1) that same
    cell: its -inf must stay -inf (``_cell``'s stride of ``n_cols + 1``)."""
    history = _csr([(0, 3, -1e-50), (1, 0, 2.0)], (2, 8), np.float64)
    matrix = _csr([(0, 6, 1.0), (3, 7, 1.0)], (8, 8), np.float32)
    got = product_top_k(history, matrix, 3, [])
    assert got.ids.tolist() == [[7, -1, -1], [6, -1, -1]]
    minus_inf = np.float32(-np.inf).view(np.uint32)
    assert got.scores.view(np.uint32).tolist() == [
        [0x80000000, minus_inf, minus_inf],
        [np.float32(2).view(np.uint32), minus_inf, minus_inf],
    ]
    assert _lists(got) == _by_scipy(history, matrix, 3, [])


def _integer_entries(
    rng: np.random.Generator, n_rows: int, n_cols: int, weights: tuple[int, int], size: int
) -> list[tuple[int, int, int]]:
    """``size`` random (row, column, integer weight in ``[weights)``) entries."""
    columns = zip(rng.integers(0, n_rows, size), rng.integers(0, n_cols, size), strict=True)
    return [
        (int(r), int(c), int(w))
        for (r, c), w in zip(columns, rng.integers(*weights, size), strict=True)
    ]


@pytest.mark.parametrize("matrix_dtype", [np.float32, np.int64])
def test_an_integer_history_with_exclusions_is_scipys_product(matrix_dtype: type) -> None:
    """Counts as weights (int64), with a float32 or an integer ``M``: scipy's product is float64
    or int64, its sums listed as float32; excluded and own items never are."""
    rng = np.random.default_rng(23)
    for _ in range(20):
        left = _integer_entries(rng, 4, 8, (-3, 4), 10)
        right = _integer_entries(rng, 8, 8, (-2, 5), 40)
        excluded = _integer_entries(rng, 4, 8, (1, 2), 6)
        history = _csr(left, (4, 8), np.int64)
        matrix = _csr(right, (8, 8), matrix_dtype)
        matrix.sum_duplicates()
        exclude = _csr(excluded, (4, 8), np.int64)
        got = product_top_k(history, matrix, 5, [history, exclude])
        assert _lists(got) == _by_scipy(history, matrix, 5, [history, exclude])


class _Interrupted(Exception):
    """Raised inside the accumulator's ``try``."""


def test_an_interrupted_call_leaves_the_accumulator_zeroed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that fails after its sums are in the accumulator (here ``np.flatnonzero``
    raises: a MemoryError, a KeyboardInterrupt) zeroes every cell it wrote and every dropped
    cell: the accumulator is all zeros and the next call lists the oracle's lists."""
    rng = np.random.default_rng(29)
    matrix = _association(rng, 400, 40)
    history, exclude = _batch(rng, 16, 400, 6)
    product_top_k(history, matrix, 10, [history, exclude])

    def interrupted(*args: object, **kwargs: object) -> np.ndarray:
        raise _Interrupted

    broken = type(
        "numpy", (), {name: getattr(np, name) for name in dir(np) if not name.startswith("__")}
    )
    broken.flatnonzero = staticmethod(interrupted)
    with monkeypatch.context() as patched:
        patched.setattr(module, "np", broken)
        with pytest.raises(_Interrupted):
            product_top_k(history, matrix, 10, [history, exclude])
    assert _grids() and not any(g.any() for g in _grids())
    assert _lists(product_top_k(history, matrix, 10, [history, exclude])) == _by_dense(
        history, matrix, 10, [history, exclude]
    )


def _flat_lists(got: FlatTop, n: int) -> list[list[tuple[int, int]]]:
    """Flat rows as each query's (item, score bits) list, asserting the layout a source reads:
    the documented dtypes, queries ascending, each query's ranks 1, 2, … in row order."""
    assert (got.query.dtype, got.items.dtype, got.scores.dtype, got.ranks.dtype) == (
        np.intp,
        np.int32,
        np.float32,
        np.int16,
    )
    assert (np.diff(got.query) >= 0).all()
    out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for q, item, bits, rank in zip(
        got.query.tolist(),
        got.items.tolist(),
        got.scores.view(np.int32).tolist(),
        got.ranks.tolist(),
        strict=True,
    ):
        out[q].append((item, bits))
        assert rank == len(out[q])
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), weights), max_size=12),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7), weights), max_size=50),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 7), weights), max_size=8),
    st.booleans(),
    st.sampled_from([0, 1, 3, 20]),
)
def test_flat_rows_are_scipys_product_sorted(
    left: list[tuple[int, int, float]],
    right: list[tuple[int, int, float]],
    excluded: list[tuple[int, int, float]],
    wide: bool,
    k: int,
) -> None:
    """``product_flat_top`` (one flat sort of keys carrying the query) against scipy's product
    sorted in Python: ties by item, negative and cancelled sums, a float64 side, k = 0."""
    history = _csr(left, (4, 8), np.float64 if wide else np.float32)
    matrix = _csr(right, (8, 8), np.float32)
    matrix.sum_duplicates()
    exclude = _csr(excluded, (4, 8), np.float32)
    for drop in ([], [exclude], [history, exclude]):
        got = product_flat_top(history, matrix, k, drop)
        assert _flat_lists(got, 4) == _by_scipy(history, matrix, k, drop)


@pytest.mark.parametrize("seed", range(4))
def test_flat_rows_of_batches_are_the_dense_oracles_lists(seed: int) -> None:
    """Batches of 1, 16 and 64 queries (the flat sort) and 65 and 200 (past ``FLAT_QUERIES``:
    the padded rows, flattened), ties everywhere, rows wider than ``SORT_WIDTH``."""
    rng = np.random.default_rng(100 + seed)
    matrix = _association(rng, 500, 60)
    for n in (1, 16, 64, 65, 200):
        history, exclude = _batch(rng, n, 500, 8)
        for k in (1, 10, 50, 400):
            expected = _by_dense(history, matrix, k, [history, exclude])
            got = product_flat_top(history, matrix, k, [history, exclude])
            assert _flat_lists(got, n) == expected


def test_flat_rows_keep_a_float64_sums_sign_at_zero() -> None:
    """A float64 sum of ±1e-50 is listed and casts to ±0.0: the flat rows keep −0.0's sign
    (the key reads it as 0.0: a tie, in item order), as ``product_top_k`` does."""
    history, matrix = _float64_sums()
    got = product_flat_top(history, matrix, 3, [])
    assert got.items.tolist() == [7, 7, 5, 6]
    assert got.scores.view(np.uint32)[1:].tolist() == [
        np.float32(2).view(np.uint32),
        0x80000000,
        0,
    ]
    assert _flat_lists(got, 2) == _by_scipy(history, matrix, 3, [])


def test_a_catalogue_too_wide_for_the_flat_key_is_ranked_by_rows() -> None:
    """2 ** 26 items (27 column bits) leave no room for a 64-query batch's 6 query bits above 32
    score bits: those batches take the padded rows (a key with the query would spill past 64
    bits and mix queries); 2 queries (1 bit) fit and take the flat sort. The oracle is scipy's
    lists of the same batch on a 64-item catalogue, its items moved to the wide one's last 50."""
    rng = np.random.default_rng(5)
    n_cols, far = 1 << 26, (1 << 26) - 50
    rows, cols = np.repeat(np.arange(40), 5), rng.integers(0, 50, 200)
    values = rng.choice(np.array([0.5, 0.25, 0.125], np.float32), 200)
    small = sparse.csr_array((values, (rows, cols)), shape=(64, 64))
    # 64 rows (the history's items) to 2 ** 26 columns: the product is as wide, the index small
    wide = sparse.csr_array((values, (rows, cols + far)), shape=(64, n_cols))
    for n in (64, 2):
        q = np.repeat(np.arange(n), 3)
        items, gone = rng.integers(0, 40, len(q)), rng.integers(0, 50, len(q))
        ones = np.ones(len(q), np.float32)
        history = sparse.csr_array((ones, (q, items)), shape=(n, 64))
        exclude = sparse.csr_array((ones, (q, gone + far)), shape=(n, n_cols))
        expected = _by_scipy(
            history,
            small,
            20,
            [sparse.csr_array((ones, (q, gone)), shape=(n, 64))],
        )
        got = product_flat_top(history, wide, 20, [exclude])
        assert _flat_lists(got, n) == [[(c + far, b) for c, b in row] for row in expected]


def _watch(monkeypatch: pytest.MonkeyPatch, *names: str) -> list[str]:
    """The names of ``module``'s functions among ``names`` as they are called (the real ones
    run): which path a call took, where the rows alone cannot tell."""
    calls: list[str] = []
    for name in names:
        real = getattr(module, name)

        def watched(
            *args: object, _real: Callable[..., object] = real, _name: str = name
        ) -> object:
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(module, name, watched)
    return calls


def test_batches_up_to_flat_queries_and_only_those_take_the_flat_sort(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flat sort is an optimisation whose rows are the padded path's, so only the path
    taken shows it is on: batches of 1, 16 and 64 queries (``FLAT_QUERIES``, measured in
    BENCHMARKS §133) are ranked by ``_flat_ranked`` alone, 65 by ``_ranked`` alone, each with
    the dense oracle's lists."""
    calls = _watch(monkeypatch, "_ranked", "_flat_ranked")
    rng = np.random.default_rng(11)
    matrix = _association(rng, 500, 60)
    for n, ranker in (
        (1, "_flat_ranked"),
        (16, "_flat_ranked"),
        (64, "_flat_ranked"),
        (65, "_ranked"),
    ):
        history, exclude = _batch(rng, n, 500, 8)
        calls.clear()
        got = product_flat_top(history, matrix, 10, [history, exclude])
        assert calls == [ranker], n
        assert _flat_lists(got, n) == _by_dense(history, matrix, 10, [history, exclude])


def test_a_batch_that_reaches_no_neighbour_gathers_once_and_lists_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Histories whose items have no neighbour (and empty ones) list nothing, found by one
    pass over the entries, not a second one inside ``product_top_k``'s all-padding rows."""
    calls = _watch(monkeypatch, "_entries", "_ranked", "_flat_ranked")
    matrix = sparse.csr_array(
        (np.ones(3, np.float32), ([0, 1, 2], [3, 4, 5])), shape=(50, 50), dtype=np.float32
    )
    history = sparse.csr_array(
        (np.ones(4, np.float32), ([0, 0, 2, 2], [10, 20, 30, 49])), shape=(3, 50)
    )
    got = product_flat_top(history, matrix, 5, [history])
    assert calls == ["_entries"]
    assert _flat_lists(got, 3) == [[], [], []] == _by_scipy(history, matrix, 5, [history])
