"""Two-tower retrieval (Covington et al. 2016; Yi et al. 2019) over ids, declared features and
recent items, trained in PyTorch, served with numpy: cold items and cold users get personal lists.

**Item tower.** v_i = [e_i, b_i] · known(i) + mean of the item's token embeddings, where the
tokens are its categories, tags and declared properties (brand, a price band, any declared
property; ``models.feature_tokens``) and the last coordinate is a bias (popularity, learnt). An
item nobody interacted with has no id row (``known`` false): its vector is its properties'
projection alone, which is how a brand-new item of a liked category reaches a user.

**User tower.** u = [e_u · known(u) + mean of the profile's token embeddings (gender, an age
band, occupation, …) + H · mean(v_j[:d] over the user's ``history`` most recent items), 1]. A
user with a profile and no events is the profile term alone; a visitor with a few events (or a
user unknown at training) adds the pooled items; a known user adds their id.

**Training.** Every positive event (in time order per user, back-to-back repeats once, as
``models.sequences`` reads them) is an example: the user as of just before it (id, profile and
the ``history`` items before it) against the event's item. The loss is an in-batch sampled
softmax: each example's item is the positive and the other examples' items the negatives, which
samples negatives in proportion to popularity, so each logit is corrected by subtracting
log q(item) (the item's share of examples; "logQ", Yi et al. 2019) — without it popular items
are over-penalised and the model learns log p(i|u) / q(i), not log p(i|u). A batch item equal to
the example's own counts as no negative. Ids are dropped from an example's user and item with
probability ``id_dropout`` (DropoutNet, Volkovs et al. 2017), so the feature terms learn to stand
alone: otherwise the ids absorb everything and a cold item's or cold user's vector means nothing.
The recent items are dropped likewise (``history_dropout``): only a user's first event has none,
so without it the profile term alone was hardly ever trained (ml-100k cold users served from
their profile, validation NDCG@10: 0.43 without, 0.52 with; BENCHMARKS §48).
CPU fits are reproducible (torch seeded inside ``fork_rng``; numpy draws batches and dropouts).

**Serving.** After ``fit`` every item's vector and every training user's vector are numpy arrays:
a known user's score is one inner product (``embeddings``: the ANN path serves it too), and the
user tower runs in numpy for item histories (``recommend_from_items``) and profiles
(``recommend_for_profiles``), checked against torch in the tests; a saved model serves without
torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import EncodedRecommender, ModelConfig, _mask
from recsmith.models.derived import Derivation, unit_rows
from recsmith.models.feature_tokens import FeatureTokens, Record
from recsmith.models.sequences import user_sequences, windows
from recsmith.models.topk import TopK
from recsmith.models.torch_runtime import (
    require_torch,
    seeded,
    weight_arrays,
    weights_from_arrays,
)

_USER_TOKENS = "user_tokens_"
#: profiles as records (None: none) or as their token rows (``TwoTower.profile_tokens``)
Profiles = Sequence[Record] | sparse.csr_array


class TwoTowerConfig(ModelConfig):
    dim: int = Field(64, ge=1, description="embedding size (each vector also has a bias slot)")
    history: int = Field(20, ge=1, description="most recent items pooled into the user vector")
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(512, ge=2, description="examples per step; each one's negatives")
    learning_rate: float = Field(5e-3, gt=0)
    l2: float = Field(0.0, ge=0, description="Adam weight decay")
    id_dropout: float = Field(
        0.5, ge=0, lt=1, description="share of examples trained without the user's / item's id"
    )
    history_dropout: float = Field(
        0.5, ge=0, lt=1, description="share of examples trained without the user's recent items"
    )
    logq: bool = Field(True, description="subtract log(item's share of examples) from logits")
    max_properties: int = Field(
        8, ge=0, description="declared item / profile properties used (the most declared)"
    )
    device: str = Field("auto", description="'auto' = cuda when available, else cpu")
    random_state: int = 42
    num_threads: int = Field(0, ge=0, description="torch threads during fit; 0 = leave as is")


def _unit_core(vectors: np.ndarray) -> np.ndarray:
    """The item vectors without their bias slot, at unit length: items compare by what they
    are, not by how popular (``/similar``)."""
    return unit_rows(vectors[:, :-1])


#: ``_unit_core`` of the item vectors, kept once per fit and written into the release.
_UNIT_CORE = Derivation(
    "unit_items",
    lambda model: model.item_vectors_,
    _unit_core,
    shape=lambda s: (s[0], s[1] - 1),
    similar_only=True,
)


class TwoTower(EncodedRecommender):
    """Score(u, i) = user tower(u) · item tower(i); see the module docstring."""

    name = "two_tower"
    Config = TwoTowerConfig
    uses_profiles = True
    reads_order = True  # the user tower pools a history's latest ``history`` items
    unit_items = _UNIT_CORE
    derivations = (_UNIT_CORE,)
    config: TwoTowerConfig
    weights_: dict[str, np.ndarray]  # the towers, by torch state_dict key
    user_tokens_: FeatureTokens  # how a profile becomes tokens (cold users at serving)
    item_vectors_: np.ndarray  # [n_items, dim + 1]
    user_vectors_: np.ndarray  # [n_users, dim + 1], as of the end of training

    def fit(self, data: Interactions) -> Self:
        torch = require_torch()
        cfg = self.config
        item_tokens = _item_tokens(data, cfg.max_properties)
        item_matrix = item_tokens.encode(*_item_records(data))
        profiles = list(data.profiles or [None] * data.n_users)
        self.user_tokens_ = FeatureTokens.learn(profiles, cfg.max_properties)
        user_matrix = self.user_tokens_.encode(profiles)
        indptr, values = user_sequences(data)
        with seeded(torch, cfg.random_state, cfg.num_threads):
            net = _train(
                torch, _Examples(indptr, values - 1, data.n_items), item_matrix, user_matrix, cfg
            )
        state = net.state_dict()
        self.weights_ = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()}
        known_items = np.bincount(values - 1, minlength=data.n_items) > 0
        self.item_vectors_ = _item_vectors(self.weights_, item_matrix, known_items)
        recent = windows(indptr, values, data.n_users, cfg.history) - 1
        known_users = np.diff(indptr) > 0
        ids = np.where(known_users, np.arange(data.n_users), -1)
        self.user_vectors_ = self._user_vectors(ids, user_matrix, recent)
        return self

    def _user_vectors(
        self, ids: np.ndarray, profiles: sparse.csr_array, recent: np.ndarray
    ) -> np.ndarray:
        """User tower in numpy: ``ids`` (-1: none), profile token rows, recent items (-1: pad)."""
        return _user_tower(self.weights_, ids, profiles, recent, self.item_vectors_)

    def _recent(self, history: sparse.csr_array) -> np.ndarray:
        """A history's last ``history`` items in stored column order (-1: padding)."""
        rows = windows(history.indptr, history.indices + 1, history.shape[0], self.config.history)
        return rows - 1

    def profile_tokens(self, profiles: Profiles) -> sparse.csr_array:
        """The user tower's token rows of ``profiles`` (records, None: none), or the rows as
        given where they are such rows already: a caller that asks ``describes`` and then
        ``recommend_for_profiles`` encodes its profiles once and hands both the rows."""
        if sparse.issparse(profiles):
            return sparse.csr_array(profiles)
        return self.user_tokens_.encode(profiles)

    def profile_vectors(
        self, profiles: Profiles, history: sparse.csr_array | None = None
    ) -> np.ndarray:
        """User vectors [n, dim + 1] of people the model does not know: their profiles (None:
        none; or their ``profile_tokens``) and optionally their items (rows of ``history``,
        stored column order = time)."""
        tokens = self.profile_tokens(profiles)
        n = tokens.shape[0]
        history = (
            sparse.csr_array((n, self.n_items), dtype=np.float32)
            if history is None
            else sparse.csr_array(history)
        )
        if history.shape[0] != n:
            raise ValueError(f"history has {history.shape[0]} rows for {n} profiles")
        ids = np.full(n, -1, np.int64)
        return self._user_vectors(ids, tokens, self._recent(history))

    def describes(self, profiles: Profiles) -> np.ndarray:
        """Per profile (or its ``profile_tokens``), whether any of its values is a token the
        tower learnt: a profile of values it never saw has no term of its own, so its vector
        says nothing of the person (the bias-only order, the same for all of them;
        ``ModelBundle`` answers those rows as a cold user without a profile)."""
        return np.diff(self.profile_tokens(profiles).indptr) > 0

    def recommend_for_profiles(
        self,
        profiles: Profiles,
        k: int,
        *,
        history: sparse.csr_array | None = None,
        exclude: sparse.csr_array | None = None,
        blocked: np.ndarray | None = None,
    ) -> TopK:
        """Top ``k`` for each profile (and its ``history`` items, stored column order = time,
        which never appear): lists for users nobody knew at training, from what they declared
        and the little they did. ``exclude``: items also never listed, though not the user's
        (a request's ``exclude=``, capped items): masked only, never pooled into the tower."""
        self.check_is_fitted()
        vectors = self.profile_vectors(profiles, history)

        def block(start: int, stop: int) -> np.ndarray:
            scores = vectors[start:stop] @ self.item_vectors_.T
            for rows in (history, exclude):
                if rows is not None:
                    _mask(scores, sparse.csr_array(rows)[start:stop])
            if blocked is not None:
                scores[:, blocked] = -np.inf
            return scores

        return self._chunked_top_k(len(vectors), block, k)

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        """A visitor: the user tower with neither id nor profile, only the pooled items."""
        history = sparse.csr_array(history)
        empty = sparse.csr_array((history.shape[0], self.user_tokens_.n_tokens), dtype=np.float32)
        ids = np.full(history.shape[0], -1, np.int64)
        return self._user_vectors(ids, empty, self._recent(history)) @ self.item_vectors_.T

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = weight_arrays(self.weights_)
        return {
            **arrays,
            **self.user_tokens_.arrays(_USER_TOKENS),
            "user_vectors_": self.user_vectors_,
            "item_vectors_": self.item_vectors_,
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = weights_from_arrays(arrays)
        self.user_tokens_ = FeatureTokens.from_arrays(_USER_TOKENS, arrays)
        self.user_vectors_, self.item_vectors_ = arrays["user_vectors_"], arrays["item_vectors_"]


def _item_records(data: Interactions) -> tuple[list[Record], list[list[str]]]:
    """Each item's declared properties and its category / tag tokens, aligned to item indices."""
    records: list[Record] = [None] * data.n_items
    extra: list[list[str]] = [[] for _ in range(data.n_items)]
    catalog = data.catalog
    if catalog is None:
        return records, extra
    at = data.items.to_index(catalog.item_ids)
    for j in np.flatnonzero(at >= 0).tolist():  # per catalogue record, as tokenising is
        if catalog.properties:
            records[at[j]] = catalog.properties[j]
        extra[at[j]] = [f"category={c}" for c in catalog.categories[j]] + [
            f"tag={t.lower()}" for t in catalog.tags[j]
        ]
    return records, extra


def _item_tokens(data: Interactions, max_properties: int) -> FeatureTokens:
    records, extra = _item_records(data)
    return FeatureTokens.learn(records, max_properties, extra)


class _Examples:
    """Every positive event as a training example: flattened sequences (``indptr`` per user,
    ``items`` 0-based in time order); example p is item p by its user, after the items before."""

    def __init__(self, indptr: np.ndarray, items: np.ndarray, n_items: int) -> None:
        self.items = items
        self.users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        self.starts = indptr[:-1][self.users]
        counts = np.bincount(items, minlength=n_items)
        self.log_share = np.log(np.maximum(counts, 1) / max(len(items), 1)).astype(np.float32)

    def recent(self, at: np.ndarray, length: int) -> np.ndarray:
        """[len(at), length]: the up to ``length`` items before each example (-1: padding)."""
        before = at[:, None] - np.arange(length, 0, -1)[None, :]
        valid = before >= self.starts[at][:, None]
        return np.where(valid, self.items[np.maximum(before, 0)], -1)


def _network(torch: Any, n_users: int, n_items: int, n_utok: int, n_itok: int, d: int) -> Any:
    """The towers' parameters as a ModuleDict (no nn.Module subclass: torch stays lazy)."""
    nn = torch.nn
    net = nn.ModuleDict(
        {
            "user_id": nn.Embedding(max(n_users, 1), d),
            "user_tok": nn.Embedding(max(n_utok, 1), d),
            "item_id": nn.Embedding(max(n_items, 1), d + 1),
            "item_tok": nn.Embedding(max(n_itok, 1), d + 1),
            "hist": nn.Linear(d, d, bias=False),
        }
    )
    for name, p in net.named_parameters():
        if not name.startswith("hist"):
            nn.init.normal_(p, std=0.05)
    return net


def _torch_sparse(torch: Any, matrix: sparse.csr_array, device: Any) -> Any:
    coo = sparse.coo_array(matrix)
    index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    shape = (matrix.shape[0], max(matrix.shape[1], 1))  # the embedding has a row even for none
    return (
        torch.sparse_coo_tensor(index, values, shape, check_invariants=True).coalesce().to(device)
    )


def _torch_items(torch: Any, net: Any, item_tokens: Any) -> Any:
    """[n_items, d + 1]: every item's feature term (the id term is added per use)."""
    return torch.sparse.mm(item_tokens, net["item_tok"].weight)


def _torch_user(
    torch: Any, net: Any, ids: Any, keep: Any, profile: Any, recent: Any, item_core: Any
) -> Any:
    """User vectors [B, d + 1]: ids [B] (any valid index where ``keep`` [B] is 0), profile terms
    [B, d], recent items [B, L] (-1: pad) over the items' [n_items, d] core vectors; mirrored line
    by line by ``_user_tower``."""
    mask = (recent >= 0).to(item_core.dtype)
    pooled = (item_core[recent.clamp(min=0)] * mask[..., None]).sum(1)
    pooled = pooled / mask.sum(1, keepdim=True).clamp(min=1)
    core = net["user_id"](ids) * keep[:, None] + profile + net["hist"](pooled)
    return torch.cat([core, torch.ones_like(core[:, :1])], dim=1)


def _train(
    torch: Any,
    examples: _Examples,
    item_matrix: sparse.csr_array,
    user_matrix: sparse.csr_array,
    cfg: TwoTowerConfig,
) -> Any:
    """Adam on the in-batch softmax over every example, ``epochs`` times in random order."""
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    )
    n_users, n_items = user_matrix.shape[0], item_matrix.shape[0]
    net = _network(torch, n_users, n_items, user_matrix.shape[1], item_matrix.shape[1], cfg.dim).to(
        device
    )
    opt = torch.optim.Adam(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.l2)
    item_tokens = _torch_sparse(torch, item_matrix, device)
    user_tokens = _torch_sparse(torch, user_matrix, device)
    log_share = torch.from_numpy(examples.log_share).to(device)
    known = torch.zeros(n_items, device=device)
    known[torch.from_numpy(np.unique(examples.items)).to(device)] = 1.0
    rng = np.random.default_rng(cfg.random_state)
    n = len(examples.items)
    for _ in range(cfg.epochs):
        perm = rng.permutation(n)
        for start in range(0, n, cfg.batch_size):
            at = perm[start : start + cfg.batch_size]
            if len(at) < 2:
                continue  # one example has no negative
            keep = rng.random((2, len(at))) >= cfg.id_dropout
            recent_items = examples.recent(at, cfg.history)
            recent_items[rng.random(len(at)) < cfg.history_dropout] = -1

            def tensor(x: np.ndarray, dtype: Any = None) -> Any:
                return torch.from_numpy(x).to(device, dtype)

            users, items = tensor(examples.users[at]), tensor(examples.items[at])
            features = _torch_items(torch, net, item_tokens)
            all_items = features + net["item_id"].weight * known[:, None]
            profile = torch.sparse.mm(user_tokens, net["user_tok"].weight)[users]
            recent = tensor(recent_items)
            u = _torch_user(
                torch,
                net,
                users,
                tensor(keep[0], torch.float32),
                profile,
                recent,
                all_items[:, :-1],
            )
            v = features[items] + net["item_id"](items) * tensor(keep[1], torch.float32)[:, None]
            logits = u @ v.T
            if cfg.logq:
                logits = logits - log_share[items][None, :]
            same = (items[:, None] == items[None, :]) & ~torch.eye(
                len(at), dtype=torch.bool, device=device
            )
            logits = logits.masked_fill(same, float("-inf"))
            target = torch.arange(len(at), device=device)
            loss = torch.nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    return net


