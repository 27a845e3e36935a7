"""Interactions: weights per event type, decay, aggregation, anonymous actors, string ids."""

import math

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import (
    MICROS_PER_DAY,
    Interactions,
    actor_keys,
    decay_factors,
    event_weights,
)

T0 = 1_700_000_000 * 1_000_000


def frame(rows: list[tuple]) -> pd.DataFrame:
    cols = ["user_id", "session_id", "item_id", "event_type", "value", "ts"]
    out = pd.DataFrame(rows, columns=cols)
    out["event_id"] = [f"e{i}" for i in range(len(out))]
    out["context"] = None
    return out


def test_weights_follow_event_type_rules() -> None:
    f = frame(
        [
            ("u", None, "a", "view", np.nan, T0),
            ("u", None, "a", "purchase", np.nan, T0),
            ("u", None, "b", "rating", 4.5, T0),
            ("u", None, "c", "play", 99.0, T0),
        ]
    )
    w = event_weights(f, EventSettings().weights)
    np.testing.assert_allclose(w, [1.0, 5.0, 4.5, math.log(100.0)])


def test_unknown_type_names_the_field() -> None:
    f = frame([("u", None, "a", "wink", np.nan, T0)])
    with pytest.raises(ValueError, match="event_type"):
        event_weights(f, EventSettings().weights)


def test_decay_halves_weight_each_half_life() -> None:
    ts = np.array([T0, T0 - 7 * MICROS_PER_DAY, T0 - 14 * MICROS_PER_DAY])
    np.testing.assert_allclose(decay_factors(ts, T0, 7.0), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(decay_factors(ts, T0, None), [1.0, 1.0, 1.0])


def test_matrix_sums_weights_per_pair_with_decay() -> None:
    f = frame(
        [
            ("u1", None, "007", "view", np.nan, T0),
            ("u1", None, "007", "add_to_cart", np.nan, T0 - 10 * MICROS_PER_DAY),
            ("u2", None, "42", "purchase", np.nan, T0),
        ]
    )
    data = Interactions.from_events(f, EventSettings().weights, half_life_days=10.0)
    assert data.matrix.shape == (2, 2)
    u1, item = data.users.to_index(["u1"])[0], data.items.to_index(["007"])[0]
    assert data.matrix[u1, item] == pytest.approx(1.0 + 3.0 * 0.5)
    assert list(data.items.external_ids) == ["007", "42"]  # ids stay strings, zeros kept


def test_anonymous_sessions_are_actors_of_their_own() -> None:
    f = frame(
        [
            ("s1", None, "a", "view", np.nan, T0),
            (None, "s1", "b", "view", np.nan, T0),
        ]
    )
    keys = actor_keys(f)
    assert list(keys) == ["s1", "session:s1"]
    assert Interactions.from_events(f, EventSettings().weights).n_users == 2


def test_negative_net_feedback_leaves_no_entry() -> None:
    weights = {**EventSettings().weights, "dislike": -2.0}
    f = frame(
        [
            ("u", None, "a", "view", np.nan, T0),
            ("u", None, "a", "dislike", np.nan, T0),
            ("u", None, "b", "view", np.nan, T0),
        ]
    )
    data = Interactions.from_events(f, weights)
    assert data.matrix.nnz == 1


def test_fingerprint_changes_with_data() -> None:
    a = frame([("u", None, "a", "view", np.nan, T0)])
    b = frame([("u", None, "a", "purchase", np.nan, T0)])
    w = EventSettings().weights
    fa, fb = (
        Interactions.from_events(a, w).fingerprint(),
        Interactions.from_events(b, w).fingerprint(),
    )
    assert fa != fb
    assert fa == Interactions.from_events(a, w).fingerprint()
