"""Every 422 answers ``{"detail": [{"field", "reason"}]}``, whatever check refused the input."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

Headers = dict[str, dict[str, str]]


def _field_errors(response: Any) -> list[tuple[str, str]]:
    """The (field, reason) pairs of a 422, asserting nothing else is in an error."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    for error in detail:
        assert set(error) == {"field", "reason"}, error
    return [(e["field"], e["reason"]) for e in detail]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/users/u1/recommendations?k=0", "k"),
        ("/v1/users/u1/recommendations?k=abc", "k"),
        ("/v1/users/u1/recommendations?hour=24", "hour"),
        ("/v1/users/u1/recommendations?diversity=2", "diversity"),
        ("/v1/popular?k=100000", "k"),
        ("/v1/trending?k=-1", "k"),
        ("/v1/items/i1/similar?k=0", "k"),
        ("/v1/items/i1/together?k=0", "k"),
        ("/v1/popular?kk=3", "kk"),
    ],
)
def test_query_errors_name_the_parameter(
    client: TestClient, keys: Headers, path: str, field: str
) -> None:
    [(named, reason)] = _field_errors(client.get(path, headers=keys["read"]))
    assert named == field and reason


def test_a_range_error_says_the_bound(client: TestClient, keys: Headers) -> None:
    [(_, reason)] = _field_errors(client.get("/v1/popular?k=0", headers=keys["read"]))
    assert "1" in reason and "greater" in reason


def test_a_too_long_id_list_names_its_parameter(client: TestClient, keys: Headers) -> None:
    ids = ",".join(f"i{n}" for n in range(501))
    path = f"/v1/users/u1/recommendations?exclude={ids}"
    assert _field_errors(client.get(path, headers=keys["read"])) == [("exclude", "at most 500 ids")]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/events", b"{}"),
        ("POST", "/v1/events", b"not json"),
        ("POST", "/v1/items", b"{}"),
        ("PUT", "/v1/items/i1", b"[]"),
        ("PATCH", "/v1/items/i1", b"[]"),
    ],
)
def test_body_errors_have_the_same_shape(
    client: TestClient, keys: Headers, method: str, path: str, body: bytes
) -> None:
    headers = {**keys["admin"], "Content-Type": "application/json"}
    response = client.request(method, path, content=body, headers=headers)
    assert _field_errors(response)


def test_a_patch_changing_the_id_names_item_id(client: TestClient, keys: Headers) -> None:
    client.put("/v1/items/i1", json={"title": "x"}, headers=keys["admin"])
    response = client.patch(
        "/v1/items/i1",
        json={"item_id": "other"},
        headers={**keys["admin"], "Content-Type": "application/merge-patch+json"},
    )
    assert _field_errors(response) == [("item_id", "cannot be changed by a patch")]


def test_the_openapi_schema_documents_the_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    declared = [
        op["responses"]["422"]["content"]["application/json"]["schema"]
        for path in spec["paths"].values()
        for op in path.values()
        if "422" in op["responses"]
    ]
    assert len(declared) >= 8
    assert all(s == {"$ref": "#/components/schemas/InputErrorResponse"} for s in declared)
    detail = schemas["InputErrorResponse"]["properties"]["detail"]
    assert detail["items"] == {"$ref": "#/components/schemas/FieldErrorOut"}
    assert set(schemas["FieldErrorOut"]["properties"]) == {"field", "reason"}


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/admin/kpis?since=banana", "since", "banana"),
        ("/v1/admin/kpis?until=2026-13-01", "until", "2026-13-01"),
        ("/v1/admin/audit?since=7 days", "since", "7 days"),
    ],
)
def test_a_bad_time_says_what_is_accepted_not_the_pattern(
    client: TestClient, keys: Headers, path: str, field: str, value: str
) -> None:
    response = client.get(path, headers=keys["admin"])
    assert _field_errors(response) == [
        (field, f"{value!r} is not a span such as 7d, 12h, or an ISO date")
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_diversity_that_is_no_number_says_so(
    client: TestClient, keys: Headers, value: str
) -> None:
    """``?diversity=nan`` was "less than or equal to 1", a bound NaN does not break."""
    path = f"/v1/users/u1/recommendations?diversity={value}"
    assert _field_errors(client.get(path, headers=keys["read"])) == [
        ("diversity", "Input should be a finite number")
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"name": "k", "scopes": ["read"], "expires": "-1d"},
            ("expires", "'-1d' is not a span from now: 1 to 99999 of s, m, h, d or w, e.g. 90d"),
        ),
        (
            {"name": "k", "scopes": ["read"], "expires": "2027-01-01"},
            (
                "expires",
                "'2027-01-01' is not a span from now: 1 to 99999 of s, m, h, d or w, e.g. 90d",
            ),
        ),
        (
            {"name": "tab\there", "scopes": ["read"]},
            ("name", "'tab\\there' is not text without control characters"),
        ),
        (
            {"name": "caf\x85e", "scopes": ["read"]},  # C1 (NEL): the CLI refuses it alike
            ("name", "'caf\\x85e' is not text without control characters"),
        ),
    ],
)
def test_a_key_body_says_what_is_accepted_not_the_pattern(
    client: TestClient, keys: Headers, body: dict[str, Any], error: tuple[str, str]
) -> None:
    """A key's ``expires`` or ``name`` that fails its pattern says what it must be (was the
    regular expression: ``String should match pattern '^[1-9]\\d{0,4}[smhdw]$'``)."""
    got = client.post("/v1/admin/keys", json=body, headers=keys["admin"])
    assert _field_errors(got) == [error]


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/v1/users/a%2Fb/recommendations", "user_id"),
        ("GET", "/v1/items/x%2fy/similar", "item_id"),
        ("PUT", "/v1/users/a%2Fb", "user_id"),
        ("DELETE", "/v1/users/u1/aliases/s%2F1", "alias"),
    ],
)
def test_an_encoded_slash_in_an_id_is_that_ids_422(
    client: TestClient, keys: Headers, method: str, path: str, field: str
) -> None:
    """The id, URL-encoded as it should be, split the decoded path: a bare 404 "Not Found"."""
    response = client.request(method, path, headers=keys["admin"], json={"properties": {}})
    reason = "contains '/' (an id is one URL path segment)"
    assert _field_errors(response) == [(field, reason)]


def test_a_path_matching_no_route_is_still_404(client: TestClient, keys: Headers) -> None:
    response = client.get("/v1/nothing/here", headers=keys["read"])
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})


@pytest.mark.parametrize("until", ["2026-12-01", "2026-12-05"])
def test_a_kpi_window_ending_before_it_starts_names_until(
    client: TestClient, keys: Headers, until: str
) -> None:
    """It answered 200 with no groups, as if nothing had been served, and without ``until``."""
    path = f"/v1/admin/kpis?since=2026-12-05&until={until}"
    assert _field_errors(client.get(path, headers=keys["admin"])) == [
        ("until", "must be after since")
    ]
    body = client.get("/v1/admin/kpis?since=2026-12-01&until=2026-12-05", headers=keys["admin"])
    assert body.status_code == 200
    assert (body.json()["since"], body.json()["until"]) == (
        "2026-12-01T00:00:00+00:00",
        "2026-12-05T00:00:00+00:00",
    )
