"""User profiles over HTTP (``serving/routers/profiles.py``), on SQLite and PostgreSQL: PUT stores,
PATCH merges, bad input is a 422 naming the field, and a profile is personal data like events:
exported, erased, never stored again for an erased person."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recsmith.events.schema import User
from recsmith.store.base import EventStore

STORES = ("sqlite", "postgres")
Headers = dict[str, dict[str, str]]


def test_put_stores_and_patch_merges(client: TestClient, keys: Headers, store: EventStore) -> None:
    put = client.put(
        "/v1/users/p1", json={"properties": {"age": 34, "plan": "pro"}}, headers=keys["ingest"]
    )
    assert put.status_code == 200
    assert put.json() == {"user_id": "p1", "properties": {"age": 34, "plan": "pro"}}
    patch = client.patch(
        "/v1/users/p1",
        json={"properties": {"plan": None, "country": "fr"}},
        headers=keys["ingest"],
    )
    assert patch.json() == {"user_id": "p1", "properties": {"age": 34, "country": "fr"}}
    assert store.get_user("p1") == User(user_id="p1", properties={"age": 34, "country": "fr"})
    again = client.put("/v1/users/p1", json={"user_id": "p1"}, headers=keys["ingest"])
    assert again.json()["properties"] == {}  # PUT replaces the whole profile
    assert store.users() == [User(user_id="p1")]


def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, keys: Headers, store: EventStore
) -> None:
    def detail(method: str, body: object, user: str = "p2") -> list[dict[str, str]]:
        response = client.request(method, f"/v1/users/{user}", json=body, headers=keys["ingest"])
        assert response.status_code == 422, response.text
        return response.json()["detail"]

    [nested] = detail("PUT", {"properties": {"age": [30]}})
    assert nested["field"] == "properties.age" and "number" in nested["reason"]
    assert detail("PUT", {"user_id": "p3"})[0]["field"] == "user_id"
    assert detail("PUT", {"nickname": "x"})[0]["field"] == "nickname"
    assert detail("PUT", {"properties": {"score": 1}}, user="%20")[0]["field"] == "user_id"
    client.put("/v1/users/p2", json={"properties": {"age": 30}}, headers=keys["ingest"])
    assert detail("PATCH", {"user_id": "p9"})[0]["field"] == "user_id"
    assert detail("PATCH", {"properties": {"age": {"years": 30}}})[0]["field"] == "properties.age"
    assert store.get_user("p2") == User(user_id="p2", properties={"age": 30})  # unchanged
    missing = client.patch("/v1/users/nobody", json={}, headers=keys["ingest"])
    assert missing.status_code == 404 and "PUT creates one" in missing.json()["detail"]


def test_only_an_ingest_key_writes_and_a_405_lists_every_method(
    client: TestClient, keys: Headers
) -> None:
    body = {"properties": {"age": 1}}
    assert client.put("/v1/users/p4", json=body, headers=keys["read"]).status_code == 403
    assert client.put("/v1/users/p4", json=body).status_code == 401
    wrong = client.post("/v1/users/p4", json=body, headers=keys["ingest"])
    assert wrong.status_code == 405 and wrong.headers["allow"] == "DELETE, PATCH, PUT"


def test_a_profile_is_exported_erased_and_refused_after_erasure(
    client: TestClient, keys: Headers, store: EventStore
) -> None:
    body = {"properties": {"gender": "F", "age": 41}}
    client.put("/v1/users/p5", json=body, headers=keys["ingest"])
    exported = client.get("/v1/users/p5/export", headers=keys["admin"]).json()
    assert exported["profile"] == {"gender": "F", "age": 41}
    erased = client.delete("/v1/users/p5", headers=keys["admin"]).json()
    assert erased["removed"]["profile"] == 1 and store.get_user("p5") is None
    refused = client.put("/v1/users/p5", json=body, headers=keys["ingest"])
    assert refused.status_code == 409 and "erased" in refused.json()["detail"]
    assert store.get_user("p5") is None
