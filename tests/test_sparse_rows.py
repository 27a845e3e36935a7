"""The request path's sparse helpers agree with scipy's own operations on random matrices."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsmith.digit_sort import by_digits
from recsmith.sparse_rows import (
    SORTED_PAIRS,
    contains,
    csr_from_pairs,
    csr_of_rows,
    distinct_keys,
    entry_values,
    format_checked,
    gather_rows,
    in_sorted,
    newest_first,
    pairs_held,
    row_values,
    sorted_distinct,
    stored_in_every_row,
    stored_in_rows,
)

pairs = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), max_size=40)


@settings(max_examples=150, deadline=None)
@given(pairs, st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9)), max_size=30))
def test_construction_and_membership_match_scipy(
    entries: list[tuple[int, int]], probes: list[tuple[int, int]]
) -> None:
    rows = np.asarray([r for r, _ in entries], np.int64)
    cols = np.asarray([c for _, c in entries], np.int64)
    built = csr_from_pairs(7, 10, rows, cols)
    reference = (
        sparse.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(7, 10)).toarray()
        > 0
    )
    assert np.array_equal(built.toarray() > 0, reference)
    assert np.array_equal(built.toarray()[reference], np.ones(reference.sum(), np.float32))
    pr = np.asarray([r for r, _ in probes], np.int64)
    pc = np.asarray([c for _, c in probes], np.int64)
    assert np.array_equal(contains(built, pr, pc), reference[pr, pc])


@settings(max_examples=100, deadline=None)
@given(pairs, st.lists(st.integers(-1, 6), max_size=8))
def test_gather_rows_matches_row_indexing(entries: list[tuple[int, int]], index: list[int]) -> None:
    rows = np.asarray([r for r, _ in entries], np.int64)
    cols = np.asarray([c for _, c in entries], np.int64)
    matrix = csr_from_pairs(7, 10, rows, cols)
    idx = np.asarray(index, np.int64)
    got_rows, got_cols = gather_rows(matrix, idx)
    got = csr_from_pairs(len(idx), 10, got_rows, got_cols).toarray()
    expected = np.zeros((len(idx), 10), np.float32)
    known = idx >= 0
    expected[known] = matrix.toarray()[idx[known]]
    assert np.array_equal(got, expected)


def test_contains_sorts_unsorted_matrices_first() -> None:
    unsorted = sparse.csr_array(
        (np.ones(3, np.float32), np.asarray([5, 1, 3]), np.asarray([0, 3])), shape=(1, 6)
    )
    unsorted.has_sorted_indices = False
    assert contains(unsorted, np.zeros(6, np.int64), np.arange(6)).tolist() == [
        False,
        True,
        False,
        True,
        False,
        True,
    ]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(2**40), 2**40), max_size=60),
    st.lists(st.integers(-(2**40), 2**40), max_size=60),
)
def test_in_sorted_agrees_with_isin(pool: list[int], extra: list[int]) -> None:
    stored = np.sort(np.asarray(pool, np.int64))
    wanted = np.asarray(pool[::2] + extra, np.int64)  # some members, some maybe not
    assert in_sorted(stored, wanted).tolist() == np.isin(wanted, stored).tolist()


#: small integer values (some negative, so sums cancel to 0) and one that is not a float32
weights = st.sampled_from([1.0, 2.0, -1.0, 0.5, 0.1])


def stored(
    entries: list[tuple[int, int, float]], shape: tuple[int, int], dtype: type = np.float32
) -> sparse.csr_array:
    """A CSR matrix holding ``entries`` (row, column, value) as given: rows grouped, columns
    in their order within a row, duplicates kept (not canonical)."""
    rows = np.asarray([r for r, _, _ in entries], np.int64)
    order = np.argsort(rows, kind="stable")
    return sparse.csr_array(
        (
            np.asarray([w for _, _, w in entries], dtype)[order],
            np.asarray([c for _, c, _ in entries], np.int32)[order],
            np.searchsorted(rows[order], np.arange(shape[0] + 1)),
        ),
        shape=shape,
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7), weights), max_size=30),
    st.lists(st.integers(-1, 5), min_size=1, max_size=6),
    st.sampled_from([0, 1 << 22]),
)
def test_row_values_are_scipys_element_access(
    entries: list[tuple[int, int, float]], index: list[int], max_cells: int
) -> None:
    """Against scipy's ``matrix[rows, cols]`` at every cell of the indexed rows, on a matrix
    with duplicate, unsorted entries (which scipy's access adds up): the dense grid (large
    ``max_cells``) and scipy's own path (0) both return its values bit for bit."""
    matrix = stored(entries, (6, 8))
    idx = np.asarray(index, np.int64)
    q = np.repeat(np.flatnonzero(idx >= 0), 8)
    cols = np.tile(np.arange(8), len(q) // 8)
    got = row_values(matrix, idx, q, cols, max_cells)
    expected = np.asarray(matrix[idx[q], cols]).ravel() if len(q) else np.zeros(0, np.float32)
    assert got.dtype == matrix.dtype
    assert np.array_equal(got.view(np.uint8), expected.astype(np.float32).view(np.uint8))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7), weights), max_size=30),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), max_size=25),
    st.booleans(),
)
def test_entry_values_are_scipys_element_access(
    entries: list[tuple[int, int, float]], probes: list[tuple[int, int]], canonical: bool
) -> None:
    """Against scipy's ``matrix[rows, cols]``, bit for bit: a canonical matrix (the searched
    path; some entries stored as explicit zeros) and one with duplicate entries (scipy's)."""
    matrix = stored(entries, (6, 8))
    if canonical:
        matrix.sum_duplicates()
        assert matrix.has_canonical_format
    pr = np.asarray([r for r, _ in probes], np.int64)
    pc = np.asarray([c for _, c in probes], np.int64)
    got = entry_values(matrix, pr, pc)
    expected = np.asarray(matrix[pr, pc]).ravel() if len(pr) else np.zeros(0, np.float32)
    assert got.dtype == matrix.dtype
    assert np.array_equal(got.view(np.uint8), expected.astype(np.float32).view(np.uint8))


