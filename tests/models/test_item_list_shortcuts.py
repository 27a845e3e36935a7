"""The item lists' shortcuts (issue #19) against the simpler code they replaced.

``Popular._masked_top_k`` finds each row's list on a growing prefix of an order sorted once,
where ``Recommender._masked_top_k`` scores every row densely over the catalogue and takes its
top-k: both must give the same ids and scores for every mix of ties, ``exclude`` rows,
``candidates``, ``blocked`` items and ``k`` (past the catalogue too). ``FactorModel`` keeps its
unit item vectors (``derived``): its neighbours must be those of vectors normalised on the spot,
and a refit must not answer from the old fit's vectors."""

import numpy as np
import pytest
from scipy import sparse

from recsmith.models.als import ImplicitALS
from recsmith.models.base import Recommender
from recsmith.models.popularity import Popular, Trending
from recsmith.models.topk import TopK


def _dense(model: Popular, users: np.ndarray, k: int, **masks: object) -> TopK:
    """The dense path the shortcut replaced, with ``recommend``'s own argument handling."""
    allowed = None
    if masks.get("candidates") is not None:
        allowed = np.zeros(model.n_items, dtype=bool)
        allowed[np.asarray(masks["candidates"])] = True
    exclude = masks.get("exclude")
    return Recommender._masked_top_k(model, users, k, exclude, allowed, masks.get("blocked"))


def _model(cls: type[Popular], scores: np.ndarray) -> Popular:
    return cls.from_arrays(cls.Config(), {"item_scores_": scores.astype(np.float32)})


@pytest.mark.parametrize("seed", range(12))
def test_popular_lists_are_the_dense_paths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(1, 700))
    # few distinct counts: long runs of ties, which only the index order may break
    scores = rng.integers(0, 6, n_items) if seed % 2 else rng.random(n_items) * 10
    if seed % 4 == 3:  # items a model cannot list (as a grown pipeline's new items)
        scores = np.where(rng.random(n_items) < 0.2, -np.inf, scores)
    model = _model(Trending if seed % 3 == 0 else Popular, scores)
    n_rows = int(rng.integers(0, 9))
    users = np.zeros(n_rows, np.int64)
    dense_exclude = rng.random((n_rows, n_items)) < rng.choice([0.0, 0.05, 0.6, 0.97])
    masks = {
        "exclude": sparse.csr_array(dense_exclude) if seed % 4 else None,
        "blocked": rng.random(n_items) < rng.choice([0.0, 0.3, 0.9]) if seed % 5 else None,
        "candidates": rng.choice(n_items, int(rng.integers(0, n_items + 1)), replace=False)
        if seed % 3 == 1
        else None,
    }
    for k in (0, 1, 10, 65, n_items, n_items + 7):
        got = model.recommend(users, k, **masks)
        want = _dense(model, users, k, **masks)
        np.testing.assert_array_equal(got.ids, want.ids)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_popular_list_past_many_masked_leaders_grows_the_prefix() -> None:
    """The 300 best items blocked: the first prefixes hold none to list, so the list comes from
    past them, as the dense path lists it (hand-checked: items 300.. by descending count)."""
    scores = np.arange(1000, 0, -1)  # item i has count 1000 - i: the order is the index order
    model = _model(Popular, scores)
    blocked = np.zeros(1000, bool)
    blocked[:300] = True
    got = model.recommend(np.zeros(2, np.int64), 5, blocked=blocked)
    assert got.ids.tolist() == [[300, 301, 302, 303, 304]] * 2
    assert got.scores.tolist() == [[700, 699, 698, 697, 696]] * 2


def test_a_refit_popular_model_answers_from_its_new_counts() -> None:
    model = _model(Popular, np.array([3, 2, 1]))
    assert model.recommend(np.zeros(1, np.int64), 3).ids.tolist() == [[0, 1, 2]]
    model.item_scores_ = np.array([1, 2, 3], np.float32)  # a refit replaces the array
    assert model.recommend(np.zeros(1, np.int64), 3).ids.tolist() == [[2, 1, 0]]


def _als(items: np.ndarray) -> ImplicitALS:
    users = np.ones((1, items.shape[1]), np.float32)
    return ImplicitALS.from_arrays(
        ImplicitALS.Config(), {"user_factors_": users, "item_factors_": items}
    )


def test_factor_neighbours_are_cosine_of_vectors_normalised_on_the_spot() -> None:
    rng = np.random.default_rng(7)
    items = rng.normal(size=(300, 8)).astype(np.float32)
    model = _als(items)
    asked = np.array([0, 17, 299])
    unit = items / (np.linalg.norm(items, axis=1) + 1e-12)[:, None]
    cosine = unit[asked] @ unit.T
    cosine[np.arange(3), asked] = -np.inf
    want = np.argsort(-cosine, axis=1, kind="stable")[:, :10]
    for _ in range(2):  # the second call answers from the kept vectors
        got = model.similar_items(asked, 10)
        np.testing.assert_array_equal(got.ids, want)
        np.testing.assert_allclose(got.scores, np.take_along_axis(cosine, want, 1), rtol=1e-6)
    model.item_factors_ = items[::-1].copy()  # a refit: item i is now the old item 299 - i
    np.testing.assert_array_equal(model.similar_items(np.array([299]), 10).ids[0], 299 - want[0])
