"""Live rules over HTTP: ``/v1/admin/rules`` sets, checks, versions and audits them, and every list
of the process follows them at once; the pipeline's own rules come back with ``DELETE``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rules_fixtures import category_of, rules_pipeline

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore

STORES = ("sqlite", "postgres")
K = 8


@pytest.fixture(scope="module")
def pipe(training_records: list[dict[str, Any]]) -> Pipeline:
    return rules_pipeline(training_records)


@pytest.fixture
def api(settings: Settings, pipe: Pipeline, store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipe, store=store)) as client:  # type: ignore[arg-type]
        yield client


def listed(api: TestClient, keys: dict[str, dict[str, str]], query: str = "") -> list[str]:
    response = api.get(f"/v1/users/u1/recommendations?k={K}{query}", headers=keys["read"])
    assert response.status_code == 200, response.text
    return [item["item_id"] for item in response.json()["items"]]


def put(api: TestClient, keys: dict[str, dict[str, str]], body: dict[str, Any]) -> Any:
    return api.put("/v1/admin/rules", json=body, headers=keys["admin"])


def test_a_rule_set_live_changes_lists_at_once_and_delete_restores_the_pipeline_rules(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    baseline = listed(api, keys)
    assert {category_of(i) for i in baseline} >= {"c0"}  # the rule below has something to do
    rules = {
        "rerank": {
            "rules": [{"type": "filter", "property": "category", "in": ["c0"], "negate": True}]
        }
    }
    response = put(api, keys, rules)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    without = listed(api, keys)
    assert without and not [i for i in without if category_of(i) == "c0"]
    # the rest keep their relative order (a filter only removes)
    assert [i for i in baseline if category_of(i) != "c0"] == without[
        : len([i for i in baseline if category_of(i) != "c0"])
    ]
    pinned = baseline[5]
    response = put(
        api, keys, {"rerank": {"rules": [{"type": "pin", "item": pinned, "position": 1}]}}
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    now = listed(api, keys)
    assert now[0] == pinned and now[1:] == [i for i in baseline if i != pinned][: K - 1]
    gone = api.delete("/v1/admin/rules", headers=keys["admin"])
    assert gone.status_code == 200 and gone.json()["version"] == 3 and gone.json()["rules"] == {}
    assert listed(api, keys) == baseline
    shown = api.get("/v1/admin/rules?version=2", headers=keys["admin"]).json()
    assert shown["version"] == 2 and shown["current_version"] == 3
    assert shown["rules"]["rerank"]["rules"] == [{"type": "pin", "item": pinned, "position": 1}]
    assert [h["version"] for h in shown["history"]] == [3, 2, 1]
    audit = api.get("/v1/admin/audit?action=rules.set", headers=keys["admin"]).json()
    assert [(a["detail"]["previous_version"], a["detail"]["version"]) for a in audit] == [
        (None, 1),
        (1, 2),
        (2, 3),
    ]
    assert {a["key_name"] for a in audit} == {"test-admin"}
