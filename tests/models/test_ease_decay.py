"""EASE's time decay (``decay``: a half-life as a share of the data's own span, ``pair_decay``)
against hand-built oracles: each pair's factor from its latest event, EASE's closed form on the
decayed matrix computed here in plain numpy, and the reference time of a validation past being
that past's newest event, not the full data's (BENCHMARKS §164)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import MICROS_PER_DAY, Interactions, pair_decay
from recsmith.models.ease import EASE
from recsmith.pipeline.validation import time_cut_split

T0 = 1_700_000_000 * 1_000_000
WEIGHTS = EventSettings().weights


def events(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """View events (user, item, day after ``T0``)."""
    return pd.DataFrame(
        {
            "event_id": [f"e{n}" for n in range(len(rows))],
            "user_id": [u for u, _, _ in rows],
            "session_id": None,
            "item_id": [i for _, i, _ in rows],
            "event_type": "view",
            "value": np.nan,
            "ts": [T0 + int(d * MICROS_PER_DAY) for _, _, d in rows],
            "context": None,
        }
    )


#: a: x on days 0 and 2 (the latest counts), y on day 4; b: x on day 8 (the newest: "now"), y on
#: day 0 (the first: the span is 8 days); c: z on day 6.
ROWS = [("a", "x", 0), ("a", "y", 4), ("b", "x", 8), ("b", "y", 0), ("a", "x", 2), ("c", "z", 6)]


def dense(data: Interactions, matrix: object) -> dict[tuple[str, str], float]:
    """A sparse matrix over ``data``'s ids as {(user, item): value} of its stored entries."""
    coo = matrix.tocoo()  # type: ignore[attr-defined]
    users = data.users.to_external(coo.row)
    items = data.items.to_external(coo.col)
    return {(u, i): float(v) for u, i, v in zip(users, items, coo.data, strict=True)}


def test_each_pair_decays_from_its_latest_event_by_a_share_of_the_span() -> None:
    data = Interactions.from_events(events(ROWS), WEIGHTS)
    # share 0.5 of an 8-day span: a 4-day half-life, ages counted back from day 8
    got = dense(data, pair_decay(data, 0.5))
    want = {
        ("a", "x"): 0.5 ** (6 / 4),  # latest on day 2, not day 0
        ("a", "y"): 0.5,
        ("b", "x"): 1.0,
        ("b", "y"): 0.25,
        ("c", "z"): 0.5 ** (2 / 4),
    }
    assert got.keys() == want.keys()
    for pair, value in want.items():
        assert got[pair] == pytest.approx(value, rel=1e-6), pair
    # a share of the span, not days: the same events a hundred times slower decay the same
    slow = [(u, i, d * 100) for u, i, d in ROWS]
    stretched = Interactions.from_events(events(slow), WEIGHTS)
    for pair, value in dense(stretched, pair_decay(stretched, 0.5)).items():
        assert value == pytest.approx(want[pair], rel=1e-6), pair


def test_one_instant_decays_nothing() -> None:
    data = Interactions.from_events(events([("a", "x", 3), ("b", "y", 3)]), WEIGHTS)
    assert set(dense(data, pair_decay(data, 0.25)).values()) == {1.0}


def ease_oracle(x: np.ndarray, lam: float) -> np.ndarray:
    """EASE's closed form in float64: B = I − P / diag(P), P = (XᵀX + λI)⁻¹, zero diagonal."""
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_learns_from_the_decayed_pairs_and_scores_histories_as_before() -> None:
    data = Interactions.from_events(events(ROWS), WEIGHTS)
    model = EASE(regularization=0.5, decay=0.5).fit(data)
    x = np.zeros((data.n_users, data.n_items))
    factors = {("a", "x"): 0.5**1.5, ("a", "y"): 0.5, ("b", "x"): 1.0, ("b", "y"): 0.25}
    factors[("c", "z")] = 0.5**0.5
    for (u, i), f in factors.items():
        x[data.users.to_index([u])[0], data.items.to_index([i])[0]] = f
    np.testing.assert_allclose(model.weights_, ease_oracle(x, 0.5), rtol=1e-4, atol=1e-6)
    plain = EASE(regularization=0.5).fit(data)
    assert not np.allclose(model.weights_, plain.weights_)
    # the history a user is scored on stays 0/1: only what is learnt decays
    assert set(model.user_items_.data.tolist()) == {1.0}


def test_a_validation_past_decays_from_its_own_newest_event() -> None:
    """Calibration fits on a time cut's past: "now" there is the past's newest event, so what
    lies after the cut moves no factor (no leak), and the span is the past's own."""
    later = [("a", "z", 20), ("b", "z", 21), ("c", "x", 22), ("c", "y", 23)]
    full = Interactions.from_events(events(ROWS + later), WEIGHTS)
    val = time_cut_split(full, min_users=1, share=0.4, max_users=100)
    assert val is not None
    past = val.past
    assert past.reference_ts == T0 + 8 * MICROS_PER_DAY  # the cut falls on day 20
    assert full.reference_ts == T0 + 23 * MICROS_PER_DAY
    got = dense(past, pair_decay(past, 0.5))
    # the same factors as the events before the cut alone give: day 8 is "now", 8 days the span
    assert got == pytest.approx(
        {
            ("a", "x"): 0.5**1.5,
            ("a", "y"): 0.5,
            ("b", "x"): 1.0,
            ("b", "y"): 0.25,
            ("c", "z"): 0.5**0.5,
        },
        rel=1e-6,
    )
    # and EASE fitted on that past equals EASE fitted on those events as the only data
    alone = Interactions.from_events(events(ROWS), WEIGHTS)
    on_past = EASE(regularization=0.5, decay=0.5).fit(past)
    on_alone = EASE(regularization=0.5, decay=0.5).fit(alone)
    order = past.items.to_index(alone.items.to_external(np.arange(alone.n_items)))
    np.testing.assert_allclose(
        on_past.weights_[np.ix_(order, order)], on_alone.weights_, rtol=1e-5, atol=1e-7
    )