@settings(max_examples=150, deadline=None)
@given(
    pairs,
    st.lists(st.integers(-1, 6), max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.integers(0, 12)), max_size=6),
    st.booleans(),
    st.sampled_from([10, 13]),
)
@example([(0, 1), (0, 1), (2, 3)], [0, -1, 2, 0], [], True, 10)  # a count of 2: data still 1
@example([(1, 5), (1, 2), (1, 5)], [1], [], False, 10)  # unsorted, repeated
@example([(1, 5)], [1], [], True, 13)  # items joined after the matrix: the result is wider
@example([(1, 2), (1, 2)], [1], [], False, 10)  # sorted rows, a column twice: not canonical
def test_csr_of_rows_is_the_rows_asked_and_the_pairs_added(
    entries: list[tuple[int, int]],
    index: list[int],
    added: list[tuple[int, int]],
    canonical: bool,
    width: int,
) -> None:
    """Rows ``index`` of a matrix (nothing for -1) with pairs added, as a 0/1 matrix ``width``
    wide (a catalogue grown past the matrix's 10 columns: an added pair may name a new item):
    read off the dense matrix, whichever path built it (rows copied as they stand from a
    canonical matrix with no pair added; else the pairs' construction, a matrix holding its
    entries unsorted and repeated included); its arrays and dtypes the pairs' construction's."""
    rows = np.asarray([r for r, _ in entries], np.int64)
    cols = np.asarray([c for _, c in entries], np.int64)
    if canonical:  # sorted distinct keys, int32 arrays as a release loads them, counts as data
        keys, counts = np.unique(rows * 10 + cols, return_counts=True)
        at_row, at_col = keys // 10, keys % 10
    else:  # each row's entries as drawn, unsorted and repeated: canonical only by chance
        by_row = np.argsort(rows, kind="stable")
        at_row, at_col, counts = rows[by_row], cols[by_row], np.ones(len(rows))
    matrix = sparse.csr_array(
        (
            counts.astype(np.float32),
            at_col.astype(np.int32),
            np.searchsorted(at_row, np.arange(8)).astype(np.int32),
        ),
        shape=(7, 10),
    )
    assert matrix.indices.dtype == np.int32
    idx = np.asarray(index, np.int64)
    n = len(idx)
    extra_rows = np.asarray([r % max(n, 1) for r, _ in added][: n and None], np.int64)
    extra_cols = np.asarray([c % width for _, c in added][: len(extra_rows)], np.int64)
    dense = np.zeros((n, width), bool)
    known = idx >= 0
    dense[known, :10] = matrix.toarray()[idx[known]] > 0
    dense[extra_rows, extra_cols] = True
    for got in (
        csr_of_rows(matrix, idx, width, extra_rows, extra_cols),
        *([csr_of_rows(matrix, idx, width)] if len(extra_rows) == 0 else []),
    ):
        assert got.shape == (n, width) and got.has_canonical_format
        assert np.array_equal(got.toarray() > 0, dense)
        assert np.array_equal(got.data, np.ones(dense.sum(), np.float32))
        want = csr_from_pairs(n, width, *dense.nonzero())
        for name in ("indptr", "indices", "data"):
            assert getattr(got, name).dtype == getattr(want, name).dtype, name
            assert np.array_equal(getattr(got, name), getattr(want, name)), name
        got.copy().check_format(full_check=True)


