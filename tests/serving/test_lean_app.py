"""``direct_route.lean``: a solved handler's app without ``request_response``'s exit stacks and
exception wrapper, answering and failing as it does. Oracle: FastAPI's own
``request_response`` of the same handler, given the same scope (the app's handlers in it, as
``fast_lane.Shortcut`` puts them), each outcome compared message by message and by the exception
that escapes; and the read routes themselves, handed to the lean app by the lane."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import request_response
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from recsmith.serving import fast_lane
from recsmith.serving.direct_route import lean
from recsmith.serving.fast_lane import FastLane
from recsmith.serving.routers import recommend

Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    """An error the app has a handler for."""


class _Unknown(Exception):
    """An error no handler answers."""


def _to_418(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"handled {type(exc).__name__}", status_code=418)


async def _by_status(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("by status", status_code=409)


HANDLERS = ({_Refused: _to_418}, {409: _by_status})


def _outcome(app: Any, fail_send_at: str | None = None) -> tuple[list[Any], str | None]:
    """The messages ``app`` sends for a GET and the exception escaping it (its class and
    text; a cause's class too). ``fail_send_at``: the message type whose send raises
    ``_Refused`` (``_Unknown`` for ``"unknown:…"``, a 409 ``HTTPException`` for ``"status:…"``)."""
    sent: list[Any] = []

    async def send(message: Any) -> None:
        if fail_send_at is not None and message["type"] == fail_send_at.split(":")[-1]:
            kind = fail_send_at.split(":")[0]
            if kind == "status":  # answered by the app's handler for its status only
                raise HTTPException(409, "send failed")
            raise (_Unknown if kind == "unknown" else _Refused)("send failed")
        sent.append(dict(message))

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"",
             "starlette.exception_handlers": HANDLERS}  # fmt: skip
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else None
        return sent, f"{type(exc).__name__}: {exc} (cause {cause})"
    return sent, None


async def _ok(request: Request) -> Response:
    return Response(b'{"a":1}', status_code=200, media_type="application/json")


async def _refused(request: Request) -> Response:
    raise _Refused("no")


async def _unknown(request: Request) -> Response:
    raise _Unknown("a bug")


async def _conflict(request: Request) -> Response:
    raise HTTPException(409, "taken")


class _BeforeStart(JSONResponse):
    """A response class that fails before it starts (as a file response whose file is gone)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raise _Refused("before start")


async def _fails_before_start(request: Request) -> Response:
    return _BeforeStart({"a": 1})


async def _json(request: Request) -> Response:
    return JSONResponse({"a": [1, 2]}, headers={"x-k": "v"})


@pytest.mark.parametrize(
    "handler", [_ok, _refused, _unknown, _conflict, _fails_before_start, _json]
)
def test_answers_and_fails_as_request_response(handler: Handler) -> None:
    expected = _outcome(request_response(handler))
    assert _outcome(lean(handler)) == expected


@pytest.mark.parametrize(
    "fail_send_at",
    [
        "http.response.start",
        "http.response.body",
        "unknown:http.response.start",
        "unknown:http.response.body",
        "status:http.response.body",
    ],
)
def test_a_send_failing_once_started_fails_as_request_response(fail_send_at: str) -> None:
    """Started: ``RuntimeError`` from the error where the app handles its class, else itself."""
    expected = _outcome(request_response(_ok), fail_send_at)
    assert expected[1] is not None  # the oracle did fail
    assert _outcome(lean(_ok), fail_send_at) == expected


def test_the_read_routes_are_handed_to_a_lean_app_of_their_own_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lane hands a read route's requests to a lean app, not to FastAPI's
    ``request_response``, made from the handler the route's own class makes (the POST's
    strict JSON wrapper included: ``test_read_direct_routes`` holds the answers to FastAPI's)."""
    made: list[Any] = []
    monkeypatch.setattr(fast_lane, "lean", lambda handler: made.append(handler) or handler)
    app = FastAPI()
    app.include_router(recommend.router)
    lane = FastLane(app.router, app.router.app)
    direct = [x for group in lane.index.by_count.values() for _, by_key in group
              for lanes in by_key.values() for x in lanes if x.direct]  # fmt: skip
    assert direct
    assert {id(x.app) for x in direct} <= {id(h) for h in made}
    assert all(x.app is not x.context.app for x in direct)
    strict = [h for h in made if h.__qualname__.startswith("StrictJSONRoute.")]
    assert strict  # the class's own wrapper, as FastAPI's handler has it
