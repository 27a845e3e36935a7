"""``fast_lane``: a request routed by the index reaches the route the router's scan would have
chosen, with the same scope, and answers the same; a route an earlier one could take requests
from is left to the scan. Oracle: the router itself (``FastLane.app``, FastAPI's scan), and
hand-written shapes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, _IncludedRouter
from fastapi.testclient import TestClient
from starlette.routing import Match

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app, fast_lane
from recsmith.serving.fast_lane import FastLane, may_overlap, shape_of
from recsmith.store.base import EventStore


def _scope(method: str, path: str) -> dict[str, Any]:
    """What routing reads of a request (the route itself is replaced by a capture)."""
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _lanes(lane: FastLane) -> list[Any]:
    return [
        x
        for groups in lane.index.by_count.values()
        for _, by in groups
        for v in by.values()
        for x in v
    ]


def _example(path: str) -> str:
    """A request path for a template: each parameter an id-like segment."""
    return re.sub(r"\{[^}]*\}", "u-1", path)


def test_shapes_by_hand() -> None:
    assert shape_of("/v1/users/{user_id:id}/recommendations") == (
        ("", "v1", "users", None, "recommendations"),
        False,
    )
    assert shape_of("/docs-assets/{path:path}") == (("", "docs-assets"), True)
    users, recs = shape_of("/v1/users/{u}"), shape_of("/v1/users/{u}/recommendations")
    assert not may_overlap(users, recs)  # four segments against five
    assert may_overlap(shape_of("/v1/things/{x}"), shape_of("/v1/things/special"))
    assert not may_overlap(shape_of("/v1/things/{x}"), shape_of("/v1/items/special"))
    assert may_overlap(shape_of("/v1/{p:path}"), recs)  # a path parameter takes the rest
    assert not may_overlap(shape_of("/v2/{p:path}"), recs)
    assert may_overlap(recs, shape_of("/v1/{p:path}"))


def test_every_indexed_route_gets_the_scope_the_router_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each indexed route of the real app, asked through the index and through the scan: the
    same route reached, with equal scopes (route, endpoint, path parameters, router, FastAPI's
    included router and effective route), and the index without a single router ``_match``."""
    app = create_app(Settings())
    lane = app.router.middleware_stack
    assert isinstance(lane, FastLane)
    lanes = _lanes(lane)
    paths = {ctx.context.path for ctx in lanes}
    assert "/v1/users/{user_id:id}/recommendations" in paths  # the hot route, and its peers
    assert {"/v1/items/{item_id:id}/similar", "/v1/popular", "/v1/events"} <= paths
    matched = [0]
    real_match = _IncludedRouter._match

    def counted(self: _IncludedRouter, scope: Any) -> Any:
        matched[0] += 1
        return real_match(self, scope)

    monkeypatch.setattr(_IncludedRouter, "_match", counted)
    for entry in lanes:
        route = entry.context.original_route
        for method in sorted(entry.context.methods):
            seen: list[dict[str, Any]] = []

            async def capture(
                scope: Any, receive: Any, send: Any, seen: list[dict[str, Any]] = seen
            ) -> None:
                seen.append(dict(scope, fastapi=dict(scope["fastapi"])))

            monkeypatch.setattr(route, "handle", capture)
            path = _example(entry.context.path)
            matched[0] = 0
            asyncio.run(lane(_scope(method, path), None, None))
            assert matched[0] == 0, path  # no scan
            asyncio.run(lane.app(_scope(method, path), None, None))
            assert matched[0] > 0
            assert len(seen) == 2, f"{method} {path} reached another route"
            assert seen[0] == seen[1], f"{method} {path}"
            assert seen[0]["route"] is route


def _app(*routers: APIRouter) -> FastAPI:
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    fast_lane.install(app)
    return app


def test_a_route_an_earlier_one_may_take_requests_from_is_left_to_the_scan() -> None:
    """``/v1/things/special`` is also ``/v1/things/{x}``, which comes first: the scan answers it
    with the earlier route, and so must the app with the index."""
    first, second = APIRouter(), APIRouter()
    first.add_api_route("/v1/things/{x}", lambda x: {"by": "first", "x": x}, methods=["GET"])
    second.add_api_route("/v1/things/special", lambda: {"by": "second"}, methods=["GET"])
    second.add_api_route("/v1/things/special", lambda: {"by": "second-post"}, methods=["POST"])
    with TestClient(_app(first, second)) as client:
        assert client.get("/v1/things/special").json() == {"by": "first", "x": "special"}
        # no earlier route takes POST: the index may hand it over
        assert client.post("/v1/things/special").json() == {"by": "second-post"}
        assert [c.context.path for c in _lanes(client.app.router.middleware_stack)] == [
            "/v1/things/{x}",
            "/v1/things/special",
        ]


