"""Re-ranking's shortcuts against what they stand for: rank-based relevance read from a table
(no boosts) against its formula, its bounds, and the guard against a selector that repeats a row."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from recsmith.rerank import ItemTable, plan
from recsmith.rerank.plan import RulePlan, rank_relevance
from recsmith.retrieval.candidates import Candidates


def test_the_table_gives_the_formulas_bits_and_grows_past_its_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ranks 0 .. 2,048 (a rank at a power of two, past the first table's 1,024: it grows to
    hold it), then 0 .. 5,000 shuffled and repeated: bit for bit ``round(-log1p(rank) + 0, 9)``
    as a zero boost array gives (rank 0 is +0.0, not -0.0), and what a boost of 0 gives
    through the formula itself."""
    monkeypatch.setattr(plan, "_RANK_TABLE", [plan._rank_table(1024)])
    edge = np.arange(2049)
    assert rank_relevance(edge).tobytes() == np.round(-np.log1p(edge) + 0.0, 9).tobytes()
    rank = np.random.default_rng(3).permutation(np.r_[np.arange(5001), np.arange(40)])
    expected = np.round(-np.log1p(rank) + np.zeros(len(rank)), 9)
    got = rank_relevance(rank)
    assert got.tobytes() == expected.tobytes()
    assert rank_relevance(rank, np.zeros(len(rank))).tobytes() == expected.tobytes()
    assert len(plan._RANK_TABLE[0]) >= 5001
    assert np.signbit(rank_relevance(np.zeros(1, np.int64))).tolist() == [False]


def test_a_rank_past_the_kept_table_is_computed_and_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One query longer than the longest table kept (``_RANK_TABLE_MAX``): its values are the
    formula's bits, and the table read by later queries stays as it was."""
    monkeypatch.setattr(plan, "_RANK_TABLE", [plan._rank_table(1024)])
    rank = np.r_[np.arange(2000), plan._RANK_TABLE_MAX + 5, 3 * plan._RANK_TABLE_MAX]
    expected = np.round(-np.log1p(rank) + 0.0, 9)
    assert rank_relevance(rank).tobytes() == expected.tobytes()
    assert len(plan._RANK_TABLE[0]) == 1024


def test_a_negative_rank_is_refused() -> None:
    """A table read at rank -1 would give its last rank's value; the formula gives inf."""
    for boost in (None, np.zeros(3)):
        with pytest.raises(ValueError, match="rank: must be 0 or more, got -1"):
            rank_relevance(np.array([0, -1, 2]), boost)


def test_a_selector_that_repeats_a_row_shows_it_once(
    table: ItemTable, make: Callable[..., Candidates], shown: Callable[..., list[str]]
) -> None:
    """A selector's slip (every row returned twice) must not list an item twice: the guard
    finds the repeat and keeps each row's first pick; read off the small catalogue by hand
    ("c" is unavailable, so query 0 lists a, b, d and query 1 lists e, a)."""

    def twice(*, query: np.ndarray, is_seed: np.ndarray, **_: object) -> np.ndarray:
        return np.repeat(np.flatnonzero(~is_seed), 2)

    cands = make([["a", "b", "c", "d"], ["e", "a"]])
    out = RulePlan().apply(cands, table, 5, select=twice)
    assert shown(out, 0) == ["a", "b", "d"] and shown(out, 1) == ["e", "a"]
