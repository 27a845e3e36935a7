"""A 405 names every method its path takes (``serving/allowed_methods.py``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("method", ["DELETE", "OPTIONS", "POST"])
def test_a_405_lists_every_method_of_the_path(
    client: TestClient, keys: dict[str, dict[str, str]], method: str
) -> None:
    response = client.request(method, "/v1/items/sku-1", headers=keys["ingest"])
    assert response.status_code == 405
    assert response.headers["allow"] == "PATCH, PUT"  # two routes, one path


def test_a_single_route_path_lists_its_own_method(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = client.get("/v1/items", headers=keys["ingest"])
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
