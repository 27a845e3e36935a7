"""``GET /v1/users/{user_id}/recommendations`` is answered without FastAPI's per-request solve
(``direct_route.solved_by``, ``route_params``): it must publish, refuse, admit and answer
exactly as the FastAPI-solved route did. Two oracles: hand-written expectations, and a
FastAPI-solved twin of the route in the same app (``solved_twin``: the ``POST`` route is direct
too, since BENCHMARKS §52)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fastapi.testclient import TestClient
from solved_twin import TWIN, add_twin

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.pipeline.config import MAX_LIST_LENGTH
from recsmith.serving import create_app, direct_route
from recsmith.serving.route_params import RouteParams
from recsmith.serving.routers import recommend
from recsmith.serving.routers.recommend import _DirectEveryMethod
from recsmith.store.base import EventStore

URL = "/v1/users/u1/recommendations"
INT = "Input should be a valid integer, unable to parse string as an integer"
BOOL = "Input should be a valid boolean, unable to interpret input"
FLOAT = "Input should be a valid number, unable to parse string as a number"
NOT_FINITE = "Input should be a finite number"


def printable(value: str) -> str:
    """The reason for text with a control character (was the pattern itself, a regex)."""
    return f"{value!r} is not text without control characters"


def placement(value: str) -> str:
    """The reason for a placement no pipeline file could name (``PLACEMENT_PATTERN``)."""
    return f"{value!r} is not a placement name: 1 to 64 letters, digits, '.', '_' or '-'"


#: one bad value per parameter, and the {field, reason} FastAPI answered for it
BAD: list[tuple[str, str, str]] = [
    ("k", "0", "Input should be greater than or equal to 1"),
    ("k", str(MAX_LIST_LENGTH + 1), f"Input should be less than or equal to {MAX_LIST_LENGTH}"),
    ("k", "ten", INT),
    ("k", "", INT),
    ("k", "2.5", INT),
    ("hour", "24", "Input should be less than or equal to 23"),
    ("hour", "-1", "Input should be greater than or equal to 0"),
    ("hour", "noon", INT),
    ("diversity", "1.5", "Input should be less than or equal to 1"),
    ("diversity", "-0.1", "Input should be greater than or equal to 0"),
    ("diversity", "lots", FLOAT),
    ("diversity", "nan", NOT_FINITE),
    ("diversity", "-inf", NOT_FINITE),
    ("include_seen", "maybe", BOOL),
    ("explain", "2", BOOL),
    ("device", "d" * 33, "String should have at most 32 characters"),
    ("placement", "p" * 65, "String should have at most 64 characters"),
    ("placement", "home\x01", placement("home\x01")),
    ("placement", "home\x85", placement("home\x85")),  # C1 (NEL), as the id rule refuses
    ("placement", "a b", placement("a b")),  # a name no [placements.NAME] can hold
    ("placement", "café", placement("café")),
    ("placement", "a/b", placement("a/b")),
    ("page_view_id", "", "String should have at least 1 character"),
    ("page_view_id", "v" * 129, "String should have at most 128 characters"),
    ("page_view_id", "view\x7f", printable("view\x7f")),
]


@pytest.fixture
def direct(settings: Settings, bundle: ModelBundle, store: EventStore) -> Iterator[TestClient]:
    """A client of the app with the route's FastAPI-solved twin under ``TWIN``; the route
    itself is the direct one (not FastAPI's handler)."""
    routes = [
        r
        for r in recommend.router.routes
        if getattr(r, "path", "") == "/v1/users/{user_id:id}/recommendations"
        and "GET" in getattr(r, "methods", ())
    ]
    assert [type(r) for r in routes] == [_DirectEveryMethod]
    app = add_twin(create_app(settings, bundle=bundle, store=store), recommend.router)
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("name", "value", "reason"), BAD, ids=[f"{n}={v[:8]!r}" for n, v, _ in BAD]
)
def test_each_bad_parameter_is_a_422_naming_it_as_fastapi_did(
    direct: TestClient, keys: dict[str, dict[str, str]], name: str, value: str, reason: str
) -> None:
    got = direct.get(URL, params={name: value}, headers=keys["read"])
    assert got.status_code == 422
    assert got.json() == {"detail": [{"field": name, "reason": reason}]}
    # the twin is solved by FastAPI from the same declarations
    twin = direct.get(TWIN + URL, params={name: value}, headers=keys["read"])
    assert (twin.status_code, twin.json()) == (422, got.json())


