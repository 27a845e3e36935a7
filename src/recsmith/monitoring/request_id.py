"""A request id on every request: taken from ``X-Request-ID`` or made up, echoed in the response,
and visible to every log line written while the request is handled (``monitoring.logs``).

A client (or a proxy in front) that sends its own id can follow one request through its logs and
ours; a 500's ``error_id`` is this id too, so a report quoting either finds the traceback.
Sent ids are kept only when short and plain (``[A-Za-z0-9._:-]``, at most 128 characters):
anything else would let a client write arbitrary text into the log, so it is replaced.
The app's outermost layer (``serving.edge``) chooses it, sets ``REQUEST_ID`` for the request and
adds the ``X-Request-ID`` header to every response, an error answer's too.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

from starlette.types import Scope

from recsmith.ids import random_16

HEADER = b"x-request-id"
REQUEST_ID: ContextVar[str | None] = ContextVar("recsmith_request_id", default=None)
_PLAIN = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


def current_request_id() -> str | None:
    """The id of the request being handled in this context (None outside a request)."""
    return REQUEST_ID.get()


def chosen_id(scope: Scope) -> str:
    """The request's ``X-Request-ID`` when it is plain (module docstring), else a new random
    one."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return value.decode("ascii") if _PLAIN.fullmatch(value) else random_16().hex()
    return random_16().hex()  # 128 random bits, as uuid4 without building a UUID
