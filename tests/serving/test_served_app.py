"""``ServedApp``: an HTTP request handed straight to ``Edge`` answers, labels and counts as
through the layers FastAPI and Starlette put around it, which it skips only where they pass
requests on unchanged. Oracles: the same app called the whole way (``FastAPI.__call__``:
Starlette's and FastAPI's own layers), the frames a route sees above it, and
``ServerErrorMiddleware``'s plain 500 written out by hand."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.telemetry._asgi import NativeTelemetry
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.util._once import Once
from same_answers import REQUESTS, assert_answered_alike
from starlette.middleware import Middleware

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.errors import StoreUnavailable
from recsmith.serving import create_app, served_app
from recsmith.serving.edge import Edge
from recsmith.serving.metrics import Metrics
from recsmith.serving.served_app import ServedApp
from recsmith.store.base import EventStore

#: the layers around the app's own middleware that the direct way skips
OUTER = {"ServerErrorMiddleware.__call__", "ExceptionTelemetryMiddleware.__call__"}


async def _frames() -> list[str]:
    """The coroutines awaiting this one, innermost first (each resumes the next by its frame)."""
    frame, names = sys._getframe(), []
    while frame is not None:
        names.append(frame.f_code.co_qualname)
        frame = frame.f_back
    return names


def _extra_routes() -> APIRouter:
    """Routes whose failures reach ``Edge``'s boundary, and one that shows its callers."""
    router = APIRouter()
    router.add_api_route("/t/frames", _frames)

    async def bug() -> None:
        raise RuntimeError("a bug")

    async def outage() -> None:
        raise StoreUnavailable("down", cause="disk full")

    router.add_api_route("/t/bug", bug)
    router.add_api_route("/t/outage", outage)
    return router


def _served(settings: Settings, bundle: ModelBundle, store: EventStore) -> FastAPI:
    app = create_app(settings, bundle=bundle, store=store)
    app.include_router(_extra_routes())
    return app


