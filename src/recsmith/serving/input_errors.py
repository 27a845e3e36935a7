"""One 422 shape for every input error: ``{"detail": [{"field", "reason"}]}``.

FastAPI answers a parameter or body its validation refuses (``?k=0``) with pydantic's own
``{"type", "loc", "msg", "input"}`` items, while the project's own checks (unknown query
parameters, per-record rejections) and the README speak ``{field, reason}``. A client should parse
one shape, so FastAPI's is rewritten here and a 422 raised with plain text becomes one error of
field ``request``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from recsmith.decisions.timespec import parse_time, parse_window
from recsmith.errors import ValidationError
from recsmith.validation_reasons import reworded, unknown_field

#: The largest integer a store's integer column holds (signed 64 bits, SQLite and PostgreSQL
#: alike): the bound of a query parameter compared with one, which would overflow the driver (a
#: 500) beyond it.
MAX_STORED_INT = 2**63 - 1

#: Where FastAPI says a value came from: the first part of ``loc``, not part of the field name.
_SOURCES = frozenset({"query", "path", "header", "cookie", "body"})


def field_errors(errors: Sequence[Any], body: Any = None) -> list[dict[str, str]]:
    """pydantic's error dicts as ``{field, reason}``: ``("query", "k")`` names field ``k``, a body
    field its dotted path (``body`` for the body as a whole), once per field and reason; reasons
    worded by ``validation_reasons`` (what is accepted, not pydantic's internals), a key the
    ``body`` model does not know as ``unknown field (did you mean …?)``, a missing one as
    ``required`` (``reworded``): as an item's or event's record would say them."""
    out: dict[tuple[str, str], None] = {}
    for err in errors:
        where, reason = reworded(err)
        if err.get("type") == "extra_forbidden" and body is not None and where[:1] == ("body",):
            reason = unknown_field(body, where[1:])
        loc = [str(part) for part in where]
        path = loc[1:] if loc and loc[0] in _SOURCES else loc
        field = ".".join(path) or (loc[0] if loc else "request")
        out[(field, reason)] = None
    return [{"field": field, "reason": reason} for field, reason in out]


def invalid(field: str, reason: str) -> HTTPException:
    """The 422 for one bad input, in the shared shape."""
    return HTTPException(422, [{"field": field, "reason": reason}])


def query_time(text: str | None, field: str) -> datetime | None:
    """A ``since``/``until`` query parameter as a time (``decisions.timespec``), or the 422
    naming ``field`` and why it is not one."""
    try:
        return parse_time(text, field)
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None


def query_window(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` query parameters as times (``decisions.timespec.parse_window``),
    or the 422 naming the one at fault."""
    try:
        return parse_window(since, until)
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None


async def _http_error(request: Request, exc: Exception) -> Response:
    """A 422 raised with text as its detail, in the shared shape; a path that matched no route
    because an id in it holds an encoded ``/`` (below) is that id's 422; any other status
    unchanged."""
    assert isinstance(exc, StarletteHTTPException)  # registered for that type only
    if exc.status_code == 422 and isinstance(exc.detail, str):
        body = {"detail": [{"field": "request", "reason": exc.detail}]}
        return JSONResponse(body, status_code=422, headers=exc.headers)
    if exc.status_code == 404 and request.scope.get("route") is None:
        slashed = slashed_id(request.scope.get("raw_path", b""))
        if slashed is not None:
            field, reason = slashed
            return JSONResponse({"detail": [{"field": field, "reason": reason}]}, 422)
    return await http_exception_handler(request, exc)


#: The path segment before an id -> the id's name in the routes (``/v1/users/{user_id}``).
_ID_AFTER = {
    "users": "user_id",
    "items": "item_id",
    "aliases": "alias",
    "keys": "key_id",
    "releases": "version",
}


def slashed_id(raw_path: bytes) -> tuple[str, str] | None:
    """(field, reason) for the first segment of ``raw_path`` holding an encoded ``/`` (``%2F``),
    else None. The server decodes ``/v1/users/a%2Fb/recommendations`` before routing, so the
    id ``a/b`` split the path and no route matched: the client, who encoded the id as it
    should, read a bare ``{"detail": "Not Found"}`` rather than that ids cannot hold ``/``."""
    segments = raw_path.decode("latin-1").split("/")
    for before, segment in zip(["", *segments], segments, strict=False):
        if "%2f" in segment.lower():
            field = _ID_AFTER.get(before, "path")
            return field, "contains '/' (an id is one URL path segment)"
    return None


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # registered for that type only
    return JSONResponse({"detail": field_errors(exc.errors(), _body_model(request))}, 422)


def _body_model(request: Request) -> Any:
    """The matched route's body type (its model, or a union of models), None without one."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return None if field is None else field.field_info.annotation


def install(app: FastAPI) -> None:
    """Answer every request validation error in the project's shape (``schemas.error_responses``
    documents it)."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
