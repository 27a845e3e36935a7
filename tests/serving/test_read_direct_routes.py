"""The read routes a page view calls — ``POST /v1/users/{id}/recommendations`` (request rules),
``GET /v1/items/{id}/similar``, ``…/together``, ``/v1/trending``, ``/v1/popular`` — are answered
without FastAPI's per-request solve (``direct_route.solved_by``, ``route_params``). Each must
admit, refuse and answer exactly as FastAPI did: the oracle is a FastAPI-solved twin of every
route in the same app (``solved_twin``), plus hand-written expectations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from solved_twin import TWIN, add_twin, same_answer
from starlette.types import ASGIApp, Receive, Scope, Send

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app, fast_lane
from recsmith.serving.routers import recommend
from recsmith.serving.routers.recommend import _DirectEveryMethod
from recsmith.store.base import EventStore

RECS = "/v1/users/u1/recommendations"
GETS = ["/v1/popular", "/v1/trending", "/v1/items/i1/similar", "/v1/items/i1/together", RECS]
#: what FastAPI answered for these, written out (``test_api_recommend`` states the same rules)
NOT_JSON = "request body is not valid JSON: Expecting property name enclosed in double quotes"
NOT_OBJECT = "Input should be a valid dictionary or object to extract fields from"

Ask = Callable[..., tuple[Any, Any]]


def _both(client: TestClient) -> Ask:
    """Send one request to a route and to its FastAPI-solved twin."""

    def ask(method: str, url: str, **kwargs: Any) -> tuple[Any, Any]:
        return client.request(method, url, **kwargs), client.request(method, TWIN + url, **kwargs)

    return ask


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI solved dependencies for, request by request."""
    seen: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(*, request: Any, **kwargs: Any) -> Any:
        seen.append(request.url.path)
        return await solve(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return seen


def _client(settings: Settings, store: EventStore, bundle: Any) -> Iterator[TestClient]:
    app = add_twin(create_app(settings, bundle=bundle, store=store), recommend.router)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def single(settings: Settings, bundle: ModelBundle, store: EventStore) -> Iterator[Ask]:
    """A single model (no co-occurrence: ``together`` is a 409), routes and twins."""
    yield from (_both(c) for c in _client(settings, store, bundle))


@pytest.fixture
def piped(settings: Settings, pipeline: Pipeline, store: EventStore) -> Iterator[Ask]:
    """A pipeline with every source the item routes use."""
    yield from (_both(c) for c in _client(settings, store, pipeline))


def test_every_read_route_is_direct_and_its_twin_is_solved(
    single: Ask, keys: dict[str, dict[str, str]], solves: list[str]
) -> None:
    routes = [r for r in recommend.router.routes if isinstance(r, fastapi.routing.APIRoute)]
    assert {type(r) for r in routes} == {_DirectEveryMethod}
    assert sorted((r.path, *r.methods) for r in routes) == sorted(
        [(f"/v1{p}", "GET") for p in ("/popular", "/trending")]
        + [(f"/v1/items/{{item_id:id}}/{n}", "GET") for n in ("similar", "together")]
        + [("/v1/users/{user_id:id}/recommendations", m) for m in ("GET", "POST")]
    )
    for url in GETS:
        single("GET", url, headers=keys["read"])
    single("POST", RECS, json={}, headers=keys["read"])
    assert solves == [TWIN + url for url in [*GETS, RECS]]  # the routes solved nothing


def test_each_route_publishes_what_its_fastapi_solved_twin_publishes(settings: Settings) -> None:
    # main's /openapi.json was compared byte for byte by hand (BENCHMARKS §52); here the
    # schema of every direct route is the one FastAPI generates for the same plain route
    schema = add_twin(create_app(settings), recommend.router).openapi()
    paths = schema["paths"]
    compared = 0
    for path, operations in paths.items():
        if path.startswith(TWIN):
            continue
        for method, operation in operations.items():
            if operation.get("tags") != ["recommendations"]:
                continue
            twin = dict(paths[TWIN + path][method])
            assert twin.pop("operationId") != operation["operationId"]
            assert {k: v for k, v in operation.items() if k != "operationId"} == twin
            compared += 1
    assert compared == 6
    # and what main published for them, written out
    published = {
        (path, method): (
            op["summary"],
            sorted(op["responses"]),
            [p["name"] for p in op.get("parameters", [])],
            "requestBody" in op,
            op["security"],
        )
        for path, ops in paths.items()
        if not path.startswith(TWIN)
        for method, op in ops.items()
        if op.get("tags") == ["recommendations"]
    }
    codes = ["200", "401", "403", "422", "429", "503"]
    recs = "/v1/users/{user_id}/recommendations"
    options = ["recent", "exclude", "device", "hour", "category", "diversity", "include_seen"]
    query = ["user_id", "k", *options, "placement", "explain", "page_view_id"]
    security = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert published == {
        (recs, "get"): ("Top-k items for a user", sorted([*codes, "409"]), query, False, security),
        (recs, "post"): (
            "Top-k items for a user, with request-time rules",
            sorted([*codes, "400", "409", "413", "415"]),
            query,
            True,
            security,
        ),
        ("/v1/items/{item_id}/together", "get"): (
            "Frequently bought or viewed together",
            sorted([*codes, "404", "409"]),
            ["item_id", "k", "explain"],
            False,
            security,
        ),
        ("/v1/items/{item_id}/similar", "get"): (
            "Items similar to an item",
            sorted([*codes, "404", "409"]),
            ["item_id", "k", "explain"],
            False,
            security,
        ),
        ("/v1/trending", "get"): (
            "What is picking up now",
            codes,
            ["k", "explain"],
            False,
            security,
        ),
        ("/v1/popular", "get"): (
            "The most popular items",
            codes,
            ["k", "explain"],
            False,
            security,
        ),
    }


@pytest.mark.parametrize("url", GETS)
@pytest.mark.parametrize(
    "query",
    [
        {},
        {"k": "3"},
        {"k": " 3", "explain": "off"},
        {"k": "0"},
        {"k": "ten"},
        {"k": ""},
        {"k": "501"},
        {"explain": "2"},
        {"explain": "maybe", "k": "0"},  # both, in declaration order
        {"kk": "3"},
        {"k": ["1", "2"]},
    ],
    ids=repr,
)
@pytest.mark.parametrize("model", ["single", "piped"])
def test_each_get_answers_as_its_fastapi_twin(
    request: pytest.FixtureRequest,
    keys: dict[str, dict[str, str]],
    model: str,
    url: str,
    query: dict[str, Any],
) -> None:
    ask: Ask = request.getfixturevalue(model)
    same_answer(*ask("GET", url, params=query, headers=keys["read"]))


def test_hand_written_answers(single: Ask, keys: dict[str, dict[str, str]]) -> None:
    got, _ = single(
        "GET", "/v1/popular", params={"explain": "maybe", "k": "0"}, headers=keys["read"]
    )
    assert got.status_code == 422
    assert got.json()["detail"] == [
        {"field": "k", "reason": "Input should be greater than or equal to 1"},
        {
            "field": "explain",
            "reason": "Input should be a valid boolean, unable to interpret input",
        },
    ]
    got, _ = single("GET", "/v1/items/i1/similar", params={"k": "2"}, headers=keys["read"])
    assert got.status_code == 200
    body = got.json()
    assert len(body["items"]) == 2 and body["item_id"] == "i1" and "explanations" not in body
    assert {i["sources"][0] for i in body["items"]} == {"similar"}
    assert got.headers["content-type"] == "application/json"
    got, _ = single("GET", "/v1/items/zzz/similar", headers=keys["read"])
    assert got.status_code == 404 and "item 'zzz' is unknown" in got.json()["detail"]
    got, _ = single("GET", "/v1/items/i1/together", headers=keys["read"])
    assert got.status_code == 409 and "to enable /together" in got.json()["detail"]


@pytest.mark.parametrize("url", ["/v1/items/zzz/similar", "/v1/items/%20/similar"])
def test_item_errors_answer_as_the_twin(
    piped: Ask, keys: dict[str, dict[str, str]], url: str
) -> None:
    same_answer(*piped("GET", url, headers=keys["read"]))
    same_answer(*piped("GET", url.replace("similar", "together"), headers=keys["read"]))


@pytest.mark.parametrize("url", GETS)
def test_the_key_is_checked_first_and_explain_needs_admin(
    piped: Ask, keys: dict[str, dict[str, str]], url: str
) -> None:
    bad = {"k": "0"}
    for headers in ({}, {"X-API-Key": "rsk_nope"}, keys["ingest"]):
        direct, twin = piped("GET", url, params=bad, headers=headers)
        assert direct.status_code in (401, 403)
        same_answer(direct, twin)
    direct, twin = piped("GET", url, params={"explain": "true"}, headers=keys["read"])
    assert direct.status_code == 403 and "'admin' scope" in direct.json()["detail"]
    same_answer(direct, twin)
    direct, twin = piped("GET", url, params={"explain": "true", "k": "3"}, headers=keys["admin"])
    answer = direct.json()
    assert direct.status_code == 200 and len(answer["explanations"]) == len(answer["items"]) > 0
    same_answer(direct, twin)
    same_answer(*piped("DELETE", url, headers=keys["read"]))


#: POST bodies and what FastAPI answered, before the key check where the body does not decode
BODIES: list[tuple[dict[str, Any], int]] = [
    ({"json": {}}, 200),
    ({"json": {"rules": []}}, 200),
    ({"json": {"rules": [{"type": "exclude", "items": ["i1"]}]}}, 200),
    ({}, 422),  # no body
    ({"content": b"null"}, 422),
    ({"content": b"[1]"}, 422),
    ({"json": {"x": 1}}, 422),
    ({"json": {"rules": "x"}}, 422),
    ({"json": {"rules": [{"type": "nope"}]}}, 422),
    ({"json": {"rules": [{}] * 51}}, 422),
    ({"content": b"{bad"}, 422),
    ({"content": b'{"rules": NaN}'}, 422),
    ({"content": b'{"rules": [], "rules": []}'}, 422),
    ({"content": b"{}", "headers": {"content-type": "application/json; charset=utf-8"}}, 200),
]


@pytest.mark.parametrize(("sent", "status"), BODIES, ids=[repr(b)[:60] for b, _ in BODIES])
@pytest.mark.parametrize("query", [{}, {"k": "2"}, {"k": "0"}, {"kk": "1"}], ids=repr)
def test_each_post_answers_as_its_fastapi_twin(
    piped: Ask, keys: dict[str, dict[str, str]], sent: dict[str, Any], status: int, query: Any
) -> None:
    headers = {**keys["read"], **sent.get("headers", {})}
    body = {k: v for k, v in sent.items() if k != "headers"}
    direct, twin = piped("POST", RECS, params=query, headers=headers, **body)
    same_answer(direct, twin)
    if not query:
        assert direct.status_code == status, direct.text
    if direct.status_code == 200 and sent.get("json", {}).get("rules"):  # the rule applied
        assert "i1" not in {i["item_id"] for i in direct.json()["items"]}


def test_post_errors_in_fastapis_order(piped: Ask, keys: dict[str, dict[str, str]]) -> None:
    # a body that does not decode is refused before the key is checked: FastAPI reads it first
    got, twin = piped("POST", RECS, content=b"{bad", params={"kk": "1"})
    assert got.status_code == 422
    assert got.json()["detail"][0]["field"] == "request"
    assert got.json()["detail"][0]["reason"].startswith(NOT_JSON)
    same_answer(got, twin)
    got, twin = piped("POST", RECS, json={"x": 1})  # decodes: the key first
    assert got.status_code == 401
    same_answer(got, twin)
    # query errors before body errors, all at once
    got, twin = piped("POST", RECS, params={"k": "0"}, json={"x": 1}, headers=keys["read"])
    assert got.json()["detail"] == [
        {"field": "k", "reason": "Input should be greater than or equal to 1"},
        {"field": "x", "reason": "unknown field (valid: rules)"},
    ]
    same_answer(got, twin)
    got, _ = piped("POST", RECS, content=b"[1]", headers=keys["read"])
    assert got.json()["detail"] == [{"field": "body", "reason": NOT_OBJECT}]
    got, _ = piped("POST", RECS, headers=keys["read"])
    assert got.json()["detail"] == [{"field": "body", "reason": "required"}]
    got, _ = piped("POST", RECS, json={"rules": [{"type": "nope"}]}, headers=keys["read"])
    assert got.status_code == 422 and got.json()["detail"][0]["field"].startswith("rules[0]")


def test_post_rules_on_a_single_model_are_a_409(
    single: Ask, keys: dict[str, dict[str, str]]
) -> None:
    rules = {"rules": [{"type": "exclude", "items": ["i1"]}]}
    direct, twin = single("POST", RECS, json=rules, headers=keys["read"])
    assert direct.status_code == 409
    same_answer(direct, twin)
    same_answer(*single("POST", RECS, json={}, headers=keys["read"]))


@pytest.fixture
def modelless(settings: Settings, store: EventStore) -> Iterator[Ask]:
    empty = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"model_dir": None})}
    )
    yield from (_both(c) for c in _client(empty, store, None))


