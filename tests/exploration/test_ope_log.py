"""The decision log as an off-policy log: rewards per shown item, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.decisions.ope_log import ope_log

SHOWN = pd.DataFrame(
    {
        "recommendation_id": ["r1", "r1", "r2", "r3"],
        "position": pd.array([1, 2, 1, pd.NA], dtype="Int64"),  # r3 showed nothing
        "item_id": ["a", "b", "a", None],
        "propensity": [1.0, 0.25, 0.5, np.nan],
    }
)
ATTRIBUTED = pd.DataFrame(
    {
        "recommendation_id": ["r1", "r1", "r1", "r2", "r2"],
        "position": pd.array([2, 2, 2, 1, 1], dtype="Int64"),
        "kind": ["click", "click", "purchase", "purchase", "purchase"],
        "value": [np.nan, np.nan, 30.0, 5.0, np.nan],
    }
)


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        ("click", [0.0, 1.0, 0.0]),  # two clicks on r1/b are one click
        ("purchase", [0.0, 1.0, 1.0]),
        ("revenue", [0.0, 30.0, 5.0]),  # a purchase without a value adds 0
    ],
)
def test_rewards_per_shown_item(reward: str, expected: list[float]) -> None:
    log = ope_log(SHOWN, ATTRIBUTED, reward)  # type: ignore[arg-type]
    assert log.columns.tolist() == ["round", "position", "action", "reward", "propensity"]
    assert log["round"].tolist() == ["r1", "r1", "r2"]
    assert log["position"].tolist() == ["1", "2", "1"]
    assert log["action"].tolist() == ["a", "b", "a"]
    assert log["reward"].tolist() == expected
    assert log["propensity"].tolist() == [1.0, 0.25, 0.5]
