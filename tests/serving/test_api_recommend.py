"""Read routes against a real trained model: freshness of exclusions, fallbacks, errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

Headers = dict[str, dict[str, str]]


def _ids(response: Any) -> list[str]:
    return [entry["item_id"] for entry in response.json()["items"]]


def test_known_user_gets_k_unseen_items(
    client: TestClient, bundle: ModelBundle, keys: Headers
) -> None:
    response = client.get("/v1/users/u3/recommendations", params={"k": 5}, headers=keys["read"])
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "u3"
    assert body["fallback"] is None
    assert body["model_version"] == bundle.version
    assert len(body["recommendation_id"]) == 32
    int(body["recommendation_id"], 16)
    assert len(body["items"]) == 5
    scores = [entry["score"] for entry in body["items"]]
    assert scores == sorted(scores, reverse=True)
    trained = set(bundle.items.to_external(bundle.seen[[bundle.users.to_index(["u3"])[0]]].indices))
    assert not trained & set(_ids(response))


def test_default_k_is_10(client: TestClient, keys: Headers) -> None:
    assert len(_ids(client.get("/v1/users/u3/recommendations", headers=keys["read"]))) == 10


def test_ingested_event_takes_effect_on_the_next_request(
    client: TestClient, keys: Headers, make_event: Any
) -> None:
    url = "/v1/users/u5/recommendations"
    before = _ids(client.get(url, params={"k": 10}, headers=keys["read"]))
    top = before[0]
    ack = client.post(
        "/v1/events", json=[make_event(user_id="u5", item_id=top)], headers=keys["ingest"]
    )
    assert ack.json()["accepted"] == 1
    after = _ids(client.get(url, params={"k": 10}, headers=keys["read"]))
    assert top not in after
    assert len(after) == 10
    assert after[:9] == before[1:]  # the rest of the list moves up, unchanged


def test_unknown_user_gets_popular_fallback(
    client: TestClient, bundle: ModelBundle, keys: Headers
) -> None:
    response = client.get(
        "/v1/users/nobody-here/recommendations", params={"k": 7}, headers=keys["read"]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["fallback"] == "popular"
    assert len(body["items"]) == 7
    popular_ids, _ = bundle.popular_items(7)
    assert _ids(response) == list(popular_ids)


def test_unknown_user_with_fresh_events_skips_those_items(
    client: TestClient, bundle: ModelBundle, keys: Headers, make_event: Any
) -> None:
    most_popular = str(bundle.popular_items(1)[0][0])
    client.post(
        "/v1/events",
        json=[make_event(user_id="newbie", item_id=most_popular)],
        headers=keys["ingest"],
    )
    ids = _ids(
        client.get("/v1/users/newbie/recommendations", params={"k": 5}, headers=keys["read"])
    )
    assert most_popular not in ids and len(ids) == 5


@pytest.mark.parametrize(
    "url",
    [
        "/v1/users/org/42/recommendations",
        "/v1/users/org%2F42/recommendations",
        "/v1/items/a/b/similar",
        "/v1/items/a%2Fb/similar",
    ],
)
def test_an_id_with_a_slash_reaches_no_handler(client: TestClient, keys: Headers, url: str) -> None:
    """Ids are one path segment; ``/`` in one used to be served (the ``path`` convertor). An
    encoded one (``%2F``) is the id's 422, naming it, rather than a bare 404."""
    response = client.get(url, headers=keys["read"])
    expected = 422 if "%2F" in url else 404
    assert response.status_code == expected, response.text
    assert "unknown to model" not in response.text


@pytest.mark.parametrize("k", [0, -1, 1001, "ten"])
def test_k_out_of_range_is_422(client: TestClient, keys: Headers, k: object) -> None:
    for url in ("/v1/users/u1/recommendations", "/v1/items/i1/similar", "/v1/popular"):
        assert client.get(url, params={"k": k}, headers=keys["read"]).status_code == 422


