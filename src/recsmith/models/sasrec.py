"""SASRec (Kang & McAuley 2018): next-item prediction with causal self-attention, in PyTorch.

Each user's events, in time order (ties kept in event order, consecutive repeats of one item
collapsed, zero/negative-weight events dropped), form a sequence; its last ``max_len`` items,
right-aligned and shifted by +1 so that 0 is padding, are the network's input. The network is the
paper's: item embeddings × √d plus learned positions, ``blocks`` of causal multi-head attention
(the residual joins the layer-normed queries, as in the reference code) and a point-wise
feed-forward layer, a final layer norm, and predictions tied to the item embeddings. Training asks
every position for the next item against one negative drawn from items outside the user's window
(binary cross-entropy, as the paper), ``n_negatives`` shared by the batch (sampled softmax) or
``n_negatives`` per sequence, shared by its positions (gBCE, Petrov & Macdonald 2023, "gSASRec":
a generalised binary cross-entropy that raises the target's probability to a power β < 1, so a
model trained on k sampled negatives out of many items is not overconfident; β = α (t (1 − 1/α)
+ 1/α), α = k / (items − 1), t = ``gbce_t``: 0 is plain BCE with k negatives, 1 fully
calibrated; the paper draws k per position, one batch-wide draw collapsed, BENCHMARKS §47).
CPU fits are reproducible (torch seeded inside ``fork_rng``, numpy draws batches and negatives).
Defaults are the paper's but 100 epochs: ML-100k leave-last-out NDCG@10 was 0.080 at 30 epochs,
0.098 at 100, 0.102 at 200; sampled softmax scored 0.086 at 100.

Design: torch is needed to *train* only. After ``fit`` the weights are kept as numpy arrays (saved
in ``model.npz`` as ``net__<state_dict key>``), ``user_vectors_`` is each training user's final
hidden state at the last position and ``item_vectors_`` the item embeddings, so serving is one
matrix product, and ``_score_history`` runs the same forward pass in numpy (checked against torch
in the tests): a bundle loads and answers without torch installed.

Limitation: an item history arrives as a CSR row, a set. Its stored column order is taken as the
sequence order (the last stored item counts as the most recent); histories built from sorted ids
lose the real order, and SASRec then ranks from a set, in an order the user did not follow.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Self

import numpy as np
from pydantic import Field, model_validator
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import EncodedRecommender, ModelConfig
from recsmith.models.sequences import user_sequences, windows
from recsmith.models.torch_runtime import (
    require_torch,
    seeded,
    weight_arrays,
    weights_from_arrays,
)

_EPS = 1e-5  # layer-norm epsilon; torch's default, repeated in the numpy forward
_ENCODE_CHUNK = 1024  # users per numpy forward pass: bounds the [B, L, L] attention arrays


class SASRecConfig(ModelConfig):
    max_len: int = Field(50, ge=1, description="most recent items a sequence keeps")
    hidden: int = Field(64, ge=1)
    blocks: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    epochs: int = Field(100, ge=1)
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    l2: float = Field(0.0, ge=0, description="Adam weight decay")
    loss: Literal["bce", "sampled_softmax", "gbce"] = "bce"
    n_negatives: int = Field(
        100, ge=1, description="negatives shared per batch (sampled_softmax) or per sequence (gbce)"
    )
    gbce_t: float = Field(
        0.75, ge=0, le=1, description="gBCE calibration: 0 = BCE with k negatives, 1 = calibrated"
    )
    device: str = Field("auto", description="'auto' = cuda when available, else cpu")
    random_state: int = 42
    num_threads: int = Field(0, ge=0, description="torch threads during fit; 0 = leave as is")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Self:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        return self


class SASRec(EncodedRecommender):
    """Score(u, i) = h_u · e_i: the last hidden state of u's sequence against item embeddings."""

    name = "sasrec"
    Config = SASRecConfig
    reads_order = True  # a history is a sequence (module docstring)
    config: SASRecConfig
    weights_: dict[str, np.ndarray]  # the network, by torch state_dict key
    user_vectors_: np.ndarray  # [n_users, hidden]
    item_vectors_: np.ndarray  # [n_items, hidden], the item embeddings without the padding row

    def fit(self, data: Interactions) -> Self:
        torch = require_torch()
        cfg = self.config
        rows = windows(*user_sequences(data), data.n_users, cfg.max_len + 1)
        with seeded(torch, cfg.random_state, cfg.num_threads):
            net = _train(torch, rows, data.n_items, cfg)
        state = net.state_dict()  # float32 for serving, whatever torch's default dtype was
        self.weights_ = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()}
        self.item_vectors_ = self.weights_["item_emb.weight"][1:]
        self.user_vectors_ = self._encode(rows[:, 1:])
        return self

    def estimate_fit_seconds(self, data: Interactions, steps: int = 3) -> float:
        """CPU seconds of this process ``fit`` would spend on ``data`` on this machine: epochs ×
        batches × one training step's CPU time (what calibration's budget counts and, unlike wall
        time, not inflated by other processes' load), measured on a full batch (the network's
        compute is dense over [batch, max_len], padding or not, so random windows cost what real
        ones do). Lets a caller with a time budget decide before it trains
        (``pipeline/sequential.py``)."""
        torch = require_torch()
        cfg = self.config
        trainable = int((sequence_lengths(data) >= 2).sum())
        rng = np.random.default_rng(cfg.random_state)
        batch = rng.integers(1, data.n_items + 1, (cfg.batch_size, cfg.max_len + 1))
        with seeded(torch, cfg.random_state, cfg.num_threads):
            _, step = _trainer(torch, data.n_items, cfg)
            step(batch, rng)  # the first step pays one-off allocations
            started = time.process_time()
            for _ in range(steps):
                step(batch, rng)
            per_step = (time.process_time() - started) / steps
        return cfg.epochs * -(-trainable // cfg.batch_size) * per_step

    def _encode(self, seqs: np.ndarray) -> np.ndarray:
        chunks = range(0, max(len(seqs), 1), _ENCODE_CHUNK)  # one (empty) chunk for no rows
        return np.concatenate(
            [_forward(self.weights_, seqs[s : s + _ENCODE_CHUNK], self.config) for s in chunks]
        )

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        """Rows read in stored column order as sequences; weights are ignored (module docstring)."""
        history = sparse.csr_array(history)
        seqs = windows(history.indptr, history.indices + 1, history.shape[0], self.config.max_len)
        return self._encode(seqs) @ self.item_vectors_.T

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = weight_arrays(self.weights_)
        return {**arrays, "user_vectors_": self.user_vectors_, "item_vectors_": self.item_vectors_}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = weights_from_arrays(arrays)
        self.user_vectors_, self.item_vectors_ = arrays["user_vectors_"], arrays["item_vectors_"]


def sequence_lengths(data: Interactions) -> np.ndarray:
    """Each user's sequence length as SASRec reads it (positive events, back-to-back repeats of
    one item once)."""
    return np.diff(user_sequences(data)[0])


def _network(torch: Any, n_items: int, cfg: SASRecConfig) -> Any:
    """The layers as nested ModuleDicts (no nn.Module subclass, so torch stays a lazy import)."""
    nn, d = torch.nn, cfg.hidden
    blocks = nn.ModuleList(
        nn.ModuleDict(
            {"ln1": nn.LayerNorm(d, eps=_EPS), "ln2": nn.LayerNorm(d, eps=_EPS)}
            | {n: nn.Linear(d, d) for n in ("q", "k", "v", "o", "ff1", "ff2")}
        )
        for _ in range(cfg.blocks)
    )
    net = nn.ModuleDict({"item_emb": nn.Embedding(n_items + 1, d), "blocks": blocks})
    net.update({"pos_emb": nn.Embedding(cfg.max_len, d), "ln": nn.LayerNorm(d, eps=_EPS)})
    for name, p in net.named_parameters():  # Xavier, as the reference implementations
        if p.dim() == 2:
            nn.init.xavier_normal_(p)
        elif name.endswith("bias") and "ln" not in name:
            nn.init.zeros_(p)
    return net


def _torch_forward(torch: Any, net: Any, seqs: Any, cfg: SASRecConfig, train: bool) -> Any:
    """Hidden states [B, L, d] of int sequences [B, L]; mirrored line by line by ``_forward``."""
    f, drop = torch.nn.functional, cfg.dropout if train else 0.0
    (b, length), d, h = seqs.shape, cfg.hidden, cfg.heads
    keep = (seqs > 0).unsqueeze(-1)
    x = net["item_emb"](seqs) * d**0.5 + net["pos_emb"].weight
    x = f.dropout(x, drop, train) * keep
    eye = torch.eye(length, dtype=torch.bool, device=seqs.device)
    # causal, and never a padding key, except a position's own (all-padding rows stay finite)
    allowed = torch.tril(torch.ones_like(eye)) & (keep.transpose(1, 2) | eye)
    for blk in net["blocks"]:
        q = blk["ln1"](x)

        def split(t: Any) -> Any:
            return t.view(b, length, h, d // h).transpose(1, 2)

        att = f.scaled_dot_product_attention(
            split(blk["q"](q)), split(blk["k"](x)), split(blk["v"](x)), allowed[:, None], drop
        )
        x = blk["ln2"](q + blk["o"](att.transpose(1, 2).reshape(b, length, d)))
        ff = blk["ff2"](f.dropout(f.relu(blk["ff1"](x)), drop, train))
        x = (x + f.dropout(ff, drop, train)) * keep
    return net["ln"](x)


def _train(torch: Any, windows: np.ndarray, n_items: int, cfg: SASRecConfig) -> Any:
    """Adam over users with at least one (item, next item) pair; returns the trained network."""
    net, step = _trainer(torch, n_items, cfg)
    rng = np.random.default_rng(cfg.random_state)
    trainable = np.flatnonzero(windows[:, -2] > 0)
    for _ in range(cfg.epochs):
        perm = rng.permutation(trainable)
        for start in range(0, len(perm), cfg.batch_size):
            step(windows[perm[start : start + cfg.batch_size]], rng)
    net.eval()
    return net


def _trainer(torch: Any, n_items: int, cfg: SASRecConfig) -> tuple[Any, Any]:
    """A fresh network in training mode and its step: one Adam update on a batch of windows
    [B, max_len + 1] (inputs, and the next item at each position)."""
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    )
    net = _network(torch, n_items, cfg).to(device)
    opt = torch.optim.Adam(
        net.parameters(), lr=cfg.learning_rate, betas=(0.9, 0.98), weight_decay=cfg.l2, foreach=True
    )
    net.train()

    def step(batch: np.ndarray, rng: np.random.Generator) -> None:
        inp, pos = (torch.from_numpy(x).to(device) for x in (batch[:, :-1], batch[:, 1:]))
        hidden = _torch_forward(torch, net, inp, cfg, train=True)
        valid, emb = inp > 0, net["item_emb"].weight
        target = pos[valid]
        pos_logit = (hidden[valid] * emb[target]).sum(-1)
        if cfg.loss == "bce":  # one negative per position, outside the user's window
            neg = torch.from_numpy(_negatives(rng, batch, n_items)).to(device)[valid, None]
            neg_logits = (hidden[valid, None] * emb[neg]).sum(-1)
        elif cfg.loss == "sampled_softmax":  # shared by the batch
            neg = torch.from_numpy(rng.integers(1, n_items + 1, cfg.n_negatives)).to(device)
            neg_logits, neg = hidden[valid] @ emb[neg].T, neg[None]
        else:  # gbce: k per sequence for all its positions (a batch-wide k collapsed, §47)
            neg = rng.integers(1, n_items + 1, (len(batch), cfg.n_negatives))
            neg = torch.from_numpy(neg).to(device)
            neg_logits = torch.einsum("bld,bkd->blk", hidden, emb[neg])[valid]
            neg = neg[:, None].expand(-1, inp.shape[1], -1)[valid]
        loss = _loss(torch, pos_logit, neg_logits, neg == target[:, None], n_items, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return net, step


def _negatives(rng: np.random.Generator, batch: np.ndarray, n_items: int) -> np.ndarray:
    """Uniform item ids + 1, redrawn (a few rounds) where they fall in the row's own window: the
    paper samples negatives the user has not interacted with."""
    neg = rng.integers(1, n_items + 1, (len(batch), batch.shape[1] - 1))
    for _ in range(5):
        clash = (neg[:, :, None] == batch[:, None, :]).any(-1)
        if not clash.any():
            break
        neg[clash] = rng.integers(1, n_items + 1, int(clash.sum()))
    return neg


def _loss(
    torch: Any, pos_logit: Any, neg_logits: Any, clash: Any, n_items: int, cfg: SASRecConfig
) -> Any:
    """Next-item loss from each valid position's target logit [n] and its negatives' logits
    [n, m]; ``clash`` [n, m] marks a negative equal to the position's target, left out of that
    position's terms (sampled softmax, gBCE: the negatives are drawn from every item)."""
    f = torch.nn.functional
    if cfg.loss == "bce":  # binary cross-entropy with logits: -log σ(pos) - log(1 - σ(neg))
        return f.softplus(-pos_logit).mean() + f.softplus(neg_logits).mean()
    neg_logits = neg_logits.masked_fill(clash, float("-inf"))
    k = neg_logits.shape[1]
    if cfg.loss == "gbce":  # -(β log σ(pos) + Σ_k log(1 - σ(neg_k))) / (k + 1), per position
        alpha = min(1.0, k / max(n_items - 1, 1))  # the share of the other items drawn
        beta = alpha * (cfg.gbce_t * (1 - 1 / alpha) + 1 / alpha)
        terms = beta * f.softplus(-pos_logit) + f.softplus(neg_logits).sum(-1)
        return (terms / (k + 1)).mean()
    logits = torch.cat([pos_logit[:, None], neg_logits], dim=1)
    return f.cross_entropy(
        logits, torch.zeros(len(pos_logit), dtype=torch.long, device=pos_logit.device)
    )


def _forward(w: dict[str, np.ndarray], seqs: np.ndarray, cfg: SASRecConfig) -> np.ndarray:
    """The network in numpy (eval mode): last-position hidden state [B, d] of sequences [B, L]."""
    (b, length), d, h = seqs.shape, cfg.hidden, cfg.heads
    keep = (seqs > 0)[..., None]
    x = (w["item_emb.weight"][seqs] * np.float32(d**0.5) + w["pos_emb.weight"]) * keep
    eye = np.eye(length, dtype=bool)
    allowed = np.tril(np.ones_like(eye)) & (keep.transpose(0, 2, 1) | eye)

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(b, length, h, d // h).transpose(0, 2, 1, 3)

    for i in range(cfg.blocks):
        p = f"blocks.{i}."
        q = _layer_norm(x, w, p + "ln1")
        s = split(_linear(q, w, p + "q")) @ split(_linear(x, w, p + "k")).transpose(0, 1, 3, 2)
        s = np.where(allowed[:, None], s / np.float32(np.sqrt(d // h)), -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        att = (s / s.sum(-1, keepdims=True)) @ split(_linear(x, w, p + "v"))
        x = _layer_norm(
            q + _linear(att.transpose(0, 2, 1, 3).reshape(b, length, d), w, p + "o"), w, p + "ln2"
        )
        ff = _linear(np.maximum(_linear(x, w, p + "ff1"), 0), w, p + "ff2")
        x = (x + ff) * keep
    return _layer_norm(x[:, -1], w, "ln").astype(np.float32)


def _linear(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    return x @ w[name + ".weight"].T + w[name + ".bias"]


def _layer_norm(x: np.ndarray, w: dict[str, np.ndarray], name: str) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * w[name + ".weight"] + w[name + ".bias"]
