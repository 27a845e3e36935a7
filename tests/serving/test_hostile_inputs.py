"""Hostile input at every door of a real server (uvicorn, real sockets), beyond the schema
fuzzer (``test_openapi_fuzz``), which only sends what a schema can describe.

Each hostile request is answered with the status written here by hand and a JSON body naming the
field and why; never a 5xx, a traceback or a reset connection. A refused request stores nothing
(the row count of every table but the audit trail is the same before and after), a batch keeps
its valid records and rejects each hostile one at its index, and the server is healthy at the
end with no traceback in its log. The import file and CLI arguments get the same campaign.

Bugs this campaign found (each fixed, each case below failed before): ``?after_id`` or
``?version`` past 2**63 (500, SQLite overflow); a model body's ``NaN`` and repeated keys read
leniently (``{"name": "a", "name": "b"}`` created a key called "b"); a body without a
Content-Type refused as "not a dictionary"; a body sent to a route taking none silently ignored
(the replay of *every* dead letter); percent-encoded non-UTF-8 in a URL read as U+FFFD (two
different ids one person); ``recent``/``exclude`` ids, ``placement`` and ``page_view_id`` with
control characters accepted; a repeated query parameter read silently; two keys in one request;
a JSONL line nested too deep or with a 5000-digit number stopping ``recsmith import`` with a
traceback; ``--since 99999999999d`` a traceback.
"""

from __future__ import annotations

import gzip
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer, live_server
from typer.testing import CliRunner

from recsmith.cli.app import app as cli
from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow  # a real server process

