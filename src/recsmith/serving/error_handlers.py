"""Every failure is an HTTP response with a JSON body; nothing escapes to the ASGI server.

Why a middleware and not only exception handlers: Starlette's handler for ``Exception`` sends its
500 and then re-raises, and uvicorn answers an exception raised after a response started by
closing the connection, so one failing request also failed the client's next request on that
keep-alive connection, and logged a traceback per request. ``ErrorBoundary`` sits outside the
routers and keeps the exception from going further.

- ``StoreUnavailable`` (the store is down, full, read-only…) is an outage, not a bug: 503 with the
  backend's ``cause`` and ``Retry-After``, and no log line here (the store logs when an outage
  starts and when it ends, ``store.outage``).
- Anything else is a bug: 500 with an ``error_id`` (the request's ``X-Request-ID``,
  ``monitoring.request_id``), logged once with its traceback under that id, so a report from a
  client can be found in the log.
"""

from __future__ import annotations

import logging
from uuid import uuid4

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsmith.errors import StoreUnavailable
from recsmith.monitoring.request_id import current_request_id

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying while the store is unavailable.
RETRY_AFTER_S = 5


def store_unavailable_response(exc: StoreUnavailable) -> JSONResponse:
    """The 503 for a store outage: what failed, the backend's words, when to retry."""
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


class ErrorBoundary:
    """Pure ASGI middleware: an exception from the app becomes a JSON 500 (module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        except Exception as exc:
            if started:  # a started response cannot be restarted (its head may be out, or held
                # by one_write): uvicorn closes the connection, which is the only way to end it
                raise
            if isinstance(exc, StoreUnavailable):  # raised outside the routers (middleware)
                response = store_unavailable_response(exc)
            else:
                error_id = current_request_id() or uuid4().hex
                log.exception("error %s answering %s %s", error_id, scope["method"], scope["path"])
                body = {"detail": "internal server error", "error_id": error_id}
                response = JSONResponse(body, status_code=500)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the 503 handler and put ``ErrorBoundary`` outside every other middleware (call
    after adding them)."""
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_middleware(ErrorBoundary)
