"""Two clients of apps alike, one served a shorter way (the fast lane's index, ``ServedApp``'s
direct call to ``Edge``) and one the way FastAPI alone goes, must answer a request alike: the
requests both test files send, and what of an answer must be equal."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

#: (method, URL, body, headers): requests ``create_app``'s app answers, each a different way
REQUESTS = [
    ("GET", "/v1/users/u1/recommendations?k=5", None, {}),
    ("GET", "/v1/users/u1/recommendations?k=0", None, {}),  # 422 from the route
    ("GET", "/v1/users/u1/recommendations?nope=1", None, {}),  # unknown parameter
    ("GET", "/v1/users//recommendations", None, {}),  # an empty id: the route's 422
    ("GET", "/v1/users/%FF/recommendations", None, {}),  # URL text guard, in Edge
    ("DELETE", "/v1/users/u1/recommendations", None, {}),  # 405 naming GET and POST (the scan)
    ("POST", "/v1/users/u1/recommendations?k=3", b'{"rules": []}', {}),
    ("POST", "/v1/users/u1/recommendations", b"x" * 64, {"content-type": "text/plain"}),  # 415
    ("POST", "/v1/events", b"[" * 2_000_000, {}),  # 413: Edge's body limit, before auth
    ("GET", "/v1/items/i1/similar?k=3", None, {}),
    ("GET", "/v1/popular?k=3", None, {}),
    ("GET", "/v1/users/u1/recommendations/", None, {}),  # not a route: the scan's 404
    ("GET", "/v1/nowhere", None, {}),  # 404
    ("GET", "/openapi.json", None, {}),  # the published schema
    ("GET", "/health/live", None, {}),
]


def answer(response: Any) -> tuple[int, dict[str, str], Any]:
    """Status, headers but the request id and date, and the body: JSON but the list's and the
    error's ids (fresh on every answer), any other as sent."""
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    if not headers.get("content-type", "").startswith("application/json"):
        return response.status_code, headers, response.content
    body = response.json()
    if isinstance(body, dict):
        for varies in ("recommendation_id", "error_id"):
            body.pop(varies, None)
    return response.status_code, headers, body


def assert_answered_alike(
    clients: tuple[TestClient, TestClient],
    sent: dict[str, str],
    request: tuple[str, str, bytes | None, dict[str, str]],
) -> None:
    """The request (with the headers ``sent`` too) answered alike by both clients, each answer
    with a request id."""
    method, url, body, headers = request
    answers = [c.request(method, url, content=body, headers={**sent, **headers}) for c in clients]
    assert answer(answers[0]) == answer(answers[1])
    assert all(len(a.headers["x-request-id"]) == 32 for a in answers)
