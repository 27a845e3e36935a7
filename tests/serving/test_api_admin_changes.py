"""``POST /v1/admin/keys`` and ``POST /v1/admin/dead-letters/replay``: a created key works for its
scopes and no other, its secret is answered once and stored nowhere (only its SHA-256, computed
here with hashlib), bad scopes, names and expiries are field errors, and a replay after a config
fix stores what now passes, once; both are audited with the key that asked."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events

Headers = dict[str, dict[str, str]]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _admin_id(headers: Headers) -> str:
    return headers["admin"]["Authorization"].split("_")[1]  # rsk_<key_id>_<random>


def test_a_created_key_works_for_its_scopes_only_and_is_stored_as_a_hash(
    client: TestClient, keys: Headers, store: EventStore, db_path: Path
) -> None:
    made = client.post(
        "/v1/admin/keys",
        json={"name": "shop frontend", "scopes": ["read"], "expires": "90d"},
        headers=keys["admin"],
    )
    assert made.status_code == 201, made.text
    body = made.json()
    secret = body.pop("secret")
    assert secret.startswith(f"rsk_{body['key_id']}_")
    expires = datetime.fromisoformat(body["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    assert body["scopes"] == ["read"] and body["state"] == "active"
    assert client.get("/v1/popular", headers=_bearer(secret)).status_code == 200
    assert client.post("/v1/events", json=[], headers=_bearer(secret)).status_code == 403
    # only the hash: the stored key is found by SHA-256, and no table holds the secret
    found = store.find_api_key(hashlib.sha256(secret.encode()).hexdigest())
    assert found is not None and found.key_id == body["key_id"]
    with sqlite3.connect(db_path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                assert not any(isinstance(v, str) and secret in v for v in row), table
    listed = client.get("/v1/admin/keys", headers=keys["admin"]).text
    assert secret not in listed and body["key_id"] in listed
    [audit] = [r for r in store.scan_audit(action="key.create") if r.target == body["key_id"]]
    assert audit.key_id == _admin_id(keys)
    assert audit.detail["scopes"] == ["read"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["root"]}, "scopes.0"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "  ", "scopes": ["read"]}, "name"),
        ({"name": "a\x00b", "scopes": ["read"]}, "name"),
        ({"name": "x", "scopes": ["read"], "expires": "2001-01-01T00:00:00Z"}, "expires"),
        ({"name": "x", "scopes": ["read"], "expires": "soon"}, "expires"),
        ({"name": "x", "scopes": ["read"], "expires": "99999999999d"}, "expires"),
        ({"name": "x", "scopes": ["read"], "expires": "0d"}, "expires"),
        ({"name": "x", "scopes": ["read"], "expires": ""}, "expires"),
        ({"name": "x", "scopes": ["read"], "owner": "me"}, "owner"),
    ],
)
def test_bad_keys_are_field_errors(
    client: TestClient, keys: Headers, store: EventStore, body: dict[str, Any], field: str
) -> None:
    before = len(store.api_keys())
    refused = client.post("/v1/admin/keys", json=body, headers=keys["admin"])
    assert refused.status_code == 422, refused.text
    assert field in {e["field"] for e in refused.json()["detail"]}
    assert len(store.api_keys()) == before


def test_a_short_lived_key_expires(client: TestClient, keys: Headers) -> None:
    made = client.post(
        "/v1/admin/keys",
        json={"name": "brief", "scopes": ["read"], "expires": "1s"},
        headers=keys["admin"],
    ).json()
    assert client.get("/v1/popular", headers=_bearer(made["secret"])).status_code == 200
    time.sleep(1.1)
    assert client.get("/v1/popular", headers=_bearer(made["secret"])).status_code == 403


@pytest.fixture
def fixed_client(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> Iterator[TestClient]:
    """The server after the fix: ``wishlist`` is an event type now."""
    weights = {**settings.events.weights, "wishlist": 2.0}
    fixed = settings.model_copy(
        update={"events": settings.events.model_copy(update={"weights": weights})}
    )
    with TestClient(create_app(fixed, bundle=bundle, store=store)) as client:
        yield client


def test_replay_after_a_fix_stores_what_passes_once(
    fixed_client: TestClient, keys: Headers, store: EventStore, settings: Settings
) -> None:
    now = time.time()
    refused = ingest_events(
        store,
        [
            {"user_id": "u1", "item_id": "i1", "event_type": "wishlist", "timestamp": now},
            {"user_id": "u2", "item_id": "i2", "event_type": "wishlist", "timestamp": now},
            {"user_id": "u3", "event_type": "view", "timestamp": now},  # no item: stays refused
        ],
        settings.events,
        source="upload.csv",
    )
    assert len(refused.rejected) == 3
    events_before = store.count_events()
    url = "/v1/admin/dead-letters/replay"
    nothing = fixed_client.post(f"{url}?reason=no+such+reason", headers=keys["admin"]).json()
    assert nothing["examined"] == 0 and len(store.dead_letters()) == 3
    done = fixed_client.post(url, headers=keys["admin"]).json()
    assert done == {
        "examined": 3,
        "stored": 2,
        "duplicates": 0,
        "refused_again": 0,
        "not_kept_whole": 0,
        "still_refused": 1,
        "still_refused_by_reason": {"item_id: required": 1},
    }
    assert store.count_events() == events_before + 2
    assert [d.payload.get("user_id") for d in store.dead_letters()] == ["u3"]
    again = fixed_client.post(url, headers=keys["admin"]).json()
    assert (again["examined"], again["stored"]) == (1, 0)
    assert store.count_events() == events_before + 2
    audits = store.scan_audit(action="deadletters.replay")
    assert [a.target for a in audits] == ["reason=no such reason", "all", "all"]
    assert {a.key_id for a in audits} == {_admin_id(keys)}
    assert audits[1].detail["stored"] == 2
    bad = fixed_client.post(f"{url}?since=yesterday", headers=keys["admin"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "since"
