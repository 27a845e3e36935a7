"""Mult-DAE (Liang et al. 2018, "Variational Autoencoders for Collaborative Filtering"): a
denoising autoencoder whose output is a softmax over the catalogue, trained by the multinomial
log-likelihood of a user's items. Numpy only, so the default install can fit and serve it.

Why this likelihood: a shop's next view is one item drawn from many, and the simulated marketplace
draws it exactly so (softmax of user · item + bias, ``simulate.py``); EASE's squared loss does not
model that choice. Beside EASE and its low-pass filter (each row-scaled, ``low_pass.blended``) it
is the first signal probed on the marketplace shape whose lift validation sees (BENCHMARKS §139).

The network: input row x (binary), dropout p at training (kept entries scaled 1 / (1 − p)),
then L2-normalised (the paper's code normalises first and drops after; here a training input has
norm 1 as a served one does); h = tanh(x̂ W₁ + b₁); logits z = h W₂ + b₂. Loss per batch: mean
over rows of −Σⱼ xⱼ log softmax(z)ⱼ, plus ``decay`` · (‖W₁‖² + ‖W₂‖²) / users. Adam (lr 1e-3,
β 0.9 / 0.999), minibatches of ``BATCH`` rows in a seeded order, PyTorch's ``nn.Linear``
initialisation. A row's score at serving is its logits less their mean (no dropout): two small
dense products. The softmax is the same for logits + any constant, so training never fixes a
row's level; only the centred logits are the network's answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

#: Rows a gradient step reads (Liang et al. use 500 on ML-20M; small shops have ~1k users).
BATCH = 128
LEARNING_RATE = 1e-3
BETAS = (0.9, 0.999)
EPS = 1e-8
#: Rows a fit reads in all: 200 passes over a 1.3k-user shop (where it was measured, BENCHMARKS
#: §139), 8 over 33k users — a fit's cost stays ~constant in users, not linear.
ROWS_READ = 260_000
MAX_EPOCHS = 200
#: The release's array names, in ``MultDAE``'s field order.
ARRAY_NAMES = ("dae_w1", "dae_b1", "dae_w2", "dae_b2")


def epochs_for(users: int) -> int:
    """Passes a fit makes over ``users`` rows: ``ROWS_READ`` rows in all, 1 to ``MAX_EPOCHS``."""
    return int(np.clip(np.ceil(ROWS_READ / max(users, 1)), 1, MAX_EPOCHS))


@dataclass(frozen=True, slots=True)
class MultDAE:
    """A fitted network: z = tanh(x̂ W₁ + b₁) W₂ + b₂ (float32)."""

    w1: np.ndarray  # [items, hidden]
    b1: np.ndarray  # [hidden]
    w2: np.ndarray  # [hidden, items]
    b2: np.ndarray  # [items]

    def logits(self, rows: sparse.csr_array) -> np.ndarray:
        """Each history row's logits over the catalogue (an empty row: tanh(b₁) W₂ + b₂)."""
        return _forward(_normalised(sparse.csr_array(rows, dtype=np.float32)), self)[1]

    def centred_logits(self, rows: sparse.csr_array) -> np.ndarray:
        """``logits`` less each row's mean: what the training identifies (a constant added to
        ``b₂`` changes the logits' level but not the softmax, the loss or its gradients)."""
        z = self.logits(rows)
        return z - z.mean(axis=1, keepdims=True, dtype=np.float64).astype(z.dtype)

    def arrays(self) -> dict[str, np.ndarray]:
        """The network as a release's named arrays (``ARRAY_NAMES``)."""
        return dict(zip(ARRAY_NAMES, (self.w1, self.b1, self.w2, self.b2), strict=True))

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MultDAE | None:
        """The network a release's arrays hold, or None where they hold none (off, or saved
        before the autoencoder existed)."""
        if ARRAY_NAMES[0] not in arrays:
            return None
        return cls(*(arrays[name] for name in ARRAY_NAMES))


def _normalised(x: sparse.csr_array) -> sparse.csr_array:
    """Rows divided by their L2 norm (an empty row left empty)."""
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    return sparse.csr_array(x.multiply(1.0 / np.where(norm > 0, norm, 1.0)[:, None]))


def _forward(xn: sparse.csr_array, net: MultDAE) -> tuple[np.ndarray, np.ndarray]:
    """(h, z) for normalised input rows."""
    h = np.tanh(np.asarray(xn @ net.w1) + net.b1)
    return h, h @ net.w2 + net.b2


