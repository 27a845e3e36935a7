"""Key management over HTTP: list, revoke (refused by another app on the same store within a
second), expiry (refused from the moment it passes), and the audit records these leave."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.governance.keys import create_api_key, revoke_api_key
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.open import open_store

STORES = ("sqlite", "postgres")

#: What the issue promises: a revoked key is refused everywhere within this long.
PROMISE_S = 1.0


@contextmanager
def other_replica(settings: Settings, bundle: ModelBundle) -> Iterator[TestClient]:
    """A second app with a store connection of its own on the same store (another replica)."""
    store = open_store(settings.store.url)
    try:
        with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
            yield client
    finally:
        store.close()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def seconds_until_refused(client: TestClient, headers: dict[str, str], since: float) -> float:
    """Poll ``/v1/popular`` until it is refused (403); seconds from ``since`` to that answer."""
    while time.monotonic() - since < 5 * PROMISE_S:
        status = client.get("/v1/popular", headers=headers).status_code
        if status == 403:
            return time.monotonic() - since
        assert status == 200, status
        time.sleep(0.02)
    raise AssertionError("still admitted 5 s after revocation")


def test_a_key_revoked_over_http_is_refused_by_another_replica_within_a_second(
    client: TestClient,
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    victim, secret = create_api_key(store, "leaked", ["read"])
    with other_replica(settings, bundle) as replica:
        for app in (client, replica):  # both have looked the key up and cached it
            assert app.get("/v1/popular", headers=bearer(secret)).status_code == 200
        started = time.monotonic()
        revoked = client.delete(f"/v1/admin/keys/{victim.key_id}", headers=keys["admin"])
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["state"] == "revoked"
        # the process that revoked it forgets it at once; the other within the promise
        assert client.get("/v1/popular", headers=bearer(secret)).status_code == 403
        assert seconds_until_refused(replica, bearer(secret), started) <= PROMISE_S
        detail = replica.get("/v1/popular", headers=bearer(secret)).json()["detail"]
        assert detail == f"API key {victim.key_id} is revoked"


def test_a_key_revoked_by_the_cli_path_is_refused_by_two_apps_within_a_second(
    client: TestClient, settings: Settings, bundle: ModelBundle, store: EventStore
) -> None:
    victim, secret = create_api_key(store, "leaked", ["read", "ingest"])
    with other_replica(settings, bundle) as replica:
        for app in (client, replica):
            assert app.get("/v1/popular", headers=bearer(secret)).status_code == 200
        started = time.monotonic()
        revoke_api_key(store, victim.key_id)  # what `recsmith keys revoke` calls
        for app in (client, replica):
            assert seconds_until_refused(app, bearer(secret), started) <= PROMISE_S


def test_an_expired_key_is_refused_from_the_moment_it_expires(
    client: TestClient, store: EventStore
) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=0.6)
    key, secret = create_api_key(store, "temp", ["read"], expires_at=expires)
    assert client.get("/v1/popular", headers=bearer(secret)).status_code == 200  # now cached
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.01)
    refused = client.get("/v1/popular", headers=bearer(secret))
    assert refused.status_code == 403
    assert refused.json()["detail"] == f"API key {key.key_id} expired at {expires.isoformat()}"


def test_keys_are_listed_without_secrets_and_revocations_are_audited(
    client: TestClient, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    expires = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    made, secret = create_api_key(store, "shop", ["ingest"], expires_at=expires)
    admin_id = next(k.key_id for k in store.api_keys() if k.name == "test-admin")
    assert client.delete(f"/v1/admin/keys/{made.key_id}", headers=keys["admin"]).status_code == 200
    again = client.delete(f"/v1/admin/keys/{made.key_id}", headers=keys["admin"])
    assert again.status_code == 200  # idempotent: the first revocation time stays
    missing = client.delete("/v1/admin/keys/nosuchkey", headers=keys["admin"])
    assert missing.status_code == 404 and "nosuchkey" in missing.json()["detail"]

    listed = client.get("/v1/admin/keys", headers=keys["admin"])
    assert listed.status_code == 200
    # rsk_<key_id>_<random>: the random part may itself hold "_" (token_urlsafe), so it is what
    # follows the key id, never the text after the last "_" (empty when the secret ends in one)
    random_part = secret.removeprefix(f"rsk_{made.key_id}_")
    assert len(random_part) == 32
    assert secret not in listed.text and random_part not in listed.text
    by_name = {k["name"]: k for k in listed.json()}
    assert set(by_name) == {"test-ingest", "test-read", "test-admin", "shop"}
    shop = by_name["shop"]
    assert (shop["scopes"], shop["state"], shop["expires_at"]) == (
        ["ingest"],
        "revoked",
        "2031-01-02T03:04:05+00:00",
    )
    assert shop["revoked_at"] == again.json()["revoked_at"]
    assert by_name["test-read"]["state"] == "active"

    trail = client.get("/v1/admin/audit?action=key.revoke", headers=keys["admin"]).json()
    assert [(r["target"], r["outcome"], r["key_id"], r["key_name"]) for r in trail] == [
        (made.key_id, "ok", admin_id, "test-admin"),
        (made.key_id, "ok", admin_id, "test-admin"),
        ("nosuchkey", "unknown key", admin_id, "test-admin"),
    ]
    creations = client.get("/v1/admin/audit?action=key.create", headers=keys["admin"]).json()
    assert [r["target"] for r in creations][-1] == made.key_id


@pytest.mark.parametrize("url", ["/v1/admin/keys", "/v1/admin/audit"])
def test_key_and_audit_routes_are_admin_only(
    client: TestClient, keys: dict[str, dict[str, str]], url: str
) -> None:
    assert client.get(url).status_code == 401
    for scope in ("read", "ingest"):
        assert client.get(url, headers=keys[scope]).status_code == 403
    assert client.get(url, headers=keys["admin"]).status_code == 200


def test_audit_since_is_checked(client: TestClient, keys: dict[str, dict[str, str]]) -> None:
    bad = client.get("/v1/admin/audit?since=yesterday", headers=keys["admin"])
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["field"] == "since"
    future = client.get("/v1/admin/audit?since=2999-01-01", headers=keys["admin"])
    assert future.status_code == 200 and future.json() == []


def test_an_unknown_audit_action_is_refused_listing_the_known(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    unknown = client.get("/v1/admin/audit?action=nosuch", headers=keys["admin"])
    assert unknown.status_code == 422
    (error,) = unknown.json()["detail"]
    assert error["field"] == "action"
    for known in ("deploy", "key", "key.create", "key.revoke", "rollback", "erase"):
        assert f" {known}," in error["reason"] or error["reason"].endswith(f" {known}")
    group = client.get("/v1/admin/audit?action=key", headers=keys["admin"])
    assert group.status_code == 200


def test_a_reload_is_audited_with_its_outcome(
    client: TestClient, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    refused = client.post("/v1/admin/reload", headers=keys["admin"])
    assert refused.status_code == 409
    admin = next(k for k in store.api_keys() if k.name == "test-admin")
    (record,) = store.scan_audit(action="reload")
    assert (record.key_id, record.key_name, record.outcome) == (
        admin.key_id,
        "test-admin",
        "serving.registry is not configured",
    )


def test_a_key_cannot_revoke_itself_over_http(
    client: TestClient, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    admin = next(k for k in store.api_keys() if k.name == "test-admin")
    refused = client.delete(f"/v1/admin/keys/{admin.key_id}", headers=keys["admin"])
    assert refused.status_code == 409 and "recsmith keys revoke" in refused.json()["detail"]
    assert client.get("/v1/admin/keys", headers=keys["admin"]).status_code == 200  # still valid
