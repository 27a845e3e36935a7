"""The recommendation list's JSON, written without its pydantic models (``recommendation_json``),
must be the very bytes the route wrote before: ``RecommendationResponse`` validated and dumped by
FastAPI's ``serialize_response`` through the route's own response field. That path is the oracle,
over shapes drawn at random (unicode, escaped and astral ids, titles with control characters,
empty and long lists, every tier, scores of every magnitude, int scores, inf and nan) and through
the served app (a known and an unknown user, k=1, a pipeline's reasons)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, serialize_response
from fastapi.testclient import TestClient
from starlette.responses import Response

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.serving.recommendation_json import (
    FIELDS,
    recommendation_json,
    recommendation_response,
)
from recsmith.serving.routers import recommend
from recsmith.serving.schemas import RecommendationResponse
from recsmith.store.base import EventStore

TIERS = ("personalised", "session", "profile", "category", "segment", "popular")
TEXTS = [
    "",
    "sku-1",
    "é",
    "日本語の商品",
    "🎧 astral",
    'quote " and \\ backslash',
    "line\nbreak\ttab\x01\x7f",
    "\u2028\u2029 separators",
    "</script>&<>'",
    "x" * 300,
]
SCORES = [0.0, -0.0, 1.0, -2.5, 3, 0, 10**6, 1e-7, 1e-5, 1e16, 1e20, 123456789.123, 0.1 + 0.2]
SPECIAL = [float("inf"), float("-inf"), float("nan")]


def _route_field() -> Any:
    """The GET route's response field: what ``DirectRoute`` wrote the model through."""
    (route,) = [
        r
        for r in recommend.router.routes
        if isinstance(r, APIRoute)
        and r.path == "/v1/users/{user_id:id}/recommendations"
        and "GET" in r.methods
    ]
    return route.response_field


def fastapi_bytes(fields: dict[str, Any]) -> bytes:
    """The bytes the route wrote before: the model validated, then FastAPI's dump_json."""
    written = serialize_response(
        field=_route_field(),
        response_content=RecommendationResponse(**fields),
        dump_json=True,
    )
    return bytes(asyncio.run(written))


def _draw(rng: random.Random) -> dict[str, Any]:
    """One response's fields, as the route could hand them over."""
    tier = rng.choice(TIERS)
    score_pool = SCORES + (SPECIAL if rng.random() < 0.2 else [])
    items = [
        {
            "item_id": rng.choice(TEXTS) + str(n),
            "score": rng.choice(score_pool)
            if rng.random() < 0.5
            else float(rng.uniform(-1e3, 1e3)),
            "sources": rng.sample(["ials", "knn", "recent", "popular", "🎧"], rng.randint(0, 3)),
            "reason": rng.choice([None, *TEXTS]),
        }
        for n in range(rng.choice([0, 1, 2, 10, 100]))
    ]
    maybe = lambda: rng.choice([None, *TEXTS])  # noqa: E731
    return {
        "recommendation_id": f"{rng.getrandbits(128):032x}",
        "user_id": rng.choice(TEXTS) or "u",
        "model_version": rng.choice(["pipeline-20260101-abc", "v1", "ü"]),
        "degraded": rng.sample(["store", "capping", "exposure:brand", "placement_release"], 2)
        if rng.random() < 0.3
        else [],
        "experiment": maybe(),
        "variant": maybe(),
        "not_personalised": rng.choice([None, "erased", "no consent to personalization"]),
        "capped": rng.randint(0, 5),
        "page_view_excluded": rng.randint(0, 5),
        "tier": tier,
        "fallback": None if tier == "personalised" else tier,
        "items": items,
    }


def test_the_fields_are_the_models_in_its_order_less_explanations() -> None:
    assert FIELDS == (
        "recommendation_id",
        "model_version",
        "items",
        "experiment",
        "variant",
        "user_id",
        "tier",
        "fallback",
        "degraded",
        "not_personalised",
        "capped",
        "page_view_excluded",
    )


