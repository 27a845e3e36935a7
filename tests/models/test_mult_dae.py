"""The Mult-DAE (``mult_dae.py``) and EASE's ``autoencoder`` blend: the gradient against central
finite differences of a loss written here from the paper's formula, a fit that learns a toy's two
groups, and EASE's scores against a numpy oracle of the blend (a dense EASE, the fitted network's
forward pass written out, each row divided by its standard deviation)."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.models.mult_dae import (
    BETAS,
    EPS,
    LEARNING_RATE,
    MultDAE,
    _gradients,
    adam_step,
    bagged,
    epochs_for,
    fit_mult_dae,
)
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


def test_a_bag_scores_the_mean_of_its_networks_logits() -> None:
    """Three random networks of different widths (float32, as fits are): the bag's logits equal
    the mean of each network's forward pass written out here in float64, and a bag of one is that
    network."""
    rng = np.random.default_rng(11)
    items = 9
    nets = [
        MultDAE(
            *(
                rng.standard_normal(shape).astype(np.float32)
                for shape in ((items, h), (h,), (h, items), (items,))
            )
        )
        for h in (3, 5, 2)
    ]
    rows = (rng.random((6, items)) < 0.4).astype(np.float64)
    rows[np.arange(6), np.arange(6)] = 1.0
    xn = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    per_net = [np.tanh(xn @ n.w1 + n.b1) @ n.w2 + n.b2 for n in nets]
    np.testing.assert_allclose(
        bagged(nets).logits(sparse.csr_array(rows)), np.mean(per_net, axis=0), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        bagged(nets[:1]).logits(sparse.csr_array(rows)), per_net[0], rtol=1e-5, atol=1e-5
    )


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
    """Each row over its standard deviation (a constant row, a history with no kept item, kept)."""
    spread = rows.std(axis=1, keepdims=True)
    return rows / np.where(spread > 0, spread, 1.0)


def oracle(
    x: np.ndarray, histories: np.ndarray, net: MultDAE, weight: float, rising: np.ndarray
) -> np.ndarray:
    """EASE (λ = ``LAM``, a plain inverse), times the ``rising`` factor where one is given (floored
    at 1e-4 first), + ``weight`` × the network's logits less their row mean, each row-scaled."""
    p = np.linalg.inv(x.T @ x + LAM * np.eye(x.shape[1]))
    ease = histories @ (np.eye(x.shape[1]) - p / np.diag(p)[None, :])
    if len(rising):
        ease = np.maximum(ease, 1e-4) * rising
    norm = np.linalg.norm(histories, axis=1, keepdims=True)
    xn = histories / np.where(norm > 0, norm, 1.0)
    logits = np.tanh(xn @ net.w1 + net.b1) @ net.w2 + net.b2
    return scaled(ease) + weight * scaled(logits - logits.mean(axis=1, keepdims=True))


