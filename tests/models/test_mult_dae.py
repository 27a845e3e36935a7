"""The Mult-DAE (``mult_dae.py``) and EASE's ``autoencoder`` blend: the gradient against central
finite differences of a loss written here from the paper's formula, a fit that learns a toy's two
groups, and EASE's scores against a numpy oracle of the blend (a dense EASE, the fitted network's
forward pass written out, each row divided by its standard deviation)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.models.mult_dae import MultDAE, _gradients, epochs_for, fit_mult_dae
from recsmith.testing.recommender import view_events

LAM = 3.0


def loss(params: list[np.ndarray], target: np.ndarray, kept: np.ndarray, shrink: float) -> float:
    """Mean over rows of −Σⱼ xⱼ log softmax(z)ⱼ + shrink / 2 · (‖W₁‖² + ‖W₂‖²), dense, float64."""
    w1, b1, w2, b2 = params
    xn = kept / np.linalg.norm(kept, axis=1, keepdims=True)
    z = np.tanh(xn @ w1 + b1) @ w2 + b2
    log_soft = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    penalty = shrink / 2 * ((w1**2).sum() + (w2**2).sum())
    return float(-(target * log_soft).sum(axis=1).mean() + penalty)


def test_the_gradient_equals_central_differences_of_the_loss() -> None:
    rng = np.random.default_rng(3)
    items, hidden = 7, 4
    target = (rng.random((5, items)) < 0.5).astype(np.float64)
    target[np.arange(5), np.arange(5)] = 1.0
    kept = target * (rng.random(target.shape) < 0.7) * 2.0  # dropout's survivors, scaled
    kept[np.arange(5), np.arange(5)] = 2.0  # no row left empty
    params = [
        rng.standard_normal((items, hidden)),
        rng.standard_normal(hidden),
        rng.standard_normal((hidden, items)),
        rng.standard_normal(items),
    ]
    shrink = 0.3
    got = _gradients(
        MultDAE(*params), sparse.csr_array(target), sparse.csr_array(kept), np.float32(shrink)
    )
    step = 1e-6
    for p, g in zip(params, got, strict=True):
        numeric = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            saved = p[idx]
            p[idx] = saved + step
            up = loss(params, target, kept, shrink)
            p[idx] = saved - step
            down = loss(params, target, kept, shrink)
            p[idx] = saved
            numeric[idx] = (up - down) / (2 * step)
        np.testing.assert_allclose(g, numeric, rtol=1e-5, atol=1e-7)


def two_groups() -> sparse.csr_array:
    """60 users × 10 items: the first 30 hold 3 of items 0–4, the rest 3 of items 5–9."""
    rng = np.random.default_rng(0)
    x = np.zeros((60, 10))
    for u in range(60):
        group = 0 if u < 30 else 5
        x[u, group + rng.choice(5, 3, replace=False)] = 1.0
    return sparse.csr_array(x)


def test_a_fit_learns_which_items_go_together() -> None:
    """A one-item history of either group scores every item of its group above every item of
    the other, and two fits of the same rows are bit-identical (a seeded order and dropout)."""
    x = two_groups()
    net = fit_mult_dae(x, 8, epochs=1000)
    z = net.logits(sparse.csr_array(np.eye(10)))
    for item in range(10):
        mine = slice(0, 5) if item < 5 else slice(5, 10)
        other = slice(5, 10) if item < 5 else slice(0, 5)
        assert z[item, mine].min() > z[item, other].max()
    again = fit_mult_dae(x, 8, epochs=1000)
    for a, b in zip(net.arrays().values(), again.arrays().values(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("users", "epochs"), [(1, 200), (1300, 200), (2600, 100), (33_000, 8)])
def test_a_fit_reads_a_fixed_number_of_rows(users: int, epochs: int) -> None:
    assert epochs_for(users) == epochs
    assert epochs_for(10**7) == 1


def toy() -> Interactions:
    """14 users × 9 items, a seeded random binary matrix with every user and item present."""
    rng = np.random.default_rng(5)
    x = rng.random((14, 9)) < 0.35
    x[np.arange(14), np.arange(14) % 9] = True
    rows = [(f"u{u:02d}", f"i{i}", u * 9 + i) for u, i in zip(*np.nonzero(x), strict=True)]
    return Interactions.from_events(view_events(rows), EventSettings().weights)


def scaled(rows: np.ndarray) -> np.ndarray:
    return rows / rows.std(axis=1, keepdims=True)


def oracle(x: np.ndarray, histories: np.ndarray, net: MultDAE, weight: float) -> np.ndarray:
    """EASE (λ = ``LAM``, a plain inverse) + ``weight`` × the network's logits, each row-scaled."""
    p = np.linalg.inv(x.T @ x + LAM * np.eye(x.shape[1]))
    ease = histories @ (np.eye(x.shape[1]) - p / np.diag(p)[None, :])
    xn = histories / np.linalg.norm(histories, axis=1, keepdims=True)
    logits = np.tanh(xn @ net.w1 + net.b1) @ net.w2 + net.b2
    return scaled(ease) + weight * scaled(logits)


def test_user_and_item_scores_equal_the_oracle() -> None:
    d = toy()
    x = (d.matrix.toarray() > 0).astype(np.float64)
    model = EASE(regularization=LAM, autoencoder=0.7, autoencoder_hidden=5, dtype="float64")
    model.fit(d)
    assert model.dae_ is not None
    assert model.dae_.w1.shape == (9, 5)
    np.testing.assert_allclose(
        model._score(np.arange(d.n_users)), oracle(x, x, model.dae_, 0.7), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        model._item_scores(np.arange(d.n_items)),
        oracle(x, np.eye(d.n_items), model.dae_, 0.7),
        rtol=1e-4,
        atol=1e-4,
    )


def test_off_by_default_and_saved_with_the_model(tmp_path: Path) -> None:
    """No network unless asked; a saved model with one scores exactly as before saving; a
    release saved before the autoencoder existed loads with it off."""
    d = toy()
    users = np.arange(d.n_users)
    plain = EASE(regularization=LAM).fit(d)
    assert plain.dae_ is None
    assert not any(k.startswith("dae_") for k in plain._arrays())
    model = EASE(regularization=LAM, autoencoder=1.0, autoencoder_hidden=5).fit(d)
    model.save(tmp_path / "m")
    loaded = EASE.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded._score(users), model._score(users))
    assert not np.array_equal(model._score(users), plain._score(users))
    old = EASE(regularization=LAM)
    old._restore(plain._arrays())
    assert old.dae_ is None
    np.testing.assert_array_equal(old._score(users), plain._score(users))
