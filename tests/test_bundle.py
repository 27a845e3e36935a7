"""ModelBundle: id translation, exclusion of seen items, popularity fallback and fill,
persistence."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.testing.recommender import checkerboard_events, rating_events, view_events


@pytest.fixture(scope="module")
def data() -> Interactions:
    return Interactions.from_events(checkerboard_events(), EventSettings().weights)


@pytest.fixture(scope="module")
def bundle(data: Interactions) -> ModelBundle:
    return ModelBundle.train(data, create("itemknn", neighbors=5))


def test_known_users_never_get_their_items(bundle: ModelBundle, data: Interactions) -> None:
    recs = bundle.recommend(data.users.external_ids, 10)
    for user, items in zip(data.users.external_ids, recs.item_ids, strict=True):
        had = set(data.items.to_external(data.matrix[data.users.to_index([user])].indices))
        assert not had & set(items)
        assert len(items) == 10  # completed from popularity where the neighbours ran out
    assert not recs.fallback.any()


def test_unknown_users_get_the_popular_list(bundle: ModelBundle) -> None:
    recs = bundle.recommend(["stranger", "0042"], 3)
    assert recs.fallback.all()
    expected, _ = bundle.popular_items(3)
    assert list(recs.item_ids[0]) == list(expected) == list(recs.item_ids[1])
    # popular means most distinct users, counted here by pandas (ties may list in any order)
    users_per_item = checkerboard_events().groupby("item_id")["user_id"].nunique()
    top_counts = users_per_item.sort_values(ascending=False).to_numpy()[:3]
    assert users_per_item[recs.item_ids[0]].tolist() == top_counts.tolist()


def test_extra_seen_items_are_excluded_at_once(bundle: ModelBundle) -> None:
    first = bundle.recommend(["u000"], 3).item_ids[0]
    again = bundle.recommend(["u000"], 3, extra_seen=[[first[0], "not-an-item"]]).item_ids[0]
    assert first[0] not in again and list(again[:2]) == list(first[1:])


def test_fill_scores_stay_below_model_scores(bundle: ModelBundle, data: Interactions) -> None:
    recs = bundle.recommend(data.users.external_ids, 15)
    for scores in recs.scores:
        assert (np.diff(scores) <= 0).all()


def test_unavailable_items_leave_every_list_and_come_back(
    bundle: ModelBundle, data: Interactions
) -> None:
    users = data.users.external_ids
    before = bundle.recommend(users, 10).item_ids
    listed = pd.Series(np.concatenate(before)).value_counts()
    gone = set(listed.index[:3])  # the three items listed most often
    hidden = bundle.with_catalog(
        [*(Item(item_id=i, available=False) for i in gone), Item(item_id="new", available=False)],
        stamp=7,
    )
    assert hidden.catalog_stamp == 7 and bundle.catalog_stamp == 0
    lists = [
        *hidden.recommend(users, 10).item_ids,  # known users, model then popularity fill
        *hidden.recommend(["stranger"], 10).item_ids,  # popularity tier
        *hidden.recommend_for_items([["i000"], ["i001", "i002"]], 10).item_ids,  # sessions
        hidden.popular_items(10)[0],
        hidden.trending_items(10)[0],
    ]
    assert all(len(row) == 10 for row in lists)  # filled past the hidden items
    for item in ("i000", *gone):  # neighbour lists: the available neighbours, in order
        everyone = bundle.similar_items(item, 30)[0]
        assert list(hidden.similar_items(item, 4)[0]) == [i for i in everyone if i not in gone][:4]
    assert not [row for row in lists if gone & set(row)]
    # the served bundle is replaced, never changed: requests running on it finish as they began
    assert [list(r) for r in bundle.recommend(users, 10).item_ids] == [list(r) for r in before]
    back = hidden.with_catalog([Item(item_id=i) for i in gone], stamp=8)
    assert [list(r) for r in back.recommend(users, 10).item_ids] == [list(r) for r in before]


def test_similar_items_unknown_item_is_key_error(bundle: ModelBundle) -> None:
    items, _ = bundle.similar_items("i000", 3)
    assert "i000" not in items and len(items) == 3
    with pytest.raises(KeyError):
        bundle.similar_items("nope", 3)


def test_save_load_gives_the_same_answers(bundle: ModelBundle, tmp_path: Path) -> None:
    bundle.save(tmp_path / "b")
    loaded = ModelBundle.load(tmp_path / "b")
    assert loaded.version == bundle.version
    a = bundle.recommend(["u001", "x"], 5)
    b = loaded.recommend(["u001", "x"], 5)
    assert [list(x) for x in a.item_ids] == [list(x) for x in b.item_ids]
    assert not list(tmp_path.glob("b/**/*.pkl"))


def test_load_refuses_a_non_model_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest"):
        ModelBundle.load(tmp_path)


def test_items_with_no_neighbour_evidence_are_never_listed_as_similar(data: Interactions) -> None:
    # an extra user with one lone item nobody else touched: co-occurrence has nothing for it
    events = checkerboard_events()
    lone = events.iloc[:1].assign(user_id="loner", item_id="lone", event_id="x1")
    with_lone = Interactions.from_events(
        pd.concat([events, lone], ignore_index=True), EventSettings().weights
    )
    bundle = ModelBundle.train(with_lone, create("cooccurrence", min_support=1))
    visitor = bundle.recommend_for_items([["lone"]], 5)
    popular, _ = bundle.popular_items(6, exclude=["lone"])
    assert list(visitor.item_ids[0]) == list(popular[:5])  # the popularity fill, not score-0 items
    assert bool(visitor.fallback[0]) is False  # the model answered; its empty slots were filled
    known = bundle.recommend(["loner"], 5)
    assert list(known.item_ids[0]) == list(popular[:5])
    # the loner is known, but popularity answered alone: the tier says so, as the sources do
    answer = bundle.answer(["loner", "u000"], 5)
    assert answer.tiers == ["popular", "personalised"]
    assert answer.sources[0] == [["popular"]] * 5 and answer.sources[1][0] == ["cooccurrence"]


@pytest.mark.parametrize("model", ["ease", "itemknn"])
def test_similar_lists_leave_out_items_with_no_evidence(data: Interactions, model: str) -> None:
    # the checkerboard's groups share no user: nothing links an item to the other group's items,
    # so EASE weighs them exactly 0 (no evidence) and item-kNN has no neighbour there
    bundle = ModelBundle.train(data, create(model))
    own_group = [i for i in data.items.external_ids if int(i[1:]) % 2 == 0 and i != "i000"]
    items, scores = bundle.similar_items("i000", len(data.items))
    assert 0 < len(items) <= len(own_group)
    assert set(items) <= set(own_group)
    assert (scores != 0).all()


def _two_components() -> ModelBundle:
    """EASE on two groups that share no user: for ua0 (group a) EASE scores a2 above 0, a3 below
    0 and every b exactly 0 (no evidence), so its raw row is a2, six b ties, then a3."""
    a = {"ua0": ["a0", "a1"], "ua1": ["a0", "a1"], "ua2": ["a1", "a2"], "ua3": ["a2", "a3"]}
    a |= {"ua4": ["a0", "a1", "a2"], "ua5": ["a3"]}
    b = {f"ub{i}": [f"b{j}" for j in range(6) if (i + j) % 3 != 0] for i in range(12)}
    rows = [(u, item) for u, items in {**a, **b}.items() for item in items]
    events = view_events([(u, item, 1_700_000_000 + n) for n, (u, item) in enumerate(rows)])
    return ModelBundle.train(
        Interactions.from_events(events, EventSettings().weights), create("ease")
    )


def test_a_model_item_below_the_no_evidence_ties_is_kept_and_labelled_the_model_s() -> None:
    bundle = _two_components()
    idx = bundle.users.to_index(["ua0"])
    raw = bundle.model.recommend(idx, 8, exclude=bundle.exclusions(idx, None))
    assert bundle.items.to_external(raw.ids[0, [0, -1]]).tolist() == ["a2", "a3"]  # the case
    assert raw.scores[0, 0] > 0 > raw.scores[0, -1] and (raw.scores[0, 1:-1] == 0).all()
    for recs in (bundle.recommend(["ua0"], 8), bundle.recommend_for_items([["a0", "a1"]], 8)):
        items, sources = list(recs.item_ids[0]), recs.sources[0]
        assert items[:2] == ["a2", "a3"] and len(items) == 8  # a3 is not overwritten by a fill
        assert sources == [["ease"]] * 2 + [["popular"]] * 6  # no b is the model's
        assert np.isfinite(recs.scores[0]).all() and (np.diff(recs.scores[0]) < 0).all()


def test_a_known_user_s_recent_items_answer_before_popularity() -> None:
    """ulone's training item has no neighbour, so item-kNN proposes nothing from it; the item
    it met since (a0) has: its list comes from a0's neighbours (the session tier), not from
    popularity, and neither of its items is listed. A known user whose training items lead
    somewhere keeps its own list."""
    pairs = {"ua0": ["a0", "a1"], "ua1": ["a0", "a1", "a2"], "ua2": ["a1", "a2"]}
    pairs |= {f"up{i}": ["p0", "p1"] for i in range(5)} | {"ulone": ["lone"]}
    rows = [(u, item) for u, items in pairs.items() for item in items]
    events = view_events([(u, item, 1_700_000_000 + n) for n, (u, item) in enumerate(rows)])
    data = Interactions.from_events(events, EventSettings().weights)
    bundle = ModelBundle.train(data, create("itemknn"))
    # the case: from its training items alone, ulone gets popularity (p0, p1 lead)
    alone = bundle.answer(["ulone"], 3)
    assert alone.tiers == ["popular"] and list(alone.lists.item_ids[0][:2]) == ["p0", "p1"]
    answer = bundle.answer(["ulone", "ua0"], 6, recent=[["a0"], []])
    assert answer.tiers == ["session", "personalised"]
    # the oracle: a0's neighbours, the items that share a user with it, best first
    neighbours, _ = bundle.similar_items("a0", 2)
    assert set(neighbours) == {"a1", "a2"}
    assert list(answer.lists.item_ids[0][:2]) == list(neighbours)
    assert answer.sources[0][:2] == [["itemknn"]] * 2
    assert sorted(answer.lists.item_ids[0][2:]) == ["p0", "p1"]  # filled: not a0, nor lone
    assert list(answer.lists.item_ids[1][:1]) == ["a2"]  # ua0's own: from a0 and a1


def test_items_a_user_rated_zero_or_below_are_seen_and_never_listed(tmp_path: Path) -> None:
    # u1 rated x 5, y 0, z -1: y and z carry no positive signal (the matrix drops them) but u1
    # has had them, and a scorer drops seen items (issue #15: they came back). Of the four
    # items only w is left for u1; u2 had all four (x netting -4 + 3 = -1), so nothing; u3 x, z.
    rows = [
        ("u1", "x", 5.0), ("u1", "y", 0.0), ("u1", "z", -1.0),
        ("u2", "x", -4.0), ("u2", "x", 3.0), ("u2", "y", 4.0), ("u2", "z", 3.0), ("u2", "w", 2.0),
        ("u3", "w", 5.0), ("u3", "y", 5.0),
    ]  # fmt: skip
    events = rating_events(rows)
    data = Interactions.from_events(events, EventSettings().weights)
    assert data.matrix.nnz == 6  # u1's y and z, u2's x: no positive signal
    trained = ModelBundle.train(data, create("itemknn"))
    trained.save(tmp_path / "m")
    for bundle in (trained, ModelBundle.load(tmp_path / "m")):
        lists = bundle.recommend(["u1", "u2", "u3"], 10).item_ids
        assert [sorted(items) for items in lists] == [["w"], [], ["x", "z"]]


def test_items_rated_zero_or_below_are_no_history_for_a_user_scored_from_items() -> None:
    # z rated X 0 and Y 5; Y is nobody else's, so itemknn proposes z nothing (popularity) until
    # z meets W, whose one neighbour is M: z is then scored from its items, training's first —
    # Y (no neighbour) and W, never X, whose neighbours N1 and N2 are only the popularity fill
    # after M (they led the list, anchored on the item z rated 0, before the fix; issue #15)
    rows = [(f"u{u}", item, 4.0) for u in range(6) for item in ("X", "N1", "N2")]
    rows += [("v", "M", 5.0), ("v", "W", 4.0), ("z", "X", 0.0), ("z", "Y", 5.0)]
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    bundle = ModelBundle.train(data, create("itemknn"))
    assert bundle.answer(["z"], 3, history=[[]]).tiers == ["popular"]
    answer = bundle.answer(["z"], 3, history=[["W"]])
    listed = list(answer.lists.item_ids[0])
    assert answer.tiers == ["session"] and listed[0] == "M" and "X" not in listed  # X: had
    assert answer.sources[0] == [["itemknn"], ["popular"], ["popular"]]
    # asked without exclusions of its own, the same: every training item is masked
    alone = bundle.recommend_for_items([["W"]], 3, users=bundle.users.to_index(["z"]))
    assert alone.item_ids[0][0] == "M" and "X" not in list(alone.item_ids[0])
    # as serving reads them: the stored items hold every training item, X too (the store's
    # plain read knows no weights): X is still no history, the list the same
    stored = bundle.answer(["z"], 3, history=[["X", "Y", "W"]])
    assert list(stored.lists.item_ids[0]) == listed and stored.sources == answer.sources
