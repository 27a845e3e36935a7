"""What the tests of the compiled candidate passes (``row_kernel``: below, merged, rescored rows)
compare: every array of two ``Candidates``, dtype, shape and bytes (so -0.0 is not 0.0 and NaN
payloads count: the pass must write numpy's very floats), and their source names, query count
and distinct flag — the pass must build numpy's rows exactly, not close."""

from __future__ import annotations

import numpy as np

from recsmith.retrieval.candidates import Candidates

#: The arrays a ``Candidates`` holds, one row per candidate.
FIELDS = ("query", "items", "score", "source_scores", "source_ranks")


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    """``a`` and ``b`` have one dtype and shape and the same bytes, element by element."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def same_rows(a: Candidates, b: Candidates) -> None:
    """Asserts ``a`` and ``b`` hold the same rows (module docstring), naming the first field that
    differs."""
    for name in FIELDS:
        assert same_array(getattr(a, name), getattr(b, name)), name
    assert (a.sources, a.n_queries, a.distinct) == (b.sources, b.n_queries, b.distinct)
