"""The item lists' shortcuts (issue #19) against the simpler code they replaced.

``Popular._masked_top_k`` finds each row's list on a growing prefix of an order sorted once;
each row's list written out on its own in the test (``_expected``, not the model's order, so a
wrong tie rule fails here too) must be the same ids and scores for every mix of ties,
``exclude`` rows, ``candidates``, ``blocked`` items and ``k`` (past the catalogue too).
``FactorModel`` keeps its unit item vectors (``derived``): its neighbours must be those of
vectors normalised on the spot, and a refit must not answer from the old fit's vectors."""

import numpy as np
import pytest
from scipy import sparse

from recsmith.models.als import ImplicitALS
from recsmith.models.popularity import Popular, Trending
from recsmith.models.topk import TopK


def _expected(model: Popular, users: np.ndarray, k: int, **masks: object) -> TopK:
    """Each row's list written out on its own, independent of the model's order: its scores
    with every mask at -inf, sorted by score then lower index (issue #3's tie rule), the first
    ``k`` finite ones, reported with the counts."""
    scores = model.item_scores_.astype(np.float64)
    n_items, k = len(scores), max(k, 0)
    shared = np.isneginf(scores)
    if masks.get("candidates") is not None:
        listed = np.zeros(n_items, dtype=bool)
        listed[np.asarray(masks["candidates"])] = True
        shared |= ~listed
    if masks.get("blocked") is not None:
        shared |= np.asarray(masks["blocked"])
    exclude = masks.get("exclude")
    ids = np.full((len(users), k), -1, dtype=np.int32)
    out = np.full((len(users), k), -np.inf, dtype=np.float32)
    for row in range(len(users)):
        masked = shared.copy()
        if exclude is not None:
            masked[exclude.indices[exclude.indptr[row] : exclude.indptr[row + 1]]] = True
        ranked = [i for i in np.lexsort((np.arange(n_items), -scores)) if not masked[i]][:k]
        ids[row, : len(ranked)] = ranked
        out[row, : len(ranked)] = scores[ranked]
    return TopK(ids, out)


def _model(cls: type[Popular], scores: np.ndarray) -> Popular:
    return cls.from_arrays(cls.Config(), {"item_scores_": scores.astype(np.float32)})


@pytest.mark.parametrize("seed", range(12))
def test_popular_lists_are_each_rows_own_order(seed: int) -> None:
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
        want = _expected(model, users, k, **masks)
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


def test_one_long_history_does_not_widen_every_rows_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    """One row excluding most of the catalogue widens the search for all rows: the rows then go
    in chunks of at most ``_CELLS_PER_CHUNK`` cells (a fallback batch of thousands of rows with
    one heavy user otherwise held rows × catalogue booleans), with the same lists."""
    from recsmith.models import popularity

    monkeypatch.setattr(popularity, "_CELLS_PER_CHUNK", 400)
    grids: list[int] = []
    place = Popular._place

    def counted(self: Popular, at: np.ndarray, *rest: object) -> None:
        grids.append(len(rest[2]) * len(at))  # rows of this chunk × the search's width
        place(self, at, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(Popular, "_place", counted)
    rng = np.random.default_rng(5)
    model = _model(Popular, rng.integers(0, 4, 200))
    dense = rng.random((30, 200)) < 0.02
    dense[17, :180] = True  # the heavy row
    exclude = sparse.csr_array(dense)
    got = model.recommend(np.zeros(30, np.int64), 10, exclude=exclude)
    want = _expected(model, np.zeros(30, np.int64), 10, exclude=exclude)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)
    assert len(grids) > 1 and max(grids) <= 400


def test_requests_arriving_together_derive_once() -> None:
    """The first requests after a start or a hot swap arrive together: one of them derives, the
    others wait for its value instead of each holding a copy of their own."""
    import threading
    import time

    from recsmith.models.derived import derived

    class Owner:
        pass

    owner, source, made = Owner(), np.arange(5.0), []

    def make(array: np.ndarray) -> np.ndarray:
        made.append(1)
        time.sleep(0.05)  # long enough that the other threads arrive while it runs
        return array * 2

    seen: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda: seen.append(derived(owner, "x", source, make)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(v is seen[0] for v in seen)