@pytest.fixture
def both(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two clients of apps alike: the first as served, the second called the whole way."""
    direct, whole = _served(settings, bundle, store), _served(settings, bundle, store)
    assert type(direct) is ServedApp
    with (
        TestClient(direct, raise_server_exceptions=False) as first,
        TestClient(partial(FastAPI.__call__, whole), raise_server_exceptions=False) as second,
    ):
        yield first, second


@pytest.mark.parametrize(
    "asked",
    [
        *REQUESTS,
        ("GET", "/t/bug", None, {}),  # the boundary's logged 500
        ("GET", "/t/outage", None, {}),  # the boundary's 503
    ],
)
def test_answers_as_the_whole_way(
    both: tuple[TestClient, TestClient],
    keys: dict[str, dict[str, str]],
    asked: tuple[str, str, bytes | None, dict[str, str]],
) -> None:
    """Status, headers (but the request id and date) and body (but the list's and the
    error's ids) equal; a request id on every answer."""
    assert_answered_alike(both, keys["read"], asked)


def test_metrics_count_alike(
    both: tuple[TestClient, TestClient], keys: dict[str, dict[str, str]]
) -> None:
    """The same requests, the same request counts by route and status on /metrics."""
    for client in both:
        for url in ("/v1/users/u1/recommendations?k=3", "/v1/nowhere", "/t/bug", "/t/outage"):
            client.get(url, headers=keys["read"])
    texts = [c.get("/metrics", headers=keys["admin"]).text for c in both]
    counts = [
        sorted(line for line in text.splitlines() if "_count{" in line or "_total{" in line)
        for text in texts
    ]
    assert any("/t/bug" in line and '"500"' in line for line in counts[0])
    assert counts[0] == counts[1]


def test_the_outer_layers_are_skipped_only_for_the_served_http_request(
    both: tuple[TestClient, TestClient],
) -> None:
    """Served, the route runs under ``Edge`` called by ``ServedApp`` itself; the whole way,
    under Starlette's outer layers."""
    direct, whole = (set(c.get("/t/frames").json()) for c in both)
    assert "Edge.__call__" in direct and "ServedApp.__call__" in direct
    assert not direct & OUTER
    assert whole >= OUTER


async def _urls(request: Request) -> dict[str, str]:
    """The URLs a route writes: its own, by name, and the app's base."""
    return {"url_for": str(request.url_for("urls")), "base": str(request.base_url)}


def _app(**options: Any) -> ServedApp:
    app = ServedApp(**options)
    app.add_middleware(Edge, metrics=Metrics.create(), max_body_bytes=1_000)
    app.add_api_route("/t/frames", _frames)
    app.add_api_route("/t/urls", _urls, name="urls")
    return app


async def _handler(request: Any, exc: Exception) -> Any:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    "build",
    [
        lambda: _app(debug=True),  # the debug traceback page
        lambda: _app(max_body_size=10),  # the app's own body limit
        lambda: _app(exception_handlers={Exception: _handler}),  # a 500 handler of its own
        lambda: _app(exception_handlers={500: _handler}),
    ],
)
def test_an_app_whose_outer_layers_act_goes_the_whole_way(build: Any) -> None:
    with TestClient(build()) as client:
        assert set(client.get("/t/frames").json()) >= OUTER


class _Unanswerable:
    """A layer under ``Edge`` failing by a store outage whose cause the boundary's 503 cannot
    write as JSON (no route handler sees it: it is raised outside the router)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise StoreUnavailable("down", cause=b"\xff")  # type: ignore[arg-type]
        await self.app(scope, receive, send)


def test_a_failing_boundary_answer_is_starlette_s_plain_500() -> None:
    """A boundary answer that fails before it starts: ``ServerErrorMiddleware``'s plain 500
    (its text, its headers, no request id), direct or the whole way, and the exception goes
    on to the server."""
    app = ServedApp()
    app.add_middleware(_Unanswerable)
    app.add_middleware(Edge, metrics=Metrics.create(), max_body_bytes=1_000)
    for called in (app, partial(FastAPI.__call__, app)):
        with TestClient(called, raise_server_exceptions=False) as client:
            answer = client.get("/anything")
        assert answer.status_code == 500
        assert answer.content == b"Internal Server Error"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert "x-request-id" not in answer.headers
        with TestClient(called) as client, pytest.raises(TypeError):
            client.get("/anything")


@pytest.mark.parametrize(
    ("name", "version"), [("FASTAPI_VERSION", "0.200.0"), ("STARLETTE_VERSION", "1.11.0")]
)
def test_another_fastapi_or_starlette_goes_the_whole_way(
    monkeypatch: pytest.MonkeyPatch, name: str, version: str
) -> None:
    """The layers are known for one FastAPI and the Starlette releases read only: on another
    they may do more."""
    monkeypatch.setattr(served_app, name, version)
    with TestClient(_app()) as client:
        assert set(client.get("/t/frames").json()) >= OUTER


def test_the_plain_app_goes_direct() -> None:
    """The check above holds with the layers passing requests on: only then skipped."""
    with TestClient(_app()) as client:
        assert not OUTER & set(client.get("/t/frames").json())


class _ForcedOn(NativeTelemetry):
    """Native telemetry turned on by a subclass, as a vendor's or a test's may."""

    def enabled(self) -> bool:
        return True


def test_a_replaced_native_telemetry_is_followed() -> None:
    """The app's ``_native_telemetry`` replaced after a request went direct: the new object says
    telemetry is on, so (as FastAPI's ``__call__`` would) the request goes the whole way."""
    app = _app()
    with TestClient(app) as client:
        assert not OUTER & set(client.get("/t/frames").json())
        app._native_telemetry = _ForcedOn(app._telemetry)
        assert set(client.get("/t/frames").json()) >= OUTER


class _Spans(trace.TracerProvider):
    """A tracer provider keeping the names of the spans started (the OTel SDK is not
    installed): the spans FastAPI's native telemetry makes, the API's no-op spans."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _Tracer(self.names)


class _Tracer(trace.NoOpTracer):
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        self.names.append(name)
        return super().start_span(name, *args, **kwargs)

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.names.append(name)
        return super().start_as_current_span(name, *args, **kwargs)


def test_a_tracer_provider_set_after_the_first_request_gets_its_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Native telemetry turns on when a global tracer provider is set, at any time (the OTel
    SDK configured after start): the next request goes the whole way and makes the spans the
    whole way makes. The global is put back after (the OTel API sets it once a process)."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    spans, apps = _Spans(), (_app(), _app())
    with (
        TestClient(apps[0]) as direct,
        TestClient(partial(FastAPI.__call__, apps[1])) as whole,
    ):
        assert not OUTER & set(direct.get("/t/frames").json())
        trace.set_tracer_provider(spans)
        assert set(direct.get("/t/frames").json()) >= OUTER
        served, spans.names[:] = spans.names[:], []
        whole.get("/t/frames")
    assert served[0] == "GET"
    assert served == spans.names


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
def test_the_app_s_root_path_is_in_the_urls_it_writes() -> None:
    """An app given a ``root_path`` (deprecated in FastAPI 0.165, still honoured) puts it in
    the scope, as FastAPI does: the URLs a route writes carry it, direct as the whole way."""
    apps = _app(root_path="/pre"), _app(root_path="/pre")
    answers = []
    for called in (apps[0], partial(FastAPI.__call__, apps[1])):
        with TestClient(called) as client:
            answers.append(client.get("/t/urls").json())
    assert answers[0] == answers[1]
    assert answers[0] == {
        "url_for": "http://testserver/pre/t/urls",
        "base": "http://testserver/pre/",
    }


@pytest.mark.parametrize(
    "mounting",
    [
        {"max_body_size": 5},  # its body limit in the scope, for the mounted app's layer to keep
        {"telemetry": {"tracer_provider": _Spans()}},  # its request telemetry in the scope
    ],
)
def test_mounted_under_an_app_that_asks_the_layers_it_goes_the_whole_way(
    mounting: dict[str, Any],
) -> None:
    """A mounting FastAPI's scope key (its body limit, its request telemetry) is for the
    mounted app's outer layers to act on: each outer layer twice above the route, the
    mounting app's and the mounted app's."""
    parent = FastAPI(**mounting)
    parent.mount("/child", _app())
    with TestClient(parent) as client:
        frames = client.get("/child/t/frames").json()
    assert {name: frames.count(name) for name in OUTER} == dict.fromkeys(OUTER, 2)


class _Marker:
    """A middleware marking each answer it passes (``x-marker: 1``)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def marked(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-marker", b"1")]
            await send(message)

        await self.app(scope, receive, marked)


@pytest.mark.parametrize(("place", "whole_way"), [(0, True), (1, False)])
def test_a_rebuilt_stack_is_looked_at_again(place: int, whole_way: bool) -> None:
    """A stack rebuilt after the first request with one more middleware: around ``Edge`` the
    stack is no longer one whose layers only pass requests on (the whole way), under it the
    new ``Edge`` is called; either way the middleware marks the answer."""
    app = _app()
    with TestClient(app) as client:
        client.get("/t/frames")
        app.middleware_stack = None
        app.user_middleware.insert(place, Middleware(_Marker))
        answer = client.get("/t/frames")
    assert answer.headers["x-marker"] == "1"
    assert (set(answer.json()) >= OUTER) is whole_way
