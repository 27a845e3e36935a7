"""EASE with GF-CF's low-pass filter beside it (``lowpass``) against a dense numpy oracle: the
filter from a full SVD of the normalised matrix (not the model's eigen-solver on the Gram), EASE
from a plain inverse, each user's two score rows divided by their standard deviations and summed."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE, RISING_FLOOR
from recsmith.models.low_pass import low_pass_factors, top_right_singular_vectors
from recsmith.models.registry import create
from recsmith.testing.recommender import view_events

LAM = 3.0


def toy(seconds_apart: int = 1) -> Interactions:
    """14 users × 9 items, a seeded random binary matrix with every user and item present; each
    event ``seconds_apart`` after the one before (user by user)."""
    rng = np.random.default_rng(5)
    x = rng.random((14, 9)) < 0.35
    x[np.arange(14), np.arange(14) % 9] = True
    rows = [
        (f"u{u:02d}", f"i{i}", (u * 9 + i) * seconds_apart)
        for u, i in zip(*np.nonzero(x), strict=True)
    ]
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


def test_the_rising_factor_multiplies_the_blend() -> None:
    """The rising factor (tested against its own oracle in test_ease.py) scales the blended
    row — EASE + filter, each row-scaled — floored at ``RISING_FLOOR``: applied before the blend,
    the row scaling would undo most of it."""
    d = toy(seconds_apart=6 * 3600)  # over a month, a half-life of a day: the last users' rise
    x = binary(d)
    model = EASE(
        regularization=LAM,
        lowpass=0.7,
        lowpass_rank=3,
        rising=1.0,
        rising_half_life_days=1.0,
        dtype="float64",
    ).fit(d)
    assert np.ptp(model.rising_) > 0.5  # far from flat, so the order shows
    expected = np.maximum(oracle(x, x, 0.7, 3), RISING_FLOOR) * model.rising_[None, :]
    np.testing.assert_allclose(model._score(np.arange(d.n_users)), expected, rtol=1e-4, atol=1e-4)


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
def test_top_right_singular_vectors_span_the_top_eigenspace(k: int) -> None:
    rng = np.random.default_rng(2)
    basis = np.linalg.qr(rng.standard_normal((30, 30)))[0]
    a = np.diag(np.sqrt(np.linspace(0.01, 1.0, 30))) @ basis.T  # aᵀa: distinct eigenvalues
    v = top_right_singular_vectors(sparse.csr_array(a), k)
    top = basis[:, -k:]  # the largest eigenvalues' vectors
    np.testing.assert_allclose(v @ v.T, top @ top.T, atol=1e-8)


def zipf_matrix(n_users: int, n_items: int, seed: int) -> sparse.csr_array:
    """A connected 0/1 matrix: 8 draws a user from a Zipf-like popularity, plus a ring (user u has
    item u mod n_items) so every item is held."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rows = np.repeat(np.arange(n_users), 8)
    cols = rng.choice(n_items, size=len(rows), p=p / p.sum())
    rows = np.concatenate([rows, np.arange(n_users)])
    cols = np.concatenate([cols, np.arange(n_users) % n_items])
    x = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def dense_filter(x: np.ndarray, rank: int) -> np.ndarray:
    """GF-CF's filter D_i^−1/2 V Vᵀ D_i^1/2 from a full SVD of the normalised dense matrix."""
    user_len, pop = np.maximum(x.sum(axis=1), 1.0), x.sum(axis=0)
    normed = x / np.sqrt(user_len)[:, None] / np.sqrt(pop)[None, :]
    v = np.linalg.svd(normed, full_matrices=False)[2][:rank]
    return np.diag(pop**-0.5) @ v.T @ v @ np.diag(pop**0.5)


def test_the_matrix_free_filter_equals_the_dense_svd_on_a_larger_matrix() -> None:
    """600 items (ARPACK's matrix-free path) against a full SVD of the dense matrix."""
    x = zipf_matrix(3000, 600, seed=0)
    left, right = low_pass_factors(x, 16)
    np.testing.assert_allclose(left @ right, dense_filter(x.toarray(), 16), atol=1e-5)


def test_fitting_twice_gives_bit_identical_factors() -> None:
    """ARPACK's start vector is fixed: a refit of the same data serves the same lists."""
    x = zipf_matrix(3000, 600, seed=1)
    first, again = low_pass_factors(x, 16), low_pass_factors(x, 16)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_isolated_pairs_leave_the_main_components_filter_alone() -> None:
    """40 one-item users of 40 items nobody else has: each pair is a component whose eigenvalue
    is 1, as the main one's top is. The filter keeps to the main component: its block equals the
    filter of the main matrix alone (dense SVD), on both solvers, and the pairs' rows are zero."""
    x = zipf_matrix(3000, 400, seed=0)
    pairs = sparse.csr_array(np.eye(40))
    both = sparse.csr_array(sparse.block_diag([x, pairs], format="csr"))
    for rank in (32, 399):  # ARPACK; the dense solver (k ≥ n − 1 on the main 400 items)
        left, right = low_pass_factors(both, rank)
        assert left.shape == (440, rank)
        full = left @ right
        np.testing.assert_allclose(full[:400, :400], dense_filter(x.toarray(), rank), atol=1e-5)
        assert not full[400:].any() and not full[:, 400:].any()
    expected = dense_filter(x.toarray(), 32)
    arpack = low_pass_factors(both, 32)
    users = x[:200].toarray()
    top = np.argsort(-np.where(users > 0, -np.inf, users @ expected), axis=1)[:, :10]
    served = users @ (arpack[0] @ arpack[1])[:400, :400]
    np.testing.assert_array_equal(
        np.argsort(-np.where(users > 0, -np.inf, served), axis=1)[:, :10], top
    )