@pytest.mark.parametrize("url", GETS)
def test_no_model_is_a_503_after_the_key_and_before_the_parameters(
    modelless: Ask, keys: dict[str, dict[str, str]], url: str
) -> None:
    assert modelless("GET", url, params={"k": "0"})[0].status_code == 401
    direct, twin = modelless("GET", url, params={"k": "0"}, headers=keys["read"])
    assert direct.status_code == 503 and "no model is loaded" in direct.json()["detail"]
    same_answer(direct, twin)
    direct, twin = modelless("POST", RECS, params={"k": "0"}, json={"x": 1}, headers=keys["read"])
    assert direct.status_code == 503
    same_answer(direct, twin)


@pytest.fixture
def limited(settings: Settings, pipeline: Pipeline, store: EventStore) -> Iterator[TestClient]:
    auth = settings.auth.model_copy(update={"rate_limits": {"read": "2/min"}})
    yield from _client(settings.model_copy(update={"auth": auth}), store, pipeline)


@pytest.mark.parametrize(("method", "url"), [("POST", RECS), *[("GET", u) for u in GETS[:4]]])
def test_the_read_rate_is_charged_per_request(
    limited: TestClient, keys: dict[str, dict[str, str]], method: str, url: str
) -> None:
    body = {"json": {}} if method == "POST" else {}
    ok = [limited.request(method, url, headers=keys["read"], **body) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    over = limited.request(method, url, params={"k": "0"}, headers=keys["read"], **body)
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "30"
    assert "over its read rate of 2 per 60 s" in over.json()["detail"]


def test_a_read_endpoint_without_what_the_solve_gives_is_refused_when_registered() -> None:
    """``_read_solved`` gives every read endpoint ``runtime`` and ``bundle``: an endpoint lacking
    one would answer each request with a 500, so registering it fails at once, naming it."""

    async def no_bundle(request: Any, runtime: Any) -> dict[str, str]:
        return {}

    routes_before = list(recommend.router.routes)
    with pytest.raises(TypeError, match=r"/late.*\['bundle'\]"):
        recommend._read_route("/late", "GET")(no_bundle)
    assert recommend.router.routes == routes_before


def test_a_read_request_is_answered_by_the_lean_app(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
) -> None:
    """Each read route's request, sent through the served app, runs the lean app the lane made
    (recorded by a wrapper around ``direct_route.lean``'s), not FastAPI's ``request_response``;
    its answer is the twin's."""
    ran: list[str] = []
    made = fast_lane.lean

    def recording(handler: Any) -> ASGIApp:
        app = made(handler)

        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            ran.append(scope["path"])
            await app(scope, receive, send)

        return recorded

    monkeypatch.setattr(fast_lane, "lean", recording)
    for client in _client(settings, store, bundle):
        ask = _both(client)
        for url in ["/v1/popular", "/v1/trending", "/v1/items/i1/similar"]:
            mine, twin = ask("GET", url)
            assert ran[-1] == url
            assert (mine.status_code, mine.json()) == (twin.status_code, twin.json())
        mine, twin = ask("POST", RECS, json={})
        assert ran[-1] == RECS
        assert (mine.status_code, mine.json()) == (twin.status_code, twin.json())
    assert TWIN not in "".join(ran)
