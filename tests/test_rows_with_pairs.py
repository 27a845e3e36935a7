"""``csr_of_rows``' compiled pass (``row_kernel.rows_with_pairs``): the same canonical rows as
numpy's path (``sparse_rows._numpy_rows``) and as a dense 0/1 matrix read by hand, array for
array and dtype for dtype, at the sizes a request and a batch build (a few recent items, a few
hundred exclusions a user, sorted by insertion or by digits); the cases it leaves to numpy."""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from recsmith import sparse_rows
from recsmith.ranking import row_kernel


def _matrix(rng: np.random.Generator, shape: tuple[int, int], canonical: bool) -> Any:
    """A 0/1 float32 CSR matrix: canonical (sorted distinct columns a row), or each row's
    columns drawn unsorted with repeats (canonical only by chance)."""
    n_rows, n_cols = shape
    if canonical:
        return sparse.csr_array((rng.random(shape) < rng.random() * 0.4).astype(np.float32))
    lengths = rng.integers(0, 12, n_rows)
    indptr = np.r_[0, lengths.cumsum()].astype(np.int32)
    cols = rng.integers(0, n_cols, int(lengths.sum())).astype(np.int32)
    return sparse.csr_array((np.ones(len(cols), np.float32), cols, indptr), shape=shape)


def _dense(matrix: Any, index: np.ndarray, n_cols: int, rows: Any, cols: Any) -> np.ndarray:
    """The oracle: rows ``index`` of the dense matrix (nothing for -1), the pairs set, 0/1."""
    dense = np.zeros((len(index), n_cols), bool)
    known = index >= 0
    dense[known, : matrix.shape[1]] = matrix.toarray()[index[known]] != 0
    if rows is not None:
        dense[rows, cols] = True
    return dense


def _check(
    library: ctypes.CDLL, matrix: Any, index: np.ndarray, n_cols: int, rows: Any, cols: Any
) -> None:
    """The compiled pass answers, and its matrix is numpy's path's and the dense oracle's."""
    built = row_kernel.rows_with_pairs(library, matrix, index, n_cols, rows, cols)
    assert built is not None
    got = sparse_rows.csr_of_rows(matrix, index, n_cols, rows, cols)
    want = sparse_rows._numpy_rows(matrix, index, n_cols, rows, cols)
    dense = _dense(matrix, index, n_cols, rows, cols)
    assert np.array_equal(built[0], got.indptr) and np.array_equal(built[1], got.indices)
    assert got.shape == want.shape == dense.shape and got.has_canonical_format
    for name in ("indptr", "indices", "data"):
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
        assert np.array_equal(getattr(got, name), getattr(want, name)), name
    assert np.array_equal(got.toarray() > 0, dense)
    got.copy().check_format(full_check=True)


@pytest.mark.parametrize("seed", range(60))
def test_the_pass_is_numpys_rows_and_the_dense_oracles(library: ctypes.CDLL, seed: int) -> None:
    """Drawn matrices (canonical or not, int32 or int64 offsets and columns), users (unknown
    ones -1), widths past the matrix (items joined later) and pairs: none, a few (insertion)
    or hundreds (digits: up to four passes of 11 bits for 2 ** 35 keys), repeated, unsorted,
    in int32 or int64."""
    rng = np.random.default_rng(seed)
    canonical = seed % 3 != 0
    wide = seed % 4 == 0  # keys past 2 ** 22: more than two digit passes
    shape = (int(rng.integers(1, 40)), int(rng.integers(1, 80)))
    matrix = _matrix(rng, shape, canonical)
    if seed % 2:
        matrix.indptr, matrix.indices = (
            matrix.indptr.astype(np.int64),
            matrix.indices.astype(np.int64),
        )
    n = int(rng.integers(0, 18))
    index = rng.integers(-1, shape[0], n).astype(np.int32 if seed % 5 else np.int64)
    n_cols = shape[1] + int(rng.integers(0, 4)) + (1 << 30 if wide else 0)
    n_pairs = int(rng.choice([0, 3, 40, 70, 600])) if n else 0
    rows = rng.integers(0, max(n, 1), n_pairs).astype(np.int64 if seed % 7 else np.int32)
    cols = rng.integers(0, n_cols, n_pairs).astype(np.int32 if n_cols < 2**31 else np.int64)
    if wide:  # the dense oracle cannot hold a billion columns: numpy's path is the oracle
        built = row_kernel.rows_with_pairs(library, matrix, index, n_cols, rows, cols)
        want = sparse_rows._numpy_rows(matrix, index, n_cols, rows, cols)
        assert built is not None
        assert np.array_equal(built[0], want.indptr) and np.array_equal(built[1], want.indices)
        return
    _check(library, matrix, index, n_cols, rows, cols)
    if n_pairs == 0:
        _check(library, matrix, index, n_cols, None, None)


def test_a_hand_computed_batch(library: ctypes.CDLL) -> None:
    """Rows 2, -1 (unknown), 0 of a matrix, with pairs repeated, unsorted and on a stored
    column, in a width past the matrix (column 6 joined later)."""
    matrix = sparse.csr_array(
        (np.ones(4, np.float32), np.array([1, 4, 0, 3]), np.array([0, 2, 2, 4])), shape=(3, 5)
    )  # row 0: 1, 4; row 1: nothing; row 2: 0, 3
    rows, cols = np.array([2, 0, 2, 1, 2]), np.array([6, 4, 3, 2, 2])
    built = row_kernel.rows_with_pairs(library, matrix, np.array([2, -1, 0]), 7, rows, cols)
    assert built is not None
    indptr, indices = built
    # row 0: the matrix's row 2 (0, 3) and 4; row 1: 2 alone; row 2: row 0 (1, 4) and 6, 3, 2
    assert indptr.tolist() == [0, 3, 4, 9]
    assert indices.tolist() == [0, 3, 4, 2, 1, 2, 3, 4, 6]
    assert indptr.dtype == indices.dtype == np.int64


