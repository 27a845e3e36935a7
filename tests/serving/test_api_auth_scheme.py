"""A 401 says what is wrong with the Authorization header, not only that a key is required."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)


def _reason(client: TestClient, authorization: str | None) -> str:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/v1/popular", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    return str(response.json()["detail"])


def test_a_key_without_the_bearer_scheme_says_the_scheme_is_missing(
    client: TestClient, store: SQLiteStore
) -> None:
    _, secret = create_api_key(store, "reader", ["read"])
    reason = _reason(client, secret)
    assert "no scheme" in reason and "Bearer <key>" in reason
    assert "required" not in reason
    # the same key with the scheme gets in: the key was never the problem
    assert client.get("/v1/popular", headers={"Authorization": f"Bearer {secret}"}).is_success


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        (None, "an API key is required"),
        ("Basic dXNlcjpwYXNz", "scheme 'Basic' is not supported"),
        ("Bearer", "says Bearer but carries no key"),
        ("   ", "an API key is required"),
    ],
)
def test_each_slip_gets_its_own_reason(
    client: TestClient, authorization: str | None, says: str
) -> None:
    assert says in _reason(client, authorization)
