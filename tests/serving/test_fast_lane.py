"""``fast_lane``: a request routed by the index reaches the route the router's scan would have
chosen, with the same scope, and answers the same; a route an earlier one could take requests
from is left to the scan. Oracle: the router itself (``FastLane.app``, FastAPI's scan), and
hand-written shapes."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, _IncludedRouter
from fastapi.telemetry._api import _RequestTelemetry
from fastapi.testclient import TestClient
from same_answers import REQUESTS, assert_answered_alike
from starlette.convertors import (
    Convertor,
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    StringConvertor,
    register_url_convertor,
)
from starlette.responses import JSONResponse
from starlette.routing import Match, Route, compile_path

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app, fast_lane
from recsmith.serving.fast_lane import FastLane, may_overlap, one_segment, shape_of
from recsmith.serving.path_ids import IdSegment
from recsmith.serving.routers import recommend
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


def _shape(template: str) -> Any:
    """A template's shape with the convertors Starlette gives its parameters."""
    return shape_of(template, compile_path(template)[2])


def test_shapes_by_hand() -> None:
    assert _shape("/v1/users/{user_id:id}/recommendations") == (
        ("", "v1", "users", None, "recommendations"),
        False,
    )
    assert _shape("/docs-assets/{path:path}") == (("", "docs-assets"), True)
    users, recs = _shape("/v1/users/{u}"), _shape("/v1/users/{u}/recommendations")
    assert not may_overlap(users, recs)  # four segments against five
    assert may_overlap(_shape("/v1/things/{x}"), _shape("/v1/things/special"))
    assert not may_overlap(_shape("/v1/things/{x}"), _shape("/v1/items/special"))
    assert may_overlap(_shape("/v1/{p:path}"), recs)  # a path parameter takes the rest
    assert not may_overlap(_shape("/v2/{p:path}"), recs)
    assert may_overlap(recs, _shape("/v1/{p:path}"))


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


@pytest.mark.parametrize("asked", REQUESTS)
def test_answers_as_through_the_router(
    both: tuple[TestClient, TestClient],
    keys: dict[str, dict[str, str]],
    asked: tuple[str, str, bytes | None, dict[str, str]],
) -> None:
    """Status, headers (but the request id and date) and body (but the list's id) equal, with
    and without the index; the request id still on every answer."""
    assert_answered_alike(both, keys["read"], asked)


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


class _Slashy(Convertor[str]):
    """A custom convertor whose values may span segments."""

    regex = "[a-z/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fastlane_test_slashy", _Slashy())


def test_a_convertor_that_may_take_a_slash_opens_the_shape() -> None:
    """Shapes from the route's convertors, by hand: ``[^/]*`` (the ids'), digits and ``\\w``
    keep to a segment; a set naming ``/``, a negated set without it, ``.`` do not."""
    assert shape_of("/v1/{x:fastlane_test_slashy}/y", {"x": _Slashy()}) == (("", "v1"), True)
    assert shape_of("/v1/{x}/y", {}) == (("", "v1"), True)  # a convertor not known: open
    assert one_segment(IdSegment()) and one_segment(FloatConvertor())
    assert one_segment(IntegerConvertor()) and one_segment(StringConvertor())
    assert not one_segment(PathConvertor()) and not one_segment(_Slashy())
    for regex, keeps in [(r"\w+", True), (r"[^a-z]+", False), (".+", False), ("a|b/", False)]:
        convertor = _Slashy()
        convertor.regex = regex
        assert one_segment(convertor) is keeps, regex


def _routed_alike(
    build: Any, requests: list[tuple[str, str]], change: Any = None
) -> tuple[FastAPI, list[Any]]:
    """``build(app)`` twice, one app with the index and one with the scan alone; each request
    answered alike (after ``change(app)`` on both, when given, past the first): the indexed app
    and the answers' bodies (None where not JSON)."""
    laned, scanned = FastAPI(), FastAPI()
    for app in (laned, scanned):
        build(app)
    fast_lane.install(laned)
    bodies = []
    with TestClient(laned) as a, TestClient(scanned) as b:
        for i, (method, url) in enumerate(requests):
            if change is not None and i == 1:
                change(laned), change(scanned)
            answers = [
                (r.status_code, r.text) for r in (a.request(method, url), b.request(method, url))
            ]
            assert answers[0] == answers[1], f"{method} {url}"
            bodies.append(json.loads(answers[0][1]) if answers[0][0] < 300 else None)
    return laned, bodies


