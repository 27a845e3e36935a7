"""What the tests of the compiled candidate passes (``row_kernel``: below, merged, rescored rows)
compare: every array of two ``Candidates``, dtype and values (NaN equal to NaN), and their source
names, query count and distinct flag — the pass must build numpy's rows exactly, not close."""

from __future__ import annotations

import numpy as np

from recsmith.retrieval.candidates import Candidates

#: The arrays a ``Candidates`` holds, one row per candidate.
FIELDS = ("query", "items", "score", "source_scores", "source_ranks")


def same_rows(a: Candidates, b: Candidates) -> None:
    """Asserts ``a`` and ``b`` hold the same rows (module docstring), naming the first field that
    differs."""
    for name in FIELDS:
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    assert (a.sources, a.n_queries, a.distinct) == (b.sources, b.n_queries, b.distinct)