def _as_the_route_builds(drawn: dict[str, Any]) -> dict[str, Any]:
    """``drawn`` as the route hands it over: the model's fields in its order, float scores."""
    items = [{**item, "score": float(item["score"])} for item in drawn["items"]]
    return {name: items if name == "items" else drawn[name] for name in FIELDS}


@pytest.mark.parametrize("seed", range(6))
def test_random_shapes_are_written_as_fastapi_wrote_the_model(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        fields = _as_the_route_builds(_draw(rng))
        assert recommendation_json(fields) == fastapi_bytes(fields), fields


def test_each_edge_value_on_its_own() -> None:
    base = _draw(random.Random(99))
    for score in [*SCORES, *SPECIAL]:
        one = {**base, "items": [{"item_id": "i", "score": score, "sources": [], "reason": None}]}
        one = _as_the_route_builds(one)
        assert recommendation_json(one) == fastapi_bytes(one), score
    for text in TEXTS:
        named = {**base, "user_id": text or "u", "experiment": text, "variant": text}
        named["items"] = [{"item_id": text, "score": 0.5, "sources": [text], "reason": text}]
        named = _as_the_route_builds(named)
        assert recommendation_json(named) == fastapi_bytes(named), text
    empty = {**base, "items": [], "degraded": [], "tier": "popular", "fallback": "popular"}
    empty = _as_the_route_builds(empty)
    assert recommendation_json(empty) == fastapi_bytes(empty)


def _sent(response: Response) -> list[dict[str, Any]]:
    """The ASGI messages ``response`` sends."""
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(response({"type": "http"}, receive, send))
    return messages


@pytest.mark.parametrize("seed", range(3))
def test_the_response_is_the_one_starlette_builds(seed: int) -> None:
    """Built without ``Response.__init__``: its class (the lean app sends only a plain
    ``Response`` as is), its attributes, headers (a length of 1 to 5 digits) and messages are
    those of ``Response(body, 200, media_type="application/json")``."""
    rng = random.Random(seed)
    shapes = [_draw(rng) for _ in range(20)]
    shapes += [{**shapes[0], "items": []}, {**shapes[0], "items": shapes[1]["items"] * 200}]
    lengths = set()
    for drawn in shapes:
        fields = _as_the_route_builds(drawn)
        got = recommendation_response(fields)
        body = recommendation_json(fields)
        wanted = Response(body, status_code=200, media_type="application/json")
        assert type(got) is Response
        assert vars(got) == vars(wanted)
        assert got.headers == wanted.headers
        assert _sent(got) == _sent(wanted)
        lengths.add(len(str(len(body))))
    assert {1, 2, 3} & lengths and max(lengths) >= 4


@pytest.fixture
def pipeline_client(
    settings: Settings, pipeline: Pipeline, store: EventStore
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:
        yield client


def _served_as_the_model_writes_it(got: Any) -> None:
    """A served body is the model's own writing of what it says (parsed back, re-validated and
    dumped by FastAPI's path), byte for byte, with the headers the model's answer had."""
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/json"
    assert int(got.headers["content-length"]) == len(got.content)
    assert got.content == fastapi_bytes(json.loads(got.content))


def test_served_lists_are_the_models_bytes(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    for query in ({"k": "1"}, {"k": "10"}, {"k": "50", "exclude": "i1,i2", "device": "m"}):
        for user in ("u1", "nobody-é", "🎧"):
            got = client.get(
                f"/v1/users/{user}/recommendations", params=query, headers=keys["read"]
            )
            _served_as_the_model_writes_it(got)
            assert got.json()["user_id"] == user


def test_a_pipelines_lists_with_reasons_and_fallbacks_are_the_models_bytes(
    pipeline_client: TestClient, pipeline: Pipeline, keys: dict[str, dict[str, str]]
) -> None:
    known = [str(u) for u in pipeline.bundle.users.external_ids[:5]]
    tiers = set()
    for user in [*known, "stranger"]:
        for query in ({"k": "1"}, {"k": "10"}, {"k": "10", "recent": known[0]}):
            got = pipeline_client.get(
                f"/v1/users/{user}/recommendations", params=query, headers=keys["read"]
            )
            _served_as_the_model_writes_it(got)
            tiers.add(got.json()["tier"])
            assert all(i["reason"] for i in got.json()["items"])
    assert {"personalised", "popular"} <= tiers


def test_an_explained_list_still_goes_through_the_model(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    got = client.get(
        "/v1/users/u1/recommendations", params={"k": "3", "explain": "true"}, headers=keys["admin"]
    )
    assert got.status_code == 200, got.text
    assert len(got.json()["explanations"]) == len(got.json()["items"])
    assert got.content == fastapi_bytes(json.loads(got.content))


def _logged_as_served(client: TestClient, body: dict[str, Any], route: str) -> None:
    """The decision log's record of ``body`` is what it says: the route, release, items in
    order, and each item's score and sources as served (``Listed``)."""
    client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]
    stored = client.app.state.runtime.store.get_decision(  # type: ignore[attr-defined]
        body["recommendation_id"]
    )
    assert stored is not None
    assert stored.route == route
    assert stored.release == body["model_version"]
    assert list(stored.item_ids) == [i["item_id"] for i in body["items"]]
    assert list(stored.scores) == [i["score"] for i in body["items"]]
    assert [list(s) for s in stored.sources] == [i["sources"] for i in body["items"]]


def test_the_decision_log_keeps_what_was_served(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    got = client.get("/v1/users/u1/recommendations", params={"k": "5"}, headers=keys["read"])
    assert got.status_code == 200, got.text
    _logged_as_served(client, got.json(), "recommendations")


@pytest.mark.parametrize(
    ("path", "route", "source"),
    [
        ("/v1/items/i0/similar", "similar", "similar"),
        ("/v1/items/i0/together", "together", "cooccurrence"),
        ("/v1/popular", "popular", "popular"),
        ("/v1/trending", "trending", "trending"),
    ],
)
def test_the_decision_log_keeps_what_the_other_list_routes_served(
    pipeline_client: TestClient,
    keys: dict[str, dict[str, str]],
    path: str,
    route: str,
    source: str,
) -> None:
    """The other list routes log through ``Listed.of``: the scores and sources stored are the
    body's, which are not all zero and not empty, so a log of zeros or of no sources shows."""
    got = pipeline_client.get(path, params={"k": "5"}, headers=keys["read"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["items"]
    assert any(i["score"] != 0.0 for i in body["items"])
    assert all(i["sources"] == [source] for i in body["items"])
    _logged_as_served(pipeline_client, body, route)


def test_lists_from_the_cache_and_demoted_ones_are_the_models_bytes(
    store_url: str,
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    """The route writes its fields and items as they are: a list the response cache
    gave back and one capping's ``demote`` reordered must still be the model's bytes (FastAPI's
    writing of the model is the oracle), and the cache hit and the demotion must have happened."""
    settings = Settings(
        store={"url": store_url},
        serving={"model_dir": bundle_dir, "cache_entries": 100},
        capping={"enabled": True, "max_shows": 1, "action": "demote"},
    )
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        asked = lambda query: client.get(  # noqa: E731
            f"/v1/users/u1/recommendations?{query}", headers=keys["read"]
        )
        cached = [asked("k=4"), asked("k=4")]  # no page view: the second is the cache's copy
        for got in cached:
            _served_as_the_model_writes_it(got)
        hits = client.get("/metrics", headers=keys["admin"]).text
        assert 'recsmith_response_cache_total{result="hit"} 1.0' in hits
        demoted = [asked("k=3&placement=home"), asked("k=5&placement=cart")]
        for got in demoted:
            _served_as_the_model_writes_it(got)
    assert demoted[1].json()["capped"] > 0  # shown before (the k=4 lists too): sunk
