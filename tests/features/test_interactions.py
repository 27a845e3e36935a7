"""Interactions: weights per event type, decay, aggregation, anonymous actors, string ids."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import (
    MICROS_PER_DAY,
    Interactions,
    actor_keys,
    decay_factors,
    event_weights,
)
from recsmith.testing.recommender import rating_events

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


def test_hostile_stored_values_are_dropped_or_clipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Values the door refuses today may still be in a store (old data, another writer)."""
    f = frame(
        [
            ("u1", None, "a", "rating", 1e308, T0),  # clipped to 1e9
            ("u1", None, "b", "rating", math.inf, T0),  # dropped
            ("u1", None, "c", "rating", np.nan, T0),  # a rating without its value: dropped
            ("u1", None, "d", "play", -5.0, T0),  # log(1 - 4): dropped
            ("u2", None, "a", "rating", 3e38, T0),  # two clipped to 1e9 each: 2e9, not inf
            ("u2", None, "a", "rating", 3e38, T0),
            ("u2", None, "e", "view", 1e308, T0),  # a constant weight: the value is not used
            ("u3", None, "b", "rating", -1e308, T0),  # clipped to -1e9: net negative, no entry
        ]
    )
    with caplog.at_level("WARNING", logger="recsmith.features.interactions"):
        data = Interactions.from_events(f, EventSettings().weights)
    [warning] = caplog.records
    assert "dropped 3 event(s)" in warning.getMessage()
    assert "clipped 4 to +-1e+09" in warning.getMessage()
    assert list(data.users.external_ids) == ["u1", "u2", "u3"]
    assert list(data.items.external_ids) == ["a", "e", "b"]
    dense = data.matrix.toarray()
    np.testing.assert_array_equal(dense, [[1e9, 0, 0], [2e9, 1, 0], [0, 0, 0]])
    assert np.isfinite(data.event_weights).all() and len(data.event_weights) == 5


def test_clean_events_raise_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    f = frame([("u", None, "a", "rating", 10.0, T0), ("u", None, "b", "play", 1e9, T0)])
    with caplog.at_level("WARNING", logger="recsmith.features.interactions"):
        data = Interactions.from_events(f, EventSettings().weights)
    assert caplog.records == []
    np.testing.assert_allclose(data.matrix.toarray(), [[10.0, math.log1p(1e9)]], rtol=1e-6)


def test_the_same_events_in_another_order_give_the_same_matrix_bytes() -> None:
    """A pair's decayed (non-integer) weights are summed in the events' canonical order: float32
    sums depend on their order, and the same events read in another order must give the same
    matrix (and so the same iALS factors); summed as they arrive, most pairs' bytes differ."""
    from recsmith.testing.recommender import view_events

    rng = np.random.default_rng(3)
    rows = [
        (f"u{rng.integers(0, 30)}", f"i{rng.integers(0, 20)}", int(t))
        for t in rng.integers(0, 10**7, 4000)
    ]
    events = view_events(rows)
    weights = dict(EventSettings().weights)

    def matrix_by_id(frame: pd.DataFrame) -> dict[tuple[str, str], bytes]:
        data = Interactions.from_events(frame, weights, half_life_days=3.0)
        m = data.matrix.tocoo()
        users, items = data.users.to_external(m.row), data.items.to_external(m.col)
        return {(u, i): v.tobytes() for u, i, v in zip(users, items, m.data, strict=True)}

    first = matrix_by_id(events)
    for seed in range(4):
        shuffled = events.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        assert matrix_by_id(shuffled) == first


def test_had_holds_every_touched_pair_with_the_matrix_weights() -> None:
    """``had``: each pair an event touched, stored; its weight the matrix's where positive (a
    distinct rating each, so a weight on the wrong pair shows), an explicit 0 where the pair
    nets 0 or below (u1's y 0, z -1; u2's x -4 + 3)."""
    rows = [
        ("u1", "x", 5.0), ("u1", "y", 0.0), ("u1", "z", -1.0),
        ("u2", "x", -4.0), ("u2", "x", 3.0), ("u2", "y", 4.0), ("u2", "w", 2.0),
    ]  # fmt: skip
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    had = data.had()
    pairs = {
        (data.users.to_external([u])[0], data.items.to_external([i])[0]): float(w)
        for u in range(had.shape[0])
        for i, w in zip(
            had.indices[had.indptr[u] : had.indptr[u + 1]],
            had.data[had.indptr[u] : had.indptr[u + 1]],
            strict=True,
        )
    }
    positive = [("u1", "x"), ("u2", "y"), ("u2", "w")]
    expected = {p: 0.0 for p in [("u1", "y"), ("u1", "z"), ("u2", "x")]}
    for user, item in positive:  # the matrix's weight, looked up by id
        row, col = data.users.to_index([user])[0], data.items.to_index([item])[0]
        expected[user, item] = float(data.matrix[row, col])
    assert pairs == pytest.approx(expected)
    assert len({round(expected[p], 6) for p in positive}) == 3  # distinct: a shuffle shows
    assert all(expected[p] > 0 for p in positive)
    only_positive = Interactions.from_events(
        rating_events([("u1", "x", 5.0), ("u2", "y", 4.0)]), EventSettings().weights
    )
    assert only_positive.had() is only_positive.matrix  # the same bytes in the release


def test_had_pairs_is_built_once_and_a_wider_holdout_leaves_it_as_it_was() -> None:
    """Validation, each label window and each tuning grid point ask for ``had_pairs``: built
    once (~90 ms at 1M events each time before). ``new_to_users`` of a holdout with an item
    these data never saw widens a copy, not the shared one. By hand: u1 had x (5) and y (0)."""
    data = Interactions.from_events(
        rating_events([("u1", "x", 5.0), ("u1", "y", 0.0)]), EventSettings().weights
    )
    had = data.had_pairs()
    assert data.had_pairs() is had and had.toarray().tolist() == [[1.0, 1.0]]
    later = sparse.csr_array(np.array([[1.0, 1.0, 1.0]], dtype=np.float32))  # x, y, a new item
    assert data.new_to_users(later).toarray().tolist() == [[0.0, 0.0, 1.0]]
    assert data.had_pairs().shape == (1, 2)
