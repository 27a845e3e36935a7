"""``benchmarks/shape_pool.py``: many sweep samples pooled by person against each tuned peer, and
who returns after a time cut, against sums and counts worked out by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import shape_pool
import shape_sweep


def row(dataset: str, seed: int, users: list[str], scores: dict[str, list[float]], best: str,
        said: str = "") -> shape_sweep.Row:  # fmt: skip
    arrays = {name: np.array(v, dtype=float) for name, v in scores.items()}
    people = shape_sweep.people_of(dataset, seed, users)
    return shape_sweep.Row(
        "market", dataset, seed, "", arrays, best, said, shape_sweep.Usage(0.0, 0.0, 0.0), people
    )


def test_a_tuned_family_is_read_whatever_parameters_validation_picked_per_sample() -> None:
    """Seed 1's EASE is tuned to λ 50, seed 2's to its default: pooled, "EASE" is both. Sums by
    hand: pipeline 1 + 0.5 + 0.5 = 2, EASE 0.5 + 0.5 + 1 = 2, best peer (ALS on seed 2) 0.5 + 0.5
    + 0.25 = 1.25, popular 0.25 + 0.25 + 0.5 = 1."""
    rows = [
        row("ml-100k", 1, ["a", "b"], {"pipeline": [1, 0.5], "popular": [0.25, 0.25],
            'EASE {"regularization": 50.0}': [0.5, 0.5], "implicit ALS {}": [0, 0]},
            'EASE {"regularization": 50.0}'),
        row("ml-100k", 2, ["c"], {"pipeline": [0.5], "popular": [0.5], "EASE {}": [1],
            'implicit ALS {"alpha": 10.0}': [0.25]}, 'implicit ALS {"alpha": 10.0}'),
    ]  # fmt: skip
    assert shape_pool.pooled_ratio(rows, other="EASE")[0] == pytest.approx(1.0)
    assert shape_pool.pooled_ratio(rows, other="best peer")[0] == pytest.approx(2 / 1.25)
    assert shape_pool.pooled_ratio(rows)[0] == pytest.approx(2.0)
    assert shape_pool.pooled_ratio(rows, "popular", "implicit ALS")[0] == pytest.approx(1 / 0.25)
    with pytest.raises(ValueError, match="'implicit item-kNN': 0 columns"):
        shape_pool.column(rows[0], "implicit item-kNN")


def test_one_id_in_two_data_sets_is_two_people_and_in_two_seeds_one() -> None:
    """User "a" of ml-100k in seeds 1-5 is one person; ml-latest-small's "a" (seeds 1-5) is
    another. a scores pipeline 1, popular 1 in each sample, a' 1 and 0.5: resampled by person the
    95 % interval is exactly [1, 2] (aa 1, a a' 10 / 7.5, a'a' 2); ten rows resampled alone would
    draw ten of a's rows once in 1,024, so the lower end would be above 1."""
    rows = [
        row(name, seed, ["a"], {"pipeline": [1], "popular": [popular], "EASE {}": [1]}, "EASE {}")
        for name, popular in [("ml-100k", 1.0), ("ml-latest-small", 0.5)]
        for seed in range(1, 6)
    ]
    assert sorted(set(shape_pool.people(rows))) == ["ml-100k/a", "ml-latest-small/a"]
    ratio, low, high = shape_pool.pooled_ratio(rows)
    assert ratio == pytest.approx(10 / 7.5)
    assert (low, high) == pytest.approx((1.0, 2.0))


def test_ships_reads_the_served_source_off_calibration_line() -> None:
    said = ("calibration (temporal cuts …; 17 s, 15 s CPU): serving popularity (validation NDCG@10"
            " 0.0358 / 0.0405, …); EVIDENCE WEAK: no protocol …")  # fmt: skip
    assert shape_pool.ships(row("ml-100k", 1, ["a"], {"pipeline": [0]}, "", said)) == "popularity"


def test_returning_counts_users_on_both_sides_of_the_cut() -> None:
    """ts 1..10, cut at the 0.8 quantile (8.2): after it u1 (known before: returning, with a new
    item: a test user), u2 (known, its item not new: returning, not tested) and u3 (new)."""
    events = pd.DataFrame({
        "user_id": ["u1", "u2", "u4", "u4", "u1", "u2", "u4", "u5", "u1", "u2", "u3"],
        "item_id": ["x", "y", "x", "y", "z", "x", "z", "x", "w", "y", "x"],
        "ts": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10],
    })  # fmt: skip
    assert shape_pool.returning(events) == {
        "users": 5, "after cut": 3, "returning": 2, "new": 1, "test users": 1,
    }  # fmt: skip
