"""Every failure is an HTTP response with a JSON body; nothing escapes to the ASGI server.

Why a boundary in the app's outer layer and not only exception handlers: Starlette's handler for
``Exception`` sends its 500 and then re-raises, and uvicorn answers an exception raised after a
response started by closing the connection, so one failing request also failed the client's next
request on that keep-alive connection, and logged a traceback per request. The app's outer layer
(``serving.edge``) answers an exception that reached it, before a response started, with
``failure_response`` and keeps it from going further.

- ``StoreUnavailable`` (the store is down, full, read-only…) is an outage, not a bug: 503 with the
  backend's ``cause`` and ``Retry-After``, and no log line here (the store logs when an outage
  starts and when it ends, ``store.outage``). A write on a store open read-only
  (``StoreReadOnly``) is a 503 too, saying so, with no ``Retry-After``: retrying will not help.
- Anything else is a bug: 500 with an ``error_id`` (the request's ``X-Request-ID``,
  ``monitoring.request_id``), logged once with its traceback under that id, so a report from a
  client can be found in the log.
"""

from __future__ import annotations

import logging
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response
from starlette.types import Scope

from recsmith.errors import StoreReadOnly, StoreUnavailable
from recsmith.monitoring.request_id import current_request_id

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying while the store is unavailable.
RETRY_AFTER_S = 5


def store_unavailable_response(exc: StoreUnavailable) -> JSONResponse:
    """The 503 for a store outage: what failed, the backend's words, when to retry; for a write
    on a read-only store, that it is read-only (no time to retry after)."""
    if isinstance(exc, StoreReadOnly):
        detail = "the event store is open read-only: this server cannot write to it"
        return JSONResponse({"detail": detail, "cause": exc.cause}, status_code=503)
    return JSONResponse(
        {
            "detail": "the event store is unavailable; retry later",
            "cause": exc.cause,
        },
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreUnavailable)  # registered for that type only
    return store_unavailable_response(exc)


def failure_response(scope: Scope, exc: Exception) -> Response:
    """The answer to an exception that escaped the app before its response started (module
    docstring): the store outage's 503, or a 500 logged with its traceback under the request's
    id."""
    if isinstance(exc, StoreUnavailable):  # raised outside the routers (middleware)
        return store_unavailable_response(exc)
    error_id = current_request_id() or uuid4().hex
    log.exception("error %s answering %s %s", error_id, scope["method"], scope["path"])
    return JSONResponse({"detail": "internal server error", "error_id": error_id}, 500)


def install(app: FastAPI) -> None:
    """Register the 503 handler of a store outage raised in a route."""
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
