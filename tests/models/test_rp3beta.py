"""RP3beta's item-to-item matrix W against a walk worked out by hand and against an independent
dict-of-dicts computation of the definition, and a user's scores as history times W."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from scipy import sparse
from test_item_models_by_hand import interactions, similar

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.models.rp3beta import rp3beta_similarity
from recsmith.testing.recommender import view_events

# u1 viewed a, b; u2 viewed a, c; u3 viewed b, c, d. Users per item: a 2, b 2, c 2, d 1.
# P(u | b) = 1/2 for u1 and u3; P(a | u1) = 1/2, P(c | u3) = P(d | u3) = 1/3. So, with alpha 1:
#   W[b, a] = 1/2 · 1/2 / 2^beta,  W[b, c] = 1/2 · 1/3 / 2^beta,  W[b, d] = 1/2 · 1/3 / 1^beta.
WALK = interactions(
    [
        ("u1", "a", "view", None),
        ("u1", "b", "view", None),
        ("u2", "a", "view", None),
        ("u2", "c", "view", None),
        ("u3", "b", "view", None),
        ("u3", "c", "view", None),
        ("u3", "d", "view", None),
    ]
)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0])
def test_the_walk_from_b_by_hand(alpha: float, beta: float) -> None:
    model = create("rp3beta", alpha=alpha, beta=beta).fit(WALK)
    half, third = 0.5**alpha, (1 / 3) ** alpha
    want = {"a": half * half / 2**beta, "c": half * third / 2**beta, "d": half * third}
    assert similar(model, WALK, "b") == pytest.approx(want, rel=1e-5)
    # from d (one user, u3): P(u3 | d) = 1, then b or c at 1/3 each; d never reaches a
    assert similar(model, WALK, "d") == pytest.approx(
        {"b": third / 2**beta, "c": third / 2**beta}, rel=1e-5
    )


def test_the_penalty_reorders_b_s_neighbours() -> None:
    """Unpenalised the walk prefers a (1/4 against 1/6); at beta 1 the rarer d wins (1/6 against
    1/8): the point of beta."""

    def order(beta: float) -> list[str]:
        return list(similar(create("rp3beta", beta=beta).fit(WALK), WALK, "b"))

    assert order(0.0)[0] == "a"  # c and d tie behind it at 1/6
    assert order(1.0) == ["d", "a", "c"]


def test_a_user_scores_history_times_w() -> None:
    """u1 (a, b) scores c by W[a, c] + W[b, c] and d by W[b, d] (a never reaches d); beta 0.5."""
    model = create("rp3beta").fit(WALK)
    top = model.recommend(WALK.users.to_index(["u1"]), 2, exclude=WALK.matrix[[0]])
    got = dict(zip(WALK.items.to_external(top.ids[0]), top.scores[0].tolist(), strict=True))
    w_ac = 0.5 * 0.5 / math.sqrt(2)  # a → u2 → c
    w_bc = 0.5 / 3 / math.sqrt(2)  # b → u3 → c
    assert got == pytest.approx({"c": w_ac + w_bc, "d": 0.5 / 3}, rel=1e-5)


def walk_by_dicts(x: sparse.csr_array, alpha: float, beta: float) -> dict[tuple[int, int], float]:
    """The definition, one path at a time, from plain dicts (no sparse algebra)."""
    by_user: dict[int, dict[int, float]] = defaultdict(dict)
    by_item: dict[int, dict[int, float]] = defaultdict(dict)
    coo = x.tocoo()
    for u, i, w in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True):
        by_user[u][i] = w
        by_item[i][u] = w
    w_out: dict[tuple[int, int], float] = defaultdict(float)
    for i, users in by_item.items():
        item_total = sum(users.values())
        for u, w_ui in users.items():
            user_total = sum(by_user[u].values())
            for j, w_uj in by_user[u].items():
                if j != i:
                    step = (w_ui / item_total) ** alpha * (w_uj / user_total) ** alpha
                    w_out[i, j] += step / len(by_item[j]) ** beta
    return dict(w_out)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.5), (0.6, 0.0), (1.7, 1.2)])
def test_w_matches_the_definition_on_random_weighted_data(alpha: float, beta: float) -> None:
    rng = np.random.default_rng(7)
    dense = rng.random((40, 30)) * (rng.random((40, 30)) < 0.15) * 5
    x = sparse.csr_array(dense.astype(np.float32))
    got = rp3beta_similarity(x, neighbors=30, alpha=alpha, beta=beta).tocoo()
    have = dict(
        zip(zip(got.row.tolist(), got.col.tolist(), strict=True), got.data.tolist(), strict=True)
    )
    want = walk_by_dicts(x, alpha, beta)
    assert have.keys() == want.keys()
    assert [have[k] for k in want] == pytest.approx(list(want.values()), rel=1e-4)


def test_each_item_keeps_its_largest_neighbours() -> None:
    rng = np.random.default_rng(3)
    x = sparse.csr_array((rng.random((60, 25)) < 0.3).astype(np.float32))
    want = walk_by_dicts(x, 1.0, 0.5)
    got = rp3beta_similarity(x, neighbors=4, alpha=1.0, beta=0.5)
    for i in range(25):
        row = sorted((v for (a, _), v in want.items() if a == i), reverse=True)
        kept = np.sort(got[[i]].toarray().ravel())[::-1]
        assert kept[:4] == pytest.approx(row[:4], rel=1e-5)
        assert (kept[4:] == 0).all()


def test_an_item_nobody_had_and_a_user_with_nothing_stay_empty() -> None:
    x = sparse.csr_array(np.array([[1, 1, 0], [0, 0, 0], [1, 0, 0]], dtype=np.float32))
    w = rp3beta_similarity(x, neighbors=5, alpha=1.0, beta=0.5)
    assert np.isfinite(w.data).all()
    assert w[[2]].nnz == 0 and w[:, [2]].nnz == 0


def test_weights_count_only_when_binary_is_off() -> None:
    """KNN-like weights: a purchase (5) and a view (1) by one user. Binary, u's two items are
    equally likely steps; weighted, the purchase is five times likelier."""
    data: Interactions = interactions(
        [
            ("u1", "a", "view", None),
            ("u1", "b", "purchase", None),
            ("u1", "c", "view", None),
        ]
    )
    binary = similar(create("rp3beta", beta=0.0).fit(data), data, "a")
    weighted = similar(create("rp3beta", beta=0.0, binary=False).fit(data), data, "a")
    assert binary == pytest.approx({"b": 1 / 3, "c": 1 / 3}, rel=1e-5)
    assert weighted == pytest.approx({"b": 5 / 7, "c": 1 / 7}, rel=1e-5)


def test_blocks_of_a_few_rows_give_the_definition(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real catalogues are scored in blocks of rows (above ~4,500 items): with blocks of 2 rows,
    each block's rows and diagonal must land where the one-path-at-a-time definition puts them."""
    from recsmith.models import item_to_item

    rng = np.random.default_rng(11)
    x = sparse.csr_array((rng.random((50, 31)) < 0.2).astype(np.float32))
    monkeypatch.setattr(item_to_item, "_BLOCK_CELLS", 2 * 31)
    got = rp3beta_similarity(x, neighbors=31, alpha=1.0, beta=0.5).tocoo()
    have = dict(
        zip(zip(got.row.tolist(), got.col.tolist(), strict=True), got.data.tolist(), strict=True)
    )
    want = walk_by_dicts(x, 1.0, 0.5)
    assert have.keys() == want.keys()
    assert [have[k] for k in want] == pytest.approx(list(want.values()), rel=1e-4)