def test_every_bad_parameter_is_named_at_once_in_declaration_order(
    direct: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    query = {"diversity": "2", "k": "0", "page_view_id": "", "hour": "25"}  # not in that order
    got = direct.get(URL, params=query, headers=keys["read"])
    assert got.status_code == 422
    assert got.json()["detail"] == [
        {"field": "k", "reason": "Input should be greater than or equal to 1"},
        {"field": "hour", "reason": "Input should be less than or equal to 23"},
        {"field": "diversity", "reason": "Input should be less than or equal to 1"},
        {"field": "page_view_id", "reason": "String should have at least 1 character"},
    ]


def test_values_are_read_as_fastapi_reads_them(
    direct: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    # lax forms pydantic accepts: " 3" and "3.0" for 3, "off"/"no"/"0" for False
    for k, explain in (("3", "off"), ("3.0", "no"), (" 3", "0")):
        got = direct.get(URL, params={"k": k, "explain": explain}, headers=keys["read"])
        assert got.status_code == 200, got.json()
        assert len(got.json()["items"]) == 3
    # an unknown or repeated parameter is still refused before anything else is read
    unknown = direct.get(URL, params={"kk": "3"}, headers=keys["read"])
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["field"] == "kk"
    twice = direct.get(f"{URL}?k=1&k=50", headers=keys["read"])
    assert twice.status_code == 422
    assert twice.json()["detail"][0]["field"] == "k"


def _without_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "recommendation_id"}


def test_the_answer_is_the_fastapi_solved_twins_byte_for_byte(
    direct: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    query = {"k": "4", "device": "mobile", "hour": "9", "exclude": "i1,i2"}
    got = direct.get(URL, params=query, headers=keys["read"])
    twin = direct.get(TWIN + URL, params=query, headers=keys["read"])
    assert got.status_code == twin.status_code == 200
    assert got.headers["content-type"] == twin.headers["content-type"] == "application/json"
    assert (
        got.headers["x-request-id"] and got.headers["x-request-id"] != twin.headers["x-request-id"]
    )
    # the same bytes but for the 32 hex digits of the recommendation id
    a, b = got.json()["recommendation_id"], twin.json()["recommendation_id"]
    assert got.content.replace(a.encode(), b"-") == twin.content.replace(b.encode(), b"-")
    assert _without_id(got.json()) == _without_id(twin.json())
    assert not {"i1", "i2"} & {i["item_id"] for i in got.json()["items"]}


def test_the_key_check_comes_first_then_the_model_then_the_parameters(
    settings: Settings, store: EventStore, direct: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    bad_k = {"k": "0"}
    none = direct.get(URL, params=bad_k)
    assert none.status_code == 401
    assert none.headers["WWW-Authenticate"] == "Bearer"
    assert "an API key is required" in none.json()["detail"]
    wrong = direct.get(URL, params=bad_k, headers={"X-API-Key": "rsk_nope"})
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid API key")
    ingest = direct.get(URL, params=bad_k, headers=keys["ingest"])
    assert ingest.status_code == 403
    assert "lacks the 'read' scope" in ingest.json()["detail"]
    assert (
        direct.get(URL, headers={"X-API-Key": keys["read"]["Authorization"][7:]}).status_code == 200
    )
    # no model loaded: the 503 comes before the parameters are read, as FastAPI's dependency did
    empty = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"model_dir": None})}
    )
    with TestClient(create_app(empty, store=store)) as modelless:
        got = modelless.get(URL, params=bad_k, headers=keys["read"])
        assert got.status_code == 503
        assert "no model is loaded" in got.json()["detail"]


#: (user, query string, key scope or None) in an order that puts every query string after one
#: the route remembers: again, with another user, without a key, after a refused one, in
#: another case or encoding (the memo's key is the query string's bytes as sent)
ASKED: list[tuple[str, str, str | None]] = [
    ("u1", "k=3", "read"),
    ("u1", "k=3", "read"),
    ("u2", "k=3", "read"),
    ("u1", "k=3", None),
    ("u1", "k=3", "ingest"),
    ("u1", "k=0", "read"),
    ("u1", "k=0", "read"),
    ("u1", "k=3&kk=1", "read"),
    ("u1", "k=3&k=3", "read"),
    ("u1", "K=3", "read"),
    ("u1", "k=%33", "read"),
    ("u1", "k=3", "read"),
    ("u1", "", "read"),
    ("u1", "", "read"),
    ("u1", "k=5&hour=9", "read"),
    ("u1", "hour=9&k=5", "read"),
    ("u1", "k=5&hour=9", "read"),
    ("u1", "k=5&hour=24", "read"),
    ("u1", "k=5&hour=9", "read"),
    (" ", "k=3", "read"),
]


