"""What a request body may be, decided before any of it is parsed: its size, type and encoding.

Routes read bodies whole (``await request.body()``) and parse them as JSON, so without a bound a
single 200 MB event was buffered, parsed (server memory 338 MB to 1.3 GB) and held the event loop
for 1.7 s. The app's outer layer (``serving.edge``) holds every request to ``guarded_body``, which
refuses, with a JSON ``detail`` naming the rule:

* a body larger than ``serving.max_body_bytes`` (413): a declared ``Content-Length`` is checked
  before a byte is read; a chunked body is counted as it arrives, so at most the limit plus one
  network read is ever buffered. A gzip body counts its *decompressed* size, decompressed as it
  streams in with bounded output, so a small zip bomb stops at the limit too.
* a body that is not JSON (415): ``application/json`` (``application/merge-patch+json`` too on
  PATCH, RFC 7396; ``application/toml`` too on the live rule file's routes, ``TOML_PATHS``), in
  UTF-8. A body without a ``Content-Type`` is read as JSON: the parser is
  strict, so nothing is guessed, and many HTTP libraries send raw bytes without one. A form type
  (curl's ``-d`` default) is refused, since it says the bytes are something else.
* a ``Content-Encoding`` other than ``gzip`` or ``identity`` (415), and gzip that does not
  decompress (400).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope

#: Media types a body may have; ``application/merge-patch+json`` only on PATCH.
JSON_TYPES = ("application/json",)
PATCH_TYPES = (*JSON_TYPES, "application/merge-patch+json")
#: Routes whose body is a live rule file, which may be TOML as ``recsmith rules set`` reads it.
TOML_PATHS = frozenset({"/v1/admin/rules", "/v1/admin/rules/validate"})
TOML_TYPE = "application/toml"
ENCODINGS = ("gzip", "identity")
SETTING = "serving.max_body_bytes"

#: The answer closes the connection: the rest of an unbounded body is not worth reading.
_CLOSE = {"Connection": "close"}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit; an HTTPException so that the
    route's error handling answers 413 whatever code was reading the body."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(413, too_large(limit, what), headers=_CLOSE)


class BadGzip(HTTPException):
    """The body says gzip but does not decompress (raised from ``receive`` as it streams)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            400, f"Content-Encoding is gzip but the body is not gzip data: {reason}", _CLOSE
        )


def too_large(limit: int, what: str) -> str:
    """The 413's ``detail``: the limit and the setting that sets it, so a client (or its operator)
    knows both how much to send and what to change."""
    return f"{what} is larger than {limit} bytes ({SETTING}): send less per request"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _has_body(scope: Scope) -> bool:
    """A request sends a body when it declares a non-zero length or streams one (chunked)."""
    length = _header(scope, b"content-length")
    if length is not None:
        return length.strip() != "0"
    return _header(scope, b"transfer-encoding") is not None


def _encoding(scope: Scope) -> str:
    return (_header(scope, b"content-encoding") or "identity").strip().lower()


def refusal(scope: Scope, limit: int) -> tuple[int, str] | None:
    """Status and reason when the headers of a request with a body rule it out, else None."""
    length = _header(scope, b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        return 413, too_large(limit, f"the body (Content-Length {int(length)})")
    media = _header(scope, b"content-type")
    if media is not None:
        kind, *params = (part.strip().lower() for part in media.split(";"))
        accepted = PATCH_TYPES if scope["method"] == "PATCH" else JSON_TYPES
        if scope["path"] in TOML_PATHS:
            accepted = (*accepted, TOML_TYPE)
        if kind not in accepted:
            return 415, (
                f"Content-Type {kind!r} is not accepted: send {' or '.join(accepted)} "
                "(curl: -H 'Content-Type: application/json')"
            )
        charsets = [p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")]
        if any(charset not in ("utf-8", "utf8") for charset in charsets):
            return 415, f"Content-Type {media!r}: bodies are UTF-8 (charset=utf-8 or none)"
    encoding = _encoding(scope)
    if encoding not in ENCODINGS:
        return 415, (
            f"Content-Encoding {encoding!r} is not accepted: send gzip or an unencoded body"
        )
    return None


class Gunzip:
    """Streaming gzip decompression whose output never exceeds ``limit`` bytes in total.

    ``max_length`` bounds each call's output, so a chunk that would inflate past the limit raises
    after producing at most ``limit + 1`` bytes; concatenated gzip members (``cat a.gz b.gz``) are
    one valid body, as RFC 1952 allows.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.produced = 0
        self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        return b"".join(self._inflate(data))

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self.inflater.decompress(data, self.limit - self.produced + 1)
            except zlib.error as exc:
                raise BadGzip(str(exc)) from None
            self.produced += len(out)
            if self.produced > self.limit:
                raise BodyTooLarge(self.limit, "the decompressed body")
            yield out
            if self.inflater.eof:  # a member ended: what follows must be another member
                data = self.inflater.unused_data
                if data:
                    self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = self.inflater.unconsumed_tail

    def finish(self) -> None:
        if not self.inflater.eof:
            raise BadGzip("it ends before the gzip stream does")


def guarded_body(scope: Scope, receive: Receive, limit: int) -> tuple[Scope, Receive] | Response:
    """What the app gets of a request under the rules in the module docstring: its scope and a
    ``receive`` counting (and inflating) the body against ``limit`` as it arrives, or the refusal
    to answer instead, decided from the headers before a byte of the body is read. A request
    without a body is passed as it came."""
    if not _has_body(scope):
        return scope, receive
    refused = refusal(scope, limit)
    if refused is not None:
        status, detail = refused
        return JSONResponse({"detail": detail}, status)
    gzip = _encoding(scope) == "gzip"
    if gzip:  # the app sees the plain body: its length is known only once it is inflated
        scope = dict(scope)
        scope["headers"] = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ]
    return scope, _bounded(receive, limit, Gunzip(limit) if gzip else None)


def _bounded(receive: Receive, limit: int, gunzip: Gunzip | None) -> Receive:
    """``receive`` counting (and inflating) the body as it arrives, raising past the limit."""
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] != "http.request":
            return message
        body: bytes = message.get("body", b"")
        if gunzip is not None:
            body = gunzip.feed(body)
            if not message.get("more_body", False):
                gunzip.finish()
            return {**message, "body": body}
        received += len(body)
        if received > limit:
            raise BodyTooLarge(limit, "the body")
        return message

    return bounded_receive