def test_item_knn_in_blocks_equals_item_knn_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsmith.models import item_to_item

    rng = np.random.default_rng(5)
    rows = [
        (f"u{u}", f"i{i}", u * 40 + i)
        for u in range(30)
        for i in np.flatnonzero(rng.random(40) < 0.25).tolist()
    ]
    data = Interactions.from_events(view_events(rows), EventSettings().weights)
    whole = create("itemknn", neighbors=3).fit(data).similarity_.toarray()
    monkeypatch.setattr(item_to_item, "_BLOCK_CELLS", data.n_items)  # one row a block
    blocked = create("itemknn", neighbors=3).fit(data).similarity_.toarray()
    np.testing.assert_array_equal(blocked, whole)
    assert (whole > 0).sum(axis=1).min() == 3  # every row kept 3: the check has content


def test_a_negative_weight_is_no_edge_of_the_walk() -> None:
    """A negative event weight would be a negative "probability" (NaN under alpha 0.5): the
    pair is dropped from the graph, as if it never happened."""
    x = sparse.csr_array(np.array([[5, -1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float32))
    got = rp3beta_similarity(x, neighbors=5, alpha=0.5, beta=0.5).toarray()
    clipped = sparse.csr_array(np.array([[5, 0, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float32))
    want = np.zeros((3, 3))
    for (i, j), v in walk_by_dicts(clipped, 0.5, 0.5).items():
        want[i, j] = v
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-5)
