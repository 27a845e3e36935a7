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
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

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


def _answer(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    if not headers.get("content-type", "").startswith("application/json"):
        return response.status_code, headers, response.content
    body = response.json()
    if isinstance(body, dict):
        for varies in ("recommendation_id", "error_id"):
            body.pop(varies, None)
    return response.status_code, headers, body


REQUESTS = [
    ("GET", "/v1/users/u1/recommendations?k=5", None, {}),
    ("GET", "/v1/users/u1/recommendations?k=0", None, {}),  # 422 from the route
    ("GET", "/v1/users/u1/recommendations?nope=1", None, {}),  # unknown parameter
    ("GET", "/v1/users/%FF/recommendations", None, {}),  # URL text guard, in Edge
    ("DELETE", "/v1/users/u1/recommendations", None, {}),  # 405
    ("POST", "/v1/users/u1/recommendations?k=3", b'{"rules": []}', {}),
    ("POST", "/v1/users/u1/recommendations", b"x" * 64, {"content-type": "text/plain"}),  # 415
    ("POST", "/v1/events", b"[" * 2_000_000, {}),  # 413: Edge's body limit, before auth
    ("GET", "/v1/items/i1/similar?k=3", None, {}),
    ("GET", "/v1/nowhere", None, {}),  # 404
    ("GET", "/health/live", None, {}),
    ("GET", "/t/bug", None, {}),  # the boundary's logged 500
    ("GET", "/t/outage", None, {}),  # the boundary's 503
]


@pytest.mark.parametrize(("method", "url", "body", "headers"), REQUESTS)
def test_answers_as_the_whole_way(
    both: tuple[TestClient, TestClient],
    keys: dict[str, dict[str, str]],
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
) -> None:
    """Status, headers (but the request id and date) and body (but the list's and the
    error's ids) equal; a request id on every answer."""
    sent = {**keys["read"], **headers}
    answers = [c.request(method, url, content=body, headers=sent) for c in both]
    assert _answer(answers[0]) == _answer(answers[1])
    assert all(len(a.headers["x-request-id"]) == 32 for a in answers)


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


def _app(**options: Any) -> ServedApp:
    app = ServedApp(**options)
    app.add_middleware(Edge, metrics=Metrics.create(), max_body_bytes=1_000)
    app.add_api_route("/t/frames", _frames)
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


def test_another_fastapi_goes_the_whole_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layers are known for one FastAPI only: on another they may do more."""
    monkeypatch.setattr(served_app, "FASTAPI_VERSION", "0.200.0")
    with TestClient(_app()) as client:
        assert set(client.get("/t/frames").json()) >= OUTER


def test_the_plain_app_goes_direct() -> None:
    """The check above holds with the layers passing requests on: only then skipped."""
    with TestClient(_app()) as client:
        assert not OUTER & set(client.get("/t/frames").json())
