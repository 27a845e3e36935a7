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


JSON = {"Content-Type": "application/json"}


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


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (
            {
                "rerank": {
                    "rules": [
                        {"type": "boost", "property": "category", "equals": "c1", "factor": 0.5}
                    ]
                }
            },
            "rerank.rules[0].factor",
            "greater than 1",
        ),
        (
            {
                "rerank": {
                    "rules": [
                        {"type": "exclude", "items": []},
                        {"type": "pin", "item": "nowhere", "position": 1},
                    ]
                }
            },
            "rerank.rules[1].item",
            "no events",
        ),
        (
            {
                "placements": {
                    "home": {
                        "rerank": {
                            "rules": [{"type": "filter", "property": "category", "in": ["C0"]}]
                        }
                    }
                }
            },
            "placements.home.rerank.rules[0]",
            "no available item",
        ),
        (
            {
                "rerank": {
                    "rules": [
                        {"type": "pin", "item": "i1", "position": 1, "end": "2026-12-07T00:00:00"}
                    ]
                }
            },
            "rerank.rules[0].end",
            "timezone",
        ),
        # worded as a pipeline file words an unknown key (validation_reasons)
        (
            {"rerank": {"rules": [], "diversity": 0.3}},
            "rerank.diversity",
            "unknown key (valid: rules)",
        ),
        (
            {"rerank": {"rules": [{"type": "filter", "property": "category", "inn": ["C0"]}]}},
            "rerank.rules[0].inn",
            "unknown key (did you mean in?)",
        ),
        ({"placements": {"a b": {"rerank": {"rules": []}}}}, "placements", "letters, digits"),
    ],
)
def test_a_refused_rule_file_is_a_422_naming_the_rule_and_field_and_stores_nothing(
    api: TestClient, keys: dict[str, dict[str, str]], body: dict[str, Any], field: str, reason: str
) -> None:
    for route in ("/v1/admin/rules", "/v1/admin/rules/validate"):
        method = api.put if route.endswith("rules") else api.post
        response = method(route, json=body, headers=keys["admin"])
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["field"] == field and reason in error["reason"], error
    assert api.get("/v1/admin/rules", headers=keys["admin"]).json()["version"] == 0


