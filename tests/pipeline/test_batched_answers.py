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
from recsmith.pipeline.runtime import Pipeline
from recsmith.pipeline.training import propose
from recsmith.retrieval.sources import StaticSource, widest_row
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
