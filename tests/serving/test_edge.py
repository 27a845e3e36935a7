"""``Edge``: the app's own middleware in one layer must answer, label and count as the six layers
it replaced nested them (request id outermost, then the error boundary, the rollback watch, the
metrics, the URL check, the body guard). Oracles: hand-written expectations of that nesting;
each was also run against the six layers of the tree before ``Edge`` (BENCHMARKS §89)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from recsmith.config import LifecycleSettings
from recsmith.errors import StoreUnavailable
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.rollback import RollbackGuard
from recsmith.monitoring.request_id import current_request_id
from recsmith.serving.edge import Edge
from recsmith.serving.metrics import Metrics

MODEL_PATH = "/v1/users/u1/recommendations"
COUNT = "recsmith_http_request_duration_seconds_count"


class _Route:
    path_format = "/v1/users/{user_id}/recommendations"


def _scope(path: str = MODEL_PATH, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [],
    }


def _ask(edge: Edge, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages ``edge`` sends for one request."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def asked() -> str | None:
        await edge(scope, receive, send)
        return current_request_id()  # the same task: what the request left set

    assert asyncio.run(asked()) is None  # the request id is reset after the request
    return sent


def _watching(tmp_path: Path) -> RollbackGuard:
    guard = RollbackGuard(
        ModelRegistry(tmp_path / "registry"),
        LifecycleSettings(min_requests=2, max_error_rate=0.4, max_p99_ms=60_000),
    )
    guard.watch_release("v2")
    return guard


def test_an_app_failing_before_its_response_is_a_500_counted_by_metrics_and_watch(
    tmp_path: Path,
) -> None:
    seen: list[str | None] = []

    async def failing(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = _Route()
        seen.append(current_request_id())
        raise RuntimeError("boom")

    metrics, guard = Metrics.create(), _watching(tmp_path)
    edge = Edge(failing, metrics, 1024, guard)  # type: ignore[arg-type]
    start, body = _ask(edge, _scope(headers=[(b"x-request-id", b"client-7")]))
    assert start["status"] == 500
    assert (b"x-request-id", b"client-7") in start["headers"]
    assert body["body"] == b'{"detail":"internal server error","error_id":"client-7"}'
    assert seen == ["client-7"]  # set while the app runs
    labels = {"method": "GET", "route": _Route.path_format}
    assert metrics.registry.get_sample_value(COUNT, {**labels, "status": "500"}) == 1.0
    assert guard.breach() is None  # one request: below min_requests
    _ask(edge, _scope(path="/v1/events"))  # not a model route: not watched
    assert guard.breach() is None
    _ask(edge, _scope())
    breach = guard.breach()  # two model-route requests, both 5xx
    assert breach is not None and breach.requests == 2 and breach.error_rate == 1.0
    assert metrics.registry.get_sample_value(COUNT, {**labels, "status": "500"}) == 3.0


def test_a_store_outage_outside_the_routes_is_a_503_carrying_the_id() -> None:
    async def unavailable(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise StoreUnavailable("read", "disk I/O error")

    metrics = Metrics.create()
    start, body = _ask(Edge(unavailable, metrics, 1024), _scope())  # type: ignore[arg-type]
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"5"
    assert len(headers[b"x-request-id"]) == 32  # made up: no id was sent
    assert b"disk I/O error" in body["body"]
    # the metrics saw no response start (the boundary answered outside them): a 500
    got = metrics.registry.get_sample_value
    assert got(COUNT, {"method": "GET", "route": "<unmatched>", "status": "500"}) == 1.0
    assert got(COUNT, {"method": "GET", "route": "<unmatched>", "status": "503"}) is None


def test_a_failure_after_the_response_started_goes_to_the_server_counted_as_started(
    tmp_path: Path,
) -> None:
    async def late(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("after the head")

    metrics, guard = Metrics.create(), _watching(tmp_path)
    edge = Edge(late, metrics, 1024, guard)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(RuntimeError, match="after the head"):
            _ask(edge, _scope())
    got = metrics.registry.get_sample_value
    assert got(COUNT, {"method": "GET", "route": "<unmatched>", "status": "200"}) == 2.0
    assert guard.breach() is None  # two 200s: no error rate, and fast


def test_the_url_and_body_checks_answer_inside_the_metrics_with_the_id(tmp_path: Path) -> None:
    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    metrics, guard = Metrics.create(), _watching(tmp_path)
    edge = Edge(app, metrics, 10, guard)  # type: ignore[arg-type]
    bad_url = _scope()
    bad_url["query_string"] = b"k=%ff"
    start, body = _ask(edge, bad_url)
    assert start["status"] == 422 and any(k == b"x-request-id" for k, _ in start["headers"])
    assert body["body"].startswith(b'{"detail":[{"field":"k","reason":"percent-encoded bytes')
    big = _scope(headers=[(b"content-length", b"11"), (b"content-type", b"application/json")])
    start, body = _ask(edge, big)
    assert start["status"] == 413 and b"serving.max_body_bytes" in body["body"]
    assert reached == []
    got = metrics.registry.get_sample_value
    unmatched = {"method": "GET", "route": "<unmatched>"}
    assert got(COUNT, {**unmatched, "status": "422"}) == got(COUNT, {**unmatched, "status": "413"})
    assert got(COUNT, {**unmatched, "status": "422"}) == 1.0
    breach = guard.breach()  # the watch saw both answers: two requests, no 5xx, so no breach
    assert breach is None and guard._requests == 2 and guard._errors == 0


def test_a_url_not_text_is_answered_before_a_body_too_large() -> None:
    """The URL check sits outside the body guard (as ``StrictURLText`` wrapped
    ``RequestBodyGuard``): a request failing both is the URL's 422, not the body's 413."""
    metrics = Metrics.create()
    both = _scope(headers=[(b"content-length", b"11"), (b"content-type", b"application/json")])
    both["query_string"] = b"k=%ff"
    start, body = _ask(Edge(_never, metrics, 10), both)  # type: ignore[arg-type]
    assert start["status"] == 422
    assert body["body"].startswith(b'{"detail":[{"field":"k","reason":"percent-encoded bytes')


async def _never(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise AssertionError("the app was reached")


@pytest.mark.parametrize(("encoding", "route"), [(b"gzip", "<unmatched>"), (b"identity", None)])
def test_a_gzip_body_is_counted_unmatched_as_the_six_layers_counted_it(
    encoding: bytes, route: str | None
) -> None:
    """Kept behaviour (module docstring): a gzip body's app gets a copy of the scope, so the
    route the app finds is not on the scope the metrics read; an unencoded body's is."""

    async def routed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = _Route()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    metrics = Metrics.create()
    posted = _scope(headers=[(b"content-encoding", encoding), (b"content-length", b"20")])
    posted["method"] = "POST"
    start, _ = _ask(Edge(routed, metrics, 1024), posted)  # type: ignore[arg-type]
    assert start["status"] == 200
    labels = {"method": "POST", "status": "200"}
    got = metrics.registry.get_sample_value
    assert got(COUNT, {**labels, "route": route or _Route.path_format}) == 1.0
    other = _Route.path_format if route else "<unmatched>"
    assert got(COUNT, {**labels, "route": other}) is None


def test_a_scope_other_than_http_passes_through_untouched() -> None:
    """A websocket (or lifespan) scope reaches the app as it came: same scope, same ``send``,
    no request id, no arrival time, nothing counted."""
    reached: list[tuple[Any, ...]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append((scope, receive, send, current_request_id()))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    metrics = Metrics.create()
    edge = Edge(app, metrics, 1024)  # type: ignore[arg-type]
    for kind in ("websocket", "lifespan"):
        scope = {**_scope(), "type": kind}
        before = dict(scope)
        asyncio.run(edge(scope, receive, send))  # type: ignore[arg-type]
        assert reached.pop() == (scope, receive, send, None)
        assert scope == before  # no ARRIVED, no route
    assert not [s for m in metrics.registry.collect() for s in m.samples if s.name == COUNT]
