"""A two-tower release answers a user unknown at training from the profile stored for them
(``PUT /v1/users/{id}``, ``import --format users``), over ``serve`` and ``recommend`` (#15): the
lists equal the oracle, a dot product of the profile's token embedding (its one property's row
of the user tower's weights, plus the bias slot) with the item vectors, written here; a cold
user without a profile keeps popularity. Served without torch."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from read_orders import note_orders, served_lists
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings, Settings
from recsmith.events.profiles import store_profiles
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events

pytest.importorskip("torch")

K = 6
SEGMENTS = "ABC"  # users of segment s view only category s's items
COLD = {"new-a": {"segment": "A"}, "new-c": {"segment": "C"}}
HISTORY = 3  # the tower pools a user's 3 latest items: the order of 4 or more matters


@pytest.fixture(scope="module")
def tower_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-tower release fitted on profiles: segment s's 20 users each view 4 of category
    s's 8 items (item 0 the most viewed within it)."""
    rng = np.random.default_rng(0)
    share = 1 / np.arange(1, 9)
    events = []
    for s, segment in enumerate(SEGMENTS):
        for u in range(20):
            for step, i in enumerate(rng.choice(8, 4, replace=False, p=share / share.sum())):
                events.append(
                    {
                        "user_id": f"{segment}{u}",
                        "item_id": f"c{s}i{i}",
                        "event_type": "view",
                        "timestamp": 1_700_000_000 + 100 * u + step,
                    }
                )
    frame, rejected = validate_events(events, EventSettings())
    assert not rejected
    items = [Item(item_id=f"c{s}i{i}", categories=[f"cat{s}"]) for s in range(3) for i in range(8)]
    data = Interactions.from_events(
        frame,
        EventSettings().weights,
        catalog=ItemCatalog.from_items(items),
        profiles={u: {"segment": u[0]} for u in frame["user_id"].unique()},
    )
    from recsmith.models.two_tower import TwoTower

    model = TwoTower(
        dim=16, epochs=30, batch_size=32, learning_rate=2e-2, num_threads=1, history=HISTORY
    )
    path = tmp_path_factory.mktemp("tower") / "release"
    ModelBundle.train(data, model).save(path)
    return path


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serving must not need torch: any import of it fails from here on."""
    monkeypatch.setitem(sys.modules, "torch", None)


def oracle(
    release: ModelBundle,
    segment: str,
    pooled: Sequence[str] = (),
    masked: Sequence[str] = (),
    k: int = K,
) -> list[str]:
    """Top ``k`` item ids for a cold user whose profile is ``segment`` and who met ``pooled``
    (the tower's latest items, any order): u = [the token's row of the user tower's embedding
    + W_hist · mean of the pooled items' vectors less their bias slot, 1] (no id: that term is
    0), score = u · v_i, the ``pooled`` and ``masked`` items never listed."""
    model: Any = release.model
    vocabulary = list(model.user_tokens_.vocabulary)
    core = np.zeros(model.weights_["user_tok.weight"].shape[1], np.float32)
    if f"segment={segment}" in vocabulary:  # a value it never learnt has no term
        core += model.weights_["user_tok.weight"][vocabulary.index(f"segment={segment}")]
    at = release.items.to_index(list(pooled))
    if len(at):
        core += model.weights_["hist.weight"] @ model.item_vectors_[at, :-1].mean(axis=0)
    scores = model.item_vectors_ @ np.append(core, 1.0)
    scores[release.items.to_index([*pooled, *masked])] = -np.inf
    return [release.items.external_ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


def client(tower_dir: Path, store: EventStore, store_url: str, **serving: Any) -> TestClient:
    """A server of the release (``serving``: more serving settings), to use in ``with``."""
    settings = Settings(store={"url": store_url}, serving={"model_dir": tower_dir, **serving})
    return TestClient(create_app(settings, bundle=ModelBundle.load(tower_dir), store=store))


@pytest.fixture
def served(
    tower_dir: Path, store: EventStore, store_url: str, no_torch: None
) -> Iterator[TestClient]:
    with client(tower_dir, store, store_url) as c:
        yield c


def test_serve_answers_cold_users_from_their_stored_profiles(
    served: TestClient, tower_dir: Path, keys: dict[str, dict[str, str]]
) -> None:
    release = ModelBundle.load(tower_dir)
    for user, profile in COLD.items():
        put = served.put(f"/v1/users/{user}", json={"properties": profile}, headers=keys["ingest"])
        assert put.status_code == 200, put.text
    lists = {}
    for user in [*COLD, "nobody"]:
        got = served.get(f"/v1/users/{user}/recommendations", params={"k": K}, headers=keys["read"])
        assert got.status_code == 200, got.text
        lists[user] = got.json()
    for user, profile in COLD.items():
        body = lists[user]
        assert (body["tier"], body["fallback"]) == ("profile", "profile")
        assert [i["item_id"] for i in body["items"]] == oracle(release, profile["segment"])
        assert {s for i in body["items"] for s in i["sources"]} == {"two_tower"}
    nobody = lists["nobody"]
    assert (nobody["tier"], nobody["fallback"]) == ("popular", "popular")
    assert [i["item_id"] for i in nobody["items"]] == release.popular_items(K)[0].tolist()
    assert len({tuple(i["item_id"] for i in body["items"]) for body in lists.values()}) == 3
    # a profile of values the tower never learnt says nothing of the person: a cold user's
    # popularity, not tier ``profile`` with the tower's bias-only order
    put = served.put(
        "/v1/users/new-z", json={"properties": {"segment": "Z"}}, headers=keys["ingest"]
    )
    assert put.status_code == 200, put.text
    unknown = served.get("/v1/users/new-z/recommendations", params={"k": K}, headers=keys["read"])
    assert (unknown.json()["tier"], unknown.json()["fallback"]) == ("popular", "popular")
    assert [i["item_id"] for i in unknown.json()["items"]] == [
        i["item_id"] for i in nobody["items"]
    ]
    # ``?explain=true`` answers from its own traced call: the same tier and list
    explained = served.get(
        "/v1/users/new-a/recommendations", params={"k": K, "explain": True}, headers=keys["admin"]
    ).json()
    assert explained["tier"] == "profile"
    assert [i["item_id"] for i in explained["items"]] == oracle(release, "A")


def test_recommend_reads_cold_users_profiles_from_the_store(
    tower_dir: Path, store: EventStore, store_url: str, tmp_path: Path, no_torch: None
) -> None:
    result = store_profiles(
        store, [{"user_id": u, "properties": p} for u, p in COLD.items()], source="test"
    )
    assert not result.rejected
    users = tmp_path / "users.txt"
    users.write_text("new-a\nnew-c\nnobody\n")
    out = tmp_path / "recs.csv"
    args = ["--model-dir", str(tower_dir), "--users", str(users), "--k", str(K), "--out", str(out)]
    ran = CliRunner().invoke(app, ["recommend", *args], env={"RECSMITH_STORE__URL": store_url})
    assert ran.exit_code == 0, ran.stderr
    recs = pd.read_csv(out, dtype=str).groupby("user_id", sort=False)
    release = ModelBundle.load(tower_dir)
    for user, profile in COLD.items():
        rows = recs.get_group(user)
        assert rows["item_id"].tolist() == oracle(release, profile["segment"])
        assert set(rows["sources"]) == {"two_tower"}
    nobody = recs.get_group("nobody")
    assert nobody["item_id"].tolist() == release.popular_items(K)[0].tolist()
    assert set(nobody["sources"]) == {"popular"}


@pytest.mark.parametrize("cache_entries", [1000, 0], ids=["cached", "uncached"])
def test_the_tower_pools_what_the_user_met_and_only_masks_what_the_request_excludes(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    no_torch: None,
    keys: dict[str, dict[str, str]],
    cache_entries: int,
) -> None:
    """new-a has a stored event (c1i2) and asks with ``recent=c1i3``: both are pooled into the
    tower, which moves the list; ``exclude=c2i5`` (not on the list) is only left out, so the
    list is the one asked without it, less that item (rv26b finding 1). With the response
    cache the route reads the stored items, without it the coalescer's flush does."""
    release = ModelBundle.load(tower_dir)
    user = "new-a"
    event = {"user_id": user, "item_id": "c1i2", "event_type": "view", "timestamp": time.time()}
    # into the store alone (not the online state's recent items): read as the stored events
    stored = ingest_events(store, [event], EventSettings(), source="test")
    assert stored.accepted == 1, stored.rejected
    want = oracle(release, "A", pooled=["c1i2", "c1i3"])
    assert want != oracle(release, "A", masked=["c1i2", "c1i3"])  # the items move the list
    assert "c2i5" not in want
    with client(tower_dir, store, store_url, cache_entries=cache_entries) as served:
        put = served.put(
            f"/v1/users/{user}", json={"properties": COLD[user]}, headers=keys["ingest"]
        )
        assert put.is_success, put.text
        for exclude in ({}, {"exclude": "c2i5"}):
            got = served.get(
                f"/v1/users/{user}/recommendations",
                params={"k": K, "recent": "c1i3", **exclude},
                headers=keys["read"],
            ).json()
            assert got["tier"] == "profile", got
            assert [i["item_id"] for i in got["items"]] == want