def test_rows_past_the_room_asked_are_built_again_whole(library: ctypes.CDLL) -> None:
    """A user holding more than ``_ROOM_PER_ROW`` columns (a heavy buyer's exclusions): the pass
    reports the room it needs and runs again; every column kept."""
    width = 3 * row_kernel._ROOM_PER_ROW
    matrix = sparse.csr_array(np.ones((2, width), np.float32))
    rows = np.zeros(5, np.int64)
    cols = np.array([0, 7, 7, width + 1, width + 2])
    _check(library, matrix, np.array([1, 0]), width + 3, rows, cols)
    got = sparse_rows.csr_of_rows(matrix, np.array([1, 0]), width + 3, rows, cols)
    assert got.indptr.tolist() == [0, width + 2, 2 * width + 2]


@pytest.mark.parametrize(
    ("index", "rows", "cols", "why"),
    [
        ([0, 3], [0], [1], "an index past the matrix's rows"),
        ([0, 1], [2], [1], "a pair's row past the batch"),
        ([0, 1], [-1], [1], "a negative pair row"),
        ([0, 1], [1], [-1], "a negative column: numpy's key carries it into the row above"),
        ([0, 1], [0], [6], "a column past the width: numpy's key carries it into the next row"),
    ],
)
def test_inputs_out_of_range_are_left_to_numpy(
    library: ctypes.CDLL, index: list[int], rows: list[int], cols: list[int], why: str
) -> None:
    """The pass declines (None) where numpy's path raises or builds rows the pass would not;
    ``csr_of_rows`` then answers as numpy's path does."""
    matrix = sparse.csr_array(np.eye(3, 6, dtype=np.float32))
    args = (np.array(index), 6, np.array(rows), np.array(cols))
    assert row_kernel.rows_with_pairs(library, matrix, *args) is None, why
    try:
        want = sparse_rows._numpy_rows(matrix, *args)
    except (ValueError, IndexError) as exc:
        with pytest.raises(type(exc)):
            sparse_rows.csr_of_rows(matrix, *args)
        return
    got = sparse_rows.csr_of_rows(matrix, *args)
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)


def test_dtypes_it_does_not_read_are_left_to_numpy(library: ctypes.CDLL) -> None:
    """Float pair columns, a uint index: None, and ``csr_of_rows`` still answers by numpy."""
    matrix = sparse.csr_array(np.eye(3, 6, dtype=np.float32))
    rows, cols = np.array([0]), np.array([2.0])
    assert row_kernel.rows_with_pairs(library, matrix, np.array([0, 1]), 6, rows, cols) is None
    index = np.array([0, 1], np.uint32)
    assert row_kernel.rows_with_pairs(library, matrix, index, 6, None, None) is None
    got = sparse_rows.csr_of_rows(matrix, index, 6)
    assert got.indices.tolist() == [0, 1]


@pytest.mark.parametrize("canonical", [True, False])
def test_a_batch_past_the_guess_holds_exactly_its_columns(
    library: ctypes.CDLL, canonical: bool
) -> None:
    """An evaluation's whole test set in one call (more than ``_GUESSED_ROWS`` rows): the
    columns' buffer is exactly as long as the rows' stored entries counted row by row (and, for
    a canonical matrix, as the dense matrix's ones: a guess of 512 a row held 3.9 GB for 1M
    rows, kept alive by the answer's view), and the rows are numpy's and the dense oracle's; an
    index past the matrix still declines."""
    rng = np.random.default_rng(7)
    matrix = _matrix(rng, (50, 30), canonical)
    n = 3 * row_kernel._GUESSED_ROWS
    index = rng.integers(-1, 50, n)
    built = row_kernel.rows_with_pairs(library, matrix, index, 30, None, None)
    assert built is not None
    dense = _dense(matrix, index, 30, None, None)
    buffer = built[1] if built[1].base is None else built[1].base
    stored = sum(matrix.indptr[u + 1] - matrix.indptr[u] for u in index.tolist() if u >= 0)
    assert len(buffer) == stored  # the room: each row's stored entries, repeats included
    if canonical:  # none repeated: every one is kept
        assert len(built[1]) == int(dense.sum()) == stored
    _check(library, matrix, index, 30, None, None)
    index[5] = 50
    assert row_kernel.rows_with_pairs(library, matrix, index, 30, None, None) is None


def test_csr_of_rows_takes_the_pass_and_reads_lists_of_pairs(
    library: ctypes.CDLL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the library is loaded ``csr_of_rows`` answers by the pass, numpy's path never asked
    (review rv-cpu24a: nothing showed the pass was taken), and pairs given as lists are read as
    numpy's path reads them (they raised AttributeError in the pass)."""
    matrix = sparse.csr_array(np.eye(3, 6, dtype=np.float32))
    want = sparse_rows._numpy_rows(matrix, np.array([2, 0]), 6, np.array([0, 1]), np.array([5, 1]))

    def refused(*_: object) -> None:
        raise AssertionError("numpy's path asked")

    monkeypatch.setattr(sparse_rows, "_numpy_rows", refused)
    got = sparse_rows.csr_of_rows(matrix, np.array([2, 0]), 6, [0, 1], [5, 1])
    assert got.indptr.tolist() == want.indptr.tolist() == [0, 2, 4]
    assert got.indices.tolist() == want.indices.tolist() == [2, 5, 0, 1]
