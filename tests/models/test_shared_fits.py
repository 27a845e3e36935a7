"""EASE's fit pieces shared inside a ``sharing`` block (``models/shared_fits.py``): a fit that
reuses a piece scores exactly as a fit on its own does, its solve equals EASE's closed form
recomputed here with numpy, pieces cross neither to other data nor outside the block, and
``retain`` keeps only what the named fits used."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.models.shared_fits import SharedFits, sharing
from recsmith.testing.recommender import view_events


def toy(seed: int) -> Interactions:
    """16 users × 10 items, a seeded random binary matrix with every user and item present."""
    rng = np.random.default_rng(seed)
    x = rng.random((16, 10)) < 0.35
    x[np.arange(16), np.arange(16) % 10] = True
    rows = [(f"u{u:02d}", f"i{i}", u * 10 + i) for u, i in zip(*np.nonzero(x), strict=True)]
    return Interactions.from_events(view_events(rows), EventSettings().weights)


def closed_form(d: Interactions, lam: float) -> np.ndarray:
    """EASE's B = I − P / diag(P), P = (XᵀX + λI)⁻¹, on the binary matrix, in float64."""
    x = (d.matrix.toarray() > 0).astype(np.float64)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


VARIANTS = [
    {"regularization": 5.0},
    {"regularization": 5.0, "rising": 0.5},
    {"regularization": 5.0, "lowpass": 0.3},
    {"regularization": 5.0, "lowpass": 1.0},
    {"regularization": 5.0, "lowpass": 1.0, "autoencoder": 1.0},
    {"regularization": 2.0, "lowpass": 1.0, "autoencoder": 1.0},
    {"regularization": 2.0, "lowpass": 1.0, "lowpass_rank": 3},
]


def test_shared_fits_score_as_fits_on_their_own_and_solve_the_closed_form() -> None:
    d = toy(1)
    users = np.arange(d.n_users)
    fits = SharedFits(d)
    shared = []
    for n, params in enumerate(VARIANTS):
        with sharing(fits, n):
            shared.append(EASE(**params).fit(d))
    assert len(fits) == 5  # two solves, two filters (rank 32, 3), one network
    for params, model in zip(VARIANTS, shared, strict=True):
        alone = EASE(**params).fit(d)
        np.testing.assert_array_equal(model._score(users), alone._score(users))
        np.testing.assert_allclose(
            model.weights_, closed_form(d, params["regularization"]), rtol=1e-4, atol=1e-5
        )
    # one solve per λ, one filter per rank, one network (it depends on the data, not on λ)
    assert all(m.weights_ is shared[0].weights_ for m in shared[1:5])
    assert shared[5].weights_ is not shared[0].weights_
    assert shared[3].lowpass_left_ is shared[2].lowpass_left_
    assert shared[6].lowpass_left_.shape[1] == 3
    assert fits.saved_seconds > 0


def test_other_data_and_fits_outside_the_block_compute_their_own() -> None:
    d, other = toy(1), toy(2)
    fits = SharedFits(d)
    with sharing(fits, "a"):
        first = EASE(regularization=5.0).fit(d)
        on_other = EASE(regularization=5.0).fit(other)
    outside = EASE(regularization=5.0).fit(d)
    assert on_other.weights_ is not first.weights_
    np.testing.assert_allclose(on_other.weights_, closed_form(other, 5.0), rtol=1e-4, atol=1e-5)
    assert outside.weights_ is not first.weights_
    assert len(fits) == 1


def test_retain_keeps_only_what_the_named_fits_used() -> None:
    d = toy(1)
    fits = SharedFits(d)
    with sharing(fits, "lam5"):
        kept = EASE(regularization=5.0).fit(d)
    with sharing(fits, "lam2"):
        EASE(regularization=2.0, lowpass=1.0).fit(d)
    with sharing(fits, "lam5, rising"):
        EASE(regularization=5.0, rising=0.5).fit(d)  # uses the λ 5 solve again
    assert len(fits) == 3
    fits.retain("lam5, rising")
    assert len(fits) == 1
    with sharing(fits, "again"):
        assert EASE(regularization=5.0).fit(d).weights_ is kept.weights_
        assert EASE(regularization=2.0).fit(d).weights_ is not None  # computed anew
    assert len(fits) == 2
    fits.retain()
    assert len(fits) == 0


@pytest.mark.parametrize(
    "other",
    [{"dtype": "float64"}, {"dropout": 0.25}, {"binary": False}, {"max_items": 6}, {"decay": 0.5}],
)
def test_the_solve_key_tells_each_setting_of_the_solve_apart(other: dict) -> None:
    d = toy(3)
    fits = SharedFits(d)
    with sharing(fits, "x"):
        plain = EASE(regularization=5.0).fit(d)
        changed = EASE(regularization=5.0, **other).fit(d)
    assert changed.weights_ is not plain.weights_
    np.testing.assert_array_equal(
        changed.weights_, EASE(regularization=5.0, **other).fit(d).weights_
    )
