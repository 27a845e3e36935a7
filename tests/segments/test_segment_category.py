"""The category tier falls back by segment (issue #15), over HTTP against a real store: a cold
user with a profile who asks for a category gets their segments' popularity within it, worked out
by hand below; a segment that had nothing in the category, and a user without a profile, get the
category's global list.

Ten users with events, shrinkage m = 2, one property ``gender``; books b0 … b3, toys t0, t1:

    f1 (F): b0, b1    f2 (F): b1
    m1 (M): b2        m2 (M): b2        m3 (M): b3
    x1 (X): t0        x2 (X): t0, t1    (segment X had no book)
    n1: b2, b3        n2: b3            n3: b3              (no profile)
    f1, f2 and x1 also had each of 300 toys z0 … z299

so n = 10 and the books' counts c = [1, 2, 3, 4]. A segment's score, times n, is
(n · c_s + m · c) / (n_s + m):

    F (n_F = 2, c_F = [1, 2, 0, 0]):  [12, 24, 6, 8] / 4  = [3.0, 6.0, 1.5, 2.0]  ->  b1 b0 b3 b2
    M (n_M = 3, c_M = [0, 0, 2, 1]):  [2, 4, 26, 18] / 5  = [0.4, 0.8, 5.2, 3.6]  ->  b2 b3 b1 b0
    everyone (c):                                           [1, 2, 3, 4]          ->  b3 b2 b1 b0

The z toys (F: 26 / 4 = 6.5 each, above every book; M: 6 / 5 = 1.2, above b1 and b0) fill the
first ``HEAD_DEPTH`` (256) of a segment's whole-catalogue list: the books must be ranked among
the books, not cut from that list.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item, User
from recsmith.events.validate import validate_events
from recsmith.governance.keys import create_api_key
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

TOYS = [f"z{i}" for i in range(300)]
HISTORIES = {
    "f1": ["b0", "b1", *TOYS],
    "f2": ["b1", *TOYS],
    "m1": ["b2"],
    "m2": ["b2"],
    "m3": ["b3"],
    "x1": ["t0", *TOYS],
    "x2": ["t0", "t1"],
    "n1": ["b2", "b3"],
    "n2": ["b3"],
    "n3": ["b3"],
}
GENDER = {"f1": "F", "f2": "F", "m1": "M", "m2": "M", "m3": "M", "x1": "X", "x2": "X"}
#: cold users (no events) whose profile the release knows
COLD = {"new_f": "F", "new_m": "M", "new_x": "X"}
FEMALE = (["b1", "b0", "b3", "b2"], [6.0, 3.0, 2.0, 1.5])
MALE = (["b2", "b3", "b1", "b0"], [5.2, 3.6, 0.8, 0.4])
EVERYONE = (["b3", "b2", "b1", "b0"], [4.0, 3.0, 2.0, 1.0])


def serve(tmp_path_factory: pytest.TempPathFactory, rerank: dict) -> Iterator[TestClient]:
    """A client of the release trained on the module docstring's data, with ``rerank``."""
    records = [
        {
            "event_id": f"e{n}",
            "user_id": user,
            "item_id": item,
            "event_type": "view",
            "timestamp": 1.7e9 + n,
        }
        for n, (user, item) in enumerate(
            (user, item) for user, items in HISTORIES.items() for item in items
        )
    ]
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 10}]},
            "ranking": {"enabled": False},
            "segments": {"enabled": True, "shrinkage": 2.0},
            "rerank": rerank,
        }
    )
    items = [Item(item_id=f"b{i}", categories=["books"]) for i in range(4)]
    items += [Item(item_id=t, categories=["toys"]) for t in ["t0", "t1", *TOYS]]
    users = [User(user_id=u, properties={"gender": g}) for u, g in (GENDER | COLD).items()]
    pipeline = train_pipeline(
        config, frame, dict(EventSettings().weights), items=items, users=users
    )
    path = tmp_path_factory.mktemp("store") / "store.db"
    store = SQLiteStore(path)
    settings = Settings(store={"url": f"sqlite:///{path}"})
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as test_client:
        test_client.headers["Authorization"] = (
            f"Bearer {create_api_key(store, 'all', ['ingest', 'read'])[1]}"
        )
        yield test_client
    store.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    yield from serve(tmp_path_factory, {})


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One item per category (``max_per_category = 1``)."""
    yield from serve(tmp_path_factory, {"max_per_category": 1})


def books(client: TestClient, user: str) -> tuple[str, tuple[list[str], list[float]]]:
    """The tier and the list (ids, scores) ``user`` gets asking for books."""
    body = client.get(f"/v1/users/{user}/recommendations?k=4&category=books").json()
    items = body["items"]
    return body["tier"], ([i["item_id"] for i in items], [i["score"] for i in items])


def test_cold_users_of_two_segments_get_their_segments_books(client: TestClient) -> None:
    female, male = books(client, "new_f"), books(client, "new_m")
    assert female[0] == male[0] == "segment"
    assert female[1][0] == FEMALE[0] and male[1][0] == MALE[0]
    assert female[1][1] == pytest.approx(FEMALE[1]) and male[1][1] == pytest.approx(MALE[1])


def test_a_segment_without_books_and_a_user_without_profile_get_the_global_books(
    client: TestClient,
) -> None:
    for user in ("new_x", "nobody"):
        tier, (ids, scores) = books(client, user)
        assert (tier, ids) == ("category", EVERYONE[0])
        assert scores == pytest.approx(EVERYONE[1])
    # without a category filter segment X still answers (t0 first: (10 · 2 + 2 · 2) / 4 = 6):
    # only the books lack
    plain = client.get("/v1/users/new_x/recommendations?k=1").json()
    assert plain["tier"] == "segment"
    assert [i["item_id"] for i in plain["items"]] == ["t0"]


def test_a_profile_written_after_training_answers_a_category_request(client: TestClient) -> None:
    assert books(client, "late")[0] == "category"
    put = client.put("/v1/users/late", json={"properties": {"gender": "M"}})
    assert put.status_code == 200
    tier, (ids, _) = books(client, "late")
    assert (tier, ids) == ("segment", MALE[0])


def test_several_categories_under_a_per_category_cap_give_one_item_of_each(
    capped: TestClient,
) -> None:
    """``category=books,toys``, k = 4, one item per category: each category's head by the
    segment's scores, then merged (rv26b: one pool of both cut to their sum held only toys for
    F, so the cap left ['z0']). Toys t0, t1 (c = 2, 1) and each z (c = 3), by hand:

        F: z 26/4 = 6.5, t0 (2 · 2) / 4 = 1.0;   best book b1 6.0   ->  z0 (6.5), b1 (6.0)
        X (n_X = 2): t0 (10 · 2 + 2 · 2) / 4 = 6.0, z (10 + 6) / 4 = 4.0; books c / 2, best
           b3 2.0                                                     ->  t0 (6.0), b3 (2.0)
        M: b2 5.2, then z (2 · 3) / 5 = 1.2                           ->  b2 (5.2), z0 (1.2)
        nobody (category tier): b3 4, z0 3                            ->  b3 (4.0), z0 (3.0)
    """
    expected = {
        "new_f": ("segment", ["z0", "b1"], [6.5, 6.0]),
        "new_x": ("segment", ["t0", "b3"], [6.0, 2.0]),
        "new_m": ("segment", ["b2", "z0"], [5.2, 1.2]),
        "nobody": ("category", ["b3", "z0"], [4.0, 3.0]),
    }
    for user, (tier, ids, scores) in expected.items():
        for asked in ("books,toys", "toys,books"):
            body = capped.get(f"/v1/users/{user}/recommendations?k=4&category={asked}").json()
            items = body["items"]
            assert (body["tier"], [i["item_id"] for i in items]) == (tier, ids), (user, asked)
            assert [i["score"] for i in items] == pytest.approx(scores), (user, asked)
