"""Two-tower: the shared contract; planted tastes that only features reveal (cold items of the
liked category, a cold user's profile segment), the popularity order of a user nothing is known
about (which needs logQ); numpy serving against the torch towers; reproducible fits; missing
properties; no torch; the CLI."""

import sys
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse
from scipy.stats import spearmanr
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.errors import MissingExtraError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.feature_tokens import FeatureTokens
from recsmith.models.two_tower import (
    TwoTower,
    _item_records,
    _item_tokens,
    _network,
    _torch_items,
    _torch_sparse,
    _torch_user,
)
from recsmith.testing.recommender import RecommenderContract, view_events

# ``recommend`` logs its lists into the default store when one exists (a quickstart user's
# ./recsmith-data): these commands name none, so they get a store of their own
pytestmark = pytest.mark.usefixtures("audit_store")

SMALL: dict[str, Any] = {
    "dim": 16,
    "epochs": 30,
    "batch_size": 32,
    "learning_rate": 2e-2,
    "num_threads": 1,
}
SEGMENTS = ("A", "B", "C")  # segment s buys only category cat<s>
WARM, COLD = 8, 3  # items per category with events / in the catalogue only


class TestTwoTower(RecommenderContract):
    model_name = "two_tower"
    # the checkerboard's 40 users: smaller batches and steps (at batch 32 and rate 0.02 two slots
    # of 200 left the group; at 60 epochs 19 did: ids memorise the users' own items on data this
    # small); a blind guess scores 0.5 on either share
    params: ClassVar[dict[str, Any]] = {**SMALL, "batch_size": 16, "learning_rate": 1e-2}
    list_group_share = 0.98  # SGD with dropout at a margin of a slot in 200, as SASRec's
    similar_group_share = 0.95  # item vectors are trained against users, not co-occurrence


def taste_events(n_per_segment: int = 24, seed: int = 0, skew: float = 1.0) -> pd.DataFrame:
    """Users of segment s view 4 of category s's warm items, drawn with weights 1/(n+1)^skew:
    item n = 0 of each category is the most popular within it."""
    rng = np.random.default_rng(seed)
    share = 1 / np.arange(1, WARM + 1) ** skew
    rows = []
    for s, segment in enumerate(SEGMENTS):
        for u in range(n_per_segment):
            picks = rng.choice(WARM, size=4, replace=False, p=share / share.sum())
            for step, i in enumerate(picks):
                rows.append((f"{segment}{u:02d}", f"c{s}i{i}", 1_700_000_000 + 100 * u + step))
    return view_events(rows)


def taste_catalog(with_properties: bool = True) -> list[Item]:
    """Warm and cold items of each category; the category is also a declared ``brand``."""
    return [
        Item(
            item_id=f"c{s}i{i}",
            categories=[f"cat{s}"] if with_properties else [],
            properties={"brand": f"brand{s}"} if with_properties else {},
        )
        for s in range(len(SEGMENTS))
        for i in range(WARM + COLD)
    ]


def taste_data(events: pd.DataFrame, items: list[Item]) -> Interactions:
    profiles = {u: {"segment": u[0], "age": 20 + int(u[1:])} for u in events["user_id"].unique()}
    return Interactions.from_events(
        events, EventSettings().weights, catalog=ItemCatalog.from_items(items), profiles=profiles
    )


@pytest.fixture(scope="module")
def taste() -> Interactions:
    return taste_data(taste_events(), taste_catalog())


@pytest.fixture(scope="module")
def taste_model(taste: Interactions) -> TwoTower:
    return TwoTower(**SMALL).fit(taste)


def category_of(data: Interactions, items: np.ndarray) -> np.ndarray:
    return np.asarray([int(data.items.external_ids[i][1]) for i in items])


def cold_items(data: Interactions, category: int) -> np.ndarray:
    return data.items.to_index([f"c{category}i{i}" for i in range(WARM, WARM + COLD)])


def test_cold_items_of_the_liked_category_rank_above_other_cold_items(
    taste_model: TwoTower, taste: Interactions
) -> None:
    for s, segment in enumerate(SEGMENTS):
        users = taste.users.to_index([u for u in taste.users.external_ids if u.startswith(segment)])
        scores = taste_model._score(users)
        own = scores[:, cold_items(taste, s)]
        others = scores[:, np.concatenate([cold_items(taste, t) for t in range(3) if t != s])]
        assert (own.min(axis=1) > others.max(axis=1)).all()