@pytest.mark.parametrize(
    ("url", "field", "reason"),
    [
        ("/v1/users//recommendations", "user_id", "must not be empty"),
        ("/v1/users/%20/recommendations", "user_id", "must not be empty"),
        ("/v1/users/a%01b/recommendations", "user_id", "control characters"),
        (f"/v1/users/{'u' * 300}/recommendations", "user_id", "longer than 256"),
        ("/v1/items/%20/similar", "item_id", "must not be empty"),
        ("/v1/items/%20/together", "item_id", "must not be empty"),
    ],
)
def test_an_id_no_event_could_carry_is_422_naming_it(
    client: TestClient, keys: Headers, url: str, field: str, reason: str
) -> None:
    response = client.get(url, headers=keys["read"])
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == field and reason in error["reason"]


def test_k_may_exceed_the_catalog(client: TestClient, keys: Headers) -> None:
    response = client.get("/v1/users/u1/recommendations", params={"k": 1000}, headers=keys["read"])
    assert response.status_code == 200
    ids = _ids(response)
    assert 0 < len(ids) <= 50 and len(set(ids)) == len(ids)


def test_similar_items(client: TestClient, bundle: ModelBundle, keys: Headers) -> None:
    response = client.get("/v1/items/i0/similar", params={"k": 4}, headers=keys["read"])
    assert response.status_code == 200
    body = response.json()
    assert body["item_id"] == "i0" and body["model_version"] == bundle.version
    assert 0 < len(body["items"]) <= 4
    assert "i0" not in _ids(response)
    expected, _ = bundle.similar_items("i0", 4)
    assert _ids(response) == list(expected)


def test_similar_unknown_item_is_404(client: TestClient, keys: Headers) -> None:
    response = client.get("/v1/items/no-such-item/similar", headers=keys["read"])
    assert response.status_code == 404
    assert "no-such-item" in response.json()["detail"]


def test_popular(client: TestClient, bundle: ModelBundle, keys: Headers) -> None:
    response = client.get("/v1/popular", params={"k": 3}, headers=keys["read"])
    assert response.status_code == 200
    expected_ids, expected_scores = bundle.popular_items(3)
    assert _ids(response) == list(expected_ids)
    scores = [entry["score"] for entry in response.json()["items"]]
    assert np.allclose(scores, expected_scores)


def test_no_model_answers_503(store_url: str, store: SQLiteStore, keys: Headers) -> None:
    settings = Settings(store={"url": store_url})
    with TestClient(create_app(settings, store=store)) as client:
        for url in ("/v1/users/u1/recommendations", "/v1/items/i1/similar", "/v1/popular"):
            response = client.get(url, headers=keys["read"])
            assert response.status_code == 503
            assert "no model is loaded" in response.json()["detail"]
        # ingest still works without a model
        assert client.post("/v1/events", json=[], headers=keys["ingest"]).status_code == 200


@pytest.mark.parametrize(
    ("url", "unknown"),
    [
        ("/v1/users/u1/recommendations?k=5&categories=shoes", "categories"),
        ("/v1/users/u1/recommendations?diversty=0.3&exlude=i1", "diversty"),
        ("/v1/popular?k=3&limit=3", "limit"),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_named_not_ignored(
    client: TestClient, keys: Headers, url: str, unknown: str
) -> None:
    response = client.get(url, headers=keys["read"])
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors[0]["field"] == unknown and "unknown query parameter" in errors[0]["reason"]
    if "recommendations" in url:  # the reason lists what the route does take
        assert "category" in errors[0]["reason"] and "diversity" in errors[0]["reason"]
    path = url.split("?")[0]
    assert client.get(f"{path}?k=3", headers=keys["read"]).status_code == 200
    stray = client.post("/v1/events?dry_run=true", json=[], headers=keys["ingest"])
    assert stray.status_code == 422 and stray.json()["detail"][0]["field"] == "dry_run"