def test_the_index_follows_routes_added_to_an_earlier_router() -> None:
    """A route added after the first request to a router before an indexed route's takes that
    route's requests in the scan: the index is rebuilt and agrees."""
    first, second = APIRouter(), APIRouter()
    first.add_api_route("/v1/a", lambda: {"by": "a"}, methods=["GET"])
    second.add_api_route("/v1/things/special", lambda: {"by": "second"}, methods=["GET"])
    with TestClient(_app(first, second)) as client:
        assert client.get("/v1/things/special").json() == {"by": "second"}
        first.add_api_route("/v1/things/{x}", lambda x: {"by": "first", "x": x}, methods=["GET"])
        assert client.get("/v1/things/special").json() == {"by": "first", "x": "special"}


def test_a_route_deciding_its_own_matches_is_left_to_the_scan() -> None:
    """The index asks FastAPI's ``matches``; a route class with its own is asked by the scan."""

    class OnlyOdd(APIRoute):
        def matches(self, scope: Any) -> Any:
            match, child = super().matches(scope)
            odd = scope["path"].rsplit("/", 1)[-1] in ("1", "3")
            return (match, child) if odd else (Match.NONE, {})

    odd = APIRouter(route_class=OnlyOdd)
    odd.add_api_route("/v1/n/{n}", lambda n: {"odd": n}, methods=["GET"])
    with TestClient(_app(odd)) as client:
        assert _lanes(client.app.router.middleware_stack) == []
        assert client.get("/v1/n/3").json() == {"odd": "3"}
        assert client.get("/v1/n/2").status_code == 404


@pytest.fixture
def both(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two clients of one app's routes: the first through the index, the second with the
    router's scan alone (the index taken out)."""
    with (
        TestClient(create_app(settings, bundle=bundle, store=store)) as laned,
        TestClient(create_app(settings, bundle=bundle, store=store)) as scanned,
    ):
        scanned.app.router.middleware_stack = scanned.app.router.app
        yield laned, scanned


def _answer(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    body = response.json()
    if isinstance(body, dict):
        body.pop("recommendation_id", None)
    return response.status_code, headers, body


REQUESTS = [
    ("GET", "/v1/users/u1/recommendations?k=5", None, {}),
    ("GET", "/v1/users/u1/recommendations?k=0", None, {}),  # 422 from the route
    ("GET", "/v1/users/u1/recommendations?nope=1", None, {}),  # unknown parameter
    ("GET", "/v1/users//recommendations", None, {}),  # an empty id: the route's 422
    ("GET", "/v1/users/%FF/recommendations", None, {}),  # URL text guard, outside the router
    ("DELETE", "/v1/users/u1/recommendations", None, {}),  # 405 naming GET and POST (the scan)
    ("POST", "/v1/users/u1/recommendations?k=3", b'{"rules": []}', {}),
    ("POST", "/v1/users/u1/recommendations", b"x" * 64, {"content-type": "text/plain"}),  # 415
    ("GET", "/v1/items/i1/similar?k=3", None, {}),
    ("GET", "/v1/popular?k=3", None, {}),
    ("GET", "/v1/users/u1/recommendations/", None, {}),  # not a route: the scan's 404
    ("GET", "/openapi.json", None, {}),  # the published schema, through the index
    ("GET", "/health/live", None, {}),
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), REQUESTS)
def test_answers_as_through_the_router(
    both: tuple[TestClient, TestClient],
    keys: dict[str, dict[str, str]],
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    """Status, headers (but the request id and date) and body (but the list's id) equal, with
    and without the index; the request id still on every answer."""
    laned, scanned = both
    sent = {**keys["read"], **headers}
    answers = [c.request(method, url, content=body, headers=sent) for c in (laned, scanned)]
    assert _answer(answers[0]) == _answer(answers[1])
    assert all(len(a.headers["x-request-id"]) == 32 for a in answers)


def test_metrics_label_the_route_reached_by_the_index(
    both: tuple[TestClient, TestClient], keys: dict[str, dict[str, str]]
) -> None:
    laned, _ = both
    for _ in range(3):
        assert laned.get("/v1/users/u1/recommendations", headers=keys["read"]).status_code == 200
    text = laned.get("/metrics", headers=keys["admin"]).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("recsmith_http_request_duration_seconds_count{")
        and 'route="/v1/users/{user_id}/recommendations"' in x
    )
    assert 'method="GET"' in line and 'status="200"' in line
    assert line.endswith(" 3.0")
