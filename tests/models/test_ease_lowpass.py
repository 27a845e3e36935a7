"""EASE with GF-CF's low-pass filter beside it (``lowpass``) against a dense numpy oracle: the
filter from a full SVD of the normalised matrix (not the model's eigen-solver on the Gram), EASE
from a plain inverse, each user's two score rows divided by their standard deviations and summed."""

from pathlib import Path

import numpy as np
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.models.low_pass import top_eigenvectors
from recsmith.models.registry import create
from recsmith.testing.recommender import view_events

LAM = 3.0


def toy() -> Interactions:
    """14 users × 9 items, a seeded random binary matrix with every user and item present."""
    rng = np.random.default_rng(5)
    x = rng.random((14, 9)) < 0.35
    x[np.arange(14), np.arange(14) % 9] = True
    rows = [(f"u{u:02d}", f"i{i}", u * 9 + i) for u, i in zip(*np.nonzero(x), strict=True)]
    return Interactions.from_events(view_events(rows), EventSettings().weights)


def binary(d: Interactions) -> np.ndarray:
    x = d.matrix.toarray().astype(np.float64)
    return (x > 0).astype(np.float64)


def oracle(x: np.ndarray, histories: np.ndarray, weight: float, rank: int) -> np.ndarray:
    """Score rows of ``histories`` by EASE (λ = ``LAM``) + ``weight`` × GF-CF's ideal low-pass
    filter of rank ``rank``, each row-scaled by its standard deviation."""
    user_len, pop = np.maximum(x.sum(axis=1), 1.0), x.sum(axis=0)  # a user of no kept item: 0s
    normed = x / np.sqrt(user_len)[:, None] / np.sqrt(pop)[None, :]
    v = np.linalg.svd(normed)[2][:rank]
    low_pass = np.diag(pop**-0.5) @ v.T @ v @ np.diag(pop**0.5)
    p = np.linalg.inv(x.T @ x + LAM * np.eye(x.shape[1]))
    ease = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    e, low = histories @ ease, histories @ low_pass
    return e / e.std(axis=1, keepdims=True) + weight * low / low.std(axis=1, keepdims=True)


@pytest.mark.parametrize("rank", [3, 8, 40])  # ARPACK's path; the dense one (k ≥ n − 1); k > n
def test_user_scores_equal_the_dense_oracle(rank: int) -> None:
    d = toy()
    x = binary(d)
    model = EASE(regularization=LAM, lowpass=0.7, lowpass_rank=rank, dtype="float64").fit(d)
    users = np.arange(d.n_users)
    expected = oracle(x, x, 0.7, min(rank, d.n_items))
    np.testing.assert_allclose(model._score(users), expected, rtol=1e-4, atol=1e-4)


def test_the_filter_changes_the_order_ease_gives() -> None:
    """Not a no-op: with the filter the top-3 unseen items differ from EASE's for some user."""
    d = toy()
    x = binary(d)
    users = np.arange(d.n_users)
    with_filter = EASE(regularization=LAM, lowpass=1.0, lowpass_rank=3).fit(d)
    plain = EASE(regularization=LAM).fit(d)
    a = with_filter.recommend(users, 3, exclude=d.matrix).ids
    b = plain.recommend(users, 3, exclude=d.matrix).ids
    assert (a != b).any()
    expected = np.argsort(-np.where(x > 0, -np.inf, oracle(x, x, 1.0, 3)), axis=1)[:, :3]
    np.testing.assert_array_equal(a, expected)


def test_item_scores_are_a_one_item_history_scored() -> None:
    """``/similar``'s row for item j is the oracle's score of the history {j}."""
    d = toy()
    x = binary(d)
    model = EASE(regularization=LAM, lowpass=0.5, lowpass_rank=3, dtype="float64").fit(d)
    items = np.arange(d.n_items)
    expected = oracle(x, np.eye(d.n_items), 0.5, 3)
    np.testing.assert_allclose(model._item_scores(items), expected, rtol=1e-4, atol=1e-4)


def test_the_item_subset_path_filters_the_kept_items_only() -> None:
    """Above ``max_items`` the filter is fitted on the kept (most popular) items' columns, as
    EASE's solve is; the other items score -inf."""
    d = toy()
    x = binary(d)
    model = EASE(regularization=LAM, lowpass=0.7, lowpass_rank=3, max_items=6).fit(d)
    kept = model.kept_
    assert len(kept) == 6
    scores = model._score(np.arange(d.n_users))
    xk = x[:, kept]
    some = xk.sum(axis=1) > 0  # a user of none has flat rows (no spread to scale by)
    assert some.sum() >= 10
    np.testing.assert_allclose(
        scores[some][:, kept], oracle(xk, xk[some], 0.7, 3), rtol=1e-4, atol=1e-4
    )
    others = np.setdiff1d(np.arange(d.n_items), kept)
    assert np.isneginf(scores[:, others]).all()


def test_off_by_default_and_saved_with_the_model(tmp_path: Path) -> None:
    """No filter unless asked (plain EASE's scores); a saved model with it scores exactly as
    before saving; a release saved before the filter existed loads with it off."""
    d = toy()
    users = np.arange(d.n_users)
    plain = EASE(regularization=LAM).fit(d)
    assert plain.lowpass_left_.size == 0
    model = EASE(regularization=LAM, lowpass=0.7, lowpass_rank=3).fit(d)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(EASE.load(tmp_path / "m")._score(users), model._score(users))
    arrays = plain._arrays()
    del arrays["lowpass_left_"], arrays["lowpass_right_"]
    old = EASE(regularization=LAM)
    old._restore(arrays)
    np.testing.assert_array_equal(old._score(users), plain._score(users))


def test_a_bad_weight_names_the_field() -> None:
    with pytest.raises(ValidationError, match="lowpass"):
        create("ease", lowpass="-1")


@pytest.mark.parametrize("k", [4, 29, 30])  # ARPACK; the dense solver (k ≥ n − 1)
def test_top_eigenvectors_span_the_top_eigenspace(k: int) -> None:
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((30, 30)))[0]
    gram = basis @ np.diag(np.linspace(0.01, 1.0, 30)) @ basis.T  # distinct eigenvalues
    v = top_eigenvectors(gram, k)
    top = basis[:, -k:]  # the largest eigenvalues' vectors
    np.testing.assert_allclose(v @ v.T, top @ top.T, atol=1e-8)