@pytest.mark.parametrize(("rising", "max_items"), [(0.0, 100), (0.5, 100), (0.0, 5)])
def test_user_and_item_scores_equal_the_oracle(rising: float, max_items: int) -> None:
    """Over all 9 items, and over the 5 most popular (the network then covers those only: the
    rest score -inf, and an item outside scores nothing). Not rising with 5: a user with none of
    the 5 scores the floor × a factor that is 1 ± 4e-6 on this toy, whose row scaling float32
    cannot resolve against the float64 oracle."""
    d = toy()
    full = (d.matrix.toarray() > 0).astype(np.float64)
    model = EASE(
        regularization=LAM,
        autoencoder=0.7,
        autoencoder_hidden=5,
        dtype="float64",
        rising=rising,
        max_items=max_items,
    ).fit(d)
    kept = model.kept_
    assert len(kept) == min(max_items, d.n_items)
    x = full[:, kept]
    assert model.dae_ is not None
    assert model.dae_.w1.shape == (len(kept), 5)
    users = model._score(np.arange(d.n_users))
    items = model._item_scores(np.arange(d.n_items))
    outside = np.setdiff1d(np.arange(d.n_items), kept)
    assert np.isneginf(users[:, outside]).all() and np.isneginf(items[outside]).all()
    assert np.isneginf(items[:, outside]).all()
    np.testing.assert_allclose(
        users[:, kept], oracle(x, x, model.dae_, 0.7, model.rising_), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        items[np.ix_(kept, kept)],
        oracle(x, np.eye(len(kept)), model.dae_, 0.7, np.empty(0)),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.parametrize("rising", [0.0, 0.5])
def test_a_shift_of_the_output_bias_leaves_the_scores_unchanged(rising: float) -> None:
    """b₂ + c is the same network (the softmax, loss and gradients are unchanged), so the blend
    must score the same: only the centred logits reach it, and after the rising factor."""
    d = toy()
    users = np.arange(d.n_users)
    model = EASE(regularization=LAM, autoencoder=1.0, autoencoder_hidden=5, rising=rising).fit(d)
    assert model.dae_ is not None
    before = model._score(users)
    model.dae_ = dataclasses.replace(model.dae_, b2=model.dae_.b2 - np.float32(1.0))
    after = model._score(users)
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(
        np.argsort(-after, axis=1, kind="stable"), np.argsort(-before, axis=1, kind="stable")
    )


def test_a_bag_of_networks_is_the_mean_of_fits_from_seeds_0_1_2(tmp_path: Path) -> None:
    """``autoencoder_networks`` 3: the model's logits are the mean of three fits from seeds 0, 1
    and 2 of the kept rows (each pass written out here), they survive save / load, and its
    scores equal the blend's oracle on the bag."""
    d = toy()
    x = (d.matrix.toarray() > 0).astype(np.float64)
    model = EASE(
        regularization=LAM, autoencoder=1.0, autoencoder_hidden=5, autoencoder_networks=3
    ).fit(d)
    assert model.dae_ is not None and model.dae_.w1.shape == (d.n_items, 15)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    fits = [
        fit_mult_dae(sparse.csr_array(x), 5, epochs=epochs_for(d.n_users), seed=s) for s in range(3)
    ]
    mean = np.mean([np.tanh(xn @ n.w1 + n.b1) @ n.w2 + n.b2 for n in fits], axis=0)
    np.testing.assert_allclose(model.dae_.logits(sparse.csr_array(x)), mean, rtol=1e-5, atol=1e-5)
    users = np.arange(d.n_users)
    np.testing.assert_allclose(
        model._score(users), oracle(x, x, model.dae_, 1.0, np.empty(0)), rtol=1e-4, atol=1e-4
    )
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(EASE.load(tmp_path / "m")._score(users), model._score(users))


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


def torch_fit(
    x: np.ndarray, hidden: int, epochs: int, dropout: float, decay: float
) -> list[np.ndarray]:
    """``fit_mult_dae`` written with torch: the same seeded draws in the same order (init,
    per epoch a permutation, per batch one uniform per history entry, dropped below ``dropout``),
    autograd of the paper's loss on the dropped, then normalised input, and ``torch.optim.Adam``
    with weight decay 2 · ``decay`` / users on W₁ and W₂ only (float64 throughout)."""
    torch = pytest.importorskip("torch")
    n_users, n_items = x.shape
    rng = np.random.default_rng(0)
    b1, b2 = 1.0 / np.sqrt(n_items), 1.0 / np.sqrt(hidden)
    shapes = [((n_items, hidden), b1), (hidden, b1), ((hidden, n_items), b2), (n_items, b2)]
    params = [
        torch.tensor(
            rng.uniform(-b, b, shape).astype(np.float32), dtype=torch.float64
        ).requires_grad_()
        for shape, b in shapes
    ]
    w1, bias1, w2, bias2 = params
    adam = torch.optim.Adam(
        [
            {"params": [w1, w2], "weight_decay": 2.0 * decay / n_users},
            {"params": [bias1, bias2], "weight_decay": 0.0},
        ],
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    for _ in range(epochs):
        order = rng.permutation(n_users)
        for start in range(0, n_users, 128):
            target = x[order[start : start + 128]]
            mask = np.zeros_like(target)
            mask[target > 0] = rng.random(int((target > 0).sum())) >= dropout
            kept = torch.tensor(target * mask)
            norm = kept.norm(dim=1, keepdim=True)
            xn = kept / torch.where(norm > 0, norm, torch.ones_like(norm))
            z = torch.tanh(xn @ w1 + bias1) @ w2 + bias2
            loss = -(torch.tensor(target) * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
            adam.zero_grad()
            loss.backward()
            adam.step()
    return [p.detach().numpy() for p in params]


def test_a_fit_steps_as_torch_adam_does_on_the_dropped_inputs() -> None:
    """Six steps (300 users, 3 batches, 2 epochs) land where torch's Adam does from the same
    draws: pins the dropout at training, the weight decay the fit derives from ``decay`` and
    Adam's bias-corrected moments; a fit without dropout lands elsewhere."""
    rng = np.random.default_rng(1)
    x = (rng.random((300, 12)) < 0.3).astype(np.float64)
    x[np.arange(300), np.arange(300) % 12] = 1.0
    got = fit_mult_dae(sparse.csr_array(x), 4, epochs=2, dropout=0.5, decay=30.0)
    want = torch_fit(x, 4, 2, dropout=0.5, decay=30.0)
    for g, w in zip(got.arrays().values(), want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)
    undropped = torch_fit(x, 4, 2, dropout=0.0, decay=30.0)
    assert np.abs(undropped[0] - want[0]).max() > 1e-3


def test_the_in_place_adam_step_is_bit_identical_to_the_textbook_expression() -> None:
    """``adam_step`` updates on scratch arrays (BENCHMARKS §184); the oracle is the expression it
    replaced, each step's temporaries new arrays, over 30 steps of float32 parameters from the
    fit's own gradients' dtype: the same bits, as a fit (and calibration's choice) rests on them."""
    rng = np.random.default_rng(5)
    p = rng.normal(size=(40, 7)).astype(np.float32)
    mine, moments = p.copy(), [np.zeros_like(p), np.zeros_like(p)]
    m, v = np.zeros_like(p), np.zeros_like(p)
    for step in range(1, 31):
        g = rng.normal(scale=10.0 ** rng.integers(-6, 2), size=p.shape).astype(np.float32)
        adam_step(mine, g, *moments, step)
        m = m * BETAS[0] + (1.0 - BETAS[0]) * g
        v = v * BETAS[1] + (1.0 - BETAS[1]) * g * g
        m_hat = m / (1.0 - BETAS[0] ** step)
        v_hat = v / (1.0 - BETAS[1] ** step)
        p -= (LEARNING_RATE * m_hat / (np.sqrt(v_hat) + EPS)).astype(np.float32)
        assert mine.tobytes() == p.tobytes()
        assert moments[0].tobytes() == m.tobytes() and moments[1].tobytes() == v.tobytes()
    grads = _gradients(  # the fit's gradients are float32, as ``adam_step`` assumes
        MultDAE(p, p[0], p.T.copy(), p[:, 0].copy()),
        sparse.csr_array(np.eye(3, 40, dtype=np.float32)),
        sparse.csr_array(np.eye(3, 40, dtype=np.float32)),
        np.float32(0.1),
    )
    assert all(g.dtype == np.float32 for g in grads)
