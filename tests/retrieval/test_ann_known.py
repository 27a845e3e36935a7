"""A release's stored per-user lists (``ItemIndex.known``) answer exactly what the live search
answers: the oracle walks one long search per user, dropping excluded items, to the first k."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.retrieval.ann import STORED_MARGIN, ANNSource, ItemIndex, known_lists
from recsmith.retrieval.queries import Queries

K = 20


def _index(
    n_items: int = 3000, dim: int = 8, nlist: int = 24, nprobe: int | None = None
) -> tuple[ItemIndex, np.ndarray]:
    rng = np.random.default_rng(7)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    users = rng.normal(size=(60, dim)).astype(np.float32)
    return ItemIndex(items, nlist=nlist, nprobe=nprobe), users


def _walk(
    index: ItemIndex, vector: np.ndarray, excluded: set[int], k: int
) -> tuple[list[int], list[float]]:
    """One search deep enough for anything, then a Python walk past the excluded items."""
    found = index.search(vector[None, :], index.n_items)
    kept = [
        (int(i), float(s))
        for i, s in zip(found.ids[0], found.scores[0], strict=True)
        if i >= 0 and int(i) not in excluded
    ][:k]
    return [i for i, _ in kept], [s for _, s in kept]


def _queries(users: np.ndarray, excluded: list[list[int]], n_items: int) -> Queries:
    rows = np.repeat(np.arange(len(excluded)), [len(e) for e in excluded])
    cols = np.array([i for e in excluded for i in e], dtype=np.int64)
    exclude = sparse.csr_array(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(len(excluded), n_items)
    )
    return Queries(users.astype(np.int32), sparse.csr_array((len(excluded), n_items)), exclude)


def _answers(
    source: ANNSource, queries: Queries, k: int
) -> dict[int, tuple[list[int], list[float]]]:
    got = source.retrieve(queries, k)
    return {
        int(q): (
            got.items[got.query == q].tolist(),
            got.scores[got.query == q].tolist(),
        )
        for q in np.unique(got.query)
    }


def _exclusions(index: ItemIndex, vectors: np.ndarray, users: np.ndarray) -> list[list[int]]:
    """Few, some and more-than-the-margin of each user's own best items, and visitors' rows."""
    top = index.search(vectors[np.maximum(users, 0)], K + STORED_MARGIN + 40).ids
    rng = np.random.default_rng(3)
    sizes = [0, 3, K, STORED_MARGIN - 1, STORED_MARGIN + 5, STORED_MARGIN + 30]
    out = []
    for q, user in enumerate(users):
        n = sizes[q % len(sizes)]
        own = top[q][:n].tolist() if user >= 0 else []
        out.append(own + rng.integers(0, index.n_items, 5).tolist())  # and some anywhere
    return out


def test_stored_lists_answer_as_a_walk_down_the_full_search() -> None:
    index, vectors = _index()
    index.known = known_lists(index, vectors, K + STORED_MARGIN)
    source = ANNSource("ann", vectors, index)
    # a visitor first, so a known user's query is not its row among the known users (the
    # fallback must read its own exclusions), visitors, a user asking twice
    users = np.array([-1, *range(len(vectors)), -1, -1, 5, 5])
    excluded = _exclusions(index, vectors, users)
    got = _answers(source, _queries(users, excluded, index.n_items), K)
    for q, user in enumerate(users.tolist()):
        if user < 0:
            assert q not in got
            continue
        ids, scores = _walk(index, vectors[user], set(excluded[q]), K)
        assert got[q] == (ids, scores), q


def test_stored_lists_that_run_out_still_answer_with_what_the_search_reaches() -> None:
    index, vectors = _index(n_items=400, nlist=20, nprobe=1)  # ~20 items a probed cell
    index.known = known_lists(index, vectors, K + STORED_MARGIN)
    assert (index.known.ids[:, -1] < 0).all()  # every list is all its user's cell holds
    source = ANNSource("ann", vectors, index)
    users = np.arange(len(vectors))
    own = [index.known.ids[u][index.known.ids[u] >= 0] for u in users.tolist()]
    excluded = [o[: 5 + u % 10].tolist() for u, o in enumerate(own)]
    got = _answers(source, _queries(users, excluded, index.n_items), K)
    for user in users.tolist():
        assert got.get(user, ([], [])) == _walk(index, vectors[user], set(excluded[user]), K)


def test_a_larger_k_than_the_stored_lists_hold_searches() -> None:
    index, vectors = _index()
    index.known = known_lists(index, vectors, 10)
    source = ANNSource("ann", vectors, index)
    users = np.arange(8)
    excluded = [[] for _ in users]
    got = _answers(source, _queries(users, excluded, index.n_items), K)
    for user in users.tolist():
        assert got[user] == _walk(index, vectors[user], set(), K)


def test_lists_for_other_users_than_the_models_are_refused() -> None:
    index, vectors = _index()
    index.known = known_lists(index, vectors[:10], K)
    with pytest.raises(ValueError, match="stores lists for 10 users, the model has 60"):
        ANNSource("ann", vectors, index)


def test_known_lists_are_the_search_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    index, vectors = _index()
    monkeypatch.setattr("recsmith.retrieval.ann.STORED_CHUNK", 7)  # 60 users: 9 calls
    lists = known_lists(index, vectors, 30)
    whole = index.search(vectors, 30)
    np.testing.assert_array_equal(lists.ids, whole.ids)
    np.testing.assert_array_equal(lists.scores, whole.scores)
    assert known_lists(index, vectors[:0], 30).ids.shape == (0, 30)


def test_a_batch_mixing_stored_and_searched_users_comes_in_query_order() -> None:
    """Users past the margin are searched live and their rows put back in place: the
    proposals stay grouped by query in ascending order, each query's ranked 1, 2, ... (what
    the stored-only batch gives), as one flat list per batch did before."""
    index, vectors = _index()
    index.known = known_lists(index, vectors, K + STORED_MARGIN)
    source = ANNSource("ann", vectors, index)
    users = np.array([-1, *range(12), -1, 5])
    excluded = _exclusions(index, vectors, users)
    got = source.retrieve(_queries(users, excluded, index.n_items), K)
    assert (np.diff(got.query) >= 0).all()
    for q in np.unique(got.query).tolist():
        assert got.ranks[got.query == q].tolist() == list(range(1, K + 1)), q