@pytest.mark.parametrize("added", [False, True])
def test_csr_of_rows_refuses_a_width_narrower_than_the_matrix(added: bool) -> None:
    """Column 8 does not fit 5 columns: refused naming ``n_cols``, on the rows' copy (no pair
    added) and on the pairs' construction alike."""
    matrix = sparse.csr_array(
        (np.ones(2, np.float32), np.array([1, 8], np.int32), np.array([0, 2, 2], np.int32)),
        shape=(2, 10),
    )
    assert matrix.has_canonical_format
    pairs = (np.array([1]), np.array([0])) if added else ()
    with pytest.raises(ValueError, match="n_cols 5 < the matrix's 10 columns"):
        csr_of_rows(matrix, np.array([0, 1]), 5, *pairs)
    assert csr_of_rows(matrix, np.array([0, 1]), 10, *pairs).shape == (2, 10)  # as wide: fine


@pytest.mark.parametrize(
    ("indices", "canonical"), [([1, 3, 0], True), ([1, 1, 3], False), ([3, 1, 0], False)]
)
def test_format_checked_keeps_the_flag_computed_before_it_is_asked(
    indices: list[int], canonical: bool
) -> None:
    """Rows [1, 3], [0] are canonical; [1, 1] (sorted, a column twice) and [3, 1] (unsorted)
    are not: the flag is held on the matrix (scipy's cache) before any caller reads it, with
    that value, and the arrays are left as they are."""
    matrix = sparse.csr_array(
        (np.ones(3, np.float32), np.array(indices, np.int32), np.array([0, 2, 3], np.int32)),
        shape=(2, 10),
    )
    assert "_has_canonical_format" not in matrix.__dict__  # scipy computes it when read
    assert format_checked(matrix) is matrix
    assert matrix.__dict__["_has_canonical_format"] is canonical
    assert matrix.indices.tolist() == indices