def _router(path: str, by: str, route_class: type[APIRoute] = APIRoute) -> APIRouter:
    """A router of one GET route answering which it is."""
    router = APIRouter(route_class=route_class)

    def answer(request: Request) -> dict[str, str]:
        return {"by": by, "path": request.url.path}

    router.add_api_route(path, answer, methods=["GET"])
    return router


def test_an_earlier_route_taking_more_than_one_segment_keeps_its_requests() -> None:
    """``/v1/{x:slashy}``, a ``{p:path}`` route or a mount before ``/v1/a/b``: the scan gives
    ``/v1/a/b`` to the earlier one, and so does the app with the index."""
    for earlier in ("/v1/{x:fastlane_test_slashy}", "/v1/{p:path}"):

        def build(app: FastAPI, earlier: str = earlier) -> None:
            app.include_router(_router(earlier, "first"))
            app.include_router(_router("/v1/a/b", "second"))

        _, bodies = _routed_alike(build, [("GET", "/v1/a/b")])
        assert bodies == [{"by": "first", "path": "/v1/a/b"}], earlier

    def mounted(app: FastAPI) -> None:
        app.mount("/v1", FastAPI())  # a sub-app answering 404 to all
        app.include_router(_router("/v1/a/b", "second"))

    _, bodies = _routed_alike(mounted, [("GET", "/v1/a/b")])
    assert bodies == [None]  # the mounted app's 404


def test_an_earlier_route_class_with_its_own_matches_may_take_anything() -> None:
    """An earlier route whose class widens ``matches`` beyond its template keeps the requests
    it takes from a later indexed route."""

    class Lenient(APIRoute):
        def matches(self, scope: Any) -> Any:
            if scope["type"] == "http" and scope["path"].startswith("/v1/legacy"):
                return super().matches({**scope, "path": "/v1/legacy"})
            return super().matches(scope)

    def build(app: FastAPI) -> None:
        app.include_router(_router("/v1/legacy", "legacy", Lenient))
        app.include_router(_router("/v1/legacy/x", "second"))

    _, bodies = _routed_alike(build, [("GET", "/v1/legacy/x")])
    assert bodies == [{"by": "legacy", "path": "/v1/legacy/x"}]


def test_the_index_follows_the_app_route_list_edited_in_place() -> None:
    """``routes.insert`` and ``routes.clear`` on the app's router count no version: the index
    still follows them."""

    async def inserted(request: Any) -> JSONResponse:
        return JSONResponse({"by": "inserted"})

    def build(app: FastAPI) -> None:
        app.include_router(_router("/v1/things/special", "second"))

    insert = [("GET", "/v1/things/special")] * 2
    _, bodies = _routed_alike(
        build, insert, lambda app: app.router.routes.insert(0, Route("/v1/things/{x}", inserted))
    )
    assert bodies == [{"by": "second", "path": "/v1/things/special"}, {"by": "inserted"}]
    _, bodies = _routed_alike(build, insert, lambda app: app.router.routes.clear())
    assert bodies == [{"by": "second", "path": "/v1/things/special"}, None]


def test_an_included_websocket_route_leaves_later_routes_indexed() -> None:
    ws = APIRouter()

    @ws.websocket("/ws")
    async def echo(websocket: Any) -> None:  # never connected
        pass

    def build(app: FastAPI) -> None:
        app.include_router(ws)
        app.include_router(_router("/v1/p", "p"))

    laned, bodies = _routed_alike(build, [("GET", "/v1/p")])
    assert bodies == [{"by": "p", "path": "/v1/p"}]
    assert [x.context.path for x in _lanes(laned.router.middleware_stack)] == ["/v1/p"]


