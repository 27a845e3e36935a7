"""The request path's sparse helpers agree with scipy's own operations on random matrices."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsmith.sparse_rows import contains, csr_from_pairs, gather_rows, in_sorted

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
