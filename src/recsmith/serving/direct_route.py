"""``DirectRoute``: a FastAPI route whose endpoint takes the ``Request`` and returns a ``Response``
itself, skipping FastAPI's per-request work (dependency solving, parameter and response-model
passes) while keeping everything the route declares for the published OpenAPI schema.

FastAPI's request handler cost a single-event ``POST /v1/events`` ~0.13 ms of CPU even with no
dependency to solve: more than its share of the group commit. A route that parses its own body,
checks its own key (``auth.admit``) and writes its own answer gains nothing from that pass. The
route is still an ``APIRoute``, so its schema (body, responses, security in ``openapi_extra``)
is generated exactly as before; errors it raises (``HTTPException``) reach the app's handlers
as any route's do. FastAPI's documented hook for this is ``get_route_handler``.

A route with parameters and dependencies (the read routes: ``GET`` and ``POST
/v1/users/{user_id}/recommendations``, ``/v1/items/{item_id}/similar``, …) keeps its declared
endpoint, whose signature is what the schema publishes (and what a FastAPI-solved twin of the
route may reuse), marked with ``solved_by``: the route then does per request what FastAPI's
handler did, in FastAPI's order, with FastAPI's own pieces. The body is read first (as FastAPI
reads it before solving anything: a body that is not JSON is a 422 even without a key); then the
app's query check; then the marked ``Dependencies`` do the work of the route's dependencies (a
router's key check, the endpoint's ``Depends``), which are published but not solved; then
``RouteParams`` reads the path, query and body parameters with FastAPI's validators and errors;
then the endpoint is called (a ``def`` one in the thread pool, as FastAPI calls it), and what it
returns is written by FastAPI's ``serialize_response`` through the route's response field, as
FastAPI writes a response model (``dump_json``), so the bytes are FastAPI's by construction; a
``Response`` it returns is sent as it is, as FastAPI sends one (the recommendation route writes
its list's JSON itself: ``recommendation_json``).

The app's one global dependency, ``strict_query.known_query_only``, is called here as FastAPI
would have: a query parameter the route does not take is still refused, not ignored. Nearly every
request of a page asks with the same few query strings (``k=10``), and what the query check and
the query parameters' validators make of one is a function of its bytes and the route alone:
a route remembers, per query string it read without an error, the query parameters' values, and
skips the parse, the check and the validators when it comes again (~3.6 µs of Starlette's
parse, BENCHMARKS §89); the path and the body are read every time, and an error is never
remembered, so every refusal is worked out, and worded, as before.

What it does not do that FastAPI's handler does: it emits none of FastAPI's own OpenTelemetry
spans (``fastapi.dependencies``, ``fastapi.endpoint``, ``fastapi.serialization``) nor the
``fastapi.validation.failed`` event for its 422s, and ``app.dependency_overrides`` does not reach
its dependencies. A deployment tracing with a global OpenTelemetry provider sees these routes
through the ASGI middleware's spans only (BENCHMARKS §52).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import (  # the effective route: pyproject's fastapi>=0.165 has it
    APIRoute,
    _effective_route_context_var,
    serialize_response,
)
from starlette._exception_handler import _lookup_exception_handler, wrap_app_handling_exceptions
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from recsmith.serving.route_params import Read, RouteParams
from recsmith.serving.strict_query import known_query_only

#: What a route's dependencies would have given its endpoint, worked out by the route itself: it
#: checks what they checked (the key, the model), in FastAPI's order and raising what they
#: raised, and returns the values of the endpoint's dependency parameters by name.
Dependencies = Callable[[Request], Awaitable[dict[str, Any]]]
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])
_SOLVED_BY = "__solved_by__"
#: Query strings a route remembers the read of, and the longest remembered: past the count the
#: memo is emptied (many distinct ones, such as ``recent`` lists, keep it under ~1 MB a route)
QUERY_MEMO_MAX = 1024
QUERY_MEMO_LENGTH = 256


def solved_by(dependencies: Dependencies) -> Callable[[_Endpoint], _Endpoint]:
    """Mark an endpoint whose signature documents its route: a ``DirectRoute`` serving it gets
    its dependency parameters from ``dependencies`` and reads the others itself (module
    docstring)."""

    def mark(endpoint: _Endpoint) -> _Endpoint:
        setattr(endpoint, _SOLVED_BY, dependencies)
        return endpoint

    return mark


class DirectRoute(APIRoute):
    """See module docstring: the endpoint is ``async def endpoint(request) -> Response``, or one
    marked with ``solved_by``."""

    @property
    def reads_no_form(self) -> bool:
        """A ``solved_by`` route reads its body as JSON (``RouteParams`` refuses a form when it
        is built), so no file of its request waits to be closed (``fast_lane.Shortcut``)."""
        return getattr(self.endpoint, _SOLVED_BY, None) is not None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependencies: Dependencies | None = getattr(self.endpoint, _SOLVED_BY, None)
        if dependencies is None:
            return _plain(cast(Callable[[Request], Awaitable[Response]], self.endpoint))
        # what the app and routers that include this route make of it (their prefix, their
        # strict_content_type), as ``APIRoute.get_route_handler`` reads it
        effective = _effective_route_context_var.get()
        mine = effective is not None and effective.original_route is self
        route = cast(APIRoute, effective) if mine else self
        return _solved(route, dependencies)


_STARTED = "Caught handled exception, but response already started."


def lean(handler: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """FastAPI's ``request_response(handler)`` for a solved handler, without what it does that
    such a handler leaves unused: two ``AsyncExitStack``s for dependencies with ``yield`` and
    the files of forms (a solved route has neither: ``reads_no_form``) and the exception
    wrapper's frames around a call that raises nothing; ~4 µs of CPU a request on a quiet
    machine, and 2 frames fewer (the wrapper's two) each time the request resumes (BENCHMARKS
    §141).

    Errors are answered as its wrapper (Starlette's ``wrap_app_handling_exceptions``) answers
    them: one raised by ``handler`` (nothing sent yet) by that wrapper itself, around an app
    that raises it; one raised while a plain ``Response`` is sent (its start is its first
    message, so it has started) as the wrapper does once started: ``RuntimeError`` where the
    app has a handler for it, else the exception itself. A response of another class (which
    may fail before it starts) is sent through the wrapper."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await handler(request)
        except Exception as exc:
            await wrap_app_handling_exceptions(_raising(exc), request)(scope, receive, send)
            return
        if type(response) is not Response:
            await wrap_app_handling_exceptions(response, request)(scope, receive, send)
            return
        try:
            await response(scope, receive, send)
        except Exception as exc:
            if _handled(scope, exc):
                raise RuntimeError(_STARTED) from exc
            raise

    return app


def _raising(exc: Exception) -> ASGIApp:
    """An app that raises ``exc``: what ``handler`` raised, for the wrapper to answer."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise exc

    return app


def _handled(scope: Scope, exc: Exception) -> bool:
    """Whether the app's handlers in ``scope`` (``fast_lane.Shortcut`` puts them there) have
    one for ``exc``, found as ``wrap_app_handling_exceptions`` finds it."""
    handlers, status_handlers = scope.get("starlette.exception_handlers", ({}, {}))
    if isinstance(exc, HTTPException) and exc.status_code in status_handlers:
        return True
    return _lookup_exception_handler(handlers, exc) is not None


def _plain(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Any]:
    """An ``endpoint(request)`` answering for itself, after the app's query check."""

    async def handler(request: Request) -> Response:
        if request.query_params:  # a parameter the route does not take: a 422 naming it
            await known_query_only(request)
        return await endpoint(request)

    return handler


def _solved(route: APIRoute, dependencies: Dependencies) -> Callable[[Request], Any]:
    """The handler of a ``solved_by`` route (module docstring). What FastAPI works out per
    request that never changes for a route is worked out here, once."""
    params = RouteParams(route)
    call = cast(Callable[..., Any], route.dependant.call)
    awaited = inspect.iscoroutinefunction(call)
    request_name = route.dependant.request_param_name
    field = route.response_field
    if field is None or not isinstance(route.response_class, DefaultPlaceholder):
        raise TypeError(f"{route.path}: a solved DirectRoute writes a response model only")
    written = {
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
    }
    status = route.status_code or 200
    #: query strings read before without an error (none unknown or repeated, each value valid):
    #: what ``params.query`` answered for them (``QUERY_MEMO_MAX``)
    remembered: dict[bytes, Read] = {}

    async def handler(request: Request) -> Response:
        body = await params.body(request)
        text: bytes = request.scope["query_string"]
        query = remembered.get(text)
        if query is None and request.query_params:  # a parameter the route does not take: 422
            await known_query_only(request)
        values = await dependencies(request)
        if query is None:
            query = params.query(request)
            if not query[1] and len(text) <= QUERY_MEMO_LENGTH:
                if len(remembered) >= QUERY_MEMO_MAX:
                    remembered.clear()
                remembered[text] = query
        values.update(await params.read(request, body, query))
        if request_name is not None:
            values[request_name] = request
        if awaited:
            result = await call(**values)
        else:  # a ``def`` endpoint: in the thread pool, as FastAPI runs it
            result = await run_in_threadpool(call, **values)
        if isinstance(result, Response):  # written by the endpoint: sent as is, as FastAPI does
            return result
        # validated on the loop (an instance of the model: a type check), written as bytes
        content = await serialize_response(
            field=field, response_content=result, dump_json=True, **written
        )
        return Response(content, status_code=status, media_type="application/json")

    return handler
