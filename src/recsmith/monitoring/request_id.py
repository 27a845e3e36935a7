"""A request id on every request: taken from ``X-Request-ID`` or made up, echoed in the response,
and visible to every log line written while the request is handled (``monitoring.logs``).

A client (or a proxy in front) that sends its own id can follow one request through its logs and
ours; a 500's ``error_id`` is this id too, so a report quoting either finds the traceback.
Sent ids are kept only when short and plain (``[A-Za-z0-9._:-]``, at most 128 characters):
anything else would let a client write arbitrary text into the log, so it is replaced.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from os import urandom

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
REQUEST_ID: ContextVar[str | None] = ContextVar("recsmith_request_id", default=None)
_PLAIN = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def current_request_id() -> str | None:
    """The id of the request being handled in this context (None outside a request)."""
    return REQUEST_ID.get()


def _chosen(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _PLAIN.fullmatch(value) else urandom(16).hex()
    return urandom(16).hex()  # 128 random bits, as uuid4 without building a UUID


class RequestIdMiddleware:
    """Pure ASGI (no per-request objects beyond the id): sets ``REQUEST_ID`` and adds the header to
    the response. Installed outermost, so even an error answer carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _chosen(scope)
        token = REQUEST_ID.set(request_id)
        header = (HEADER, request_id.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
