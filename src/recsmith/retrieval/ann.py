"""Approximate nearest-neighbour retrieval for embedding models (iALS, BPR, SASRec): a faiss index
over item vectors by inner product, so a request scans part of the catalogue instead of all of it.

Exact search is what ``Recommender.recommend`` does; above ``min_items`` an ``ANNSource`` answers
instead, over-fetching to make room for excluded items. ``recall_at`` measures how many of the
exact top-k the index finds (reported in BENCHMARKS.md), because an index that silently loses the
best items would cost accuracy nobody sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from recsmith.errors import MissingExtraError
from recsmith.models.topk import TopK, top_k
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import (
    Proposals,
    concat,
    drop_excluded,
    flatten,
    kept_proposals,
    widest_row,
)

log = logging.getLogger(__name__)

#: a known user's stored list holds the source's quota and this many items more, so that up to
#: this many of its items can be excluded (seen since the release, or by the request) before the
#: live search is needed; past it, or for a larger ``k``, that user is searched as before
STORED_MARGIN = 64
#: users per faiss call when a release's lists are computed (bounds the temporary arrays)
STORED_CHUNK = 4096
#: a release stores the lists only up to this size over all its ANN sources, in their order (8
#: bytes an item: 50,000 users at a quota of 200 take 101 MiB); a source whose lists would pass
#: it, in a release of millions of users, searches every request
STORED_BYTES_MAX = 1 << 30


def ann_available() -> bool:
    """Whether faiss is installed (``recsmith[ann]``); without it sources score exactly, which is
    correct at any size, only slower on large catalogues (a warning says so once)."""
    try:
        _faiss()
    except MissingExtraError:
        if not _warned:
            _warned.append(True)
            log.warning("faiss is not installed (pip install 'recsmith[ann]'): exact retrieval")
        return False
    return True


_warned: list[bool] = []


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingExtraError("faiss-cpu", "ann") from None
    return faiss


def cells_scanned(nlist: int, nprobe: int | None) -> int:
    """Cells a query scans: ``nprobe`` (at most all of them), by default half. Trained factor
    vectors are not clustered the way synthetic ones are: on the 100k-item load-test iALS,
    scanning 32 of 1,265 cells found 37 % of the exact top-100, and a recall of 0.9+ needed
    20-50 % of the cells (BENCHMARKS.md §5)."""
    return min(nprobe or max(1, nlist // 2), nlist)


class ItemIndex:
    """An inverted-file (IVF) inner-product index over item vectors: k-means cells, and a query
    scans the ``nprobe`` cells nearest to it. IVF builds in seconds where HNSW takes minutes on
    two cores, and ``nprobe`` trades recall for speed at query time.

    Items are stored with one extra coordinate, sqrt(max_norm² − norm²), so that all have the
    same length (the maximum-inner-product → nearest-neighbour reduction of Bachrach et al.,
    2014); queries get a 0 there, so every inner product — and the score returned — is unchanged,
    while the k-means cells no longer gather the long (popular) vectors apart from the rest.
    """

    def __init__(
        self,
        item_vectors: np.ndarray,
        *,
        nlist: int | None = None,
        nprobe: int | None = None,
        seed: int = 0,
    ) -> None:
        faiss = _faiss()
        vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.n_items, dim = vectors.shape
        norms = np.linalg.norm(vectors, axis=1)
        lift = np.sqrt(np.maximum(norms.max(initial=0.0) ** 2 - norms**2, 0.0))
        stored = np.ascontiguousarray(np.hstack([vectors, lift[:, None]]), dtype=np.float32)
        nlist = nlist or max(1, min(4096, int(np.sqrt(self.n_items))))
        quantizer = faiss.IndexFlatIP(dim + 1)
        self.index = faiss.IndexIVFFlat(quantizer, dim + 1, nlist, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.seed = seed
        self.index.train(stored)
        self.index.add(stored)
        self.index.nprobe = cells_scanned(nlist, nprobe)
        self._keep = quantizer  # the IVF index refers to it; keep it alive
        self.known: TopK | None = None

    def save(self, path: Path) -> None:
        """Write the trained index (faiss's own format), so loading a model skips k-means."""
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, *, nprobe: int | None = None) -> ItemIndex:
        index = cls.__new__(cls)
        index.index = _faiss().read_index(str(path))
        index.n_items = int(index.index.ntotal)
        nlist = int(index.index.nlist)
        index.index.nprobe = cells_scanned(nlist, nprobe)
        index._keep = None  # a read index owns its quantizer
        #: every known user's top ``quota + STORED_MARGIN`` (row = user index), searched once
        #: when the release was written (``known_lists``); None: search each request
        index.known = None
        return index

    def search(self, queries: np.ndarray, k: int) -> TopK:
        """Approximate top-``k`` items by inner product for each query vector."""
        k = min(k, self.n_items)
        queries = np.asarray(queries, dtype=np.float32)
        if self.index.d == queries.shape[1] + 1:  # the items' equal-length coordinate
            queries = np.hstack([queries, np.zeros((len(queries), 1), np.float32)])
        scores, ids = self.index.search(np.ascontiguousarray(queries), k)
        ids = ids.astype(np.int32)
        scores = np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        return TopK(ids, scores)