@settings(max_examples=100, deadline=None)
@given(pairs, st.integers(1, 7), st.sampled_from([10, 2**31 + 9]))
def test_construction_is_what_scipy_builds(
    entries: list[tuple[int, int]], n_rows: int, n_cols: int
) -> None:
    """``csr_from_pairs`` fills a copy of a cached empty matrix instead of calling scipy's
    constructor: the result must be the matrix scipy's constructor builds from the same pairs
    (arrays, index dtypes, shape) and pass its full format check, and two results of one shape
    must share no arrays (the cache hands out copies)."""
    rows = np.asarray([r % n_rows for r, _ in entries], np.int64)
    cols = np.asarray([c for _, c in entries], np.int64)
    built = csr_from_pairs(n_rows, n_cols, rows, cols)
    keys = np.unique(rows * n_cols + cols)  # scipy's constructor, as the helper called it before
    reference = sparse.csr_array(
        (
            np.ones(len(keys), np.float32),
            (keys % n_cols).astype(np.int32),
            np.searchsorted(keys // n_cols, np.arange(n_rows + 1)).astype(np.int64),
        ),
        shape=(n_rows, n_cols),
    )
    dense = np.zeros((n_rows, min(n_cols, 10)), np.float32)  # and the entries asked for
    dense[rows, cols] = 1.0
    assert np.array_equal(reference[:, : dense.shape[1]].toarray(), dense)
    assert built.shape == reference.shape and built.dtype == np.float32
    assert built.has_canonical_format
    for name in ("indptr", "indices", "data"):
        got, want = getattr(built, name), getattr(reference, name)
        assert got.dtype == want.dtype, name
        assert np.array_equal(got, want), name
    built.copy().check_format(full_check=True)  # on a copy: the check recasts index arrays
    again = csr_from_pairs(n_rows, n_cols, rows[:0], cols[:0])
    assert again.nnz == 0 and not np.shares_memory(again.indptr, built.indptr)
    built.data[:] = 7.0  # a caller scaling its matrix in place touches nothing cached
    assert csr_from_pairs(n_rows, n_cols, rows, cols).data.tolist() == [1.0] * built.nnz


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), max_size=60), st.integers(0, 3))
def test_sorted_distinct_is_np_unique(values: list[int], repeats: int) -> None:
    """The distinct keys, sorted, as ``np.unique`` returns them (the call it replaced), for
    keys given unsorted and each up to four times."""
    key = np.asarray(values * (repeats + 1), np.int64)
    key = key[np.random.default_rng(len(values)).permutation(len(key))]
    got = sorted_distinct(key)
    expected = np.unique(key)
    assert got.dtype == expected.dtype
    assert got.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(
    pairs,
    st.lists(st.integers(-1, 6), max_size=6),
    st.integers(0, 7),
    st.integers(0, 2**31),
    st.sampled_from([0, 1 << 20]),
    st.sampled_from([0, 1 << 20]),
)
def test_stored_in_rows_is_contains_over_the_grid(
    entries: list[tuple[int, int]],
    index: list[int],
    width: int,
    seed: int,
    min_cells: int,
    max_cells: int,
) -> None:
    """Against ``contains`` (what it replaced) and a walk over the cells: grids with an id
    twice in a row, rows of unknown queries (-1), unsorted and duplicated stored entries, no
    entries at all; read from the rows × distinct columns grid (``max_cells`` large; from any
    size: ``coded_cells`` 0), or past it by the sorted rows (``min_cells`` 0) and ``contains``
    itself (small grids)."""
    rows = np.asarray([r for r, _ in entries], np.int64)
    cols = np.asarray([c for _, c in entries], np.int64)
    matrix = sparse.csr_array(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(7, 10)
    )  # scipy's COO conversion keeps duplicates and need not sort
    idx = np.asarray(index, np.int64)
    ids = np.random.default_rng(seed).integers(0, 10, (len(idx), width))
    got = stored_in_rows(matrix, idx, ids, min_cells, max_cells, coded_cells=0)
    dense = matrix.toarray() != 0
    walk = [[bool(i >= 0 and dense[i, c]) for c in row] for i, row in zip(idx, ids, strict=True)]
    assert got.shape == ids.shape
    assert got.tolist() == walk
    known = idx >= 0
    via_contains = contains(matrix, np.repeat(idx[known], width), ids[known].ravel())
    assert got[known].ravel().tolist() == via_contains.tolist()


