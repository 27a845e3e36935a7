"""EASE against its closed form, DLAE's dropout against the expected loss it stands for, and the
item-subset path for large catalogues."""

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE, spd_inverse
from recsmith.testing.recommender import checkerboard_events, view_events


def data() -> Interactions:
    return Interactions.from_events(checkerboard_events(), EventSettings().weights)


def test_weights_equal_the_closed_form() -> None:
    d = data()
    lam = 5.0
    model = EASE(regularization=lam, dtype="float64").fit(d)  # the default config: plain EASE
    x = d.matrix.toarray()
    x[x > 0] = 1.0
    p = np.linalg.inv(x.T @ x + lam * np.eye(d.n_items))
    b = np.eye(d.n_items) - p / np.diag(p)
    np.testing.assert_allclose(model.weights_, b, atol=1e-5)
    np.testing.assert_allclose(np.diag(model.weights_), 0.0)


def test_dropout_weights_minimise_the_expected_loss_under_every_dropout_mask() -> None:
    """The oracle is the denoising objective itself, not the paper's closed form: every mask
    that drops each of a user's entries with probability p (survivors scaled by 1/(1−p)),
    weighted by its probability, as rows of one weighted ridge regression solved by lstsq."""
    rows = [("a", "i0", 1), ("a", "i1", 2), ("a", "i2", 3), ("b", "i1", 4), ("b", "i3", 5),
            ("c", "i0", 6), ("c", "i1", 7), ("c", "i3", 8), ("d", "i2", 9), ("d", "i3", 10),
            ("e", "i0", 11), ("e", "i1", 12), ("e", "i2", 13), ("e", "i3", 14)]  # fmt: skip
    d = Interactions.from_events(view_events(rows), EventSettings().weights)
    lam, drop = 0.7, 0.3
    model = EASE(regularization=lam, dropout=drop, dtype="float64").fit(d)

    x = d.matrix.toarray()
    x[x > 0] = 1.0
    n = d.n_items
    inputs, targets, weights = [], [], []
    for row in x:
        for kept in itertools.product((0.0, 1.0), repeat=n):
            mask = np.array(kept)
            inputs.append(row * mask / (1 - drop))
            targets.append(row)
            weights.append(np.prod(np.where(mask == 1, 1 - drop, drop)))
    root = np.sqrt(np.array(weights))[:, None]  # each row's weight, as a least-squares row scale
    design = np.vstack([root * np.array(inputs), np.sqrt(lam) * np.eye(n)])
    target = np.vstack([root * np.array(targets), np.zeros((n, n))])
    expected = np.linalg.lstsq(design, target, rcond=None)[0]
    np.fill_diagonal(expected, 0.0)  # the model drops what only scores a user's own items
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)
    plain = EASE(regularization=lam, dtype="float64").fit(d).weights_
    assert np.abs(model.weights_ - plain).max() > 0.05  # not EASE's answer: the dropout counts


@pytest.mark.parametrize("drop", [1.0, -0.1])
def test_a_dropout_outside_zero_to_one_is_refused_by_name(drop: float) -> None:
    with pytest.raises(ValidationError, match="dropout"):
        EASE(dropout=drop)


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