def test_a_cold_user_gets_their_segments_category_first(
    taste_model: TwoTower, taste: Interactions
) -> None:
    top = taste_model.recommend_for_profiles([{"segment": s} for s in SEGMENTS], WARM)
    for s in range(len(SEGMENTS)):
        assert (category_of(taste, top.ids[s]) == s).all()


def test_a_user_nothing_is_known_about_gets_the_popularity_order(
    taste_model: TwoTower, taste: Interactions
) -> None:
    """No id, no profile, no items: the bias slot alone, which should rank by popularity (the
    oracle: event counts). In-batch negatives are drawn in proportion to popularity, so without
    the logQ correction popular items are over-penalised: the rank correlation fell to 0.42
    (0.10 at seed 1) from 0.78 (0.71) with it. Since events are numbered in the canonical order
    (BENCHMARKS §66) it is 0.58 / 0.63 / 0.71 at the default seed / 1 / 2 with logQ and
    0.00 / 0.27 / 0.19 without. Over 12 seeds: 0.57-0.80 in the canonical numbering, 0.51-0.78
    in a random one (rows shuffled), 0.65-0.83 in the old file order — the old order was the
    lucky numbering, not the model better — so the line is drawn at 0.4, between the two."""
    counts = np.bincount(taste.event_items, minlength=taste.n_items)
    warm = np.flatnonzero(counts > 0)
    scores = (taste_model.profile_vectors([None]) @ taste_model.item_vectors_.T)[0]
    assert spearmanr(scores[warm], counts[warm])[0] > 0.4


def test_numpy_serving_equals_the_torch_towers(taste_model: TwoTower, taste: Interactions) -> None:
    w = taste_model.weights_
    tokens = _item_tokens(taste, taste_model.config.max_properties)
    item_matrix = tokens.encode(*_item_records(taste))
    user_matrix = taste_model.user_tokens_.encode(list(taste.profiles or []))
    net = _network(
        torch, taste.n_users, taste.n_items, user_matrix.shape[1], item_matrix.shape[1], 16
    )
    net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})
    with torch.no_grad():
        features = _torch_items(torch, net, _torch_sparse(torch, item_matrix, "cpu"))
        items = features + net["item_id"].weight  # every item here but the cold ones is known
        known = torch.from_numpy(np.diff(taste.matrix.T.tocsr().indptr) > 0)
        items = torch.where(known[:, None], items, features)
        np.testing.assert_allclose(taste_model.item_vectors_, items.numpy(), atol=1e-5)
        users = torch.arange(taste.n_users)
        profile = torch.sparse.mm(_torch_sparse(torch, user_matrix, "cpu"), net["user_tok"].weight)
        rng = np.random.default_rng(0)
        recent = torch.from_numpy(rng.integers(-1, taste.n_items, (taste.n_users, 20)))
        expected = _torch_user(
            torch, net, users, torch.ones(taste.n_users), profile, recent, items[:, :-1]
        )
    actual = taste_model._user_vectors(np.arange(taste.n_users), user_matrix, recent.numpy())
    np.testing.assert_allclose(actual, expected.numpy(), atol=1e-5)


def test_same_seed_same_artifact_other_seed_another(
    taste_model: TwoTower, taste: Interactions
) -> None:
    again = TwoTower(**SMALL).fit(taste)
    first, second = taste_model._arrays(), again._arrays()
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    other = TwoTower(**{**SMALL, "random_state": 7}).fit(taste)
    assert not np.array_equal(other.item_vectors_, taste_model.item_vectors_)


def test_missing_properties_and_profiles(taste_model: TwoTower) -> None:
    """No catalogue metadata and no profiles: the model still fits and ranks by ids and recent
    items, and a visitor's items steer the list to their category. On a model that learnt a
    profile vocabulary, an unknown profile value or a missing property gives no token (same
    vector as none)."""
    events = taste_events()
    bare = Interactions.from_events(
        events, EventSettings().weights, catalog=ItemCatalog.from_items(taste_catalog(False))
    )
    model = TwoTower(**SMALL).fit(bare)
    top = model.recommend(np.arange(bare.n_users), 3, exclude=bare.matrix)
    own = np.asarray([int(u[0] == "B") + 2 * int(u[0] == "C") for u in bare.users.external_ids])
    # popularity alone would list the user's category in about a third of the slots
    assert (category_of(bare, top.ids.ravel()) == np.repeat(own, 3)).mean() > 0.75
    assert {"segment=A", "age#1"} <= set(taste_model.user_tokens_.vocabulary)
    none = taste_model.profile_vectors([None, {"segment": "Z"}, {"age": float("nan")}, {}])
    np.testing.assert_array_equal(none, np.broadcast_to(none[0], none.shape))
    history = sparse.csr_array(
        (np.ones(2, np.float32), bare.items.to_index(["c2i1", "c2i2"]), [0, 2]),
        shape=(1, bare.n_items),
    )
    got = model.recommend_from_items(history, 3).ids[0]
    assert (category_of(bare, got) == 2).all()


