"""``ServedApp``: the app uvicorn calls, a FastAPI whose HTTP requests go straight to ``Edge``
where the layers FastAPI and Starlette put around the app's own middleware would only pass them
on.

Those layers are FastAPI's ``__call__`` (the native telemetry check), Starlette's (the app in
the scope), ``ServerErrorMiddleware`` (a ``send`` wrapper every message goes through, and a
plain 500 for an exception that escapes before a response started),
``ExceptionTelemetryMiddleware`` (which records an exception in the request's telemetry, where
FastAPI's native telemetry made one) and ``AppBodyLimitMiddleware`` (the app's own body limit,
or a mounting app's): five coroutine frames a request enters, and walks again each time it
resumes from the coalescer or a gathered read (BENCHMARKS §119). Where they pass requests on
unchanged — no native telemetry on, none asked by a mounting app, no app body limit, no 500 or
``Exception`` handler of the app's own, not in debug, ``Edge`` the only middleware added, and
the FastAPI the lane is written for (``fast_lane.WRITTEN_FOR``: the layers are private) on a
Starlette whose layers were read (``STARLETTE_WRITTEN_FOR``: FastAPI 0.165 takes any newer) —
``ServedApp`` does what they do to the scope (``app``, ``root_path``) and calls ``Edge``, whose
boundary answers every exception before a response started as before (a failing boundary
answer included: ``ServerErrorMiddleware``'s plain 500, ``Edge``'s own last resort). Any other
app, and every other kind of request (lifespan, websocket), goes the whole way.
"""

from __future__ import annotations

from typing import Any

import starlette
from fastapi import FastAPI
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from recsmith.serving.edge import Edge
from recsmith.serving.fast_lane import FASTAPI_VERSION, WRITTEN_FOR
from recsmith.serving.telemetry_off import TelemetryCheck

try:  # private: the layers of the FastAPI this is written for (``fast_lane.WRITTEN_FOR``)
    from fastapi._body_limit import AppBodyLimitMiddleware
    from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware
except ImportError:  # another FastAPI: ``edge_under`` finds no stack it knows
    _KNOWN = False
else:
    _KNOWN = True

#: The Starlette releases whose skipped layers (``Starlette.__call__``, ``ServerErrorMiddleware``,
#: the body limit's scope key) were read: 1.7 to 1.10 alike, 1.6 only in its debug page (a
#: debug app goes the whole way). A later one may add work to them that skipping would drop.
STARLETTE_WRITTEN_FOR = ("1.6.", "1.7.", "1.8.", "1.9.", "1.10.")
STARLETTE_VERSION = starlette.__version__


def edge_under(stack: ASGIApp) -> Edge | None:
    """The ``Edge`` beneath a middleware stack whose outer layers pass every HTTP request on
    unchanged once native telemetry is off (module docstring); None: the stack is another, or
    another FastAPI's or Starlette's, whose layers may do more."""
    if not (_KNOWN and FASTAPI_VERSION.startswith(WRITTEN_FOR)):
        return None
    if not STARLETTE_VERSION.startswith(STARLETTE_WRITTEN_FOR):
        return None
    if type(stack) is not ServerErrorMiddleware or stack.handler is not None or stack.debug:
        return None
    telemetry = stack.app
    if type(telemetry) is not ExceptionTelemetryMiddleware:
        return None
    limit = telemetry.app
    if type(limit) is not AppBodyLimitMiddleware:
        return None
    edge = limit.app  # the app itself where the app has no body limit
    return edge if type(edge) is Edge else None


class ServedApp(FastAPI):
    """See module docstring."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        #: the middleware stack built, and the ``Edge`` its outer layers would pass requests to
        self._edge_of: tuple[ASGIApp | None, Edge | None] = (None, None)
        #: FastAPI's native telemetry check, its False answered at once where nothing is set
        self._telemetry_check = TelemetryCheck(self._native_telemetry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            edge = self._edge()
            if (
                edge is not None
                and "fastapi.telemetry" not in scope
                and MAX_BODY_SIZE_SCOPE_KEY not in scope  # a mounting app's limit
                and not self._native_check().enabled()
            ):
                if self.root_path:
                    scope["root_path"] = self.root_path
                scope["app"] = self
                await edge(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _native_check(self) -> TelemetryCheck:
        """The check of the app's ``_native_telemetry``, made again should it be replaced."""
        check = self._telemetry_check
        if check.native is not self._native_telemetry:
            check = self._telemetry_check = TelemetryCheck(self._native_telemetry)
        return check

    def _edge(self) -> Edge | None:
        """``edge_under`` the app's middleware stack, built as Starlette builds it on a first
        request, worked out again when the stack is another: ``middleware_stack`` reset to None
        (rebuilt from ``user_middleware``), or replaced by an instrumentation such as
        opentelemetry-instrumentation-fastapi's ``instrument_app``. (Setting ``debug`` later
        rebuilds nothing: Starlette reads it once, building the stack.)"""
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        stack, edge = self._edge_of
        if stack is not self.middleware_stack:
            stack = self.middleware_stack
            edge = edge_under(stack)
            self._edge_of = stack, edge
        return edge
