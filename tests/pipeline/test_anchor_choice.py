"""The anchor of a reason against a brute-force choice: per final row, every recent item of its
query asked in turn how much it supports the item, source by source, in plain Python; numpy's
search and the compiled one (``ranking.row_kernel``) alike, the matrices' indices and values in
either width scipy stores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.pipeline.anchors import anchor_items
from recsmith.ranking import row_kernel
from recsmith.retrieval.candidates import Candidates


def brute_force(
    final: Candidates, recent: sparse.csr_array, matrices: dict[str, np.ndarray]
) -> list[int]:
    """The first source (in ``matrices`` order) that proposed the row and has a recent item
    supporting it (> 0) names the most supporting one; ties go to the recent item later in the
    query's row of ``recent`` (its column order); recent items past a matrix support nothing."""
    out = []
    for q, item, ranks in zip(final.query, final.items, final.source_ranks, strict=True):
        row = recent.indices[recent.indptr[q] : recent.indptr[q + 1]].tolist()
        anchor = -1
        for name, dense in matrices.items():
            if name not in final.sources or ranks[final.sources.index(name)] <= 0:
                continue
            best = 0.0
            for r in row:
                if r < dense.shape[0] and dense[r, item] > 0 and dense[r, item] >= best:
                    anchor, best = r, float(dense[r, item])
            if anchor >= 0:
                break
        out.append(anchor)
    return out


def _compiled_or_skip(compiled: bool) -> None:
    """Wait for the compiled search where asked; skip where this machine cannot build it."""
    if compiled and not row_kernel.wait(120):
        pytest.skip(f"no compiled anchors here: {row_kernel.unavailable_reason()}")


def _widened(matrix: sparse.csr_array) -> sparse.csr_array:
    """``matrix`` with int64 row offsets and columns and float64 values (a release's mapped
    matrices hold int64 ones), in canonical form as before."""
    wide = sparse.csr_array(
        (matrix.data.astype(np.float64), matrix.indices.astype(np.int64), matrix.indptr),
        shape=matrix.shape,
    )
    wide.indptr = matrix.indptr.astype(np.int64)
    wide.has_canonical_format = True
    assert wide.indices.dtype == wide.indptr.dtype == np.int64
    return wide


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("seed", range(12))
def test_anchors_are_the_brute_force_choice(seed: int, compiled: bool, wide: bool) -> None:
    """Random batches: matrices with long and empty rows, explicit zeros and tied weights (a
    handful of values), two item-to-item sources (a row proposed by both asks the first, then
    the second where the first finds no anchor), recent items that joined after training
    (columns past the matrices), queries without recent items."""
    _compiled_or_skip(compiled)
    rng = np.random.default_rng(seed)
    n_trained, n_items, n_queries = 150, 170, int(rng.integers(1, 40))
    dense = {}
    for name in ("knn", "together"):
        m = np.where(rng.random((n_trained, n_items)) < rng.uniform(0.05, 0.9), 1.0, 0.0)
        m *= rng.integers(0, 4, m.shape)  # 0 stored as an explicit zero below, ties elsewhere
        m[rng.random(n_trained) < 0.2] = 0.0  # rows with nothing
        dense[name] = m.astype(np.float32)
    matrices = {}
    for name, m in dense.items():
        stored = m > 0
        stored[rng.random(m.shape) < 0.02] = True  # explicit zeros
        r, c = np.nonzero(stored)
        matrices[name] = sparse.csr_array((m[r, c], (r, c)), shape=(n_trained, n_items))
        matrices[name].sum_duplicates()
        if wide:
            matrices[name] = _widened(matrices[name])
    recent = sparse.csr_array(
        (rng.random((n_queries, n_items)) < rng.uniform(0.0, 0.06)).astype(np.float32)
    )
    if wide:
        recent = _widened(recent)
    per = rng.integers(0, 15, n_queries)
    query = np.repeat(np.arange(n_queries), per).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, p, replace=False) for p in per]).astype(np.int32)
    sources = ("trending", "knn", "together")
    ranks = (rng.random((len(items), 3)) < 0.6) * rng.integers(1, 50, (len(items), 3))
    ranks = ranks.astype(np.int16)
    final = Candidates(
        n_queries,
        sources,
        query,
        items,
        np.zeros(len(items), np.float32),
        np.where(ranks > 0, 1.0, np.nan).astype(np.float32),
        ranks,
    )
    got = anchor_items(final, recent, matrices, compiled=compiled)
    assert got.tolist() == brute_force(final, recent, {n: m for n, m in dense.items()})
    assert (got >= 0).sum() > 0 or len(items) == 0 or recent.nnz == 0