def test_the_rising_factor_reorders_equal_scores_towards_what_is_taking_off() -> None:
    """Items 1 and 2 are each taken with item 0 by two users, so EASE scores them the same for a
    user holding item 0. Item 2's events are a day old, item 1's a year old: by hand, item 2 holds
    nearly all the recent (7-day half-life) events for the same share of users as item 1, so its
    factor is far above 1 and item 1's far below, and only the rising order puts item 2 first."""
    day = 86_400_000_000
    rows = [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (2, 0, 364), (2, 2, 364), (3, 0, 364)]
    rows += [(3, 2, 364), (4, 0, 365)]  # user 4 holds item 0 only: the user scored
    events = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u, _, _ in rows],
            "item_id": [f"i{i}" for _, i, _ in rows],
            "ts": [1_700_000_000_000_000 + d * day for _, _, d in rows],
            "event_id": [f"e{n}" for n in range(len(rows))],
            "session_id": None,
            "event_type": "purchase",
            "value": np.nan,
            "context": None,
        }
    )
    d = Interactions.from_events(events, EventSettings().weights)
    item = {name: d.items.to_index(np.array([name]))[0] for name in ("i0", "i1", "i2")}
    user = d.users.to_index(np.array(["u4"]))
    plain = EASE(regularization=1.0, dtype="float64").fit(d)
    scores = plain._score(user)[0]
    assert scores[item["i1"]] == pytest.approx(scores[item["i2"]], rel=1e-5)
    rising = EASE(regularization=1.0, dtype="float64", rising=1.0).fit(d)
    # by hand: recent weight per event 0.5 ** (age / 7); users per item i0 5, i1 2, i2 2 (of 9)
    recent = {"i0": 2 * 0.5 ** (365 / 7) + 2 * 0.5 ** (1 / 7) + 1, "i1": 2 * 0.5 ** (365 / 7)}
    recent["i2"] = 2 * 0.5 ** (1 / 7)
    total = sum(recent.values())
    for name, users in (("i0", 5), ("i1", 2), ("i2", 2)):
        expected = (recent[name] / total + 1e-6) / (users / 9 + 1e-6)
        assert rising.rising_[item[name]] == pytest.approx(expected, rel=1e-4)
    top = rising.recommend(user, 1, exclude=d.matrix[user])
    assert top.ids[0, 0] == item["i2"]
    assert rising._score(user)[0, item["i2"]] > 3 * rising._score(user)[0, item["i1"]]
    off = EASE(regularization=1.0, dtype="float64").fit(d)
    assert len(off.rising_) == 0  # off by default: scores exactly EASE's
    np.testing.assert_array_equal(off._score(user), scores[None, :])


def test_the_rising_factor_is_saved_with_the_model(tmp_path: Path) -> None:
    """A saved EASE with the factor on scores exactly as before saving; one saved before the
    factor existed (no ``rising_`` array) loads with it off."""
    d = Interactions.from_events(checkerboard_events(), EventSettings().weights, reference_ts=None)
    model = EASE(regularization=5.0, rising=1.0, rising_half_life_days=1.0).fit(d)
    assert len(model.rising_) == d.n_items
    model.save(tmp_path / "m")
    loaded = EASE.load(tmp_path / "m")
    users = np.arange(d.n_users)
    np.testing.assert_array_equal(loaded._score(users), model._score(users))
    arrays = model._arrays()
    del arrays["rising_"]
    old = EASE(regularization=5.0)
    old._restore(arrays)
    np.testing.assert_array_equal(old._score(users), EASE(regularization=5.0).fit(d)._score(users))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_in_place_weights_are_bit_identical_to_the_copying_path(
    dtype: str, dropout: float
) -> None:
    """``_solve`` writes B over P and keeps a float32 Gram uncopied (BENCHMARKS §184); the
    oracle is the path it replaced, spelled out: a copied Gram, then -P / diag(P) (or -P·Λ) as
    a new array. Calibration's choices rest on exact ties and NDCG means, so not a tolerance:
    the same bits."""
    rng = np.random.default_rng(4)
    dense = (rng.random((400, 150)) < 0.06).astype(np.float32)
    xk = sparse.csr_array(dense)
    model = EASE(regularization=7.0, dropout=dropout, dtype=dtype)
    gram = (xk.T @ xk).toarray().astype(dtype)
    penalty = 7.0 + dropout / (1.0 - dropout) * np.diag(gram)
    gram[np.diag_indices_from(gram)] += penalty
    p = spd_inverse(gram)
    old = -p * penalty[None, :] if dropout > 0 else -p / np.diag(p)[None, :]
    old[np.diag_indices_from(old)] = 0.0
    weights = model._solve(xk)
    assert weights.dtype == np.float32 and weights.flags.c_contiguous
    assert weights.tobytes() == np.ascontiguousarray(old, dtype=np.float32).tobytes()


def test_the_solve_holds_one_dense_gram_at_its_peak() -> None:
    """Review rv30c F2: the Gram is handed to ``spd_inverse`` in C order, so LAPACK inverts it in
    place instead of copying a Fortran-ordered one beside it. At 600 items one 2048² mirror tile
    covers the matrix, so the traced peak is P plus the tile's temporaries: 3.57 n² measured, and
    4.28 n² with the Gram in Fortran order (the copy beside it)."""
    rng = np.random.default_rng(3)
    n = 600
    xk = sparse.csr_array((rng.random((400, n)) < 0.05).astype(np.float32))
    model = EASE(regularization=3.0)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    model._solve(xk)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak / (4 * n * n) < 4.0