def test_the_tower_pools_the_latest_items_in_the_order_they_were_met(tower_dir: Path) -> None:
    """Five items since training, the tower pooling ``HISTORY`` (3): the latest three by time
    (``history`` oldest first, then ``recent`` newest first), not the three highest item
    indices (rv26b finding 4)."""
    release = ModelBundle.load(tower_dir)
    met = ["c2i2", "c2i1", "c2i0", "c1i1", "c1i0"]  # oldest first: latest c2i0, c1i1, c1i0
    cases = [
        ({"history": [met]}, ["c2i0", "c1i1", "c1i0"]),
        # ``recent`` is newest first, after the stored items: met as c2i0, c2i2, c2i1, c1i1, c1i0
        ({"history": [["c2i0"]], "recent": [["c1i0", "c1i1", "c2i1", "c2i2"]]}, ["c2i1", *met[3:]]),
        # c1i0 stored and viewed again just now: it counts once, at its latest place
        ({"history": [["c1i0", *met[:4]]], "recent": [["c1i0"]]}, met[2:]),
    ]
    rest = len(release.items) - len(met)  # the whole ranking: the pooled items move it all
    for asked, latest in cases:
        got = release.answer(np.array(["new-a"], object), rest, profiles=[COLD["new-a"]], **asked)
        assert got.tiers == ["profile"]
        want = oracle(release, "A", pooled=latest, masked=met, k=rest)
        assert want != oracle(release, "A", pooled=["c2i0", "c2i1", "c2i2"], masked=met, k=rest)
        assert got.lists.item_ids[0].tolist() == want