def _walk_rows(matrix: sparse.csr_array, ids: np.ndarray) -> list[list[bool]]:
    """The oracle of ``stored_in_every_row``: each row's stored columns as a set, asked per id."""
    sets = [
        set(matrix.indices[matrix.indptr[r] : matrix.indptr[r + 1]].tolist())
        for r in range(matrix.shape[0])
    ]
    return [[i in row for i in ids.tolist()] for row in sets]


@settings(max_examples=150, deadline=None)
@given(pairs, st.lists(st.integers(0, 9), max_size=12))
def test_stored_in_every_row_is_a_walk_over_each_row(
    entries: list[tuple[int, int]], ids: list[int]
) -> None:
    """One list of ids (repeats allowed) asked of every row: the grid's answer is each row's
    set of stored columns; past ``max_cells``, or below ``coded_cells`` cells asked, there is
    no grid (None) for the caller."""
    matrix = sparse.csr_array(
        (np.ones(len(entries), np.float32), ([r for r, _ in entries], [c for _, c in entries])),
        shape=(7, 10),
    )
    asked = np.asarray(ids, np.int64)
    got = stored_in_every_row(matrix, asked, coded_cells=0)
    assert got is not None and got.shape == (7, len(asked))
    assert got.tolist() == _walk_rows(matrix, asked)
    assert stored_in_every_row(matrix, asked, max_cells=0, coded_cells=0) is None
    assert stored_in_every_row(matrix, asked, coded_cells=7 * len(asked) + 1) is None


def test_matrices_looked_up_in_turn_are_each_read_from_their_own_codes() -> None:
    """The last matrix coded is remembered per thread and its codes stay in the slots: two
    matrices asked in turn (A, B, A, B), a copy of A (another object, the same entries), and A
    changed by a new ``indices`` array, each answer against the walk, in this thread and in
    another one (its own slots and memory)."""
    rng = np.random.default_rng(3)

    def random_matrix(n_cols: int) -> sparse.csr_array:
        dense = rng.random((6, n_cols)) < 0.2
        return sparse.csr_array(dense.astype(np.float32))

    a, b = random_matrix(50), random_matrix(80)
    ids = rng.integers(0, 50, (6, 30))

    def check(matrix: sparse.csr_array) -> None:
        stored = _walk_rows(matrix, np.arange(matrix.shape[1]))  # [row][column]
        got = stored_in_rows(matrix, np.arange(6), ids, coded_cells=0)
        assert got.tolist() == [[stored[r][c] for c in ids[r].tolist()] for r in range(6)]
        every = stored_in_every_row(matrix, ids[0], coded_cells=0)
        assert every is not None and every.tolist() == _walk_rows(matrix, ids[0])

    for matrix in (a, b, a, b, a.copy(), a):
        check(matrix)
    a.indices = (a.indices + 1) % 50  # new arrays: another matrix, coded again
    check(a)
    errors: list[BaseException] = []

    def other() -> None:
        try:
            check(b)
            check(a)
        except BaseException as error:  # handed back to the test's thread
            errors.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert not errors
    check(b)


def test_a_matrix_edited_in_place_after_its_lookup_is_coded_again() -> None:
    """The remembered matrix, the same object, edited in place: ``eliminate_zeros`` (a new
    ``indices``, its ``indptr`` rewritten in place), a new ``indptr`` alone, then ``resize`` to
    more columns (the same ``indptr`` and ``indices`` objects, a wider slot table): each answer
    against the walk of what it stores now."""
    matrix = sparse.csr_array(
        (np.ones(3, np.float32), np.array([3, 7, 8]), np.array([0, 2, 3])), shape=(2, 10)
    )
    ids = np.tile(np.arange(10), (2, 1))

    def check() -> None:
        stored = _walk_rows(matrix, np.arange(10))
        assert stored_in_rows(matrix, np.arange(2), ids, coded_cells=0).tolist() == stored
        every = stored_in_every_row(matrix, ids[0], coded_cells=0)
        assert every is not None and every.tolist() == stored

    check()
    matrix.data[0] = 0
    matrix.eliminate_zeros()  # row 0 stores 7 alone, row 1 still 8
    check()
    matrix.indptr = np.array([0, 0, 2], matrix.indptr.dtype)  # both to row 1, the same indices
    check()
    indptr, indices = matrix.indptr, matrix.indices
    matrix.resize((2, 1 << 20))
    assert matrix.indptr is indptr and matrix.indices is indices
    check()