def test_feature_tokens_band_numbers_and_drop_rare_values() -> None:
    records = [{"age": a, "job": j} for a, j in zip(range(10), "xxyyzzwwqv", strict=True)]
    tokens = FeatureTokens.learn([*records, None], max_properties=8)
    # quintile bands of 0..9: two ages per band; "q" and "v" appear once: no token
    assert sorted(tokens.vocabulary) == sorted(
        [f"age#{b}" for b in range(1, 6)] + [f"job={j}" for j in "wxyz"]
    )
    matrix = tokens.encode([{"age": 0, "job": "q"}, {"age": 9, "job": "x"}, None]).toarray()
    vocab = list(tokens.vocabulary)
    assert matrix[0, vocab.index("age#1")] == 1.0 and matrix[0].sum() == 1.0
    assert matrix[1, vocab.index("age#5")] == 0.5 and matrix[1, vocab.index("job=x")] == 0.5
    assert matrix[2].sum() == 0.0


def test_feature_tokens_skip_a_number_nobody_gave() -> None:
    """A numeric property whose every value is missing has no bands: no column, no token, and
    the other properties tokenise as ever."""
    records = [{"x": float("nan"), "job": "a"}, {"x": float("nan"), "job": "a"}]
    tokens = FeatureTokens.learn(records, max_properties=8)
    assert list(tokens.names) == ["job"] and list(tokens.vocabulary) == ["job=a"]
    assert FeatureTokens.learn([{"x": float("nan")}] * 2, 8).n_tokens == 0


def test_fit_without_torch_names_the_extra(
    taste: Interactions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingExtraError, match=r"recsmith\[torch\]"):
        TwoTower(**SMALL).fit(taste)


def test_saved_model_serves_cold_profiles_without_torch(
    taste_model: TwoTower, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    taste_model.save(tmp_path / "m")
    monkeypatch.setitem(sys.modules, "torch", None)
    loaded = TwoTower.load(tmp_path / "m")
    profiles = [{"segment": "B", "age": 30}, None]
    np.testing.assert_array_equal(
        loaded.recommend_for_profiles(profiles, 5).ids,
        taste_model.recommend_for_profiles(profiles, 5).ids,
    )


def test_cli_trains_on_profiles_and_recommends(tmp_path: Any) -> None:
    """``train --model two_tower --users`` feeds the profiles to the user tower (its saved
    vocabulary holds the segments) and ``recommend`` lists a segment's category, cold items
    included, to its users."""
    events = taste_events()
    events_csv = tmp_path / "events.csv"
    events.assign(timestamp=events["ts"] // 1_000_000)[
        ["user_id", "item_id", "timestamp", "event_type"]
    ].to_csv(events_csv, index=False)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(it.model_dump_json() + "\n" for it in taste_catalog()))
    users = tmp_path / "users.csv"
    ids = events["user_id"].unique()
    pd.DataFrame({"user_id": ids, "segment": [u[0] for u in ids]}).to_csv(users, index=False)
    params = [x for key, value in SMALL.items() for x in ("--param", f"{key}={value}")]
    common = ["--data", str(events_csv), "--items", str(items), "--users", str(users)]
    out = tmp_path / "m"
    result = CliRunner().invoke(
        app, ["train", "--model", "two_tower", *common, *params, "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    vocabulary = TwoTower.load(next(out.glob("**/model.json")).parent).user_tokens_.vocabulary
    assert {"segment=A", "segment=B", "segment=C"} <= set(vocabulary)
    listed = tmp_path / "users.txt"
    listed.write_text("\n".join(u for u in ids if u[0] == "A") + "\n")
    recs_csv = tmp_path / "recs.csv"
    args = ["--model-dir", str(out), "--users", str(listed), "--k", "7", "--out", str(recs_csv)]
    result = CliRunner().invoke(app, ["recommend", *args])
    assert result.exit_code == 0, result.stderr
    recs = pd.read_csv(recs_csv, dtype=str)
    assert len(recs) == 7 * len(ids) // 3
    assert recs["item_id"].str.startswith("c0").mean() == 1.0  # 4 unseen warm + 3 cold of cat0