def test_a_profile_of_unknown_values_with_items_is_answered_from_the_items(
    tower_dir: Path,
) -> None:
    """Segment Z means nothing to the tower, but the items met since training do: tier
    ``profile``, the list of the pooled items alone; without items, popularity (finding 3)."""
    release = ModelBundle.load(tower_dir)
    users, unknown = np.array(["new-z", "new-y"], object), {"segment": "Z"}
    got = release.answer(users, K, profiles=[unknown, unknown], history=[["c1i0", "c1i1"], []])
    assert got.tiers == ["profile", "popular"]
    assert got.lists.item_ids[0].tolist() == oracle(release, "Z", pooled=["c1i0", "c1i1"])
    assert got.lists.item_ids[1].tolist() == release.popular_items(K)[0].tolist()


def test_a_visitor_is_answered_from_its_own_items_in_time_order(tower_dir: Path) -> None:
    """A visitor without a profile (tier ``session``): the tower pools its latest ``HISTORY``
    items by time (stored ``history`` oldest first, then ``recent`` newest first), never the
    request's ``exclude=`` (``extra_seen``), which is masked only."""
    release = ModelBundle.load(tower_dir)
    stored, recent, excluded = ["c2i2", "c2i1"], ["c1i0", "c1i1"], ["c2i7"]
    met = [*stored, *reversed(recent)]  # oldest first: the latest three are c2i1, c1i1, c1i0
    rest = len(release.items) - len(met) - len(excluded)
    asked = {"extra_seen": [excluded], "recent": [recent], "history": [stored]}
    got = release.answer(np.array(["visitor"], object), rest, **asked)
    assert got.tiers == ["session"]
    want = oracle(release, "Z", pooled=["c2i1", "c1i1", "c1i0"], masked=[*met, *excluded], k=rest)
    # the order and the excluded item would each move the list
    assert want != oracle(release, "Z", pooled=["c1i0", "c1i1", "c2i2"], masked=[*met, *excluded])
    assert want != oracle(release, "Z", pooled=["c1i1", "c1i0", "c2i7"], masked=[*met, *excluded])
    assert got.lists.item_ids[0].tolist() == want