def test_the_remembered_matrix_is_freed_once_dropped() -> None:
    """A matrix looked up and dropped is freed, its index arrays too (the memo holds them
    weakly): an offline batch's, past ``max_cells`` (no grid), and a coded one."""
    for max_cells in (0, 1 << 22):
        matrix = sparse.csr_array(np.eye(40, 300, dtype=np.float32))
        ids = np.zeros((40, 30), np.int64)
        stored_in_rows(matrix, np.arange(40), ids, max_cells=max_cells, coded_cells=0)
        held = [weakref.ref(x) for x in (matrix, matrix.indptr, matrix.indices)]
        del matrix
        gc.collect()
        assert [x() for x in held] == [None] * 3, max_cells


def test_newest_first_stores_each_items_place_and_keeps_the_newer_of_a_repeat() -> None:
    # row 0 lists 5, 3, 5 (5 again, older), 9; row 1 nothing; row 2 lists 3
    rows, cols = np.array([0, 0, 0, 0, 2]), np.array([5, 3, 5, 9, 3])
    matrix = newest_first(3, 10, rows, cols)
    assert matrix.has_canonical_format and matrix.dtype == np.float32
    got = {(int(r), int(c)): float(v) for r, c, v in zip(*sparse.find(matrix), strict=True)}
    assert got == {(0, 5): 1.0, (0, 3): 2.0, (0, 9): 4.0, (2, 3): 1.0}
    empty = newest_first(2, 10, np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert empty.shape == (2, 10) and empty.nnz == 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=60),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=40),
    st.sampled_from([(1 << 22, 0), (0, 0), (3, 0), (1 << 22, SORTED_PAIRS)]),
)
# a held item past every asked one, whose key would be an asked pair's of the next query were
# the keys' item span read from the asked items alone: (0, 12) is 0 × 11 + 12 = 1 × 11 + 1
@example(held=[(5, 0), (0, 12)], asked=[(1, 1), (1, 10)], limits=(1 << 22, SORTED_PAIRS))
def test_pairs_held_is_a_set_of_pairs(
    held: list[tuple[int, int]], asked: list[tuple[int, int]], limits: tuple[int, int]
) -> None:
    """Against a Python set, on the grid (``1 << 22`` cells, no least count of held pairs) and
    on the sorted search it falls back to (0 or 3 cells: a grid of 6 queries never fits; or
    fewer held pairs than ``SORTED_PAIRS``); pairs held twice, asked twice, asked pairs among the
    held ones and held items past every asked one."""
    max_cells, min_pairs = limits
    asked = asked + held[::3]
    q, i = (np.asarray([p[j] for p in held], np.int32) for j in (0, 1))
    aq, ai = (np.asarray([p[j] for p in asked], np.int32) for j in (0, 1))
    got = pairs_held(q, i, aq, ai, 6, max_cells=max_cells, min_pairs=min_pairs)
    assert got.dtype == bool
    assert got.tolist() == [pair in set(held) for pair in asked]


def _request(rng: np.random.Generator, n_queries: int, top_item: int) -> tuple[np.ndarray, ...]:
    """A request batch's candidates (250 a query among 100,000 items) and its filler (30 of 40
    popular items a query, the largest item of the catalogue among them; some of them already
    candidates)."""
    q = np.repeat(np.arange(n_queries), 250).astype(np.int32)
    i = rng.integers(0, 100_000, len(q)).astype(np.int32)
    popular = rng.choice(top_item, 40, replace=False)
    popular[0] = top_item
    i[::7] = rng.choice(popular, len(i[::7]))
    i[-1] = top_item
    aq = np.repeat(np.arange(n_queries), 30).astype(np.int32)
    ai = np.tile(popular[:30], n_queries).astype(np.int32)
    return q, i, aq, ai


