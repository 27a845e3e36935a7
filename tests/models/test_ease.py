"""EASE against its closed form, and the item-subset path for large catalogues."""

import numpy as np
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE, spd_inverse
from recsmith.testing.recommender import checkerboard_events


def data() -> Interactions:
    return Interactions.from_events(checkerboard_events(), EventSettings().weights)


def test_weights_equal_the_closed_form() -> None:
    d = data()
    lam = 5.0
    model = EASE(regularization=lam, dtype="float64").fit(d)
    x = d.matrix.toarray()
    x[x > 0] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(d.n_items))
    b = np.eye(d.n_items) - p / np.diag(p)
    np.testing.assert_allclose(model.weights_, b, atol=1e-5)
    np.testing.assert_allclose(np.diag(model.weights_), 0.0)


def test_item_subset_scores_only_the_most_popular_items() -> None:
    d = data()
    model = EASE(regularization=10.0, max_items=12).fit(d)
    counts = np.bincount(d.matrix.indices, minlength=d.n_items)
    assert set(model.kept_) == set(np.argsort(-counts, kind="stable")[:12])
    top = model.recommend(np.arange(d.n_users), 30, exclude=d.matrix)
    assert set(top.ids[top.ids >= 0]) <= set(model.kept_)
    similar = model.similar_items(np.arange(d.n_items), 30)
    assert set(similar.ids[similar.ids >= 0]) <= set(model.kept_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 300])
def test_the_in_place_inverse_is_the_inverse(n: int, dtype: type) -> None:
    rng = np.random.default_rng(n)
    x = rng.random((2 * n + 3, n))
    gram = (x.T @ x + 3.0 * np.eye(n)).astype(dtype)
    expected = np.linalg.inv(gram.astype(np.float64))
    # blocks smaller than the matrix, so the triangle is mirrored across several of them
    inverse = spd_inverse(gram.copy(), block=64)
    assert inverse.dtype == dtype and inverse.flags.c_contiguous
    np.testing.assert_allclose(inverse, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(inverse, inverse.T)


def test_a_matrix_that_is_not_positive_definite_is_refused() -> None:
    with pytest.raises(ValueError, match="not positive definite"):
        spd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]]))
