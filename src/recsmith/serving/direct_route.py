"""``DirectRoute``: a FastAPI route whose endpoint takes the ``Request`` and returns a ``Response``
itself, skipping FastAPI's per-request work (dependency solving, parameter and response-model
passes) while keeping everything the route declares for the published OpenAPI schema.

FastAPI's request handler cost a single-event ``POST /v1/events`` ~0.13 ms of CPU even with no
dependency to solve: more than its share of the group commit. A route that parses its own body,
checks its own key (``auth.admit``) and writes its own answer gains nothing from that pass. The
route is still an ``APIRoute``, so its schema (body, responses, security in ``openapi_extra``)
is generated exactly as before; errors it raises (``HTTPException``) reach the app's handlers
as any route's do. FastAPI's documented hook for this is ``get_route_handler``.

A route with path and query parameters (``GET /v1/users/{user_id}/recommendations``) keeps its
declared endpoint, whose signature is what the schema publishes (and what a FastAPI-solved twin
of the route may reuse); ``answered_by`` names the handler that answers it instead, which gets the
route's ``RouteParams`` to read those parameters with FastAPI's own validators and errors. The
route's dependencies (a router's key check, the endpoint's ``Depends``) are published but not
solved: the handler does their work itself, in FastAPI's order (dependencies, then parameters).

The app's one global dependency, ``strict_query.known_query_only``, is called here as FastAPI
would have: a query parameter the route does not take is still refused, not ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from recsmith.serving.route_params import RouteParams
from recsmith.serving.strict_query import known_query_only

#: A handler answering a documented endpoint: the request and the route's parameter reader.
Handler = Callable[[Request, RouteParams], Awaitable[Response]]
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_ANSWERED_BY = "__answered_by__"


def answered_by(handler: Handler) -> Callable[[_Endpoint], _Endpoint]:
    """Mark an endpoint whose signature documents its route: a ``DirectRoute`` serving it calls
    ``handler`` instead (which may call the endpoint with what it read)."""

    def mark(endpoint: _Endpoint) -> _Endpoint:
        setattr(endpoint, _ANSWERED_BY, handler)
        return endpoint

    return mark


class DirectRoute(APIRoute):
    """See module docstring: the endpoint is ``async def endpoint(request) -> Response``, or one
    marked with ``answered_by``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        marked: Handler | None = getattr(self.endpoint, _ANSWERED_BY, None)
        answer = marked or _plain(cast(Callable[[Request], Awaitable[Response]], self.endpoint))
        params = RouteParams(self.dependant)

        async def handler(request: Request) -> Response:
            if request.query_params:  # a parameter the route does not take: a 422 naming it
                await known_query_only(request)
            return await answer(request, params)

        return handler


def _plain(endpoint: Callable[[Request], Awaitable[Response]]) -> Handler:
    """An ``endpoint(request)`` as a ``Handler`` (it declares no parameters to read)."""

    async def answer(request: Request, params: RouteParams) -> Response:
        return await endpoint(request)

    return answer