@pytest.mark.parametrize("compiled", [False, True])
def test_a_nan_weight_names_no_anchor_and_reads_no_other_row(compiled: bool) -> None:
    """Hand-computed, as the session start's sort by (row, weight) chose (NaN sorts last, so
    the row's best is NaN and not > 0): query 0 asks item 1 of recent item 2 (weight 3: anchor
    2); query 1 asks item 0 of recent items 0 (NaN) and 1 (2.0): no anchor; query 2 asks item 0
    of recent items 1 (2.0) and 3 (NaN), the NaN after the best: no anchor either. A NaN
    maximum that no pair holds once fell back to the last pair of all (query 1's recent item
    1)."""
    _compiled_or_skip(compiled)
    weights = np.array([[np.nan, 0.0], [2.0, 0.0], [0.0, 3.0], [np.nan, 0.0]], np.float32)
    r, c = np.nonzero(weights != 0)
    matrix = sparse.csr_array((weights[r, c], (r, c)), shape=weights.shape)
    assert matrix.has_canonical_format and matrix.nnz == 4
    recent = sparse.csr_array(np.array([[0, 0, 1, 0], [1, 1, 0, 0], [0, 1, 0, 1]], np.float32))
    for query, items, want in (([1], [0], [-1]), ([0, 1], [1, 0], [2, -1]), ([2], [0], [-1])):
        final = Candidates(
            3,
            ("together",),
            np.asarray(query, np.int32),
            np.asarray(items, np.int32),
            np.zeros(len(items), np.float32),
            np.ones((len(items), 1), np.float32),
            np.ones((len(items), 1), np.int16),
        )
        got = anchor_items(final, recent, {"together": matrix}, compiled=compiled)
        assert got.tolist() == want


@pytest.mark.parametrize("compiled", [False, True])
def test_a_matrix_not_in_canonical_form_adds_its_duplicates(compiled: bool) -> None:
    """Hand-computed: recent item 0 stores item 1 twice (1.0 + 2.5 = 3.5, as scipy adds them),
    recent item 1 stores it once (3.0): the anchor is 0. A search of the stored entries (what
    the compiled pass does for a canonical matrix) would find 1.0 or 2.5 and name 1."""
    _compiled_or_skip(compiled)
    matrix = sparse.csr_array(
        (np.asarray([2.5, 1.0, 3.0], np.float32), np.asarray([1, 1, 1]), np.asarray([0, 2, 3])),
        shape=(2, 2),
    )
    assert not matrix.has_canonical_format
    recent = sparse.csr_array(np.array([[1, 1]], np.float32))
    final = Candidates(
        1,
        ("together",),
        np.zeros(1, np.int32),
        np.ones(1, np.int32),
        np.zeros(1, np.float32),
        np.ones((1, 1), np.float32),
        np.ones((1, 1), np.int16),
    )
    got = anchor_items(final, recent, {"together": matrix}, compiled=compiled)
    assert got.tolist() == [0]


@pytest.mark.parametrize("compiled", [False, True])
def test_a_query_past_the_recent_rows_is_numpys_error(compiled: bool) -> None:
    """Final rows of query 2 with a recent matrix of 2 rows: numpy's path raises IndexError,
    and so must the compiled one (it hands the rows to numpy) rather than read past the
    matrix's row offsets."""
    _compiled_or_skip(compiled)
    matrix = sparse.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32))
    recent = sparse.csr_array(np.array([[1, 0], [0, 1]], np.float32))
    final = Candidates(
        3,
        ("together",),
        np.asarray([0, 2], np.int32),
        np.asarray([1, 0], np.int32),
        np.zeros(2, np.float32),
        np.ones((2, 1), np.float32),
        np.ones((2, 1), np.int16),
    )
    with pytest.raises(IndexError):
        anchor_items(final, recent, {"together": matrix}, compiled=compiled)


def test_a_negative_recent_item_is_numpys_answer_not_a_read_before_the_rows() -> None:
    """A recent matrix holding column -1 (scipy takes a CSR's arrays without looking at their
    values): numpy's path answers (recent item 0). The compiled search declines the rows
    (None) rather than read the row offset before the matrix's, so the answer is numpy's."""
    _compiled_or_skip(True)
    library = row_kernel.loaded()
    assert library is not None
    matrix = sparse.csr_array(np.array([[0.5, 0.0], [2.0, 0.0]], np.float32))
    indices, indptr = np.array([0, -1], np.int32), np.array([0, 2], np.int32)
    recent = sparse.csr_array((np.ones(2, np.float32), indices, indptr), shape=(1, 2))
    assert recent.indices.tolist() == [0, -1]
    final = Candidates(
        1,
        ("together",),
        np.zeros(1, np.int32),
        np.zeros(1, np.int32),
        np.zeros(1, np.float32),
        np.ones((1, 1), np.float32),
        np.ones((1, 1), np.int16),
    )
    assert row_kernel.strongest(library, final.query, final.items, recent, matrix) is None
    want = anchor_items(final, recent, {"together": matrix}, compiled=False)
    got = anchor_items(final, recent, {"together": matrix}, compiled=True)
    assert got.tolist() == want.tolist() == [0]