LIMIT = 100_000  # serving.max_body_bytes here: "huge" bodies stay cheap to send
SCOPES = ("ingest", "read", "admin")
REPEATED = "repeated key: a JSON object must name each key once (which value is meant?)"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Served:
    server: LiveServer
    db: Path
    secrets: dict[str, str]

    def auth(self, scope: str | None) -> dict[str, str]:
        return {} if scope is None else {"Authorization": f"Bearer {self.secrets[scope]}"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("hostile")
    db = tmp / "hostile.sqlite"
    store = SQLiteStore(db)
    secrets = {scope: create_api_key(store, f"h-{scope}", [scope])[1] for scope in SCOPES}
    store.close()
    settings = Settings(
        store={"url": f"sqlite:///{db}"},
        serving={"model_dir": bundle_dir, "max_body_bytes": LIMIT},
        privacy={"erase_settle_s": 0},
    )
    with live_server(settings, tmp, ready_s=120) as server:  # a loaded CI machine is slow
        yield Served(server, db, secrets)
        log = server.log.read_text()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def http(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.server.base, timeout=30) as client:
        yield client


def _rows(db: Path) -> dict[str, int]:
    """Rows per table, but those a refusal writes on purpose: the audit trail (a refused admin
    action is audited) and the dead letters (an ingest route keeps a refused record, with its
    reasons, for ``deadletters replay``)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in tables
            if t not in ("audit_log", "dead_letters", "sqlite_sequence")
        }


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"h-{time.monotonic_ns()}",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "timestamp": time.time() - 60,
        **fields,
    }


def _body(record: str) -> bytes:
    """A one-event batch around a hand-written record (a dict cannot hold NaN or a repeat)."""
    event = '"event_id": "x", "user_id": "u1", "item_id": "i1", "event_type": "view"'
    return f"[{{{event}, {record}}}]".encode()


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer written down for it: ``status``, and ``names`` the
    field of a 422 (``{field, reason}``) or a word of another status's ``detail``."""

    id: str
    method: str
    url: str
    status: int
    names: str
    scope: str | None = "admin"
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reason: str = ""  # a part of the 422's reason, where it matters


def _j(value: Any) -> bytes:
    return json.dumps(value).encode()


DEEP = b"[" * 40_000 + b"]" * 40_000  # 80 kB: the decoder's recursion, not the size limit
DIGITS = b"9" * 5000
CASES = [
    # -- bodies: depth, numbers at the edges, repeated keys, wrong text
    Case("events deep", "POST", "/v1/events", 422, "request", "ingest", DEEP, reason="deep"),
    Case("item deep", "PUT", "/v1/items/x1", 422, "request", content=DEEP, reason="deep"),
    Case("keys deep", "POST", "/v1/admin/keys", 422, "request", content=DEEP, reason="deep"),
    Case("consent deep", "PUT", "/v1/users/u1/consent", 422, "request", content=DEEP),
    Case("events digits", "POST", "/v1/events", 422, "request", "ingest", b"[" + DIGITS + b"]"),
    Case(
        "keys digits",
        "POST",
        "/v1/admin/keys",
        422,
        "request",
        content=b'{"name":' + DIGITS + b"}",
        reason="more than 4300 digits",
    ),
    Case(
        "events NaN",
        "POST",
        "/v1/events",
        422,
        "request",
        "ingest",
        _body('"value": NaN'),
        reason="NaN is not valid JSON",
    ),
    Case(
        "keys NaN",
        "POST",
        "/v1/admin/keys",
        422,
        "request",
        content=b'{"name": "n", "scopes": ["read"], "expires": NaN}',
        reason="NaN",
    ),
    Case(
        "rules Infinity",
        "PUT",
        "/v1/admin/rules",
        422,
        "body",
        content=b'{"rules": [{"type": "boost", "property": "category", "equals": "a", '
        b'"factor": Infinity}]}',
        reason="Infinity",
    ),
    Case(
        "profile -Infinity",
        "PUT",
        "/v1/users/u1",
        422,
        "request",
        content=b'{"properties": {"age": -Infinity}}',
    ),
    Case(
        "item 1e309",
        "PUT",
        "/v1/items/x1",
        422,
        "properties",
        content=b'{"properties": {"price": 1e309}}',
        reason="finite",
    ),
    Case(
        "consent repeated",
        "PUT",
        "/v1/users/u1/consent",
        422,
        "personalization",
        content=b'{"personalization": true, "personalization": false, "tracking": true}',
        reason=REPEATED,
    ),
    Case(
        "keys repeated",
        "POST",
        "/v1/admin/keys",
        422,
        "name",
        content=b'{"name": "a", "name": "b", "scopes": ["read"]}',
        reason=REPEATED,
    ),
    Case(
        "alias repeated",
        "POST",
        "/v1/users/u1/aliases",
        422,
        "session_id",
        content=b'{"session_id": "s1", "session_id": "s2"}',
        reason=REPEATED,
    ),
    Case(
        "rules repeated nested",
        "POST",
        "/v1/admin/rules/validate",
        422,
        "rules[0].factor",
        content=b'{"rules": [{"type": "boost", "property": "c", "equals": "a", "factor": 2, '
        b'"factor": 3}]}',
        reason=REPEATED,
    ),
    Case(
        "keys no content type",
        "POST",
        "/v1/admin/keys",
        422,
        "scopes",
        content=b'{"name": "a", "scopes": []}',
        headers={"Content-Type": ""},
    ),
    Case(
        "keys surrogate",
        "POST",
        "/v1/admin/keys",
        422,
        "name",
        content=b'{"name": "\\ud800", "scopes": ["read"]}',
    ),
    Case(
        "alias surrogate",
        "POST",
        "/v1/users/u1/aliases",
        422,
        "session_id",
        content=b'{"session_id": "\\udfff"}',
        reason="lone surrogate",
    ),
    Case(
        "keys NUL name",
        "POST",
        "/v1/admin/keys",
        422,
        "name",
        content=_j({"name": "a\x00b", "scopes": ["read"]}),
    ),
    Case(
        "keys NUL scope",
        "POST",
        "/v1/admin/keys",
        422,
        "scopes.0",
        content=_j({"name": "a", "scopes": ["read\x00"]}),
    ),
    Case(
        "alias overlong",
        "POST",
        "/v1/users/u1/aliases",
        422,
        "session_id",
        content=_j({"session_id": "s" * 257}),
        reason="longer than 256",
    ),
    Case(
        "alias traversal",
        "POST",
        "/v1/users/u1/aliases",
        422,
        "device_id",
        content=_j({"device_id": "../../etc/passwd"}),
        reason="'/'",
    ),
    Case(
        "keys __proto__",
        "POST",
        "/v1/admin/keys",
        422,
        "__proto__",
        content=_j({"name": "a", "scopes": ["read"], "__proto__": {"scopes": ["admin"]}}),
    ),
    Case(
        "item constructor",
        "PUT",
        "/v1/items/x2",
        422,
        "properties.constructor",
        content=_j({"properties": {"constructor": {"prototype": {"admin": True}}}}),
    ),
    Case(
        "consent not bool",
        "PUT",
        "/v1/users/u1/consent",
        422,
        "personalization",
        content=_j({"personalization": "yes", "tracking": True}),
    ),
    Case("consent array", "PUT", "/v1/users/u1/consent", 422, "body", content=_j([1])),
    Case(
        "invalid UTF-8",
        "POST",
        "/v1/events",
        422,
        "request",
        "ingest",
        b'[{"user_id": "\xff"}]',
        reason="utf-8",
    ),
    Case(
        "UTF-16 charset",
        "POST",
        "/v1/events",
        415,
        "UTF-8",
        "ingest",
        b"[]",
        {"Content-Type": "application/json; charset=utf-16"},
    ),
    Case(
        "text/plain",
        "POST",
        "/v1/events",
        415,
        "text/plain",
        "ingest",
        b"[]",
        {"Content-Type": "text/plain"},
    ),
    Case(
        "form",
        "POST",
        "/v1/admin/keys",
        415,
        "x-www-form-urlencoded",
        content=b"name=a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "gzip bomb",
        "POST",
        "/v1/events",
        413,
        "decompressed",
        "ingest",
        gzip.compress(b"[" + b" " * 2_000_000 + b"]"),
        {"Content-Encoding": "gzip"},
    ),
    Case(
        "not gzip", "POST", "/v1/events", 400, "gzip", "ingest", b"[]", {"Content-Encoding": "gzip"}
    ),
    Case("brotli", "POST", "/v1/events", 415, "br", "ingest", b"[]", {"Content-Encoding": "br"}),
    Case("huge body", "POST", "/v1/events", 413, "max_body_bytes", "ingest", b" " * (LIMIT + 1)),
    Case(
        "body to no-body route",
        "POST",
        "/v1/admin/dead-letters/replay",
        422,
        "body",
        content=_j({"reason": "timestamp"}),
        reason="query parameters (reason, since)",
    ),
    Case("body to rollback", "POST", "/v1/admin/rollback", 422, "body", content=_j({"to": "x"})),
    # -- query parameters
    Case("k NaN", "GET", "/v1/popular?k=NaN", 422, "k", "read"),
    Case("k 1e309", "GET", "/v1/trending?k=1e309", 422, "k", "read"),
    Case("k -0", "GET", "/v1/users/u1/recommendations?k=-0", 422, "k", "read"),
    Case("k 5000 digits", "GET", "/v1/items/i1/similar?k=" + "9" * 5000, 422, "k", "read"),
    Case("k twice", "GET", "/v1/popular?k=1&k=50", 422, "k", "read", reason="more than once"),
    Case(
        "diversity NaN",
        "GET",
        "/v1/users/u1/recommendations?diversity=NaN",
        422,
        "diversity",
        "read",
    ),
    Case(
        "diversity Infinity",
        "GET",
        "/v1/users/u1/recommendations?diversity=Infinity",
        422,
        "diversity",
        "read",
    ),
    Case(
        "recent NUL",
        "GET",
        "/v1/users/u1/recommendations?recent=i1,%00",
        422,
        "recent",
        "read",
        reason="id 2 of the list contains control characters",
    ),
    Case(
        "exclude traversal",
        "GET",
        "/v1/users/u1/recommendations?exclude=..%2F..%2Fetc",
        422,
        "exclude",
        "read",
        reason="'/'",
    ),
    Case(
        "recent overlong",
        "GET",
        "/v1/users/u1/recommendations?recent=" + "a" * 257,
        422,
        "recent",
        "read",
        reason="longer than 256",
    ),
    Case(
        "placement CRLF",
        "GET",
        "/v1/users/u1/recommendations?placement=a%0d%0aSet-Cookie:x",
        422,
        "placement",
        "read",
    ),
    Case(
        "placement space",
        "GET",
        "/v1/users/u1/recommendations?placement=a%20b",
        422,
        "placement",
        "read",
        reason="placement name",
    ),
    Case(
        "placement unicode",
        "GET",
        "/v1/users/u1/recommendations?placement=caf%C3%A9",
        422,
        "placement",
        "read",
        reason="letters, digits",
    ),
    Case(
        "placement slash POST",
        "POST",
        "/v1/users/u1/recommendations?placement=a%2Fb",
        422,
        "placement",
        "read",
        _j({"rules": []}),
        reason="placement name",
    ),
    Case(
        "placement overlong",
        "GET",
        "/v1/users/u1/recommendations?placement=" + "p" * 65,
        422,
        "placement",
        "read",
    ),
    Case(
        "page view NUL",
        "GET",
        "/v1/users/u1/recommendations?page_view_id=%00",
        422,
        "page_view_id",
        "read",
    ),
    Case(
        "query not UTF-8",
        "GET",
        "/v1/admin/dead-letters?reason=%ED%A0%80",
        422,
        "reason",
        reason="not UTF-8",
    ),
    Case(
        "after_id past int64", "GET", "/v1/admin/dead-letters?after_id=" + "9" * 23, 422, "after_id"
    ),
    Case("rules version past int64", "GET", "/v1/admin/rules?version=" + "9" * 23, 422, "version"),
    Case("audit limit digits", "GET", "/v1/admin/audit?limit=" + "9" * 5000, 422, "limit"),
    Case("since NaN", "GET", "/v1/admin/audit?since=NaN", 422, "since"),
    Case("since far", "GET", "/v1/admin/kpis?since=99999999999d", 422, "since"),
    Case("unknown parameter", "GET", "/v1/popular?k=1&__proto__=1", 422, "__proto__", "read"),
    # -- ids in the path
    Case("path NUL", "GET", "/v1/users/%00/recommendations", 422, "user_id", "read"),
    Case("path CRLF", "GET", "/v1/users/a%0d%0aSet-Cookie:%20x=1/export", 422, "user_id"),
    Case("path overlong", "DELETE", "/v1/users/" + "u" * 257, 422, "user_id"),
    Case("path surrogate", "GET", "/v1/users/%ED%A0%80/export", 422, "path", reason="not UTF-8"),
    Case("path not UTF-8", "GET", "/v1/users/%FF%FE/recommendations", 422, "path", "read"),
    # an encoded '/' splits the id when the server decodes the path: that id's 422, not a 404
    Case("path %2F", "GET", "/v1/users/..%2F..%2Fetc/export", 422, "user_id", reason="'/'"),
    Case("path %2F item", "GET", "/v1/items/..%2Fi1/similar", 422, "item_id", "read", reason="'/'"),
    Case("key id SQL", "DELETE", "/v1/admin/keys/1%20OR%201=1", 422, "key_id"),
    Case("decision id NUL", "GET", "/v1/admin/decisions/%00", 422, "recommendation_id"),
    Case("alias NUL", "DELETE", "/v1/users/u1/aliases/%00", 422, "alias"),
    Case("history NUL", "GET", "/v1/admin/users/%00/history", 422, "user_id"),
    Case("item SQL", "GET", "/v1/items/i1'%20OR%201=1--/similar", 404, "unknown", "read"),
    # -- keys: the wrong scope for the route
    Case("read key, admin route", "GET", "/v1/admin/keys", 403, "admin", "read"),
    Case("ingest key, read route", "GET", "/v1/popular", 403, "read", "ingest"),
    Case(
        "read key, explain",
        "GET",
        "/v1/users/u1/recommendations?explain=true",
        403,
        "admin",
        "read",
    ),
    Case("no key", "DELETE", "/v1/users/u1", 401, "key", None),
]
# the admin routes that would take an id otherwise passed on to a file path
CASES += [
    Case(f"deploy {v}", "POST", f"/v1/admin/releases/{v}/deploy", 404, "Not Found")
    for v in ("..", ".")
]
CASES += [
    Case("deploy ..%2F..%2Ftmp", "POST", "/v1/admin/releases/..%2F..%2Ftmp/deploy", 422, "version")
]


def _answer(served: Served, http: httpx.Client, case: Case) -> httpx.Response:
    headers = {**served.auth(case.scope), **JSON, **case.headers}
    headers = {k: v for k, v in headers.items() if v}  # "" drops a header
    return http.request(case.method, case.url, content=case.content, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_hostile_request_is_refused_naming_the_field(
    served: Served, http: httpx.Client, case: Case
) -> None:
    before = _rows(served.db)
    response = _answer(served, http, case)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json", response.text
    assert "set-cookie" not in response.headers
    detail = response.json()["detail"]
    if case.status == 422:
        named = {e["field"]: e["reason"] for e in detail}
        assert case.names in named, detail
        assert case.reason in named[case.names], detail
    else:
        assert case.names in detail, detail
    assert _rows(served.db) == before  # nothing stored


def test_any_name_a_placement_can_have_is_served(served: Served, http: httpx.Client) -> None:
    for name in ("home", "product_page", "cart-2", "email.v2", "_x", "p" * 64):
        listed = http.get(
            f"/v1/users/u1/recommendations?k=2&placement={name}", headers=served.auth("read")
        )
        assert listed.status_code == 200, (name, listed.text)


def test_a_batch_keeps_its_valid_records_and_rejects_each_hostile_one(
    served: Served, http: httpx.Client
) -> None:
    sql = "x' OR 1=1; DROP TABLE events;--"
    records = [
        _event(user_id=sql, item_id="i1"),  # 0: a valid id, stored as those characters
        _event(user_id="a\x00b"),  # 1
        _event(user_id="\ud800"),  # 2
        _event(item_id="../../etc/passwd"),  # 3
        _event(session_id="s" * 257),  # 4
        _event(__proto__={"admin": True}),  # 5
        _event(timestamp=10**30),  # 6
        _event(user_id="u-ok", item_id="i2", value=-0.0),  # 7: valid
        _event(context={"constructor": "x", "__proto__": "y"}),  # 8: valid, keys are data
    ]
    text = json.dumps(records, ensure_ascii=True)
    repeated = text.replace('"user_id": "u-ok",', '"user_id": "u-ok", "user_id": "u-other",')
    records.append(_event(user_id="u-rep"))
    text = (
        repeated[:-1]
        + ", "
        + json.dumps(records[-1]).replace('"event_type"', '"item_id": "i9", "event_type"')
        + "]"
    )  # 9: the item_id twice
    response = http.post(
        "/v1/events", content=text.encode(), headers={**served.auth("ingest"), **JSON}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    rejected = {r["index"]: [e["field"] for e in r["errors"]] for r in result["rejected"]}
    assert rejected == {
        1: ["user_id"],
        2: ["user_id"],
        3: ["item_id"],
        4: ["session_id"],
        5: ["__proto__"],
        6: ["timestamp"],
        7: ["user_id"],  # repeated
        9: ["item_id"],  # repeated
    }
    assert result["accepted"] == 2
    with sqlite3.connect(f"file:{served.db}?mode=ro", uri=True) as conn:
        users = {r[0] for r in conn.execute("SELECT user_id FROM events")}
        letters = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
    assert users == {sql, "u1"}  # the SQL-looking id is data, and the table is still there
    assert letters >= 8
    exported = http.get(f"/v1/users/{sql}/export", headers=served.auth("admin"))
    assert [e["user_id"] for e in exported.json()["events"]] == [sql]


@dataclass(frozen=True)
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def _raw(server: LiveServer, head: bytes) -> RawAnswer:
    """One request written byte for byte (httpx refuses to send malformed headers)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):  # ``Connection: close``: read to the end
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return RawAnswer(int(status_line.split()[1]), headers, body)


def _get(path: str, *headers: bytes) -> bytes:
    return b"".join(
        [f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n".encode(), *headers, b"\r\n"]
    )


def test_authorization_header_tricks(served: Served) -> None:
    admin, read = (served.secrets[s].encode() for s in ("admin", "read"))
    cases = [
        (b"Authorization: Bearer \r\n", 401, "carries no key"),
        (b"Authorization: Bearer\r\n", 401, "carries no key"),
        (b"Authorization: Basic YTpi\r\n", 401, "Basic"),
        (b"Authorization: " + admin + b"\r\n", 401, "scheme"),
        (b"Authorization: Bearer \xc3\xa9\xff\r\n", 401, "invalid API key"),
        (b"Authorization: Bearer " + admin + b"x\r\n", 401, "invalid API key"),
        (b"Authorization: Bearer " + admin[:-1] + b"\r\n", 401, "invalid API key"),
        (b"Authorization: Bearer " + b"k" * 60_000 + b"\r\n", 401, "invalid API key"),
        (b"X-API-Key: \r\n", 401, "required"),
        (b"Authorization: Bearer " + read + b"\r\n", 403, "lacks the 'admin' scope"),
        # two keys: whichever the server took, the audit would name the other
        (
            b"Authorization: Bearer " + read + b"\r\nAuthorization: Bearer " + admin + b"\r\n",
            401,
            "more than one key",
        ),
        (b"X-API-Key: " + read + b"\r\nAuthorization: Bearer " + admin + b"\r\n", 401, "one key"),
    ]
    for header, status, says in cases:
        answer = _raw(served.server, _get("/v1/admin/keys", header))
        assert answer.status == status, (header[:60], answer)
        assert says in json.loads(answer.body)["detail"], (header[:60], answer.body)
    # optional whitespace around the key is the header's, not the key's (RFC 9110 5.5)
    for header in (
        b"Authorization: Bearer " + admin + b"  \r\n",
        b"X-API-Key:  " + admin + b"\r\n",
    ):
        assert _raw(served.server, _get("/v1/admin/keys", header)).status == 200


def test_malformed_http_is_a_400_not_a_reset(served: Served) -> None:
    """A NUL or a bare CR in a header breaks HTTP itself: uvicorn's parser answers 400 (its own
    text body, before any app code runs), and the connection is answered, not reset."""
    admin = served.secrets["admin"].encode()
    for header in (b"Authorization: Bearer " + admin + b"\x00\r\n", b"X-Id: a\rSet-Cookie: x\r\n"):
        answer = _raw(served.server, _get("/v1/admin/keys", header))
        assert answer.status == 400, answer
        assert "set-cookie" not in answer.headers


def test_ids_are_never_echoed_into_headers(served: Served) -> None:
    """A CR LF in an id never reaches a response header: the id is refused first."""
    answer = _raw(
        served.server,
        _get(
            "/v1/users/a%0d%0aSet-Cookie:%20evil=1/recommendations",
            b"X-API-Key: " + served.secrets["read"].encode() + b"\r\n",
        ),
    )
    assert answer.status == 422
    assert "set-cookie" not in answer.headers


def test_the_server_is_healthy_after_the_campaign(served: Served, http: httpx.Client) -> None:
    assert http.get("/health/ready").status_code == 200
    listed = http.get("/v1/users/u1/recommendations?k=3", headers=served.auth("read"))
    assert listed.status_code == 200 and len(listed.json()["items"]) == 3
    with sqlite3.connect(f"file:{served.db}?mode=ro", uri=True) as conn:
        names = sorted(r[0] for r in conn.execute("SELECT name FROM api_keys"))
    assert names == sorted(f"h-{s}" for s in SCOPES)  # no key came of the hostile bodies
    # a filter names a known action (tests/governance: and reaches SQL only as a parameter)
    audit = http.get("/v1/admin/audit", headers=served.auth("admin")).json()
    assert audit  # the export above is audited
    injected = http.get("/v1/admin/audit?action=x' OR '1'='1", headers=served.auth("admin"))
    assert injected.status_code == 422 and injected.json()["detail"][0]["field"] == "action"


# -- the import door and the CLI's arguments -----------------------------------------------------

GOOD = (
    '{"event_id": "g%d", "user_id": "u1", "item_id": "i%d", "event_type": "view", '
    '"timestamp": 1700000000}'
)
HOSTILE_LINES = [  # (line, the field its dead letter names, a part of the reason)
    (
        '{"event_id": "e1", "user_id": "u1", "item_id": "i1", "event_type": "view", '
        '"timestamp": NaN}',
        "record",
        "NaN is not valid JSON",
    ),
    (
        '{"event_id": "e2", "user_id": "u1", "user_id": "u9", "item_id": "i1", '
        '"event_type": "view", "timestamp": 1700000000}',
        "user_id",
        "repeated key",
    ),
    ("[" * 5000 + "]" * 5000, "record", "nested too deeply"),
    (
        '{"event_id": "e3", "user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": '
        + "9" * 5000
        + "}",
        "record",
        "more than 4300 digits",
    ),
    (
        '{"event_id": "e4", "user_id": "\\ud800", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1700000000}',
        "user_id",
        "lone surrogate",
    ),
    (
        '{"event_id": "e5", "user_id": "../../etc", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1700000000}',
        "user_id",
        "'/'",
    ),
    (
        '{"event_id": "e6", "user_id": "u\\u0000", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1700000000}',
        "user_id",
        "control characters",
    ),
    (
        '{"event_id": "e7", "user_id": "u1", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1700000000, "__proto__": {}}',
        "__proto__",
        "unknown field",
    ),
    (
        '{"event_id": "e8", "user_id": "u1", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1e309}',
        "timestamp",
        "not a date-time",
    ),
    (
        '{"event_id": "e9", "user_id": "' + "u" * 257 + '", "item_id": "i1", "event_type": "view", '
        '"timestamp": 1700000000}',
        "user_id",
        "longer than 256",
    ),
]


def test_an_import_file_of_hostile_lines_keeps_the_good_ones(tmp_path: Path) -> None:
    lines = [GOOD % (0, 0), *(line for line, _, _ in HOSTILE_LINES), GOOD % (1, 1)]
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "import.sqlite"
    result = CliRunner().invoke(cli, ["import", str(path), "--store", f"sqlite:///{db}", "--json"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    counts = json.loads(result.output.strip().splitlines()[-1])
    assert (counts["accepted"], counts["rejected"]) == (2, len(HOSTILE_LINES))
    with sqlite3.connect(db) as conn:
        stored = sorted(r[0] for r in conn.execute("SELECT event_id FROM events"))
        letters = conn.execute(
            "SELECT record_index, errors FROM dead_letters ORDER BY record_index"
        )
        errors = [json.loads(e)[0] for _, e in letters.fetchall()]
    assert stored == ["g0", "g1"]
    for error, (_, named, says) in zip(errors, HOSTILE_LINES, strict=True):
        assert error["field"] == named and says in error["reason"], error


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["users", "export", "a\x01b"], "control characters"),
        (["users", "delete", "../../etc"], "'/'"),
        (["users", "export", "u" * 257], "longer than 256"),
        (["audit", "--since", "NaN"], "--since"),
        (["audit", "--since", "99999999999d"], "too long for the calendar"),
        (
            ["keys", "create", "--name", "x", "--scopes", "read", "--expires", "9999999d"],
            "--expires",
        ),
        (["keys", "create", "--name", "x", "--scopes", "root"], "unknown scope"),
        (["keys", "revoke", "1 OR 1=1"], "no API key"),
        (["deadletters", "list", "--since", "-1d"], "--since"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:30],
)
def test_hostile_cli_arguments_are_named_errors(tmp_path: Path, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli, [*args, "--store", f"sqlite:///{tmp_path / 'cli.sqlite'}"])
    assert result.exit_code == 2, result.output
    assert says in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