def recall_at(
    index: ItemIndex, user_vectors: np.ndarray, item_vectors: np.ndarray, k: int
) -> float:
    """Share of the exact top-``k`` (by inner product) that the index returns, over users."""
    exact = top_k(user_vectors @ item_vectors.T, k).ids
    approx = index.search(user_vectors, k).ids
    hits = sum(len(set(a[a >= 0]) & set(e)) for a, e in zip(approx, exact, strict=True))
    return hits / exact.size


def stores_lists(n_users: int, k: int, stored: int = 0) -> bool:
    """Whether a release whose earlier sources' lists take ``stored`` bytes also stores
    ``n_users`` lists of ``k`` items (``STORED_BYTES_MAX``, over all its sources)."""
    return stored + n_users * k * 8 <= STORED_BYTES_MAX


def known_lists(index: ItemIndex, user_vectors: np.ndarray, k: int) -> TopK:
    """``index.search`` of every user vector for its top ``k``, in chunks of ``STORED_CHUNK``:
    a release stores these (a known user's query vector is the model's, fixed until the next
    release), so a request reads its user's list instead of scanning half the cells. Filled
    chunk by chunk into the result, so the peak is the lists and one chunk, not twice the lists."""
    width = min(k, index.n_items)  # what ``search`` returns
    ids = np.empty((len(user_vectors), width), np.int32)
    scores = np.empty((len(user_vectors), width), np.float32)
    for start in range(0, len(user_vectors), STORED_CHUNK):
        part = index.search(user_vectors[start : start + STORED_CHUNK], k)
        ids[start : start + len(part.ids)] = part.ids
        scores[start : start + len(part.ids)] = part.scores
    return TopK(ids, scores)


@dataclass(frozen=True, slots=True)
class ANNSource:
    """A factor model's candidates through the index: known users by their vectors (over-fetched
    past what they must not see); unknown visitors are not this source's job.

    Where the release stored each user's list (``ItemIndex.known``), a query takes its first
    ``k`` items not excluded from there: the search's top ``k + widest`` starts with the same
    scores in the same order, so the answer has the search's scores whenever the stored list
    keeps ``k`` items after its exclusions (or holds every item the search can reach: -1
    padded), and its items but among equal scores: faiss's top-k picks among tied items by how
    deep it searches, which the live path already varied with the batch's widest exclusion
    row. A query whose exclusions leave fewer is searched as before."""

    name: str
    user_vectors: np.ndarray
    index: ItemIndex

    def __post_init__(self) -> None:
        known = self.index.known
        if known is not None and len(known.ids) != len(self.user_vectors):
            raise ValueError(
                f"source {self.name!r}: the index stores lists for {len(known.ids)} users, "
                f"the model has {len(self.user_vectors)}"
            )

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        rows = np.flatnonzero(queries.users >= 0)
        if len(rows) == 0:
            return flatten(TopK(np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)), rows)
        users = queries.users[rows]
        known = self.index.known
        if known is None or k == 0:
            return flatten(self._search(users, rows, queries.exclude, k), rows)
        # ``take`` by rows: numpy's fancy index of a 2-D array's rows costs several times more
        stored = TopK(known.ids.take(users, axis=0), known.scores.take(users, axis=0))
        kept, count = kept_proposals(stored, queries.exclude, k, rows)
        short = (count < k) & (stored.ids[:, -1] >= 0)
        if not short.any():
            return kept
        # the queries searched live replace their stored rows, and the rows go back to query
        # order (a stable sort of the query column: each query's rows stay best first)
        live = self._search(users[short], rows[short], queries.exclude, k)
        out = concat([kept.where(~np.isin(kept.query, rows[short])), flatten(live, rows[short])])
        return out.where(np.argsort(out.query, kind="stable"))

    def _search(
        self, users: np.ndarray, rows: np.ndarray, exclude: sparse.csr_array, k: int
    ) -> TopK:
        """The index's top ``k`` of ``users`` (queries ``rows``) past their exclusions,
        over-fetched by the batch's widest exclusion row."""
        found = self.index.search(self.user_vectors[users], k + widest_row(exclude))
        return drop_excluded(found, exclude, k, rows)