def _gradients(
    net: MultDAE, batch: sparse.csr_array, kept: sparse.csr_array, shrink: np.float32
) -> list[np.ndarray]:
    """The loss's gradient in (W₁, b₁, W₂, b₂) for target rows ``batch`` whose input is ``kept``
    (the rows after dropout): the mean over rows of −Σⱼ xⱼ log softmax(z)ⱼ, plus
    ``shrink`` / 2 · (‖W₁‖² + ‖W₂‖²)."""
    xn = _normalised(kept)
    h, z = _forward(xn, net)
    z -= z.max(axis=1, keepdims=True)
    soft = np.exp(z)
    soft /= soft.sum(axis=1, keepdims=True)
    dz = soft * np.asarray(batch.sum(axis=1)).reshape(-1, 1)
    dz -= batch.toarray()
    dz /= np.float32(batch.shape[0])
    da = (dz @ net.w2.T) * (1.0 - h * h)
    return [
        np.asarray(xn.T @ da) + shrink * net.w1,
        da.sum(axis=0),
        h.T @ dz + shrink * net.w2,
        dz.sum(axis=0),
    ]


def bagged(nets: list[MultDAE]) -> MultDAE:
    """One network whose logits are the mean of ``nets``' logits (bagging): their hidden layers
    side by side (W₁ and b₁ joined by column), each W₂ stacked below the last and divided by the
    count, the b₂ averaged. Exactly the mean, since each net's hidden units read only its own W₁
    columns; so a bag is saved, loaded and served as one wider net (its arrays' format unchanged).
    Why bag: a fit's seed alone moves a sample's lift by a median 0.9 % (BENCHMARKS §144); the
    mean of a few seeds' logits is meant to vary less (not measured)."""
    count = np.float32(len(nets))
    return MultDAE(
        np.concatenate([n.w1 for n in nets], axis=1),
        np.concatenate([n.b1 for n in nets]),
        np.concatenate([n.w2 for n in nets], axis=0) / count,
        np.sum([n.b2 for n in nets], axis=0, dtype=np.float32) / count,
    )


def fit_mult_dae(
    x: sparse.csr_array,
    hidden: int,
    *,
    epochs: int,
    dropout: float = 0.5,
    decay: float = 1.0,
    seed: int = 0,
) -> MultDAE:
    """A Mult-DAE fitted on the rows of ``x`` (users × items, binary) for ``epochs`` passes."""
    x = sparse.csr_array(x, dtype=np.float32)
    n_users, n_items = x.shape
    rng = np.random.default_rng(seed)
    b1_bound, b2_bound = 1.0 / np.sqrt(n_items), 1.0 / np.sqrt(hidden)
    params = [
        rng.uniform(-b1_bound, b1_bound, (n_items, hidden)),
        rng.uniform(-b1_bound, b1_bound, hidden),
        rng.uniform(-b2_bound, b2_bound, (hidden, n_items)),
        rng.uniform(-b2_bound, b2_bound, n_items),
    ]
    params = [p.astype(np.float32) for p in params]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    shrink = np.float32(2.0 * decay / n_users)
    step = 0
    for _ in range(epochs):
        order = rng.permutation(n_users)
        for start in range(0, n_users, BATCH):
            batch = x[order[start : start + BATCH]]
            kept = batch.copy()
            kept.data = (rng.random(len(kept.data)) >= dropout).astype(np.float32) / np.float32(
                1.0 - dropout
            )
            kept.eliminate_zeros()
            grads = _gradients(MultDAE(*params), batch, kept, shrink)
            step += 1
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                adam_step(p, g, m, v, step)
    return MultDAE(*params)


def adam_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, step: int) -> None:
    """One Adam update of ``p`` (float32) by gradient ``g``, its moments ``m`` and ``v`` updated
    in place: m = β₁m + (1 − β₁)g, v = β₂v + (1 − β₂)g², p −= lr · m̂ / (√v̂ + ε) with the
    bias-corrected m̂, v̂. The same operations in the same order as the textbook expression, but
    on two scratch arrays instead of eight temporaries (a fit's hot loop: BENCHMARKS §184), so
    the same bits."""
    m *= BETAS[0]
    scratch = g * (1.0 - BETAS[0])
    m += scratch
    v *= BETAS[1]
    np.multiply(g, 1.0 - BETAS[1], out=scratch)
    scratch *= g
    v += scratch
    m_hat = np.divide(m, 1.0 - BETAS[0] ** step, out=scratch)
    denom = v / (1.0 - BETAS[1] ** step)
    np.sqrt(denom, out=denom)
    denom += EPS
    m_hat *= LEARNING_RATE
    m_hat /= denom
    p -= m_hat