def test_a_visitor_with_stored_items_and_nothing_recent_is_answered_from_them(
    tower_dir: Path,
) -> None:
    """A visitor whose items are all stored (the online state empty: a restart, an eviction,
    an import) is scored from them (tier ``session``), not answered by popularity (rv27c
    finding 2)."""
    release = ModelBundle.load(tower_dir)
    stored = ["c2i2", "c2i1"]
    got = release.answer(np.array(["visitor"], object), K, history=[stored])
    assert got.tiers == ["session"]
    want = oracle(release, "Z", pooled=stored, masked=stored)
    assert want != release.popular_items(K)[0].tolist()
    assert got.lists.item_ids[0].tolist() == want


@pytest.mark.parametrize("cache_entries", [1000, 0], ids=["cached", "uncached"])
def test_a_served_visitor_pools_its_stored_and_recent_items_not_what_it_excludes(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    no_torch: None,
    keys: dict[str, dict[str, str]],
    cache_entries: int,
) -> None:
    """A visitor with a stored event (c0i1) asking with ``recent=c0i2`` and ``exclude=c0i3``:
    the tower pools c0i1 then c0i2; c0i3 is only left out, so the list is the one asked
    without it, less that item (with the response cache the route reads the stored items,
    without it the coalescer's flush does)."""
    release = ModelBundle.load(tower_dir)
    user = "visitor-b"
    event = {"user_id": user, "item_id": "c0i1", "event_type": "view", "timestamp": time.time()}
    stored = ingest_events(store, [event], EventSettings(), source="test")
    assert stored.accepted == 1, stored.rejected
    want = oracle(release, "Z", pooled=["c0i1", "c0i2"], k=K + 1)
    assert want[:K] != oracle(release, "Z", pooled=["c0i1", "c0i2", "c0i3"])  # c0i3 pooled
    assert want[:K] != oracle(release, "Z", pooled=["c0i2"], masked=["c0i1"])  # c0i1 not
    with client(tower_dir, store, store_url, cache_entries=cache_entries) as served:
        for exclude in ({}, {"exclude": "c0i3"}):
            got = served.get(
                f"/v1/users/{user}/recommendations",
                params={"k": K, "recent": "c0i2", **exclude},
                headers=keys["read"],
            ).json()
            assert got["tier"] == "session", got
            listed = [i for i in want if not exclude or i != "c0i3"][:K]
            assert [i["item_id"] for i in got["items"]] == listed


