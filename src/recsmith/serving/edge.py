"""``Edge``: the app's own per-request middleware in one pure ASGI layer: the request id, the
error boundary, the rollback watch, the request's metrics, the URL's text and the body's limits,
outermost first.

They were six layers (one ``add_middleware`` each): per request six coroutine frames, and for
the three that read a response's status or add its header a ``send`` wrapper each that every
message went through (BENCHMARKS §89). Each concern's rule stays in its own module; this layer
calls them in the order the six layers nested them, so every status, header and body is the
same:

- the request id (``monitoring.request_id``) is chosen first and set for the whole request;
  every response that starts carries it, the boundary's own answer too;
- the rollback watch (``lifecycle.rollback``, while it watches a release) and the metrics
  (``Metrics.observe_request``) see the status the response started with, 500 when nothing
  started (the app raised), timed from the request's arrival (``ARRIVED``, where
  ``Decision.latency_ms`` starts), before the boundary answers;
- an exception that escapes before a response started is the boundary's answer
  (``error_handlers.failure_response``: a 503 for a store outage, else a logged 500); after the
  response started it goes on to the server, which closes the connection; should that answer
  itself fail before it starts, Starlette's plain 500 is sent (``ServerErrorMiddleware``'s,
  which ``served_app`` may skip) and the exception goes on to the server;
- a URL that is not UTF-8 text (``url_text``: 422), then a body the headers rule out
  (``request_body``: 413, 415), is answered here, counted by the metrics and the watch as any
  answer; the app gets the body bounded (a gzip body inflated, in a copy of the scope without
  the encoding's headers, so the metrics read the route of the scope they were given: a gzip
  body's request is counted as ``<unmatched>``, as it was);
- a request the fast lane routes to a solved ``DirectRoute`` (the read routes) is handed to its
  route here, past FastAPI's inner layers (``fast_lane.Shortcut``); every other goes through
  them.
"""

from __future__ import annotations

import time

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsmith.decisions.served import ARRIVED
from recsmith.lifecycle.rollback import RollbackGuard
from recsmith.monitoring.request_id import HEADER, REQUEST_ID, chosen_id
from recsmith.serving.error_handlers import failure_response
from recsmith.serving.fast_lane import shortcut
from recsmith.serving.metrics import Metrics
from recsmith.serving.request_body import guarded_body
from recsmith.serving.url_text import url_refusal

#: The answer when the boundary's own answer failed before it started: Starlette's
#: ``ServerErrorMiddleware``'s, which stood outside this layer for every request
_LAST_RESORT = PlainTextResponse("Internal Server Error", status_code=500)


class Edge:
    """See module docstring; ``guard``: the rollback watch, where the app has one."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        guard: RollbackGuard | None = None,
    ) -> None:
        self.app, self.metrics, self.limit, self.guard = app, metrics, max_body_bytes, guard
        #: past FastAPI's inner layers to the hot routes (None: every request through them)
        self.shortcut = shortcut(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = chosen_id(scope)
        token = REQUEST_ID.set(request_id)
        header = (HEADER, request_id.encode("ascii"))
        status: int | None = None  # what the response started with; None: nothing started

        async def send_noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        guard = self.guard
        watched = guard is not None and guard.watches(scope["path"])
        arrived = scope[ARRIVED] = time.perf_counter()
        try:
            try:
                answer = url_refusal(scope)
                if answer is None:
                    answer = guarded_body(scope, receive, self.limit)
                if isinstance(answer, tuple):
                    short = self.shortcut
                    if short is not None and (found := short.lane(answer[0])) is not None:
                        await short.app_for(found, answer[0])(*answer, send_noted)
                    else:
                        await self.app(*answer, send_noted)
                else:
                    await answer(scope, receive, send_noted)
            finally:
                seconds = time.perf_counter() - arrived
                answered = 500 if status is None else status
                self.metrics.observe_request(scope, answered, seconds)
                if watched:
                    guard.observe(answered, seconds)  # type: ignore[union-attr]
        except Exception as exc:
            if status is not None:  # a started response cannot be restarted (its head may be
                # out, or held by one_write): uvicorn closes the connection, the only way to end it
                raise
            try:
                await failure_response(scope, exc)(scope, receive, send_noted)
            except Exception:
                if status is None:  # ``ServerErrorMiddleware``'s answer, which ``ServedApp``
                    await _LAST_RESORT(scope, receive, send)  # may skip; the server logs it
                raise
        finally:
            REQUEST_ID.reset(token)