def test_a_query_string_asked_again_answers_as_the_first_time(
    direct: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """The route remembers what a query string it read without an error gave
    (``direct_route``). Oracles: the FastAPI-solved twin, which reads every request afresh
    (status and body but the list's id), and the list's length asked (default 10)."""
    for user, query, scope in ASKED:
        url = f"/v1/users/{user}/recommendations?{query}"
        headers = keys[scope] if scope else {}
        got, twin = direct.get(url, headers=headers), direct.get(TWIN + url, headers=headers)
        assert got.status_code == twin.status_code, url
        assert _without_id(got.json()) == _without_id(twin.json()), url
        if got.status_code == 200:
            k = int(dict(parse_qsl(query)).get("k", 10))
            assert len(got.json()["items"]) == k, url
    statuses = [
        direct.get(f"/v1/users/{u}/recommendations?{q}", headers=keys[s] if s else {}).status_code
        for u, q, s in ASKED
    ]
    assert statuses == [
        200,
        200,
        200,
        401,
        403,
        422,
        422,
        422,
        422,
        422,
        200,
        200,
        200,
        200,
        200,
        200,
        200,
        422,
        200,
        422,
    ]


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The query strings ``RouteParams.query`` reads, in order."""
    read: list[bytes] = []
    query = RouteParams.query

    def counted(self: RouteParams, request: Any) -> Any:
        read.append(request.scope["query_string"])
        return query(self, request)

    monkeypatch.setattr(RouteParams, "query", counted)
    return read


def test_a_remembered_query_string_is_read_once_and_the_memo_stays_bounded(
    direct: TestClient,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    reads: list[bytes],
) -> None:
    """What the memo is for: a query string asked again is not parsed or validated again; one
    that was refused, or is longer than ``QUERY_MEMO_LENGTH``, is read every time; past
    ``QUERY_MEMO_MAX`` query strings the memo starts again."""
    monkeypatch.setattr(direct_route, "QUERY_MEMO_MAX", 2)
    long = "k=4&device=" + "d" * 32 + "&placement=" + "p" * 64 + "&page_view_id=" + "v" * 128
    assert len(long) > direct_route.QUERY_MEMO_LENGTH
    for text in ["k=3", "k=3", "k=0", "k=0", long, long, "k=3", "k=4", "k=3", "k=5", "k=3"]:
        direct.get(f"{URL}?{text}", headers=keys["read"])
    # k=3 remembered; k=0 refused and long too long: read each time; k=4 fills the memo (2),
    # k=5 empties it first, so k=3 is read again at the end
    assert [r.decode() for r in reads] == ["k=3", "k=0", "k=0", long, long, "k=4", "k=5", "k=3"]


def test_a_query_string_of_exactly_the_memo_length_is_remembered(
    direct: TestClient, keys: dict[str, dict[str, str]], reads: list[bytes]
) -> None:
    """``QUERY_MEMO_LENGTH`` is the longest remembered, itself included."""
    exact = "k=4&device=" + "d" * 32 + "&placement=" + "p" * 64 + "&page_view_id=" + "v" * 124
    assert len(exact) == direct_route.QUERY_MEMO_LENGTH
    for _ in range(3):
        assert direct.get(f"{URL}?{exact}", headers=keys["read"]).status_code == 200
    assert reads == [exact.encode()]


@pytest.fixture
def limited(settings: Settings, bundle: ModelBundle, store: EventStore) -> Iterator[TestClient]:
    auth = settings.auth.model_copy(update={"rate_limits": {"read": "2/min"}})
    with TestClient(
        create_app(settings.model_copy(update={"auth": auth}), bundle=bundle, store=store)
    ) as client:
        yield client


def test_the_read_rate_is_charged_per_request(
    limited: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert [limited.get(URL, headers=keys["read"]).status_code for _ in range(2)] == [200, 200]
    over = limited.get(URL, params={"k": "0"}, headers=keys["read"])  # refused before its k
    assert over.status_code == 429
    assert over.headers["Retry-After"] == "30"
    assert "over its read rate of 2 per 60 s" in over.json()["detail"]
    assert limited.get(URL, headers=keys["admin"]).status_code == 200  # a bucket of its own


def test_a_method_the_path_does_not_take_is_a_405_naming_get_and_post(direct: TestClient) -> None:
    got = direct.delete(URL)
    assert got.status_code == 405
    assert got.headers["Allow"] == "GET, POST"


def test_the_published_operation_is_the_post_twins_less_its_body() -> None:
    schema = create_app(Settings()).openapi()
    path = schema["paths"]["/v1/users/{user_id}/recommendations"]
    get, post = path["get"], path["post"]
    assert get["operationId"] == "recommend_v1_users__user_id__recommendations_get"
    assert get["parameters"] == post["parameters"]
    assert get["security"] == post["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    assert "requestBody" not in get
    named = [(p["name"], p["in"], p["required"]) for p in get["parameters"]]
    assert named == [
        ("user_id", "path", True),
        *[
            (n, "query", False)
            for n in (
                "k",
                "recent",
                "exclude",
                "device",
                "hour",
                "category",
                "diversity",
                "include_seen",
                "placement",
                "explain",
                "page_view_id",
            )
        ],
    ]
    k = get["parameters"][1]["schema"]["anyOf"][0]
    assert (k["type"], k["minimum"], k["maximum"]) == ("integer", 1, MAX_LIST_LENGTH)
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecommendationResponse"
    }