def test_a_cached_list_is_not_served_after_an_excluded_item_is_stored(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    no_torch: None,
    keys: dict[str, dict[str, str]],
) -> None:
    """A visitor with stored c0i1 asks with ``recent=c0i2, exclude=c2i5`` (c2i5 masked, not
    pooled); c2i5 is then stored without the online state hearing of it (an import, another
    replica, an eviction): a plain request masks the same items but pools c2i5, so it is another
    list, not the cached one (rv27c finding 1)."""
    release = ModelBundle.load(tower_dir)
    user, now = "visitor-cache", time.time()

    def put(item: str, at: float) -> None:
        event = {"user_id": user, "item_id": item, "event_type": "view", "timestamp": at}
        assert ingest_events(store, [event], EventSettings(), source="test").accepted == 1

    put("c0i1", now - 100)
    first = oracle(release, "Z", pooled=["c0i1", "c0i2"], masked=["c2i5"])
    then = oracle(release, "Z", pooled=["c0i1", "c2i5", "c0i2"])
    assert first != then
    ask = {"k": K, "recent": "c0i2"}
    with client(tower_dir, store, store_url, cache_entries=1000) as served:
        url = f"/v1/users/{user}/recommendations"
        one = served.get(url, params={**ask, "exclude": "c2i5"}, headers=keys["read"]).json()
        assert one["tier"] == "session"
        assert [i["item_id"] for i in one["items"]] == first
        put("c2i5", now - 50)
        two = served.get(url, params=ask, headers=keys["read"]).json()
        assert [i["item_id"] for i in two["items"]] == then


def test_served_stored_items_are_pooled_latest_by_time_not_by_id(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    no_torch: None,
    keys: dict[str, dict[str, str]],
) -> None:
    """new-c's four stored events, c2i2, c2i1, c2i0 then c1i1: the tower pools the latest
    ``HISTORY`` (3) by time, c2i1, c2i0, c1i1, not the three highest ids the store's
    index order would give (c2i0, c2i1, c2i2)."""
    release = ModelBundle.load(tower_dir)
    met = ["c2i2", "c2i1", "c2i0", "c1i1"]
    now = time.time()
    events = [
        {"user_id": "new-c", "item_id": item, "event_type": "view", "timestamp": now - 60 + step}
        for step, item in enumerate(met)
    ]
    assert ingest_events(store, events, EventSettings(), source="test").accepted == len(met)
    rest = len(release.items) - len(met)
    want = oracle(release, "C", pooled=met[1:], masked=met, k=rest)
    assert want != oracle(release, "C", pooled=["c2i0", "c2i1", "c2i2"], masked=met, k=rest)
    with client(tower_dir, store, store_url) as served:
        put = served.put(
            "/v1/users/new-c", json={"properties": COLD["new-c"]}, headers=keys["ingest"]
        )
        assert put.is_success, put.text
        got = served.get(
            "/v1/users/new-c/recommendations", params={"k": rest}, headers=keys["read"]
        ).json()
    assert got["tier"] == "profile", got
    assert [i["item_id"] for i in got["items"]] == want


