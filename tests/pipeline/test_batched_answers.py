"""A coalesced batch answers every user exactly as a call of their own would, and each listed
item carries the sources that proposed it: the accuracy side of cheaper serving (issue #19)."""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pandas as pd
import pytest

from recsmith.bundle import TIERS
from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.explain.trace import Trace
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import FALLBACK, FALLBACK_EXTRA, Pipeline
from recsmith.pipeline.training import propose
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import Proposals, StaticSource, widest_row
from recsmith.sparse_rows import CODED_CELLS


@pytest.fixture(scope="module")
def pipeline(config: PipelineConfig, events: pd.DataFrame, items: list[Item]) -> Pipeline:
    return train_pipeline(config, events, dict(EventSettings().weights), items=items)


def _who(pipeline: Pipeline, events: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Known users with and without fresh items, a visitor with a session, one nobody knows."""
    users = list(pd.unique(events["user_id"]))[:14]
    items = list(pd.unique(events["item_id"]))
    recent = [[] for _ in users]
    recent[1], recent[5] = items[:2], items[7:10]
    return [*users, "visitor-1", "nobody"], [*recent, items[3:6], []]


def test_a_batch_answers_each_user_as_a_call_of_their_own(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    users, recent = _who(pipeline, events)
    batch = pipeline.answer(users, 10, recent=recent)
    for n, (user, latest) in enumerate(zip(users, recent, strict=True)):
        alone = pipeline.answer([user], 10, recent=[latest])
        assert batch.lists.item_ids[n].tolist() == alone.lists.item_ids[0].tolist()
        assert batch.lists.scores[n].tolist() == alone.lists.scores[0].tolist()
        assert batch.tiers[n] == alone.tiers[0]
        assert batch.sources[n] == alone.sources[0]
        assert batch.anchors[n] == alone.anchors[0]
    assert {"personalised", "session", "popular"} <= set(batch.tiers)


def test_every_listed_item_names_the_sources_and_anchor_that_proposed_it(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    """The oracle looks each listed (user, item) up among the final candidates by value, the
    way a reader of ``top_k`` would, instead of trusting row order."""
    users, recent = _who(pipeline, events)
    answer = pipeline.answer(users, 10, recent=recent)
    _, _, final = pipeline.top_k(users, 10, recent=recent)
    index = pipeline.bundle.items
    anchored = 0
    for q, (ids, names, anchors) in enumerate(
        zip(answer.lists.item_ids, answer.sources, answer.anchors, strict=True)
    ):
        assert len(names) == len(anchors) == int((ids != None).sum())  # noqa: E711
        for item, item_names, anchor in zip(ids, names, anchors, strict=False):
            row = np.flatnonzero((final.query == q) & (final.items == index.to_index([item])[0]))
            assert len(row) == 1
            proposed = [
                s for s, r in zip(final.sources, final.source_ranks[row[0]], strict=True) if r > 0
            ]
            assert item_names == proposed
            anchored += anchor is not None
            if anchor is not None:  # the anchor is one of this user's recent items
                assert anchor in (*recent[q], *_training_items(events, users[q]))
    assert anchored > 0  # the item-to-item source named some anchors
    assert any(len(n) > 1 for row in answer.sources for n in row)  # items from several sources


def _training_items(events: pd.DataFrame, user: str) -> list[str]:
    return events.loc[events["user_id"] == user, "item_id"].tolist()


def test_lists_are_the_top_k_named_list_by_list(pipeline: Pipeline, events: pd.DataFrame) -> None:
    """``answer`` names the whole batch's items in one lookup; the oracle names ``top_k``'s
    rows one list at a time (``ModelBundle.external_batch``, what ``answer`` called before):
    the same ids, scores (float32) and fallback flags, list by list; an empty batch lists
    nothing."""
    users, recent = _who(pipeline, events)
    answer = pipeline.answer(users, 10, recent=recent)
    top, tier, _ = pipeline.top_k(users, 10, recent=recent)
    fallback = tier >= TIERS.index("category")
    # (the oracle's sources, the bundle's model-or-fill labels, are not compared: a pipeline
    # names its own)
    none = np.zeros(len(users), np.int64)
    oracle = pipeline.bundle.external_batch(np.asarray(users, dtype=object), top, fallback, none)
    assert len(answer.lists.item_ids) == len(answer.lists.scores) == len(users)
    for got, want in zip(answer.lists.item_ids, oracle.item_ids, strict=True):
        assert got.tolist() == want.tolist()
    for got, want in zip(answer.lists.scores, oracle.scores, strict=True):
        assert got.dtype == np.float32 and got.tolist() == want.tolist()
    assert answer.lists.fallback.tolist() == oracle.fallback.tolist()
    assert answer.lists.user_ids.tolist() == users
    empty = pipeline.answer([], 10)
    assert empty.lists.item_ids == [] and empty.lists.scores == [] and empty.tiers == []


@pytest.mark.parametrize("source", [None, "knn"])
def test_a_batch_with_a_cold_user_or_one_source_reaches_reranking_distinct(
    pipeline: Pipeline, events: pd.DataFrame, source: str | None
) -> None:
    """Dropping the cold user's rows (tier >= 2), or keeping a contextual arm's source's rows,
    keeps each (query, item) pair once: the rows re-ranking takes stay flagged ``distinct``
    (it skips its duplicate check), checked against a Python set of the pairs."""
    users, recent = _who(pipeline, events)
    trace = Trace()
    pipeline.answer(users, 10, recent=recent, trace=trace, source=source)
    pool = trace.pool
    assert pool is not None and len(pool) > 0
    assert (pool.query == len(users) - 1).any()  # the cold user: popularity alone
    pairs = list(zip(pool.query.tolist(), pool.items.tolist(), strict=True))
    assert len(set(pairs)) == len(pairs)
    assert pool.distinct


def test_static_sources_and_the_filler_retrieved_together_are_each_retrieved_alone(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    """``propose`` answers the static sources (trending, new arrivals, and the popularity filler
    the request asks for with them) in one pass; each source's own ``retrieve`` is the plain
    answer: same rows, order, scores and ranks, on a batch large enough to read the exclusions'
    grid, and the filler ``_top_k`` takes from the pass is the filler's own retrieval."""
    users, recent = _who(pipeline, events)
    queries = pipeline.queries(np.asarray(users, dtype=object), None, recent, None)
    asked = [*zip(pipeline.sources, pipeline.quotas, strict=True), (pipeline.fallback, 30)]
    static = [(s, k) for s, k in asked if isinstance(s, StaticSource)]
    assert len(static) == 3
    heads = sum(k + widest_row(queries.exclude) for _, k in static)
    assert len(users) * heads >= CODED_CELLS  # the one pass reads the grid, not the fallback
    for together, alone in zip(
        propose(asked, queries), [s.retrieve(queries, k) for s, k in asked], strict=True
    ):
        for got, want in zip(astuple(together), astuple(alone), strict=True):
            assert got.dtype == want.dtype
            assert got.tolist() == want.tolist()
    filler = pipeline._ranked(queries, filler=30)[1]
    assert filler is not None
    for got, want in zip(
        astuple(filler), astuple(pipeline.fallback.retrieve(queries, 30)), strict=True
    ):
        assert got.tolist() == want.tolist()


@pytest.mark.parametrize("k", [3, 10])
def test_the_filler_under_every_list_is_popularity_walked_k_plus_extra_deep(
    pipeline: Pipeline, events: pd.DataFrame, k: int
) -> None:
    """The popularity filler ``_top_k`` retrieves with the static sources reaches
    ``k + FALLBACK_EXTRA`` items into each query's walk down the popularity model's ranking
    (its items the query has not seen, the catalogue's unscored ones never): the explain
    trace's pool holds, per query, exactly that walk's items the other sources did not
    propose, under the ``popular`` column with their place in the walk as rank. The oracle
    ranks ``bundle.popular``'s scores itself and skips each query's exclusions in Python."""
    users, recent = _who(pipeline, events)
    known = list(pd.unique(events["item_id"]))
    seen = [set(known[q : q + 4 * (q % 3)]) for q in range(len(users))]  # visitors' own too
    trace = Trace()
    pipeline.answer(users, k, recent=recent, extra_seen=seen, trace=trace)
    pool, queries = trace.pool, trace.queries
    assert pool is not None and queries is not None
    scores = np.asarray(pipeline.bundle.popular.item_scores_, np.float64)
    ranking = [i for i in np.argsort(-scores, kind="stable").tolist() if np.isfinite(scores[i])]
    column = pool.sources.index(FALLBACK)
    others = np.delete(pool.source_ranks, column, axis=1).max(axis=1) > 0
    exclude = queries.exclude
    for q in range(len(users)):
        skipped = set(exclude.indices[exclude.indptr[q] : exclude.indptr[q + 1]].tolist())
        walk = [i for i in ranking if i not in skipped][: k + FALLBACK_EXTRA]
        assert len(walk) == k + FALLBACK_EXTRA  # the catalogue is deeper than the filler
        mine = pool.query == q
        proposed = set(pool.items[mine & others].tolist())
        want = [(i, r + 1) for r, i in enumerate(walk) if i not in proposed]
        rows = np.flatnonzero(mine & (pool.source_ranks[:, column] > 0))
        got = sorted(
            zip(pool.items[rows].tolist(), pool.source_ranks[rows, column].tolist(), strict=True),
            key=lambda row: row[1],
        )
        assert got == want, users[q]


class _FirstOnly(StaticSource):
    """A static source of its own kind: whatever the depth asked, its first kept item."""

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        return super().retrieve(queries, 1)


def test_a_static_source_subclass_with_its_own_retrieve_answers_for_itself(
    pipeline: Pipeline, events: pd.DataFrame
) -> None:
    """``propose`` answers only plain ``StaticSource``s in its one pass (which reads their
    heads, never their ``retrieve``); a subclass that retrieves otherwise gives its own
    answer, one item a query here, while the plain one beside it keeps its quota."""
    users, recent = _who(pipeline, events)
    queries = pipeline.queries(np.asarray(users, dtype=object), None, recent, None)
    scores = pipeline.fallback.item_scores
    asked = [(StaticSource("plain", scores), 30), (_FirstOnly("first", scores), 30)]
    assert len(users) * 2 * (30 + widest_row(queries.exclude)) >= CODED_CELLS  # the grid pass
    plain, first = propose(asked, queries)
    assert np.bincount(plain.query).tolist() == [30] * len(users)
    assert first.query.tolist() == list(range(len(users)))
    assert first.items.tolist() == plain.items[plain.ranks == 1].tolist()
