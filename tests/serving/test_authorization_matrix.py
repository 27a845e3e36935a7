"""Every route of the OpenAPI schema (and the docs pages) × {no key, each scope, a revoked key,
an expired key}: the status it should give, from the table below, written by hand from the API's
documentation, not read from the code's own dependencies.

A route added to the API without a row here fails ``test_the_table_covers_every_route``: deciding
who may call it is part of adding it. Rows of routes this build does not serve (added on another
branch) are skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.governance.keys import create_api_key
from recsmith.serving import create_app
from recsmith.store.base import EventStore

STORES = ("sqlite", "postgres")

#: Who may call what. ``public``: anyone (probes); ``exposed``: ``auth.expose_*`` (open on a
#: loopback host, any valid key elsewhere); otherwise the scope the key needs (admin implies
#: every scope).
REQUIRED: dict[tuple[str, str], str] = {
    ("POST", "/v1/events"): "ingest",
    ("POST", "/v1/items"): "ingest",
    ("PUT", "/v1/items/{item_id}"): "ingest",
    ("PATCH", "/v1/items/{item_id}"): "ingest",
    ("GET", "/v1/users/{user_id}/recommendations"): "read",
    ("GET", "/v1/items/{item_id}/similar"): "read",
    ("GET", "/v1/items/{item_id}/together"): "read",
    ("GET", "/v1/popular"): "read",
    ("GET", "/v1/trending"): "read",
    ("POST", "/v1/admin/reload"): "admin",
    ("GET", "/v1/admin/keys"): "admin",
    ("DELETE", "/v1/admin/keys/{key_id}"): "admin",
    ("GET", "/v1/admin/audit"): "admin",
    ("GET", "/v1/admin/dead-letters"): "admin",
    ("POST", "/v1/admin/keys"): "admin",
    ("POST", "/v1/admin/dead-letters/replay"): "admin",
    ("GET", "/v1/admin/decisions/{recommendation_id}"): "admin",
    ("GET", "/v1/admin/kpis"): "admin",
    # privacy and identity merge (README "Privacy", "Identity merge")
    ("DELETE", "/v1/users/{user_id}"): "admin",
    ("PUT", "/v1/users/{user_id}"): "ingest",
    ("PATCH", "/v1/users/{user_id}"): "ingest",
    ("GET", "/v1/users/{user_id}/export"): "admin",
    ("PUT", "/v1/users/{user_id}/consent"): "admin",
    ("POST", "/v1/users/{user_id}/aliases"): "ingest",
    ("DELETE", "/v1/users/{user_id}/aliases/{alias}"): "ingest",
    # releases and monitoring over HTTP: admin, as everything under /v1/admin
    ("GET", "/v1/admin/releases"): "admin",
    ("POST", "/v1/admin/releases/{version}/deploy"): "admin",
    ("POST", "/v1/admin/rollback"): "admin",
    ("GET", "/v1/admin/shadow"): "admin",
    ("PUT", "/v1/admin/shadow"): "admin",
    ("DELETE", "/v1/admin/shadow"): "admin",
    ("GET", "/v1/admin/experiments"): "admin",
    ("GET", "/v1/admin/experiments/{name}/report"): "admin",
    ("GET", "/v1/admin/monitor"): "admin",
    ("GET", "/v1/admin/overview"): "admin",
    ("GET", "/v1/admin/users/{user_id}/history"): "admin",
    ("GET", "/v1/admin/fairness"): "admin",
    # live business rules (README "Live rules"): changed by admins, sent per request by readers
    ("GET", "/v1/admin/rules"): "admin",
    ("PUT", "/v1/admin/rules"): "admin",
    ("DELETE", "/v1/admin/rules"): "admin",
    ("POST", "/v1/admin/rules/validate"): "admin",
    ("POST", "/v1/users/{user_id}/recommendations"): "read",
    ("GET", "/health/live"): "public",
    ("GET", "/health/ready"): "public",
    ("GET", "/metrics"): "exposed",
}
#: Not in the schema, but guarded like /metrics (``auth.expose_docs``).
DOCS = {("GET", "/openapi.json"): "exposed", ("GET", "/docs"): "exposed"}
#: Query parameters that ask more of the key than their route does (README "Explanations").
FINER = {("GET", "/v1/users/{user_id}/recommendations?explain=true"): "admin"}
#: Path parameters: ids that exist or not, as long as the request reaches the handler.
PATH_VALUES = {
    "item_id": "i1",
    "user_id": "u1",
    "key_id": "nosuchkey",  # never revoke a key of this test
    "recommendation_id": "0" * 32,
    "alias": "s-unknown",
    "version": "v-unknown",  # never deploy anything
    "name": "e-unknown",  # an experiment that does not exist
}
#: Bodies the handlers accept (or refuse as input, never as authorization).
BODIES = {"POST": [], "PUT": {}, "PATCH": {}}
WHO = ("none", "ingest", "read", "admin", "revoked", "expired")


def expected(required: str, who: str, local: bool) -> str:
    """``admitted`` (the handler answered: any status but 401, 403 and 5xx), ``401`` or
    ``403``."""
    if required == "public" or (required == "exposed" and local):
        return "admitted"
    if who == "none":
        return "401"
    if who in ("revoked", "expired"):
        return "403"
    if required == "exposed" or who in (required, "admin"):
        return "admitted"
    return "403"


def headers_by_who(store: EventStore) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"none": {}}
    for scope in ("ingest", "read", "admin"):
        out[scope] = {"Authorization": f"Bearer {create_api_key(store, scope, [scope])[1]}"}
    revoked, secret = create_api_key(store, "revoked", ["admin"])
    store.revoke_api_key(revoked.key_id, datetime.now(UTC))
    out["revoked"] = {"X-API-Key": secret}
    soon = datetime.now(UTC) + timedelta(milliseconds=300)
    out["expired"] = {"X-API-Key": create_api_key(store, "expired", ["admin"], expires_at=soon)[1]}
    while datetime.now(UTC) <= soon:
        pass
    return out


def outcome(status: int) -> str:
    assert status < 500, status
    return str(status) if status in (401, 403) else "admitted"


def test_the_table_covers_every_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert served_routes(schema) - set(REQUIRED) == set()


def served_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_every_route_for_every_caller(
    settings: Settings, bundle: ModelBundle, store: EventStore, host: str
) -> None:
    who_headers = headers_by_who(store)
    served = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"host": host})}
    )
    local = host == "127.0.0.1"
    got, want = {}, {}
    with TestClient(create_app(served, bundle=bundle, store=store)) as client:
        routes = served_routes(client.app.openapi())  # type: ignore[attr-defined]
        assert len(routes) >= 19  # this branch's own routes at least
        table = {r: need for r, need in REQUIRED.items() if r in routes} | DOCS | FINER
        for (method, path), required in table.items():
            url = path.format(**PATH_VALUES)
            for who in WHO:
                response = client.request(
                    method, url, headers=who_headers[who], json=BODIES.get(method)
                )
                got[(method, path, who)] = outcome(response.status_code)
                want[(method, path, who)] = expected(required, who, local)
    wrong = {case: (got[case], want[case]) for case in want if got[case] != want[case]}
    assert not wrong