def test_a_cold_profile_is_encoded_once(tower_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``describes`` and the list read one encoding of the profiles (the tower's tokens were
    encoded twice a request): one ``FeatureTokens.encode`` call for a batch of two cold
    profiles, and the lists still the oracle's."""
    from recsmith.models.feature_tokens import FeatureTokens

    release = ModelBundle.load(tower_dir)
    calls: list[int] = []
    encode = FeatureTokens.encode

    def counted(self: FeatureTokens, records: Any, extra: Any = None) -> Any:
        calls.append(len(records))
        return encode(self, records, extra)

    monkeypatch.setattr(FeatureTokens, "encode", counted)
    users = np.array(list(COLD), object)
    got = release.answer(users, K, profiles=list(COLD.values()))
    assert calls == [2]
    assert got.tiers == ["profile", "profile"]
    for row, profile in zip(got.lists.item_ids, COLD.values(), strict=True):
        assert row.tolist() == oracle(release, profile["segment"])


def test_recommend_opens_the_store_once_for_all_slices(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    tmp_path: Path,
    no_torch: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five users answered two at a time (three slices): the profiles are read through one
    opening of the store, not one per slice, and every slice still gets its users' lists."""
    import recsmith.cli.recommend as command

    result = store_profiles(
        store, [{"user_id": u, "properties": p} for u, p in COLD.items()], source="test"
    )
    assert not result.rejected
    opened: list[str] = []
    open_store = command.open_store

    def counted(url: str, settings: Any) -> EventStore:
        opened.append(url)
        return open_store(url, settings)

    monkeypatch.setattr(command, "SLICE", 2)
    monkeypatch.setattr(command, "open_store", counted)
    users = tmp_path / "users.txt"
    users.write_text("nobody\nA0\nnew-c\nB3\nnew-a\n")
    out = tmp_path / "recs.csv"
    args = ["--model-dir", str(tower_dir), "--users", str(users), "--k", str(K), "--out", str(out)]
    ran = CliRunner().invoke(
        app, ["recommend", *args, "--no-log-decisions"], env={"RECSMITH_STORE__URL": store_url}
    )
    assert ran.exit_code == 0, ran.stderr
    assert len(opened) == 1
    recs = pd.read_csv(out, dtype=str).groupby("user_id", sort=False)
    release = ModelBundle.load(tower_dir)
    for user, profile in COLD.items():
        assert recs.get_group(user)["item_id"].tolist() == oracle(release, profile["segment"])
    assert recs.get_group("nobody")["item_id"].tolist() == release.popular_items(K)[0].tolist()


def test_every_read_of_a_tower_s_stored_items_is_by_time(
    tower_dir: Path,
    store: EventStore,
    store_url: str,
    no_torch: None,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tower reads a history's order, so each way the app reads a user's stored items (the
    route with the response cache, the coalescer's flush, a gathered burst) asks the store
    for them by time (``user_items(by_time=True)``); a release reading a set never does
    (``test_stored_items_order``). A known user's items stored after training, newest last:
    the list leaves them out."""
    assert ModelBundle.load(tower_dir).history_in_time_order is True
    now = time.time()
    met = ["c0i7", "c0i6", "c1i5"]
    events = [
        {"user_id": "A0", "item_id": item, "event_type": "view", "timestamp": now - 60 + step}
        for step, item in enumerate(met)
    ]
    assert ingest_events(store, events, EventSettings(), source="test").accepted == len(met)
    orders = note_orders(store, monkeypatch)
    users = ["A0", "B1", "A0"]
    bodies = served_lists(tower_dir, store, store_url, users, keys)
    assert orders and set(orders) == {True}, orders
    for lists in bodies.values():
        assert not {i["item_id"] for i in lists[0]["items"]} & set(met)


def test_rows_the_tower_leaves_to_popularity_do_not_shift_the_others_histories(
    tower_dir: Path,
) -> None:
    """A batch whose first cold user the tower cannot tell apart (a value it never learnt, no
    items: popularity), then one it answers from its profile alone, then one from its items
    alone: each answered row pools its own items, found once for the batch and renumbered
    among the rows the tower answers (``_profile_lists``)."""
    release = ModelBundle.load(tower_dir)
    users = np.array(["new-y", "new-a", "new-z"], object)
    unknown, met = {"segment": "Z"}, ["c1i0", "c1i1"]
    got = release.answer(
        users, K, profiles=[unknown, COLD["new-a"], unknown], history=[[], [], met]
    )
    assert got.tiers == ["popular", "profile", "profile"]
    assert got.lists.item_ids[0].tolist() == release.popular_items(K)[0].tolist()
    assert got.lists.item_ids[1].tolist() == oracle(release, "A")
    assert got.lists.item_ids[2].tolist() == oracle(release, "Z", pooled=met)
    assert oracle(release, "A", pooled=met) != oracle(release, "A")  # a shifted history shows
