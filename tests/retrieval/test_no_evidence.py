"""A linear item-item model's 0 is no evidence: EASE never proposes an item no path reaches."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.models.topk import TopK
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import ModelSource
from recsmith.testing.recommender import view_events

#: Two groups nobody crosses: users u* view only items a*, users v* only items b*. The item
#: co-occurrence graph has two components, so EASE's weights between them are exactly 0 and a
#: history of a* items scores every b* item 0: by hand, no path, whatever λ is.
GROUPS = {
    "u0": ["a0", "a1"],
    "u1": ["a0", "a1", "a2"],
    "u2": ["a1", "a2", "a3"],
    "u3": ["a0", "a2", "a3"],
    "v0": ["b0", "b1"],
    "v1": ["b1", "b2"],
    "v2": ["b0", "b2", "b3"],
    "v3": ["b0", "b1", "b2", "b3"],
}


@pytest.fixture(scope="module")
def data() -> Interactions:
    rows = [(u, i, t) for t, (u, items) in enumerate(GROUPS.items()) for i in items]
    return Interactions.from_events(view_events(rows), EventSettings().weights)


@pytest.mark.parametrize(
    "params",
    [
        {"regularization": 1.0},
        {"regularization": 1.0, "dropout": 0.5},
        {"regularization": 1.0, "lowpass": 1.0, "lowpass_rank": 2},
    ],
)
def test_ease_proposes_no_item_of_the_other_group(data: Interactions, params: dict) -> None:
    model = create("ease", **params).fit(data)
    a = data.items.to_index(np.array(["a0", "a1", "a2", "a3"], dtype=object))
    b = data.items.to_index(np.array(["b0", "b1", "b2", "b3"], dtype=object))
    u0 = data.users.to_index(np.array(["u0"], dtype=object))[0]
    assert (model._score(np.array([u0]))[0, b] == 0).all()  # the premise: exact zeros
    # a known user (u0: a0, a1) and a visitor whose session holds a0 alone
    users = np.array([u0, -1], np.int32)
    recent = sparse.csr_array((np.ones(1, np.float32), ([1], [a[0]])), shape=(2, data.n_items))
    exclude = sparse.vstack([data.matrix[[u0]], sparse.csr_array((1, data.n_items))]).tocsr()
    got = ModelSource("ease", model).retrieve(Queries(users, recent, exclude), k=8)
    for query, expected in ((0, {a[2], a[3]}), (1, {a[1], a[2], a[3]})):
        proposed = set(got.items[got.query == query].tolist())
        assert proposed == expected  # every reachable unseen a*, no b* (k = 8 had room for all)
    recent_only = ModelSource("ease_recent", model, "recent").retrieve(
        Queries(users, sparse.vstack([recent[[1]], recent[[1]]]).tocsr(), exclude), k=8
    )
    assert not set(recent_only.items.tolist()) & set(b.tolist())


@pytest.mark.parametrize("name", ["ials", "bpr", "popular", "trending"])
def test_a_model_that_scores_every_item_keeps_its_zeros(name: str) -> None:
    """A factor or popularity model's 0 is a score like any other (a user orthogonal to an item,
    an item nobody took lately): its slots stay listed, unlike a linear item-item model's."""
    model = create(name)
    assert not model.zero_is_no_evidence
    top = TopK(np.array([[3, 1, 2]]), np.array([[0.5, 0.0, -0.25]], dtype=np.float32))
    kept = model.with_evidence(top)
    np.testing.assert_array_equal(kept.ids, [[3, 1, 2]])
    np.testing.assert_array_equal(kept.scores, top.scores)


def test_a_known_user_whose_history_leads_nowhere_is_answered_from_its_recent_items(
    data: Interactions,
) -> None:
    """u1 had a0, a1, a2 and has met a3 and b0 since (recent, excluded): from its history EASE
    reaches only a* items, all had, so it proposes nothing with evidence; its recent b0 reaches
    the b* group, which it is answered from, as a visitor with the same recent items is, rather
    than left to the popularity fill."""
    model = create("ease", regularization=1.0).fit(data)
    a = data.items.to_index(np.array(["a0", "a1", "a2", "a3"], dtype=object))
    b = data.items.to_index(np.array(["b0", "b1", "b2", "b3"], dtype=object))
    u1 = data.users.to_index(np.array(["u1"], dtype=object))[0]
    users = np.array([u1, -1], np.int32)
    recent = sparse.csr_array(
        (np.ones(3, np.float32), ([0, 0, 1], [a[3], b[0], b[0]])), shape=(2, data.n_items)
    )
    exclude = sparse.vstack([data.matrix[[u1]], sparse.csr_array((1, data.n_items))]) + recent
    # the premise: from its history alone, nothing
    alone = model.with_evidence(model.recommend(np.array([u1]), 8, exclude=exclude[[0]]))
    assert (alone.ids < 0).all()
    got = ModelSource("ease", model).retrieve(Queries(users, recent, exclude.tocsr()), k=8)
    visitor = set(got.items[got.query == 1].tolist())
    assert visitor == {b[1], b[2], b[3]}  # the oracle: a visitor with b0, by hand (GROUPS)
    assert set(got.items[got.query == 0].tolist()) == visitor