def _item_vectors(
    w: dict[str, np.ndarray], item_matrix: sparse.csr_array, known: np.ndarray
) -> np.ndarray:
    """[n_items, d + 1]: feature term plus, for items seen in training, the id term."""
    features = np.asarray(item_matrix @ w["item_tok.weight"][: item_matrix.shape[1]], np.float32)
    return (features + w["item_id.weight"][: len(known)] * known[:, None]).astype(np.float32)


def _user_tower(
    w: dict[str, np.ndarray],
    ids: np.ndarray,
    profiles: sparse.csr_array,
    recent: np.ndarray,
    item_vectors: np.ndarray,
) -> np.ndarray:
    """``_torch_user`` in numpy (eval: no dropout): ids -1 have no id term."""
    core_items = item_vectors[:, :-1]
    mask = (recent >= 0).astype(np.float32)
    pooled = (core_items[np.maximum(recent, 0)] * mask[..., None]).sum(1)
    pooled /= np.maximum(mask.sum(1, keepdims=True), 1)
    own = w["user_id.weight"][np.maximum(ids, 0)] * (ids >= 0)[:, None]
    profile = profiles @ w["user_tok.weight"][: profiles.shape[1]]
    core = own + profile + pooled @ w["hist.weight"].T
    return np.hstack([core, np.ones((len(core), 1), np.float32)]).astype(np.float32)
