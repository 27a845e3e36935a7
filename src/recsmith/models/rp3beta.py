"""RP3beta (Paudel et al. 2016; Dacrema et al. 2019 found it among the strongest simple
baselines): item-to-item scores from a three-step random walk on the user–item graph, with the
destination's popularity penalised.

A walk from item i steps to one of its users u with probability P(u | i) = x_ui / Σ_v x_vi, then
to one of u's items j with P(j | u) = x_uj / Σ_l x_ul. Each transition probability is raised to
``alpha`` (below 1 flattens, above 1 sharpens the walk) and the arrival at j is divided by
pop(j)^``beta`` (pop = j's number of users), because the plain walk ends on popular items
whatever it starts from:

    W[i, j] = Σ_u P(u | i)^alpha · P(j | u)^alpha / pop(j)^beta

Each item keeps its ``neighbors`` largest entries (sparse), and a user's scores are their history
times W — served exactly as item-kNN (``item_to_item.ItemToItem``).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig
from recsmith.models.item_to_item import ItemToItem, history_weights, top_k_of_product


class RP3BetaConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    alpha: float = Field(1.0, gt=0, description="exponent on each transition probability")
    beta: float = Field(0.5, ge=0, description="popularity penalty: arrival divided by pop^beta")
    binary: bool = Field(
        True,
        description="walk the graph of who interacted with what (1 per "
        "pair); false weighs each step by the interaction's weight",
    )


def _row_stochastic(matrix: sparse.csr_array) -> sparse.csr_array:
    """Each row divided by its sum (an empty row stays empty): transition probabilities."""
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sparse.csr_array(sparse.diags_array(inverse) @ matrix, dtype=np.float32)


def rp3beta_similarity(
    x: sparse.csr_array, neighbors: int, alpha: float, beta: float
) -> sparse.csr_array:
    """W (module docstring) from users × items weights ``x``, each row's ``neighbors`` largest
    entries kept; block by block, so the items × items product never exists whole."""
    # A walk's step is a probability: a negative weight (legal for an event type) would make a
    # "probability" below 0, and its power NaN; such pairs are no edge of the graph.
    x = sparse.csr_array(x, dtype=np.float32)
    x.data = np.maximum(x.data, 0.0)
    x.eliminate_zeros()
    item_to_user = _row_stochastic(x.T.tocsr()).power(alpha)  # P(u | i)^alpha, items × users
    user_to_item = _row_stochastic(x).power(alpha).tocsc()  # P(j | u)^alpha, users × items
    pop = np.diff(x.tocsc().indptr).astype(np.float64)  # users per item
    penalty = np.divide(1.0, pop**beta, out=np.zeros_like(pop), where=pop > 0).astype(np.float32)

    def arrival_penalty(dots: np.ndarray, start: int, stop: int) -> None:
        dots *= penalty[None, :]

    return top_k_of_product(item_to_user, user_to_item, neighbors, arrival_penalty)


class RP3Beta(ItemToItem):
    """Score(u, j) = Σ_i x_ui · W[i, j] over the user's items i (W: module docstring)."""

    name = "rp3beta"
    Config = RP3BetaConfig
    config: RP3BetaConfig
    similarity_: sparse.csr_array

    def fit(self, data: Interactions) -> Self:
        x = history_weights(data, self.config.binary)
        c = self.config
        self.similarity_ = rp3beta_similarity(x, c.neighbors, c.alpha, c.beta)
        self.user_items_ = x
        return self
