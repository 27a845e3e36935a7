"""Items first seen after training join a trained pipeline's item index (``with_catalog``): the
new-arrivals source lists them, rules, availability and exclusions apply to them, the ranker
scores them from their catalogue attributes, and the models keep their trained arrays."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.items import ItemCatalog, tfidf_vectors
from recsmith.ids import IdMap
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.catalog_content import CatalogContent
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.rules import FilterRule

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def trained(config: PipelineConfig, events: pd.DataFrame, items: list[Item]) -> Pipeline:
    pipe = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    assert pipe.ranker is not None  # the grown feature state is what the ranker reads
    return pipe


def fresh(item_id: str = "fresh-1", **fields: object) -> Item:
    record: dict[str, object] = {
        "item_id": item_id,
        "categories": ["brand-new-category"],
        "properties": {"price": 12.5, "brand": "Nova"},
        "created_at": NOW,
    }
    record.update(fields)
    return Item.model_validate(record)


def listed(pipe: Pipeline, user: str, k: int = 30, **options: object) -> list[str]:
    return pipe.answer([user], k, **options).lists.item_ids[0].tolist()  # type: ignore[arg-type]


def test_a_new_item_joins_the_index_and_the_trained_parts_keep_their_meaning(
    trained: Pipeline,
) -> None:
    grown = trained.with_catalog([fresh()], stamp=1)
    n = trained.n_trained
    assert len(trained.bundle.items) == n  # the served release is untouched
    assert len(grown.bundle.items) == n + 1 and grown.bundle.items.to_index(["fresh-1"])[0] == n
    assert grown.table.category_names[: len(trained.table.category_names)] == (
        trained.table.category_names
    )  # old category codes keep their meaning; the new name is appended
    assert grown.table.category_names[grown.table.category[n]] == "brand-new-category"
    assert grown.table.numeric("price")[n] == 12.5
    assert grown.models is trained.models and grown.ranker is trained.ranker
    # the ranker's view of it: no events, age 0 (created after the state's reference time),
    # its price, and no category (the ranker's user×category table has no column for a new one)
    assert grown.state.item_popularity[n] == 0 and grown.state.item_trend[n] == 0
    assert grown.state.item_age_days[n] == 0 and grown.state.item_price[n] == 12.5
    assert grown.state.item_category[n] == -1
    np.testing.assert_array_equal(grown.state.item_category[:n], trained.state.item_category)


def test_new_arrivals_list_it_and_rules_exclusions_and_availability_apply(
    trained: Pipeline, events: pd.DataFrame
) -> None:
    user = str(events["user_id"].iloc[0])
    assert "fresh-1" not in trained.bundle.items
    assert trained.attrs.created_ts.max() < int(NOW.timestamp() * 1e6)  # it is the newest
    grown = trained.with_catalog([fresh()], stamp=1)
    # the only item in its category: a category request holds exactly it, proposed by new
    # arrivals (its newest item: created now, every simulated item earlier)
    answer = grown.answer([user], 10, categories=["brand-new-category"])
    assert answer.lists.item_ids[0].tolist() == ["fresh-1"] and answer.sources[0][0] == ["new"]
    assert "fresh-1" in listed(grown, user, k=200)
    assert "fresh-1" not in listed(grown, user, k=200, extra_seen=[["fresh-1"]])  # they have it
    rule = FilterRule.model_validate({"property": "brand", "in": ["Vabel"]})
    assert "fresh-1" not in listed(grown, user, k=200, rules=[rule])
    gone = grown.with_catalog([fresh(available=False)], stamp=2)
    assert "fresh-1" not in listed(gone, user, k=200)
    assert gone.bundle.items == grown.bundle.items  # known now: updated, not added twice
    # a visitor who just viewed it: item-to-item sources see nothing of it, and nothing breaks
    viewed = str(events.loc[events["user_id"] == user, "item_id"].iloc[0])
    visitor = grown.answer(["visitor"], 10, recent=[["fresh-1", viewed]])
    assert "fresh-1" not in visitor.lists.item_ids[0].tolist()
    assert viewed in {a for a in visitor.anchors[0] if a is not None}  # only it supports any


def test_exclusions_are_as_wide_as_the_grown_catalogue(
    trained: Pipeline, events: pd.DataFrame
) -> None:
    """With no pair to add (no ``extra_seen``; ``include_seen``: no training items or recent
    ones either) the exclusions are the training rows copied as they stand, and must still be
    as wide as the catalogue, the new item's column included (the release's matrix is not: it
    ends at the trained items). The rows read off the events each user had."""
    grown = trained.with_catalog([fresh()], stamp=1)
    n = trained.n_trained
    users = [str(u) for u in events["user_id"].unique()[:2]] + ["nobody"]
    had = np.zeros((3, n + 1), bool)
    for row, user in enumerate(users[:2]):
        mine = events.loc[events["user_id"] == user, "item_id"].astype(str).unique()
        had[row, grown.bundle.items.to_index(mine)] = True
    idx = grown.bundle.users.to_index(np.asarray(users, object))
    assert grown.bundle.seen.shape[1] == n and len(grown.bundle.items) == n + 1
    exclude = grown.bundle.exclusions(idx, None)
    assert exclude.shape == (3, n + 1)
    np.testing.assert_array_equal(exclude.toarray() > 0, had)
    queries = grown.queries(np.asarray(users, object), None, [["fresh-1"], [], []], None, True)
    assert queries.exclude.shape == (3, n + 1) and queries.exclude.nnz == 0
    assert queries.recent.shape == (3, n + 1) and queries.recent[[0], [n]].tolist() == [1.0]
    assert queries.exclude[:, [n]].nnz == 0  # the new item's column is there, and empty


def test_items_without_created_at_are_indexed_but_not_new_arrivals(trained: Pipeline) -> None:
    grown = trained.with_catalog([fresh("undated", created_at=None)], stamp=1)
    answer = grown.answer(["someone"], 10, categories=["brand-new-category"])
    assert answer.lists.item_ids[0].tolist() == []  # nothing proposes it
    assert "without created_at" in str(grown.cold_reach(["undated"]))


def test_a_new_items_similar_list_comes_from_content_or_says_why_not(
    events: pd.DataFrame, items: list[Item]
) -> None:
    plain = train_pipeline(small_with(), events, dict(EventSettings().weights), items=items)
    shoes = {it.item_id for it in items if it.categories == ["shoes"]}
    new = fresh("new-shoe", categories=["shoes"], properties={}, text=None)
    with pytest.raises(LookupError, match="no content source"):
        plain.with_catalog([new], stamp=1).similar_items("new-shoe", 5)
    with_content = train_pipeline(
        small_with(
            {"name": "content", "model": "content", "quota": 10},
            {"name": "together", "model": "cooccurrence", "quota": 10},
        ),
        events,
        dict(EventSettings().weights),
        items=items,
    )
    grown = with_content.with_catalog([new], stamp=1)
    ids, scores = grown.similar_items("new-shoe", 5)
    # its only token is "cat:shoes": every neighbour shares the category, none is itself
    assert len(ids) == 5 and set(ids.tolist()) <= shoes and (scores > 0).all()
    with pytest.raises(LookupError, match="added after"):  # no baskets counted with it yet
        grown.together("new-shoe", 5)


def small_with(*extra: dict[str, object]) -> PipelineConfig:
    """A ranker-less item-kNN + new-arrivals pipeline with ``extra`` sources."""
    return PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 20},
                    {"name": "new", "kind": "new_arrivals", "quota": 5},
                    *extra,
                ]
            },
            "ranking": {"enabled": False},
        }
    )


def test_growth_is_once_per_batch_and_keeps_a_later_old_items_update(trained: Pipeline) -> None:
    batch = [fresh("a"), fresh("b", categories=["x-new"]), fresh("a", available=False)]
    grown = trained.with_catalog(batch, stamp=1)
    n = trained.n_trained
    assert grown.bundle.items.to_index(["a", "b"]).tolist() == [n, n + 1]
    assert not grown.table.available[n] and grown.table.available[n + 1]  # the last "a" wins
    old = trained.bundle.items.external_ids[0]
    later = grown.with_catalog([Item(item_id=old, available=False)], stamp=2)
    assert not later.table.available[0] and len(later.bundle.items) == n + 2


def test_a_pipeline_trained_without_a_catalogue_grows_too(events: pd.DataFrame) -> None:
    """No catalogue at training: no categories, no creation dates; the first created item is
    then the only new arrival, and alone in its categories."""
    bare = train_pipeline(small_with(), events, dict(EventSettings().weights))
    assert bare.table.category_names == () and (bare.attrs.created_ts < 0).all()
    grown = bare.with_catalog([fresh("only-new", categories=["c1", "c2"])], stamp=1)
    assert grown.table.category_names == ("c1", "c2")
    user = str(events["user_id"].iloc[0])
    assert listed(grown, user, k=5, categories=["c2"]) == ["only-new"]
    answer = grown.answer([user], 300)
    row = answer.lists.item_ids[0].tolist().index("only-new")
    assert answer.sources[0][row] == ["new"]


def test_grown_content_equals_the_content_of_the_whole_catalogue(items: list[Item]) -> None:
    """Counting only the new items' tokens gives what tokenising the grown catalogue from
    scratch gives (``tfidf_vectors``, the one-shot path): the same cosine between every pair."""
    trained, later = items[:150], items[150:]
    ids = IdMap([it.item_id for it in trained])
    grown_ids = IdMap([it.item_id for it in items])
    content = CatalogContent.of(trained, ids).grown(later, grown_ids)
    catalog = ItemCatalog.from_items(items)
    whole = tfidf_vectors(catalog, grown_ids.to_index(catalog.item_ids), len(grown_ids))
    got = (content.vectors @ content.vectors.T).toarray()
    np.testing.assert_allclose(got, (whole @ whole.T).toarray(), atol=1e-5)
    assert content.counts.shape[1] > CatalogContent.of(trained, ids).counts.shape[1]  # new words


@pytest.mark.parametrize("primary", ["ials", "itemknn"])
def test_a_trained_items_similar_list_without_interactions_comes_from_content_or_says_why(
    events: pd.DataFrame, items: list[Item], primary: str
) -> None:
    """An item in the training catalogue that no event touched: the primary model has nothing on
    it (zero iALS factors: every cosine exactly 0; an empty item-kNN row), so its "similar" list
    would be the catalogue's first items in index order. It comes from content instead, or the
    pipeline says why there is none."""
    shoes = {it.item_id for it in items if it.categories == ["shoes"]}
    idle = fresh("idle-shoe", categories=["shoes"], properties={}, text=None, created_at=None)
    catalogue = [*items, idle]

    def trained_with(*extra: dict[str, object]) -> Pipeline:
        config = small_with(*extra)
        sources = config.retrieval.sources
        first = sources[0].model_copy(update={"model": primary})
        config = config.model_copy(
            update={
                "retrieval": config.retrieval.model_copy(update={"sources": [first, *sources[1:]]})
            }
        )
        return train_pipeline(config, events, dict(EventSettings().weights), items=catalogue)

    plain = trained_with()
    assert plain._trained_index("idle-shoe") is not None  # trained on, not added later
    with pytest.raises(LookupError, match="no neighbours"):
        plain.similar_items("idle-shoe", 5)
    seen = str(events["item_id"].iloc[0])
    assert len(plain.similar_items(seen, 5)[0]) == 5  # an item with events keeps its list
    with_content = trained_with({"name": "content", "model": "content", "quota": 10})
    ids, scores = with_content.similar_items("idle-shoe", 5)
    assert len(ids) == 5 and set(ids.tolist()) <= shoes and (scores > 0).all()


def test_an_item_whose_neighbours_are_all_unavailable_keeps_its_empty_list(
    events: pd.DataFrame, items: list[Item]
) -> None:
    """Availability emptying a list is not "no signal": the item's answer stays the (empty)
    available part of its list, not a 409 claiming the model has nothing on it."""
    plain = train_pipeline(small_with(), events, dict(EventSettings().weights), items=items)
    seen = str(events["item_id"].iloc[0])
    neighbours, _ = plain.similar_items(seen, 10_000)
    assert len(neighbours) > 0
    hidden = plain.with_catalog(
        [Item(item_id=str(i), available=False) for i in neighbours], stamp=1
    )
    ids, _ = hidden.similar_items(seen, 5)
    assert ids.tolist() == []
