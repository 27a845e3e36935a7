"""Bodies FastAPI parses for a route (a pydantic model parameter) are held to the same JSON as
the ingest routes, and a route that changes something but takes no body refuses one.

FastAPI decodes such bodies with ``json.loads``: ``NaN``, ``Infinity`` and ``1e309`` become
floats no JSON reader elsewhere would produce, and a repeated key keeps its last value silently
(``{"name": "a", "name": "b"}`` created a key called ``b``). The ingest routes refuse both
(``batch.parse_json``); a model route now decodes through it too, so a 422 names the repeated key
or the non-JSON constant. A POST, PUT, PATCH or DELETE route without a body used to ignore one:
``POST /v1/admin/dead-letters/replay`` with ``{"reason": ...}`` replayed *every* dead letter,
since its filters are query parameters. It is a 422 saying where the options go, checked after
a router's key check (a route that checks the key in its own parameters checks it after this
one: a caller without a key then learns that the route takes no body, which its published
schema says anyway). A GET's body has no meaning in HTTP and stays ignored, so reads pay nothing
for this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute

from recsmith.serving.batch import parse_json
from recsmith.serving.strict_query import query_names

#: Methods whose body, when a route takes none, would be a request ignored in part.
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class StrictJSONRequest(Request):
    """A request whose ``json()`` is ``batch.parse_json``: strict JSON, one value per key."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class _NoIgnoredBody:
    """The dependency refusing a body its route would ignore (the last of the route's
    dependencies: after the router's key check). ``route`` is set once the route knows whether
    it takes a body."""

    route: APIRoute

    async def __call__(self, request: Request) -> None:
        if _takes_body(self.route) or not _sends_body(request):
            return
        takes = ", ".join(sorted(query_names(self.route.dependant))) or "none"
        reason = f"this route takes no body: its options are query parameters ({takes})"
        raise HTTPException(422, [{"field": "body", "reason": reason}])


class StrictJSONRoute(APIRoute):
    """An APIRoute decoding its body strictly and refusing a body it would ignore."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        check = None
        if _CHANGES & {m.upper() for m in kwargs.get("methods") or ()}:
            check = _NoIgnoredBody()
            kwargs["dependencies"] = [*(kwargs.get("dependencies") or ()), Depends(check)]
        super().__init__(path, endpoint, **kwargs)
        if check is not None:
            check.route = self

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict


def _takes_body(route: APIRoute) -> bool:
    """A body parameter, or a handler reading ``request.body()`` itself, which documents its
    body in ``openapi_extra``."""
    return route.body_field is not None or "requestBody" in (route.openapi_extra or {})


def _sends_body(request: Request) -> bool:
    """A non-zero ``Content-Length`` or a streamed (chunked) body, read off the headers: the
    body itself is never read for a route that would not use it."""
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in request.headers