@pytest.mark.parametrize("n_queries", [1, 64])
@pytest.mark.parametrize("top_item", [99_990, 400])
def test_pairs_held_for_a_batch_of_candidates_and_its_filler(n_queries: int, top_item: int) -> None:
    """A request's shape against a Python set: one query's 250 candidates (the sorted search)
    and a batch of 64's 16,000 (the grid), the filler's items all small or one at the end of
    the catalogue."""
    rng = np.random.default_rng(3)
    q, i, aq, ai = _request(rng, n_queries, top_item)
    assert (len(q) >= SORTED_PAIRS) == (n_queries == 64)
    held = set(zip(q.tolist(), i.tolist(), strict=True))
    want = [pair in held for pair in zip(aq.tolist(), ai.tolist(), strict=True)]
    assert 0 < sum(want) < len(want)
    assert pairs_held(q, i, aq, ai, n_queries).tolist() == want


def test_pairs_held_codes_more_asked_items_than_a_byte_holds() -> None:
    """300 distinct asked items (codes past 255) on the grid, against a Python set."""
    rng = np.random.default_rng(8)
    q = rng.integers(0, 4, 3000).astype(np.int32)
    i = rng.integers(0, 2000, 3000).astype(np.int32)
    aq = rng.integers(0, 4, 1200).astype(np.int32)
    ai = np.concatenate([rng.choice(2000, 300, replace=False)] * 4).astype(np.int32)
    ai[::2] = i[: len(ai[::2])]  # half of them asked where held
    aq[::2] = q[: len(aq[::2])]
    assert len(np.unique(ai)) > 255 and len(q) >= SORTED_PAIRS
    held = set(zip(q.tolist(), i.tolist(), strict=True))
    want = [pair in held for pair in zip(aq.tolist(), ai.tolist(), strict=True)]
    assert 0 < sum(want) < len(want)
    assert pairs_held(q, i, aq, ai, 4).tolist() == want


def test_distinct_keys_by_digits_is_numpys_unique() -> None:
    """A batch's keys (query × catalogue + item), past the rows from which the argsort goes by
    16-bit digits (asserted); and negative keys, which keep numpy's argsort: all negative, and
    straddling zero (whose two's complement words no digit pass orders)."""
    rng = np.random.default_rng(5)
    for n, low in ((20_000, 0), (20_000, -(1 << 40)), (7_000, 0)):
        key = rng.integers(0, 64, n).astype(np.int64) * 100_000 + rng.integers(0, 300, n) + low
        if low == 0:
            assert by_digits(n, int(key.max()).bit_length())
        _assert_is_unique(key)
    _assert_is_unique(rng.integers(-3_000_000, 3_000_000, 20_000))


@pytest.mark.parametrize("bits", [17, 33, 49])
def test_distinct_keys_reads_every_bit_of_the_largest_key(bits: int) -> None:
    """Keys below 2**16 but one, 2**(bits - 1): the passes must cover that key's top bit, or it
    sorts among the small ones by its lower digits (all zero)."""
    rng = np.random.default_rng(bits)
    key = rng.integers(0, 1 << 16, 20_000)
    key[7] = 1 << (bits - 1)
    assert by_digits(len(key), bits)
    _assert_is_unique(key)


def _assert_is_unique(key: np.ndarray) -> None:
    unique, place = distinct_keys(key)
    want_unique, want_place = np.unique(key, return_inverse=True)
    assert unique.tolist() == want_unique.tolist()
    assert place.tolist() == want_place.ravel().tolist()


