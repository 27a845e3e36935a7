"""``Metrics.child``: a labelled metric's child found once per label values must count exactly as
``labels(...)`` would, series by series (the request path's three metrics go through it)."""

from __future__ import annotations

import asyncio
from typing import Any

from recsmith.serving.edge import Edge
from recsmith.serving.metrics import Metrics


def test_child_is_the_labels_child_and_counts_per_label_values() -> None:
    metrics = Metrics.create()
    lists = metrics.recommendations
    assert metrics.child(lists, "none") is lists.labels(fallback="none")
    for fallback, n in (("none", 3), ("popular", 2), ("none", 1), ("session", 4)):
        for _ in range(n):
            metrics.child(lists, fallback).inc()
    metrics.child(metrics.impressions, "recommendations", "r1", "").inc(10)
    metrics.child(metrics.impressions, "recommendations", "r1", "B").inc(7)
    metrics.child(metrics.impressions, "recommendations", "r1", "").inc(5)
    value = metrics.registry.get_sample_value
    assert value("recsmith_recommendations_total", {"fallback": "none"}) == 4.0
    assert value("recsmith_recommendations_total", {"fallback": "popular"}) == 2.0
    assert value("recsmith_recommendations_total", {"fallback": "session"}) == 4.0
    shown = {"route": "recommendations", "release": "r1"}
    assert value("recsmith_impressions_total", {**shown, "variant": ""}) == 15.0
    assert value("recsmith_impressions_total", {**shown, "variant": "B"}) == 7.0


def test_pipeline_calls_count_per_stage_and_source() -> None:
    metrics = Metrics.create()
    metrics.observe_answer({"retrieval": 0.002, "ranking": 0.003}, {"ials": 40, "trending": 0}, 16)
    metrics.observe_answer({"retrieval": 0.004, "ranking": 0.001}, {"ials": 2, "trending": 5}, 4)
    value = metrics.registry.get_sample_value
    stage = "recsmith_pipeline_stage_duration_seconds"
    assert value(f"{stage}_count", {"stage": "retrieval"}) == 2.0
    assert value(f"{stage}_sum", {"stage": "retrieval"}) == 0.006
    assert value(f"{stage}_sum", {"stage": "ranking"}) == 0.004
    assert value("recsmith_pipeline_items_total", {"source": "ials"}) == 42.0
    assert value("recsmith_pipeline_items_total", {"source": "trending"}) == 5.0
    assert value("recsmith_coalesced_batch_size_sum") == 20.0


def test_a_source_that_served_nothing_is_not_exported() -> None:
    """A source with no items in a call gets no series (the export stays as ``labels`` made it:
    only sources that served something), until a call where it does."""
    metrics = Metrics.create()
    metrics.observe_answer({"retrieval": 0.001}, {"ials": 3, "trending": 0}, 1)
    value = metrics.registry.get_sample_value
    assert value("recsmith_pipeline_items_total", {"source": "ials"}) == 3.0
    assert value("recsmith_pipeline_items_total", {"source": "trending"}) is None
    metrics.observe_answer({"retrieval": 0.001}, {"ials": 0, "trending": 2}, 1)
    assert value("recsmith_pipeline_items_total", {"source": "ials"}) == 3.0
    assert value("recsmith_pipeline_items_total", {"source": "trending"}) == 2.0


class _Route:
    path_format = "/v1/things/{thing_id}"


async def _requests(middleware: Edge, sent: list[tuple[str, int]]) -> None:
    """Each (method, status) through ``middleware`` to an app answering that status."""
    for method, status in sent:

        async def app(scope: dict[str, Any], receive: Any, send: Any, status: int = status) -> None:
            scope["route"] = _Route()
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            return None

        middleware.app = app
        scope = {"type": "http", "method": method, "path": "/v1/things/t", "headers": []}
        await middleware(scope, receive, send)


def test_request_durations_count_per_method_route_and_status() -> None:
    metrics = Metrics.create()
    middleware = Edge(lambda *_: None, metrics, 1024)  # type: ignore[arg-type]
    sent = [("GET", 200)] * 3 + [("GET", 404)] * 2 + [("POST", 200)] + [("BREW", 200)] * 2
    asyncio.run(_requests(middleware, sent))
    count = "recsmith_http_request_duration_seconds_count"
    route = "/v1/things/{thing_id}"
    expected = {("GET", "200"): 3, ("GET", "404"): 2, ("POST", "200"): 1, ("other", "200"): 2}
    for (method, status), n in expected.items():
        labels = {"method": method, "route": route, "status": status}
        assert metrics.registry.get_sample_value(count, labels) == n, (method, status)
    assert metrics.registry.get_sample_value(count, {**labels, "status": "500"}) is None
