"""A URL whose percent-encoded bytes are not UTF-8 is refused (422), not read with replacements.

The server decodes the path and the query string with ``errors="replace"``: ``/v1/users/%ED%A0%80``
(a UTF-8-encoded lone surrogate) and ``/v1/users/%FF%FF%FF`` both reached the route as the user
``"\\ufffd\\ufffd\\ufffd"``, so two different ids sent by a client named one person, whose
export and erasure then answered for bytes nobody sent. Every id is UTF-8 text at every other
door (``recsmith.ids``); the app's outer layer (``serving.edge``) holds the URL to it
(``url_refusal``), naming the query parameter (or ``path``) and the bytes. A URL without ``%`` is
not looked at.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import Scope


def _undecodable(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def url_problem(raw_path: bytes, query: bytes) -> dict[str, str] | None:
    """The ``{field, reason}`` of the first part of the URL that is not UTF-8 once
    percent-decoded, or None."""
    if b"%" in raw_path:
        for segment in raw_path.split(b"/"):
            if _undecodable(segment):
                return _error("path", segment)
    if b"%" in query:
        for pair in query.split(b"&"):
            name, _, value = pair.replace(b"+", b" ").partition(b"=")
            if _undecodable(name):
                return _error("query", name)
            if _undecodable(value):
                return _error(unquote_to_bytes(name).decode("utf-8"), value)
    return None


def _error(field: str, raw: bytes) -> dict[str, str]:
    shown = raw[:80].decode("ascii", "replace")
    return {"field": field, "reason": f"percent-encoded bytes that are not UTF-8 text: {shown!r}"}


def url_refusal(scope: Scope) -> JSONResponse | None:
    """The 422 naming the part of the request's URL that ``url_problem`` refuses, or None (the
    app's outer layer, ``serving.edge``, answers it instead of the app)."""
    problem = url_problem(scope.get("raw_path") or b"", scope.get("query_string", b""))
    return None if problem is None else JSONResponse({"detail": [problem]}, 422)