@pytest.mark.parametrize("seed", range(8))
def test_entry_values_search_long_and_empty_rows(seed: int) -> None:
    """Against scipy's element access on a canonical matrix with rows of up to ~300 stored
    columns (the halving steps' widest spans), empty rows first and last, and probes at stored
    columns, between them, before the first and past the last of a row."""
    rng = np.random.default_rng(seed)
    n_rows, n_cols = 12, 400
    dense = np.where(rng.random((n_rows, n_cols)) < rng.uniform(0.0, 0.8, (n_rows, 1)), 1.0, 0)
    dense *= rng.random((n_rows, n_cols))
    dense[[0, -1]] = 0.0
    matrix = sparse.csr_array(dense.astype(np.float32))
    assert matrix.has_canonical_format
    rows = rng.integers(0, n_rows, 3000)
    cols = np.where(rng.random(3000) < 0.5, rng.integers(0, n_cols, 3000), 0)
    cols[::7] = n_cols - 1
    got = entry_values(matrix, rows, cols)
    assert np.array_equal(got, np.asarray(matrix[rows, cols]).ravel())
    assert (got > 0).sum() > 100


@pytest.mark.parametrize("canonical", [True, False])
def test_entry_values_of_columns_outside_the_matrix_are_zero(canonical: bool) -> None:
    """Hand-computed: row 1 stores 5 at column 0 and 7 at column 2 of 3 columns. Columns past
    the matrix (3: once read as row 1's column 0 by the start's flat search; 2**32 + 2: column
    2 once cast to int32) and negative ones hold nothing, on the searched (canonical) path and
    on scipy's (duplicate entries), where scipy alone raises or wraps."""
    data = np.array([5.0, 7.0] if canonical else [2.0, 3.0, 7.0], np.float32)
    cols_stored = np.array([0, 2] if canonical else [0, 0, 2], np.int32)
    indptr = np.array([0, 0, len(data)], np.int32)
    matrix = sparse.csr_array((data, cols_stored, indptr), shape=(2, 3))
    assert matrix.has_canonical_format == canonical and matrix.indices.dtype == np.int32
    rows = np.array([0, 1, 1, 1, 1, 0, 1], np.int64)
    cols = np.array([3, 0, 2**32 + 2, 2, -1, -3, 3], np.int64)
    got = entry_values(matrix, rows, cols)
    assert got.dtype == np.float32
    assert got.tolist() == [0.0, 5.0, 0.0, 7.0, 0.0, 0.0, 0.0]
    # negative columns alone (none past the end): scipy's access would read column 2
    assert entry_values(matrix, rows[[2, 4]], np.array([-1, -1])).tolist() == [0.0, 0.0]
    # int64 indices hold any int32 column: the search itself finds nothing outside
    matrix.indices, matrix.indptr = matrix.indices.astype(np.int64), indptr.astype(np.int64)
    small = np.array([3, -1, 0, 2], np.int32)
    assert entry_values(matrix, rows[:4], small).tolist() == [0.0, 0.0, 5.0, 7.0]


def test_entry_values_search_columns_past_int16_with_int64_indices() -> None:
    """A canonical matrix of 70,000 columns held with int64 indices and indptr (as scipy keeps
    a matrix past 2**31 entries): stored columns from 32,768 and 65,536 up, and probes at
    columns 65,536 apart (equal after a cast to 16 bits), against the dense values."""
    rng = np.random.default_rng(5)
    n_rows, n_cols = 6, 70_000
    probe_cols = np.array([5, 40_000, 65_541, 69_999, 4_463, 32_768, 0, 65_536], np.int64)
    dense = np.zeros((n_rows, n_cols), np.float32)
    for r in range(1, n_rows):
        stored_cols = np.r_[rng.choice(n_cols, 300, replace=False), probe_cols[r::2]]
        dense[r, stored_cols] = rng.uniform(1.0, 2.0, len(stored_cols))
    matrix = sparse.csr_array(dense)
    matrix.indices = matrix.indices.astype(np.int64)
    matrix.indptr = matrix.indptr.astype(np.int64)
    assert matrix.has_canonical_format and matrix.indices.dtype == np.int64
    rows = np.repeat(np.arange(n_rows), len(probe_cols))
    cols = np.tile(probe_cols, n_rows)
    got = entry_values(matrix, rows, cols)
    assert np.array_equal(got, dense[rows, cols])
    assert (got[cols >= 32_768] > 0).sum() >= 10
