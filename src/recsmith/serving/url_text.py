"""A URL whose percent-encoded bytes are not UTF-8 is refused (422), not read with replacements.

The server decodes the path and the query string with ``errors="replace"``: ``/v1/users/%ED%A0%80``
(a UTF-8-encoded lone surrogate) and ``/v1/users/%FF%FF%FF`` both reached the route as the user
``"\\ufffd\\ufffd\\ufffd"``, so two different ids sent by a client named one person, whose
export and erasure then answered for bytes nobody sent. Every id is UTF-8 text at every other
door (``recsmith.ids``); this pure ASGI middleware holds the URL to it, naming the query
parameter (or ``path``) and the bytes. A URL without ``%`` is not looked at.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


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


class StrictURLText:
    """Answer 422 for a URL ``url_problem`` refuses; pass every other request on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = url_problem(scope.get("raw_path") or b"", scope.get("query_string", b""))
            if problem is not None:
                await JSONResponse({"detail": [problem]}, 422)(scope, receive, send)
                return
        await self.app(scope, receive, send)
