"""What a request body may be (``serving/request_body.py``): size, media type and encoding.

Sizes are checked at the boundary (a body of exactly ``max_body_bytes`` passes, one byte more
does not), declared and streamed; gzip bodies are counted after decompression.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.serving.request_body import BodyTooLarge, Gunzip
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]
LIMIT = 4096
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def small(settings: Settings, bundle: ModelBundle, store: SQLiteStore) -> Iterator[TestClient]:
    """A client of an app whose body limit is ``LIMIT`` bytes."""
    limited = Settings.model_validate(
        {
            **settings.model_dump(),
            "serving": {**settings.serving.model_dump(), "max_body_bytes": LIMIT},
        }
    )
    with TestClient(create_app(limited, bundle=bundle, store=store)) as test_client:
        yield test_client


def padded(events: list[dict[str, Any]], size: int) -> bytes:
    """``events`` as a JSON array of exactly ``size`` bytes (whitespace before the bracket)."""
    body = json.dumps(events).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"]"


def _detail(response: Any) -> str:
    return str(response.json()["detail"])


def test_body_of_exactly_the_limit_passes_and_one_byte_more_is_413(
    small: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    headers = {**keys["ingest"], **JSON}
    exact = small.post("/v1/events", content=padded([make_event()], LIMIT), headers=headers)
    assert exact.status_code == 200, exact.text
    over = small.post("/v1/events", content=padded([make_event()], LIMIT + 1), headers=headers)
    assert over.status_code == 413
    assert "serving.max_body_bytes" in _detail(over) and "4096" in _detail(over)
    assert "Content-Length 4097" in _detail(over)
    assert store.count_events() == 1


def test_streamed_body_is_counted_as_it_arrives(
    small: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:  # a generator: sent chunked, no Content-Length
        yield from (body[i : i + 1000] for i in range(0, len(body), 1000))

    headers = {**keys["ingest"], **JSON}
    exact = small.post("/v1/events", content=chunks(padded([make_event()], LIMIT)), headers=headers)
    assert exact.status_code == 200, exact.text
    body = padded([make_event()], LIMIT + 1)
    over = small.post("/v1/events", content=chunks(body), headers=headers)
    assert over.status_code == 413
    assert "serving.max_body_bytes" in _detail(over)
    assert over.headers["connection"] == "close"  # the rest of an unbounded body is not read
    assert store.count_events() == 1


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",  # curl -d without -H
        "application/json; charset=latin-1",
        "application/merge-patch+json",  # only a PATCH takes a merge patch
    ],
)
def test_a_body_that_is_not_json_is_415(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any, content_type: str
) -> None:
    body = json.dumps([make_event()]).encode()
    response = client.post(
        "/v1/events", content=body, headers={**keys["ingest"], "Content-Type": content_type}
    )
    assert response.status_code == 415
    assert "application/json" in _detail(response)
    assert store.count_events() == 0


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "Application/JSON; charset=UTF-8"]
)
def test_json_or_no_content_type_is_read_as_json(
    client: TestClient, keys: Headers, make_event: Any, content_type: str | None
) -> None:
    headers = dict(keys["ingest"])
    if content_type is not None:
        headers["Content-Type"] = content_type
    body = json.dumps([make_event()]).encode()
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_a_merge_patch_media_type_is_accepted_on_patch(client: TestClient, keys: Headers) -> None:
    created = client.put("/v1/items/sku-1", json={"categories": ["a"]}, headers=keys["ingest"])
    assert created.status_code == 200, created.text
    response = client.patch(
        "/v1/items/sku-1",
        content=b'{"available": false}',
        headers={**keys["ingest"], "Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200, response.text


def test_gzip_bodies_are_decompressed(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    first = gzip.compress(json.dumps([make_event(item_id="g1")]).encode())
    # two gzip members back to back are one body (RFC 1952); split inside the JSON text
    text = json.dumps([make_event(item_id="g2"), make_event(item_id="g3")]).encode()
    members = gzip.compress(text[:20]) + gzip.compress(text[20:])
    headers = {**keys["ingest"], **JSON, "Content-Encoding": "gzip"}
    for body, accepted in ((first, 1), (members, 2)):
        response = client.post("/v1/events", content=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == accepted
    assert sorted(store.user_items("u1")) == ["g1", "g2", "g3"]


def test_gzip_is_limited_by_its_decompressed_size(
    small: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    headers = {**keys["ingest"], **JSON, "Content-Encoding": "gzip"}
    exact = gzip.compress(padded([make_event()], LIMIT))
    assert small.post("/v1/events", content=exact, headers=headers).status_code == 200
    # a bomb: 2 MiB of JSON whitespace is ~2 KiB compressed, under the limit on the wire
    bomb = gzip.compress(b"[" + b" " * (2 << 20) + b"]", compresslevel=9)
    assert len(bomb) < LIMIT
    response = small.post("/v1/events", content=bomb, headers=headers)
    assert response.status_code == 413
    assert "decompressed" in _detail(response) and "serving.max_body_bytes" in _detail(response)
    over = gzip.compress(padded([make_event()], LIMIT + 1))
    assert small.post("/v1/events", content=over, headers=headers).status_code == 413
    assert store.count_events() == 1


@pytest.mark.parametrize(
    "body",
    [b'[{"not": "gzip"}]', gzip.compress(b"[]" * 100)[:-12]],
    ids=["plain", "truncated"],
)
def test_a_body_that_is_not_gzip_is_400(client: TestClient, keys: Headers, body: bytes) -> None:
    headers = {**keys["ingest"], **JSON, "Content-Encoding": "gzip"}
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 400
    assert "not gzip data" in _detail(response)


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip"])
def test_other_content_encodings_are_415(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any, encoding: str
) -> None:
    body = json.dumps([make_event()]).encode()
    headers = {**keys["ingest"], **JSON, "Content-Encoding": encoding}
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 415
    assert "gzip" in _detail(response)
    assert store.count_events() == 0


def test_requests_without_a_body_are_untouched(client: TestClient, keys: Headers) -> None:
    """``curl -X POST`` sends neither a body nor a Content-Type: no media type is asked for."""
    response = client.post("/v1/admin/reload", headers=keys["admin"])
    assert response.status_code == 409  # no registry configured: the route itself answered


def test_gzip_output_is_bounded_while_it_inflates() -> None:
    """A bomb stops after at most limit + 1 inflated bytes, not after inflating all of it."""
    gunzip = Gunzip(LIMIT)
    with pytest.raises(BodyTooLarge):
        gunzip.feed(gzip.compress(b" " * (8 << 20)))  # 8 MiB in one network read
    assert gunzip.produced <= LIMIT + 1
