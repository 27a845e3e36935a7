"""``DirectRoute``: a FastAPI route whose endpoint takes the ``Request`` and returns a ``Response``
itself, skipping FastAPI's per-request work (dependency solving, parameter and response-model
passes) while keeping everything the route declares for the published OpenAPI schema.

FastAPI's request handler cost a single-event ``POST /v1/events`` ~0.13 ms of CPU even with no
dependency to solve: more than its share of the group commit. A route that parses its own body,
checks its own key (``auth.admit``) and writes its own answer gains nothing from that pass. The
route is still an ``APIRoute``, so its schema (body, responses, security in ``openapi_extra``)
is generated exactly as before; errors it raises (``HTTPException``) reach the app's handlers
as any route's do. FastAPI's documented hook for this is ``get_route_handler``.

The app's one global dependency, ``strict_query.known_query_only``, is called here as FastAPI
would have: a query parameter the route does not take is still refused, not ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from recsmith.serving.strict_query import known_query_only


class DirectRoute(APIRoute):
    """See module docstring: the endpoint must be ``async def endpoint(request) -> Response``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = cast(Callable[[Request], Awaitable[Response]], self.endpoint)

        async def handler(request: Request) -> Response:
            if request.query_params:  # a parameter no route of this kind takes: a 422 naming it
                await known_query_only(request)
            return await endpoint(request)

        return handler
