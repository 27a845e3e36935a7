"""Popularity within profile segments (``segments.popularity``) against scores worked out by hand.

Four users with events: a (F, pro) had i0, i1; b (F, free) i0, i2; c (M, pro) i1; d (M, free)
i1, i3. So n = 4, c(i) = [2, 3, 1, 1], g = c / 4. With shrinkage m = 2 each segment has 2 users:

    F:   c_F   = [2, 1, 1, 0]  ->  (c_F + 2g) / 4 * 4 = [3.0, 2.5, 1.5, 0.5]
    M:   c_M   = [0, 2, 0, 1]  ->                     [1.0, 3.5, 0.5, 1.5]
    pro: c_pro = [1, 2, 0, 0]  ->                     [2.0, 3.5, 0.5, 0.5]
    F and pro: the mean of F and pro                  [2.5, 3.0, 1.0, 0.5]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.retrieval.queries import Queries
from recsmith.segments.popularity import SegmentPopularity

EVENTS = [("a", "i0"), ("a", "i1"), ("b", "i0"), ("b", "i2"), ("c", "i1"), ("d", "i1"), ("d", "i3")]
PROFILES = {
    "a": {"gender": "F", "plan": "pro"},
    "b": {"gender": "F", "plan": "free"},
    "c": {"gender": "M", "plan": "pro"},
    "d": {"gender": "M", "plan": "free"},
    "new_f": {"gender": "F"},
    "new_fp": {"gender": "F", "plan": "pro"},
}


def interactions() -> Interactions:
    frame = pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(EVENTS))],
            "user_id": [u for u, _ in EVENTS],
            "item_id": [i for _, i in EVENTS],
            "event_type": "view",
            "ts": np.arange(len(EVENTS), dtype=np.int64) * 1_000_000,
            "session_id": None,
            "value": np.nan,
        }
    )
    return Interactions.from_events(frame, dict(EventSettings().weights))


@pytest.fixture(scope="module")
def table() -> SegmentPopularity:
    data = interactions()
    assert data.items.external_ids.tolist() == ["i0", "i1", "i2", "i3"]
    return SegmentPopularity.build(data, PROFILES, max_properties=8, shrinkage=2.0)


def lists(table: SegmentPopularity, users: list[str], k: int = 4, **given: object) -> list:
    codes = table.codes_of(np.asarray(users, dtype=object), given.get("profiles"))  # type: ignore[arg-type]
    n = len(users)
    exclude = given.get("exclude", sparse.csr_array((n, 4), dtype=np.float32))
    empty = sparse.csr_array((n, 4), dtype=np.float32)
    queries = Queries(np.full(n, -1, np.int32), empty, exclude)  # type: ignore[arg-type]
    got = table.retrieve(queries, k, codes, given.get("within"))  # type: ignore[arg-type]
    return [
        (got.items[got.query == q].tolist(), got.scores[got.query == q].tolist()) for q in range(n)
    ]


def test_scores_are_the_shrunk_segment_shares_worked_out_by_hand(
    table: SegmentPopularity,
) -> None:
    [female, nobody, both] = lists(table, ["new_f", "nobody", "new_fp"])
    assert female == ([0, 1, 2, 3], [3.0, 2.5, 1.5, 0.5])
    # no profile: exactly the global order and popular's counts, ties (i2, i3) to the lower index
    assert nobody == ([1, 0, 2, 3], [3.0, 2.0, 1.0, 1.0])
    assert both == ([1, 0, 2, 3], pytest.approx([3.0, 2.5, 1.0, 0.5]))


def test_a_given_profile_wins_and_unknown_values_form_no_segment(
    table: SegmentPopularity,
) -> None:
    [male, unknown] = lists(
        table, ["new_f", "late"], profiles=[{"gender": "M"}, {"gender": "X", "plan": 3}]
    )
    assert male == ([1, 3, 0, 2], [3.5, 1.5, 1.0, 0.5])
    assert unknown[0] == [1, 0, 2, 3]  # neither value was seen at training: the global order


def test_excluded_items_are_skipped_and_k_cuts(table: SegmentPopularity) -> None:
    exclude = sparse.csr_array(([1.0], ([0], [0])), shape=(1, 4), dtype=np.float32)
    [female] = lists(table, ["new_f"], k=2, exclude=exclude)
    assert female == ([1, 2], [2.5, 1.5])


def test_within_a_pool_the_same_scores_rank_only_its_items(table: SegmentPopularity) -> None:
    """A category request's pool (items i2, i3; then i0, i3): F's and M's scores there, kept
    apart from the whole catalogue's heads of the same segments."""
    whole = lists(table, ["new_f"])
    pool = np.asarray([2, 3])
    male_profile = [None, {"gender": "M"}]
    [female, male] = lists(table, ["new_f", "new_f"], within=[pool], profiles=male_profile)
    assert female == ([2, 3], [1.5, 0.5]) and male == ([3, 2], [1.5, 0.5])
    [male] = lists(table, ["new_f"], within=[np.asarray([0, 3])], profiles=[{"gender": "M"}])
    assert male == ([3, 0], [1.5, 1.0])
    assert lists(table, ["new_f"]) == whole


