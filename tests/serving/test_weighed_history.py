"""A single-model release scores a user it knows only by their stored items from the items they
liked, never from one they rated 0 or below, which stays seen (issue #15): the store's plain read
knows no weights, so such an item was scored as history. Through the HTTP app, on SQLite and
PostgreSQL; the oracle is the bundle's own item-scored list of the liked items alone, with every
stored item masked, computed apart from serving."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.serving.conftest import EventFactory

from recsmith.bundle import ModelBundle

STORES = ("sqlite", "postgres")
K = 8


def _from_items(bundle: ModelBundle, liked: list[str], seen: list[str]) -> list[str]:
    listed = bundle.recommend_for_items([liked], K, exclude=[seen])
    return [str(i) for i in listed.item_ids[0]]


def test_an_item_rated_below_zero_is_seen_but_no_history(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    make_event: EventFactory,
    bundle: ModelBundle,
) -> None:
    liked = "i0"
    # an item whose neighbours move the list: scored as history, it changes what is listed
    disliked = next(
        f"i{n}"
        for n in range(1, 50)
        if _from_items(bundle, [liked, f"i{n}"], [liked, f"i{n}"])
        != _from_items(bundle, [liked], [liked, f"i{n}"])
    )
    events = [
        make_event(user_id="newbie", item_id=liked, timestamp=make_event()["timestamp"] - 5),
        make_event(user_id="newbie", item_id=disliked, event_type="rating", value=-2.0),
    ]
    assert client.post("/v1/events", json=events, headers=keys["ingest"]).json()["accepted"] == 2
    body = client.get(f"/v1/users/newbie/recommendations?k={K}", headers=keys["read"]).json()
    assert body["tier"] == "session"  # scored from its items
    listed = [item["item_id"] for item in body["items"]]
    assert listed == _from_items(bundle, [liked], [liked, disliked])
    assert disliked not in listed
