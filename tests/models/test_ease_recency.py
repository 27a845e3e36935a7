"""EASE's ``recency``: a known user's own items weighed at scoring time by their place from the
newest, against places and weights worked out by hand from the events, and the user's scores
against the weighted row times a plain EASE's weights (another fit: the solve is not what is
under test). A release scores a user as the fitted model did, and a history without places (no
order known: offline rows, a set) is scored unweighted (with places:
``test_ease_recency_visitors.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions, pair_places
from recsmith.models.ease import EASE
from recsmith.testing.recommender import view_events

WEIGHTS = EventSettings().weights
#: a: x at 10 and again at 30 (its latest counts), y and z at 40 (one instant), w at 20;
#: b: y at 5, x at 7; c: z at 1, w at 2, v at 3 (v: a fifth item for the solve to reach)
ROWS = [("a", "x", 10), ("a", "y", 40), ("a", "w", 20), ("a", "x", 30), ("a", "z", 40),
        ("b", "y", 5), ("b", "x", 7), ("c", "z", 1), ("c", "w", 2), ("c", "v", 3)]  # fmt: skip
#: places by hand: a's y and z share place 1 (nothing newer), x is 3rd (two pairs are newer), w 4th
PLACES = {("a", "y"): 1, ("a", "z"): 1, ("a", "x"): 3, ("a", "w"): 4,
          ("b", "x"): 1, ("b", "y"): 2, ("c", "v"): 1, ("c", "w"): 2, ("c", "z"): 3}  # fmt: skip


def as_dict(data: Interactions, matrix: object) -> dict[tuple[str, str], float]:
    coo = matrix.tocoo()  # type: ignore[attr-defined]
    users, items = data.users.to_external(coo.row), data.items.to_external(coo.col)
    return {(u, i): float(v) for u, i, v in zip(users, items, coo.data, strict=True)}


@pytest.mark.parametrize("reverse", [False, True])
def test_places_count_from_the_newest_pair_and_share_an_instant(reverse: bool) -> None:
    """Rows in either order: the same places (the pair's latest event; a tie shares a place)."""
    rows = ROWS[::-1] if reverse else ROWS
    data = Interactions.from_events(view_events(rows), WEIGHTS)
    assert as_dict(data, pair_places(data)) == PLACES


def test_a_users_scores_are_the_hand_weighted_row_times_plain_eases_weights() -> None:
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    beta, half = 2.0, 2.0
    model = EASE(regularization=0.5, recency=beta, recency_half_places=half).fit(data)
    plain = EASE(regularization=0.5).fit(data)
    # 1 + β · 0.5 ** ((place − 1) / 2) by hand: place 1 → 3, 2 → 1 + 2/√2, 3 → 2, 4 → 1 + 2/2√2
    x = hand_weighted_rows(
        data, {1: 3.0, 2: 1.0 + 2.0 / np.sqrt(2.0), 3: 2.0, 4: 1.0 + 1.0 / np.sqrt(2.0)}
    )
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model._score(users), x @ plain.weights_, rtol=1e-5, atol=1e-6)
    # the weights change a's order: plain EASE ranks v by the unweighted row, which the
    # weighted one does not give (else the test would not see a model that ignored recency)
    assert not np.allclose(model._score(users), plain._score(users))


def hand_weighted_rows(data: Interactions, by_place: dict[int, float]) -> np.ndarray:
    """Each known user's row with its items at ``by_place``[their place in ``PLACES``]."""
    x = np.zeros((data.n_users, data.n_items))
    for (user, item), place in PLACES.items():
        x[data.users.to_index([user])[0], data.items.to_index([item])[0]] = by_place[place]
    return x


def test_the_low_pass_filter_reads_the_weighted_rows_too() -> None:
    """With ``lowpass``: (x·B)/std + w·(x·L·R)/std per user, x the hand-weighted row and B, L, R
    a plain fit's (review rv30s F4: a filter fed the unweighted rows must fail this)."""
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    settings = {"regularization": 0.5, "lowpass": 1.0, "lowpass_rank": 2}
    model = EASE(**settings, recency=2.0, recency_half_places=1.0).fit(data)
    plain = EASE(**settings).fit(data)
    # 1 + 2 · 0.5 ** (place − 1): place 1 → 3, 2 → 2, 3 → 1.5, 4 → 1.25
    x = hand_weighted_rows(data, {1: 3.0, 2: 2.0, 3: 1.5, 4: 1.25})

    def per_user_std(scores: np.ndarray) -> np.ndarray:
        return scores / scores.std(axis=1, keepdims=True)

    def filtered(rows: np.ndarray) -> np.ndarray:
        return per_user_std(rows @ plain.lowpass_left_ @ plain.lowpass_right_)

    ease = per_user_std(x @ plain.weights_)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(model._score(users), ease + filtered(x), rtol=1e-4, atol=1e-5)
    unweighted = (x > 0).astype(float)  # a filter reading these must give other scores
    assert not np.allclose(ease + filtered(x), ease + filtered(unweighted), atol=1e-3)


def test_off_scores_as_plain_ease_and_a_history_without_places_is_unweighted() -> None:
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    model = EASE(regularization=0.5, recency=3.0).fit(data)
    plain = EASE(regularization=0.5).fit(data)
    assert EASE().config.recency == 0.0
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(EASE(regularization=0.5, recency=0.0).fit(data)._score(users),
                                  plain._score(users))  # fmt: skip
    rows = data.matrix[users]
    np.testing.assert_array_equal(model._score_history(rows), plain._score_history(rows))
    doubled = sparse.csr_array(2.0 * rows)  # a caller's weighted history is read, not changed
    before = doubled.data.copy()
    np.testing.assert_array_equal(model._score_history(doubled), plain._score_history(rows))
    np.testing.assert_array_equal(doubled.data, before)


def test_a_saved_model_scores_users_as_the_fitted_one(tmp_path: Path) -> None:
    """The weights travel in the release (serving reads them, never recomputes); a release
    written before them loads with recency off."""
    data = Interactions.from_events(view_events(ROWS), WEIGHTS)
    model = EASE(regularization=0.5, recency=3.0).fit(data)
    model.save(tmp_path / "m")
    loaded = EASE.load(tmp_path / "m")
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded._score(users), model._score(users))
    arrays = {k: v for k, v in model._arrays().items() if not k.startswith("user_recency_")}
    old = EASE(regularization=0.5)
    old._restore(arrays)
    np.testing.assert_array_equal(
        old._score(users), EASE(regularization=0.5).fit(data)._score(users)
    )