def test_several_pools_merge_each_ones_head(table: SegmentPopularity) -> None:
    """Categories {i0, i1} and {i1, i2}, k = 1 each: F's heads i0 (3.0) and i1 (2.5) merge to
    both; M's heads are i1 (3.5) twice, listed once (a shorter row than F's in one batch)."""
    pools = [np.asarray([0, 1]), np.asarray([1, 2])]
    [female, male] = lists(
        table, ["new_f", "new_f"], k=1, within=pools, profiles=[None, {"gender": "M"}]
    )
    assert female == ([0, 1], [3.0, 2.5]) and male == ([1], [3.5])


def test_evidence_in_a_pool_is_any_of_the_segments_items(table: SegmentPopularity) -> None:
    """F had i0, i1, i2; M i1, i3; pro i0, i1 (module docstring): a pool of i3 alone is M's."""
    codes = table.codes_of(
        np.asarray(["x"] * 4, dtype=object),
        [{"gender": "F"}, {"gender": "M"}, {"plan": "pro"}, {"gender": "F", "plan": "pro"}],
    )
    assert table.had_any(codes, np.asarray([3])).tolist() == [False, True, False, False]
    assert table.had_any(codes, np.asarray([2])).tolist() == [True, False, False, True]
    assert table.had_any(codes, np.asarray([0, 1])).all()
    # a property without a segment (M's plan, code -1) adds no evidence: M had no i0
    assert table.had_any(codes, np.asarray([0])).tolist() == [True, False, True, True]


def test_numbers_form_quintile_bands_of_the_profiles() -> None:
    ages = {f"u{n}": {"age": age} for n, age in enumerate([10, 20, 30, 40, 50])}
    table = SegmentPopularity.build(interactions(), ages, max_properties=8, shrinkage=1.0)
    # quantiles 0.2 … 0.8 of 10 … 50: 18, 26, 34, 42
    assert table.edges[0].tolist() == [18.0, 26.0, 34.0, 42.0]
    codes = table.codes_of(
        np.asarray(["x", "y", "z", "u4"], dtype=object),
        [{"age": 25}, {"age": 60}, {"age": "old"}, None],
    )
    assert table.values[codes[:, 0][:2]].tolist() == ["band2", "band5"]
    assert codes[2, 0] == -1  # text where a number belongs: no band
    assert table.values[codes[3, 0]] == "band5"  # the release's own profile of u4 (age 50)


def test_the_arrays_read_back_to_the_same_lists(table: SegmentPopularity) -> None:
    again = SegmentPopularity.from_arrays("s.", dict(table.arrays("s.")))
    assert again is not None
    assert lists(again, ["new_f", "nobody", "new_fp"]) == lists(
        table, ["new_f", "nobody", "new_fp"]
    )
    assert SegmentPopularity.from_arrays("s.", {}) is None


def test_kept_heads_answer_as_computed_ones_and_stay_bounded(
    table: SegmentPopularity, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = ["new_f", "nobody", "new_fp"]
    table.heads.clear()
    fresh = lists(table, users)
    assert len(table.heads) == 3  # one head per segment combination
    assert lists(table, users) == fresh  # answered from the kept heads
    # past the bound, the kept heads are let go before a new combination's is kept (a batch
    # keeps all of its own)
    monkeypatch.setattr("recsmith.segments.popularity.HEAD_ENTRIES", 2)
    [male] = lists(table, ["new_f"], profiles=[{"gender": "M"}])
    assert male[0] == [1, 3, 0, 2] and len(table.heads) == 1
