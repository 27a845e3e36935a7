"""iALS averaged over several starts (``models/als.py``: ``starts``, ``averaged``).

The oracle is numpy's full SVD of the dense users × items matrix of mean scores (Eckart–Young:
its leading ``rank`` terms are the best rank-``rank`` approximation), computed here from the
separate fits, never through ``averaged``'s QR route. Factors are not unique (any rotation
scores the same), so the scores are compared, not the factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.als import ImplicitALS, averaged
from recsmith.testing.recommender import checkerboard_events


def _best_rank(scores: np.ndarray, rank: int) -> np.ndarray:
    left, values, right = np.linalg.svd(scores.astype(np.float64))
    return (left[:, :rank] * values[:rank]) @ right[:rank]


def _fits(rng: np.random.Generator, users: int, items: int, rank: int, k: int) -> list:
    return [(rng.normal(size=(users, rank)), rng.normal(size=(items, rank))) for _ in range(k)]


def test_averaged_scores_are_the_best_low_rank_approximation_of_the_mean() -> None:
    rng = np.random.default_rng(0)
    fits = _fits(rng, users=60, items=45, rank=6, k=3)
    mean = sum(u @ v.T for u, v in fits) / 3
    user_factors, item_factors = averaged(fits)
    assert user_factors.shape == (60, 6) and item_factors.shape == (45, 6)
    assert user_factors.dtype == np.float32 and user_factors.flags.c_contiguous
    np.testing.assert_allclose(user_factors @ item_factors.T, _best_rank(mean, 6), atol=1e-4)
    # not the mean itself (rank 18 brought down to 6): the truncation is real
    assert np.abs(user_factors @ item_factors.T - mean).max() > 0.1


def test_fewer_users_than_factors_keep_the_width_and_the_exact_mean() -> None:
    rng = np.random.default_rng(1)
    fits = _fits(rng, users=4, items=30, rank=8, k=3)  # the mean has rank <= 4 < 8
    mean = sum(u @ v.T for u, v in fits) / 3
    user_factors, item_factors = averaged(fits)
    assert user_factors.shape == (4, 8) and item_factors.shape == (30, 8)
    np.testing.assert_allclose(user_factors @ item_factors.T, mean, atol=1e-4)


def test_starts_average_the_scores_of_fits_from_consecutive_seeds() -> None:
    data = Interactions.from_events(checkerboard_events(), EventSettings().weights)
    params = {"factors": 4, "iterations": 5, "num_threads": 1}
    single = [ImplicitALS(random_state=11 + n, starts=1, **params).fit(data) for n in range(3)]
    mean = sum(m.user_factors_ @ m.item_factors_.T for m in single) / 3
    model = ImplicitALS(random_state=11, starts=3, **params).fit(data)
    assert model.user_factors_.shape == (data.n_users, 4)
    scores = model.user_factors_ @ model.item_factors_.T
    np.testing.assert_allclose(scores, _best_rank(mean, 4), atol=2e-4)
    # and not merely one of the starts
    assert min(np.abs(scores - m.user_factors_ @ m.item_factors_.T).max() for m in single) > 1e-3


def test_averaged_starts_are_bit_identical_whatever_the_event_order() -> None:
    """The average's QR and SVD run in id order (``_fit_implicit``): the same events shuffled
    give the same bytes for every id (oracle: the first order's bytes, rows matched by id)."""
    events = checkerboard_events()
    params = {"factors": 4, "iterations": 5, "num_threads": 1, "starts": 3}

    def by_id(frame: pd.DataFrame) -> tuple[bytes, bytes]:
        data = Interactions.from_events(frame, EventSettings().weights)
        model = ImplicitALS(**params).fit(data)
        users = np.argsort(data.users.to_array(), kind="stable")
        items = np.argsort(data.items.to_array(), kind="stable")
        return model.user_factors_[users].tobytes(), model.item_factors_[items].tobytes()

    expected = by_id(events)
    assert by_id(events.sample(frac=1.0, random_state=3)) == expected
    assert by_id(events.iloc[::-1]) == expected


def test_a_row_zero_in_every_fit_stays_exactly_zero() -> None:
    """An item (or user) no event touched has exact zero factors in every start; its mean scores
    are zero, so its averaged factors must be exact zeros too: ~1e-16 left by the QR route would
    become a unit-length direction for /similar, whose "no signal" check looks for exact zeros."""
    rng = np.random.default_rng(3)
    fits = _fits(rng, users=40, items=30, rank=4, k=3)
    for user_factors, item_factors in fits:
        user_factors[0] = 0.0
        item_factors[[0, 7]] = 0.0
    user_factors, item_factors = averaged(fits)
    assert not user_factors[0].any() and not item_factors[[0, 7]].any()
    assert user_factors[1:].any(axis=1).all() and np.delete(item_factors, [0, 7], 0).any(1).all()
