"""Candidates for the re-ranking tests: rows of item indices, best first."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from recsmith.retrieval.candidates import Candidates


def ranked_candidates(rows: list[list[int]]) -> Candidates:
    """One query per row, its item indices best first, one source whose scores decrease."""
    q = np.repeat(np.arange(len(rows)), [len(r) for r in rows]).astype(np.int32)
    items = np.asarray([i for r in rows for i in r], np.int32)
    score = np.arange(len(items), 0, -1).astype(np.float32)
    ranks = np.ones((len(items), 1), np.int16)
    return Candidates(len(rows), ("s",), q, items, score, score[:, None].copy(), ranks)


@pytest.fixture(scope="session")
def ranked() -> Callable[[list[list[int]]], Candidates]:
    return ranked_candidates