def _both_scopes(
    monkeypatch: pytest.MonkeyPatch, lane: FastLane, entry: Any, scopes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The scope ``entry``'s route is handed: the first of ``scopes`` through the index (the
    scan refused), the second through the scan."""
    seen: list[dict[str, Any]] = []

    async def capture(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope, fastapi=dict(scope["fastapi"])))

    async def no_scan(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the index left the request to the scan")

    monkeypatch.setattr(entry.context.original_route, "handle", capture)
    scan = lane.app
    with monkeypatch.context() as patched:
        patched.setattr(lane, "app", no_scan)
        asyncio.run(lane(scopes[0], None, None))
    asyncio.run(scan(scopes[1], None, None))
    assert len(seen) == 2, "another route reached"
    return seen


def test_form_limits_of_the_app_and_an_included_router_reach_the_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app's and an included router's form limits, merged (the router's over the app's),
    in the scope the route gets through the index as through the scan (no multipart parser
    installed here to post a form: the limits are what FastAPI's form reading reads)."""
    app = FastAPI()
    app.router.form_limits = {"max_files": 2, "max_fields": 9}
    app.include_router(_router("/v1/form", "form"), form_limits={"max_fields": 1})
    fast_lane.install(app)
    lane = app.router.middleware_stack
    (entry,) = _lanes(lane)
    scopes = [_scope("GET", "/v1/form") for _ in "ab"]
    by_index, by_scan = _both_scopes(monkeypatch, lane, entry, scopes)
    assert by_index["fastapi"]["form_limits"] == {"max_files": 2, "max_fields": 1}
    assert by_index == by_scan


def test_telemetry_names_the_route_reached_by_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """FastAPI's request telemetry (the object its middleware puts in the scope when enabled)
    is told the route's template through the index as by the scan."""
    app = FastAPI()
    app.include_router(_router("/v1/users/{user_id}", "u"))
    fast_lane.install(app)
    lane = app.router.middleware_stack
    (entry,) = _lanes(lane)
    told = [_RequestTelemetry(span=None, span_method="GET") for _ in "ab"]
    scopes = [{**_scope("GET", "/v1/users/u-1"), "fastapi.telemetry": t} for t in told]
    _both_scopes(monkeypatch, lane, entry, scopes)
    assert [t.route for t in told] == ["/v1/users/{user_id}"] * 2


