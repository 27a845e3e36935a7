"""The response cache: a repeated request is served from it with a fresh id, and anything the list
depends on (an ingested event, another option, another model version) is a different entry."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from recsmith.serving.response_cache import LocalCache, cache_key


def _hits(client: TestClient, keys: dict[str, dict[str, str]]) -> dict[str, float]:
    text = client.get("/metrics", headers=keys["admin"]).text
    out = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        for result in out:
            if line.startswith(f'recsmith_response_cache_total{{result="{result}"}}'):
                out[result] = float(line.split()[-1])
    return out


def test_a_repeated_request_is_a_hit_until_the_user_acts(
    client: TestClient, keys: dict[str, dict[str, str]], make_event: Any
) -> None:
    url = "/v1/users/u1/recommendations?k=5"
    first = client.get(url, headers=keys["read"]).json()
    again = client.get(url, headers=keys["read"]).json()
    assert _hits(client, keys) == {"hit": 1.0, "miss": 1.0}
    assert again["items"] == first["items"] and again["tier"] == first["tier"]
    assert again["recommendation_id"] != first["recommendation_id"]  # every impression its own id
    client.get(url.replace("k=5", "k=4"), headers=keys["read"])  # other options: other entry
    assert _hits(client, keys) == {"hit": 1.0, "miss": 2.0}

    top = first["items"][0]["item_id"]
    event = make_event(user_id="u1", item_id=top)
    assert client.post("/v1/events", json=[event], headers=keys["ingest"]).status_code == 200
    after = client.get(url, headers=keys["read"]).json()
    assert _hits(client, keys) == {"hit": 1.0, "miss": 3.0}  # the event changed the key
    assert top not in {i["item_id"] for i in after["items"]}


def test_the_key_covers_every_input() -> None:
    base = ("v1", "u1", 10, ["a"], ["a", "c"], ["b"], {"device": "mobile"}, ["shoes"], 0.3, False)
    key = cache_key(*base)
    assert key == cache_key(*base)
    # the stored items apart: ``a`` excluded and ``c`` stored masks the same items, another list
    others = ("v2", "u2", 9, ["a", "c"], ["a", "c", "d"], [], {"device": "app"}, [], None, True)
    for i, other in enumerate(others):
        changed = list(base)
        changed[i] = other
        assert cache_key(*changed) != key, f"input {i} is not in the key"


def test_local_cache_is_bounded_and_expires() -> None:
    now = [100.0]  # an injected clock: expiry is checked to the tick, without sleeping
    cache = LocalCache(max_entries=2, ttl_s=5.0, clock=lambda: now[0])
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recently used
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"
    now[0] = 105.0  # exactly ttl_s after the puts: still fresh
    assert cache.get("a") == b"1"
    now[0] = 105.001
    assert cache.get("a") is None and cache.get("c") is None