def test_validate_answers_the_file_as_it_would_be_stored_without_storing_it(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = {"rerank": {"rules": [{"type": "exclude", "items": ["i1"]}]}}
    response = api.post("/v1/admin/rules/validate", json=body, headers=keys["admin"])
    assert response.status_code == 200
    assert response.json() == {"valid": True, "rules": body, "warnings": []}
    assert api.get("/v1/admin/rules", headers=keys["admin"]).json()["version"] == 0
    for scope in ("read", "ingest"):
        assert put(api, {"admin": keys[scope]}, body).status_code == 403


def test_placement_rules_replace_the_default_where_that_placement_is_asked_for(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    baseline = listed(api, keys)
    c1 = [i for i in baseline if category_of(i) == "c1"]
    assert c1
    exclude_c1 = [{"type": "filter", "property": "category", "equals": "c1", "negate": True}]
    assert put(api, keys, {"placements": {"home": {"rerank": {"rules": exclude_c1}}}}).is_success
    assert not [i for i in listed(api, keys, "&placement=home") if category_of(i) == "c1"]
    assert listed(api, keys) == baseline  # the default placement keeps the pipeline's rules
    assert listed(api, keys, "&placement=email") == baseline


def test_request_rules_apply_on_top_of_the_live_rules_for_that_request_only(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    baseline = listed(api, keys)
    exclude_c0 = [{"type": "filter", "property": "category", "in": ["c0"], "negate": True}]
    assert put(api, keys, {"rerank": {"rules": exclude_c0}}).is_success
    live = listed(api, keys)
    pinned = live[4]
    body = {
        "rules": [
            {"type": "exclude", "items": [live[0]]},
            {"type": "pin", "item": pinned, "position": 1},
        ]
    }
    url = f"/v1/users/u1/recommendations?k={K}"
    response = api.post(url, json=body, headers=keys["read"])
    assert response.status_code == 200, response.text
    got = [item["item_id"] for item in response.json()["items"]]
    assert got[0] == pinned and live[0] not in got
    assert not [i for i in got if category_of(i) == "c0"]  # the live rules still hold
    expected = [pinned, *[i for i in live if i not in (live[0], pinned)]][:K]
    assert got[: len(expected)] == expected
    assert listed(api, keys) == live != baseline  # nothing stays behind for the next request
    # the same query options as GET
    placed = api.post(f"{url}&placement=home&exclude={live[1]}", json={}, headers=keys["read"])
    assert placed.status_code == 200 and live[1] not in {
        i["item_id"] for i in placed.json()["items"]
    }


@pytest.mark.parametrize(
    ("rules", "field", "reason"),
    [
        (
            [{"type": "exclude", "items": []}, {"type": "pin", "item": "i1", "position": 0}],
            "rules[1].position",
            "greater than or equal to 1",
        ),
        ([{"type": "pin", "item": "unknown-item", "position": 2}], "rules[0].item", "no events"),
        ([{"type": "filter", "property": "category", "in": ["nope"]}], "rules[0]", "no available"),
        (
            [{"type": "teleport"}],
            "rules[0].type",
            "'teleport' is not one of filter, exclude, blocklist, boost, bury, pin, "
            "cap_per_category",
        ),
        (
            [
                {
                    "type": "boost",
                    "property": "category",
                    "equals": "c1",
                    "factor": 2,
                    "start": "2026-12-05T00:00:00Z",
                    "end": "2026-12-04T00:00:00Z",
                }
            ],
            "rules[0].end",
            "not after start",
        ),
        (
            [{"type": "boost", "property": "category", "equals": "c1", "factor": 2, "factr": 3}],
            "rules[0].factr",
            "unknown key (did you mean factor?)",
        ),
    ],
)
def test_a_bad_request_rule_is_a_422_naming_rules_i_field(
    api: TestClient, keys: dict[str, dict[str, str]], rules: Any, field: str, reason: str
) -> None:
    response = api.post("/v1/users/u1/recommendations", json={"rules": rules}, headers=keys["read"])
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == field and reason in error["reason"], error


def test_a_body_key_other_than_rules_is_a_422_naming_it(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = api.post("/v1/users/u1/recommendations", json={"rulez": []}, headers=keys["read"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "rulez"


def test_a_single_model_answers_409_to_rules_it_cannot_apply(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = {"rerank": {"rules": [{"type": "exclude", "items": ["i1"]}]}}
    assert put(client, keys, body).status_code == 409
    response = client.post(
        "/v1/users/u1/recommendations",
        json={"rules": body["rerank"]["rules"]},
        headers=keys["read"],
    )
    assert response.status_code == 409 and "pipeline" in response.json()["detail"]
    plain = client.post("/v1/users/u1/recommendations", json={}, headers=keys["read"])
    assert plain.status_code == 200


TOML_FILE = """
[[rerank.rules]]
type = "boost"
property = "category"
equals = "C1"   # the catalogue says c1: a typo, warned about
factor = 2.0

[[placements.home.rerank.rules]]
type = "filter"
property = "category"
in = ["c0", "c9"]
negate = true
"""
TOML_AS_JSON = {
    "rerank": {"rules": [{"type": "boost", "property": "category", "equals": "C1", "factor": 2.0}]},
    "placements": {
        "home": {
            "rerank": {
                "rules": [
                    {"type": "filter", "property": "category", "in": ["c0", "c9"], "negate": True}
                ]
            }
        }
    },
}


def test_a_toml_body_is_the_same_file_as_its_json_and_matching_nothing_is_a_warning(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    toml = {**keys["admin"], "Content-Type": "application/toml"}
    checked = api.post("/v1/admin/rules/validate", content=TOML_FILE, headers=toml)
    assert checked.status_code == 200, checked.text
    as_json = api.post("/v1/admin/rules/validate", json=TOML_AS_JSON, headers=keys["admin"])
    assert checked.json() == as_json.json()
    rules = checked.json()["rules"]
    assert rules["rerank"]["rules"][0]["equals"] == "C1"
    assert rules["placements"]["home"]["rerank"]["rules"][0]["in"] == ["c0", "c9"]
    warned = [(w["field"], w["message"]) for w in checked.json()["warnings"]]
    assert [field for field, _ in warned] == [
        "rerank.rules[0].equals",
        "placements.home.rerank.rules[0].in[1]",
    ]
    assert "matches no item" in warned[0][1] and "'c9'" in warned[1][1]
    stored = api.put("/v1/admin/rules", content=TOML_FILE.encode(), headers=toml)
    assert stored.status_code == 200 and stored.json()["version"] == 1
    assert stored.json()["rules"] == rules
    assert stored.json()["warnings"] == checked.json()["warnings"]
    # the JSON of the same file: the same warnings
    again = api.put("/v1/admin/rules", json=TOML_AS_JSON, headers=keys["admin"])
    assert again.json()["version"] == 2 and again.json()["warnings"] == stored.json()["warnings"]
    # a live rule is applied: the home placement leaves out c0 (the typo'd boost does nothing)
    assert not [i for i in listed(api, keys, "&placement=home") if category_of(i) == "c0"]


@pytest.mark.parametrize(
    ("content", "media", "status", "needle"),
    [
        ("[[rerank.rules]\ntype = 1", "application/toml", 422, "not valid TOML"),
        ("rerank = 3", "application/toml", 422, "rerank"),
        ("[1, 2]", "application/json", 422, "a rule file is a table"),
        ("{", "application/json", 422, "not valid JSON"),
        ("[[rerank.rules]]", "text/plain", 415, "application/toml"),
    ],
)
def test_a_rule_body_that_does_not_parse_is_refused_naming_why(
    api: TestClient,
    keys: dict[str, dict[str, str]],
    content: str,
    media: str,
    status: int,
    needle: str,
) -> None:
    headers = {**keys["admin"], "Content-Type": media}
    for method in ("PUT", "POST"):
        path = "/v1/admin/rules" if method == "PUT" else "/v1/admin/rules/validate"
        response = api.request(method, path, content=content, headers=headers)
        assert response.status_code == status, response.text
        assert needle in response.text
    assert api.get("/v1/admin/rules", headers=keys["admin"]).json()["version"] == 0


def test_a_request_rule_without_its_type_names_the_field_and_the_types(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    body = {"rules": [{"type": "exclude", "items": []}, {"pin": "i00999", "at": 1}]}
    response = api.post("/v1/users/u1/recommendations", json=body, headers=keys["read"])
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [
            {
                "field": "rules[1].type",
                "reason": "required, one of filter, exclude, blocklist, boost, bury, pin, "
                "cap_per_category",
            }
        ]
    }


@pytest.mark.parametrize(
    ("media", "content", "advice"),
    [
        ("application/json", "", ["send {}", "DELETE /v1/admin/rules"]),
        ("application/json", " \n", ["send {}", "DELETE /v1/admin/rules"]),
        ("application/toml", "", ["{} as application/json", "DELETE /v1/admin/rules"]),
        ("application/toml", " \n", ["{} as application/json", "DELETE /v1/admin/rules"]),
        ("application/toml", "# no rules yet\n\n", ["{} as application/json", "DELETE"]),
    ],
    ids=["json", "json-blank", "toml", "toml-blank", "toml-comments"],
)
def test_an_empty_body_is_refused_and_the_live_rules_stay(
    api: TestClient, keys: dict[str, dict[str, str]], media: str, content: str, advice: list[str]
) -> None:
    """An empty body is a client that sent nothing (a file it failed to read), not a request to
    drop every live rule: a 422 naming ``body`` and the ways to mean that which the client's
    format can say ({} is not TOML: a TOML client is sent to DELETE or to JSON); a TOML file of
    comments only is as empty. The rules set before stay."""
    rules = {"rerank": {"rules": [{"type": "exclude", "items": ["i1"]}]}}
    assert put(api, keys, rules).status_code == 200
    headers = {**keys["admin"], "Content-Type": media}
    for method in ("PUT", "POST"):
        path = "/v1/admin/rules" if method == "PUT" else "/v1/admin/rules/validate"
        response = api.request(method, path, content=content, headers=headers)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["field"] == "body" and "empty" in error["reason"], error
        assert all(words in error["reason"] for words in advice), error
    live = api.get("/v1/admin/rules", headers=keys["admin"]).json()
    assert (live["version"], live["rules"]) == (1, rules)


def test_the_empty_bodys_advice_works_for_a_toml_client(
    api: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """What the 422 tells a TOML client to do does go back to the pipeline's rules, and what it
    was told before (``{}`` sent as TOML) does not: that is a TOML syntax error."""
    put(api, keys, {"rerank": {"rules": [{"type": "exclude", "items": ["i1"]}]}})
    toml = {**keys["admin"], "Content-Type": "application/toml"}
    assert "not valid TOML" in api.put("/v1/admin/rules", content="{}", headers=toml).text
    as_json = api.put("/v1/admin/rules", content="{}", headers={**keys["admin"], **JSON})
    assert (as_json.status_code, as_json.json()["rules"]) == (200, {}), as_json.text
    put(api, keys, {"rerank": {"rules": [{"type": "exclude", "items": ["i1"]}]}})
    deleted = api.delete("/v1/admin/rules", headers=keys["admin"])
    assert deleted.status_code == 200, deleted.text
    assert api.get("/v1/admin/rules", headers=keys["admin"]).json()["rules"] == {}
