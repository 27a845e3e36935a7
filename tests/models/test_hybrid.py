"""Hybrid: normalisation, learnt weights, and cold items through the content component."""

from typing import Any

import numpy as np
import pytest
from scipy import sparse

import recsmith.evaluation.metrics as metrics
from recsmith.config import EventSettings
from recsmith.evaluation.metrics import ndcg_at_k
from recsmith.features.interactions import Interactions
from recsmith.models.hybrid import Hybrid, last_share_per_user, zscore_rows
from recsmith.testing.recommender import checkerboard_catalog, checkerboard_events, rating_events


def test_zscore_rows_handles_unscorable_entries() -> None:
    z = zscore_rows(np.array([[1.0, 2.0, 3.0, -np.inf], [-np.inf, -np.inf, -np.inf, -np.inf]]))
    np.testing.assert_allclose(z[0, :3], [-1.2247449, 0.0, 1.2247449], rtol=1e-6)
    assert z[0, 3] == z[0, :3].min() - 1.0
    np.testing.assert_array_equal(z[1], 0.0)


def test_learnt_weights_favour_the_informative_component() -> None:
    data = Interactions.from_events(
        checkerboard_events(n_users=80), EventSettings().weights, catalog=checkerboard_catalog()
    )
    model = Hybrid(components={"content": {}, "popular": {}}, grid_steps=4).fit(data)
    assert model.weights_.sum() == 1.0
    assert model.weights_[0] > model.weights_[1]  # group metadata beats global popularity


def test_cold_item_reaches_users_of_its_group() -> None:
    data = Interactions.from_events(
        checkerboard_events(), EventSettings().weights, catalog=checkerboard_catalog(n_cold=2)
    )
    model = Hybrid(
        components={"itemknn": {}, "content": {}}, weights={"itemknn": 0.5, "content": 0.5}
    ).fit(data)
    cold = data.items.to_index(["i030"])[0]  # an even item nobody has touched
    assert data.matrix[:, [cold]].nnz == 0
    top = model.recommend(np.arange(data.n_users), 10, exclude=data.matrix)
    even_users = np.array([u.endswith(("0", "2", "4", "6", "8")) for u in data.users.external_ids])
    assert (top.ids[even_users] == cold).any(axis=1).mean() > 0.5
    assert not (top.ids[~even_users] == cold).any()


def test_validation_holds_out_each_users_latest_events() -> None:
    users = np.array([0, 0, 0, 0, 1, 1, 2])
    ts = np.array([4, 1, 3, 2, 9, 8, 5])
    # user 0: 4 events, share 0.5 → its 2 latest (ts 3, 4); user 1: 1 of 2 (ts 9); user 2 keeps all
    np.testing.assert_array_equal(
        last_share_per_user(users, ts, 0.5), [True, False, True, False, True, False, False]
    )


def test_weights_are_learnt_on_the_lists_serving_gives_without_items_rated_zero() -> None:
    # v1..v4 rated P 0, then their own A_i, then T (held out). P is the most popular item (ten
    # one-event users), T the next (seven). Served, P is never listed to them (rated 0): the
    # popular list puts T first, NDCG 1 for all four. item-kNN reaches T from A1..A3 (h1..h3
    # rated T and A_i), not from A4 (h4 rated A4 and G only: G first): at most (3 + 1/log2 3)/4.
    # With P masked popularity wins (its weight 1); with P listed first (0.63 each) it lost.
    rows = [(f"b{n}", "P", 5.0) for n in range(10)] + [(f"c{n}", "T", 5.0) for n in range(4)]
    for i in (1, 2, 3):
        rows += [(f"h{i}", "T", 5.0), (f"h{i}", f"A{i}", 5.0), (f"h{i}", "T", 5.0)]
    rows += [("h4", "G", 5.0), ("h4", "A4", 5.0), ("h4", "G", 5.0)]
    for i in (1, 2, 3, 4):
        rows += [(f"v{i}", "P", 0.0), (f"v{i}", f"A{i}", 5.0), (f"v{i}", "T", 5.0)]
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    model = Hybrid(components={"itemknn": {}, "popular": {}}, grid_steps=1).fit(data)
    assert model.weights_.tolist() == [0.0, 1.0]


def test_validation_truth_leaves_out_items_the_user_rated_zero_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # share 0.49 holds out each user's latest event: b0..b4's Q, z's X, y's second P. z rated X
    # 0 before: X is never served to z, so it is no truth (masked, it could never be hit); y
    # had P. By hand: 5 validation users, truth Q each.
    rows = [(f"b{n}", "P", 5.0) for n in range(5)] + [(f"b{n}", "Q", 5.0) for n in range(5)]
    rows += [("z", "Q", 5.0), ("z", "X", 0.0), ("z", "P", 5.0), ("z", "X", 5.0)]
    rows += [("y", "Q", 5.0), ("y", "P", 4.0), ("y", "X", 4.0), ("y", "P", 4.0)]
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    truths: list[sparse.csr_array] = []

    def ndcg_of(ids: np.ndarray, truth: sparse.csr_array, *args: Any) -> np.ndarray:
        truths.append(truth)  # the real metric still decides
        return ndcg_at_k(ids, truth, *args)

    monkeypatch.setattr(metrics, "ndcg_at_k", ndcg_of)
    Hybrid(components={"itemknn": {}, "popular": {}}, grid_steps=1, validation_share=0.49).fit(data)
    q = data.items.to_index(np.array(["Q"], dtype=object))[0]
    assert truths and truths[0].shape[0] == 5
    assert sorted(truths[0].nonzero()[1].tolist()) == [q] * 5