def test_another_fastapi_version_leaves_the_scan(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    """On a FastAPI the lane was not written for, ``create_app`` routes by the scan, says so
    in one warning line, and answers as with the lane."""
    laned = create_app(settings, bundle=bundle, store=store)
    monkeypatch.setattr(fast_lane, "FASTAPI_VERSION", "0.166.0")
    with caplog.at_level(logging.WARNING, logger=fast_lane.__name__):
        scanned = create_app(settings, bundle=bundle, store=store)
    assert scanned.router.middleware_stack == scanned.router.app  # no FastLane
    assert [r.getMessage() for r in caplog.records if r.name == fast_lane.__name__] == [
        "fast lane off, routing by FastAPI's scan: FastAPI 0.166.0, the lane is written for 0.165.x"
    ]
    with TestClient(laned) as a, TestClient(scanned) as b:
        for asked in REQUESTS:
            assert_answered_alike((a, b), keys["read"], asked)


def test_the_read_routes_are_handed_over_past_fastapi_s_inner_layers(
    both: tuple[TestClient, TestClient],
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Edge`` hands a request the index routes to a read route (a solved ``DirectRoute``)
    straight to it (``fast_lane.Shortcut``): FastAPI's ``AsyncExitStackMiddleware`` never runs
    for it, and its errors are still the app's handlers' (a 422, a 401); a route of another
    kind, or any request of an app without the index, goes through the layers. The answers
    themselves are held equal to the scan's by ``test_answers_as_through_the_router``."""
    laned, scanned = both
    entered: list[str] = []
    layer = AsyncExitStackMiddleware.__call__

    async def counted(self: Any, scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        await layer(self, scope, receive, send)

    monkeypatch.setattr(AsyncExitStackMiddleware, "__call__", counted)
    reads = ["/v1/users/u1/recommendations?k=5", "/v1/users/u1/recommendations?k=0"]
    assert [laned.get(u, headers=keys["read"]).status_code for u in reads] == [200, 422]
    assert laned.get(reads[0]).status_code == 401  # no key: the route's check, the app's answer
    assert laned.get("/health/live").status_code == 200
    assert entered == ["/health/live"]
    entered.clear()
    assert scanned.get(reads[0], headers=keys["read"]).status_code == 200
    assert entered == ["/v1/users/u1/recommendations"]


class _Sku(Convertor[str]):
    """An embedder's convertor refusing a segment by an ``HTTPException`` (a Starlette idiom)."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        if not value.startswith("sku-"):
            raise HTTPException(404, "no such SKU")
        return value

    def to_string(self, value: str) -> str:
        return value


def test_a_convertor_refusing_by_an_http_exception_is_answered_by_the_app_s_handler(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> None:
    """``Edge`` looks a request up in front of FastAPI's ``ExceptionMiddleware``; a convertor's
    ``HTTPException`` raised there must still reach the app's handler (its 404, as the scan
    behind the middleware gives: the oracle, the index taken out), not the 500 boundary."""
    register_url_convertor("rv_sku", _Sku())
    answers = []
    for laned in (True, False):
        app = create_app(settings, bundle=bundle, store=store)
        extra = APIRouter()

        @extra.get("/shop/{code:rv_sku}")
        def product(code: str) -> dict[str, str]:
            return {"code": code}

        app.include_router(extra)
        with TestClient(app, raise_server_exceptions=False) as c:
            if not laned:
                app.router.middleware_stack = app.router.app
            answers.append(
                [(r.status_code, r.json()) for r in map(c.get, ("/shop/sku-1", "/shop/x"))]
            )
    assert answers[0] == answers[1] == [(200, {"code": "sku-1"}), (404, {"detail": "no such SKU"})]


def test_a_request_off_the_read_routes_is_looked_up_once(
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    make_event: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Edge``'s look-up (``Shortcut.lane``) is handed on to the lane behind FastAPI's layers
    for a request it does not take (the ingest route, health, a 404): one match a request."""
    calls: list[str] = []
    found = FastLane.found

    def counted(self: FastLane, scope: Any) -> Any:
        if scope["type"] == "http":
            calls.append(scope["path"])
        return found(self, scope)

    monkeypatch.setattr(FastLane, "found", counted)
    asked = [
        ("GET", "/v1/users/u1/recommendations?k=5", {"headers": keys["read"]}, 200),
        ("POST", "/v1/events", {"headers": keys["ingest"], "json": [make_event()]}, 200),
        ("GET", "/health/live", {}, 200),
        ("GET", "/no/such/route", {}, 404),
    ]
    with TestClient(create_app(settings, bundle=bundle, store=store)) as c:
        for method, url, kw, status in asked:
            calls.clear()
            assert c.request(method, url, **kw).status_code == status, url
            assert calls == [url.split("?")[0]], url


def test_a_route_class_overriding_handle_inherits_no_refuses_methods_only_flag() -> None:
    """A subclass of a read route's class whose ``handle`` does more is not handed requests
    past its ``handle``: the flag counts only on the class defining the ``handle``."""
    app = FastAPI()
    app.include_router(recommend.router)
    lanes = [x for x in _lanes(FastLane(app.router, app.router.app)) if x.direct]
    assert lanes
    context = lanes[0].context
    base = type(context.original_route)

    class Guarded(base):  # type: ignore[misc, valid-type]
        async def handle(self, scope: Any, receive: Any, send: Any) -> None:
            raise PermissionError("this handle must run")

    class Declared(base):  # type: ignore[misc, valid-type]
        REFUSES_METHODS_ONLY = True

        async def handle(self, scope: Any, receive: Any, send: Any) -> None:
            await base.handle(self, scope, receive, send)

    assert fast_lane._direct(context)
    context.original_route.__class__ = Guarded
    assert not fast_lane._direct(context)
    context.original_route.__class__ = Declared  # its own handle declared
    assert fast_lane._direct(context)
    context.original_route.__class__ = base
