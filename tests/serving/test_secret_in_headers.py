"""``secret_in_headers`` reads the ASGI headers itself, in one pass: it must read the key that
``HTTPBearer`` and ``APIKeyHeader`` would, which is what starlette's ``Headers.get`` finds
(the oracle here: the first header of each name, latin-1, Bearer's credentials stripped, else
the X-API-Key value, an empty one being none)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from recsmith.serving.auth import secret_in_headers

NAMES = [b"authorization", b"x-api-key", b"host", b"x-api-keys", b"authorizatio", b"accept"]
VALUES = st.one_of(
    st.sampled_from(
        [b"", b" ", b"Bearer", b"Bearer ", b"bearer k1", b"BEARER  k2 ", b"Basic k3", b"rsk_k4"]
    ),
    st.builds(
        lambda scheme, gap, key: scheme + gap + key,
        st.sampled_from([b"Bearer", b"bearer", b"Token", b""]),
        st.sampled_from([b"", b" ", b"  ", b"\t"]),
        st.binary(max_size=12),
    ),
    st.binary(max_size=20),
)


def _as_starlette_reads_it(scope: dict[str, Any]) -> str | None:
    headers = Request(scope).headers
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=6))
def test_the_key_read_is_the_one_starlettes_headers_give(headers: list[Any]) -> None:
    scope = {"type": "http", "headers": headers}
    assert secret_in_headers(Request(scope)) == _as_starlette_reads_it(dict(scope))


def test_the_first_of_repeated_headers_and_bearer_before_the_api_key_header() -> None:
    scope = {
        "type": "http",
        "headers": [
            (b"x-api-key", b"second"),
            (b"authorization", b"Bearer  first "),
            (b"authorization", b"Bearer other"),
        ],
    }
    assert secret_in_headers(Request(scope)) == "first"
    scope["headers"] = [
        (b"authorization", b"Basic x"),
        (b"x-api-key", b"\xe9k"),
        (b"x-api-key", b"z"),
    ]
    assert secret_in_headers(Request(scope)) == "ék"
