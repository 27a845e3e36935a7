"""The per-request key check: which API key may call which route, and how often.

A key holds scopes ``ingest``, ``read`` and ``admin`` (admin implies the others). Clients send it as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With ``serving.require_keys = false`` the
check is skipped entirely: that is meant for a server on localhost during development only. Keys
are created, listed and revoked by ``governance.keys``.

Lookups are cached in-process for ``KEY_CACHE_TTL_S`` (half a second), so a busy client costs one
store query per half second and server process, not one per request, and a key revoked anywhere
(another worker, another replica, the CLI) is refused by every process within a second; the process
that revokes it forgets it at once. Expiry is compared with the clock on every request, so an
expired key is refused from the moment it expires. While the store is unavailable, a key verified
before stays valid from the cache however old its entry (the server keeps answering reads from
memory, so its clients must keep getting in); a key the cache does not hold cannot be checked,
which is a 503 (``StoreUnavailable``), not a 401. Per-key rate limits (``access.rate_limit``) are
charged after the scope check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recsmith.access import exposure
from recsmith.access.rate_limit import Buckets, Rate, TokenBuckets, retry_after
from recsmith.errors import StoreUnavailable
from recsmith.governance.keys import hash_key
from recsmith.serving.deps import Runtime, runtime_of
from recsmith.store.base import SCOPES, ApiKey, EventStore

#: Seconds a looked-up key is trusted before the store is asked again: the longest a revocation
#: made elsewhere takes to bite (half the promised second, leaving room for the lookup itself).
KEY_CACHE_TTL_S = 0.5
#: Upper bound on cached keys; past it the cache is emptied (a flood of fake keys cannot grow it).
KEY_CACHE_MAX = 10_000

_bearer = HTTPBearer(auto_error=False, description="API key as `Authorization: Bearer rsk_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key as `X-API-Key`")


class KeyCache:
    """A server process's view of the keys: lookups by secret hash, remembered for ``ttl``
    seconds (unknown keys are not cached), and each key's rate-limit buckets."""

    def __init__(
        self,
        store: EventStore,
        rates: Mapping[str, Rate] | None = None,
        ttl: float = KEY_CACHE_TTL_S,
        buckets: Buckets | None = None,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()
        self.rates = dict(rates or {})
        #: the process's own buckets, or ones shared through Redis (``access.shared_rate_limit``)
        self.buckets: Buckets = buckets if buckets is not None else TokenBuckets(self.rates)

    def cached(self, key_hash: str) -> ApiKey | None:
        entry = self._entries.get(key_hash)  # a dict read is atomic: no lock on the hot path
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def lookup(self, key_hash: str) -> ApiKey | None:
        """Ask the store (blocking) and remember a found key; while the store is unavailable,
        a key found before is answered from the cache, past its TTL too."""
        try:
            key = self._store.find_api_key(key_hash)
        except StoreUnavailable:
            with self._lock:
                entry = self._entries.get(key_hash)
            if entry is None:
                raise
            return entry[1]
        if key is not None:
            with self._lock:
                if len(self._entries) >= KEY_CACHE_MAX:
                    self._entries.clear()
                self._entries[key_hash] = (time.monotonic() + self._ttl, key)
        return key

    def forget(self, key_id: str) -> None:
        """Drop the cached entry of this key (revoked here: refused by this process at once)."""
        with self._lock:
            for key_hash in [h for h, (_, k) in self._entries.items() if k.key_id == key_id]:
                del self._entries[key_hash]


def _presented_secret(
    bearer: HTTPAuthorizationCredentials | None, header: str | None
) -> str | None:
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or None


def _missing_key_reason(authorization: str | None) -> str:
    """Why no key was read: none sent, or an Authorization header without the Bearer scheme
    (``Authorization: rsk_…`` is the usual slip; saying only "a key is required" hides it)."""
    usage = "Authorization: Bearer <key> or X-API-Key: <key>"
    if not authorization or not authorization.strip():
        return f"an API key is required ({usage})"
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return f"the Authorization header says Bearer but carries no key ({usage})"
    if not rest.strip():
        return f"the Authorization header has no scheme: write 'Bearer <key>' ({usage})"
    return f"the Authorization scheme {scheme!r} is not supported: use Bearer ({usage})"


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


#: Headers that carry a key. Two in one request (a proxy's and the client's, or a read key and an
#: admin key) are refused: whichever one the server picked, the audit trail could name the other.
_KEY_HEADERS = frozenset({b"authorization", b"x-api-key"})


def secret_in_headers(request: Request) -> str | None:
    """The key as ``HTTPBearer`` and ``APIKeyHeader`` read it, for routes that do not solve them
    as dependencies (``admit``, ``require_exposure``)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key") or None


async def _valid_key(runtime: Runtime, request: Request, secret: str | None) -> ApiKey:
    """The presented key when it exists, is not revoked and has not expired: 401 or 403 else.

    A cached key costs no thread hop; a cache miss reads an embedded store on the event loop (a
    few microseconds) and a networked one from the thread pool."""
    if secret is None:
        raise _unauthorized(_missing_key_reason(request.headers.get("authorization")))
    if len([1 for name, _ in request.scope["headers"] if name in _KEY_HEADERS]) > 1:
        raise _unauthorized(
            "the request carries more than one key (Authorization and X-API-Key headers): "
            "which one asks? Send one"
        )
    key_hash = hash_key(secret)
    keys = runtime.keys
    key = keys.cached(key_hash)
    if key is None:
        if runtime.store.local:
            key = keys.lookup(key_hash)
        else:
            key = await run_in_threadpool(keys.lookup, key_hash)
    if key is None:
        raise _unauthorized("invalid API key")
    if key.revoked:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"API key {key.key_id} is revoked")
    if key.expires_at is not None and key.expired(datetime.now(UTC)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"API key {key.key_id} expired at {key.expires_at.isoformat()}",
        )
    return key


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey | None]]:
    """A dependency admitting requests whose key holds ``scope`` and is within its rate: 401
    without a valid key, 403 for a revoked or expired key or one without the scope, 429 past the
    key's rate for ``scope``. Returns the key, or None when keys are not required.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")

    async def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> ApiKey | None:
        return await admit(runtime_of(request), request, scope, _presented_secret(bearer, header))

    return check


#: What a route that checks its key itself (``admit``) declares in the published schema, as
#: ``require_scope``'s two security dependencies would: either header carries the key.
SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


async def admit(
    runtime: Runtime, request: Request, scope: str, secret: str | None
) -> ApiKey | None:
    """``require_scope``'s check, callable from a handler: a hot route (``POST /v1/events``)
    calls it directly instead of paying FastAPI's solve of three dependencies per request, and
    declares ``SECURITY`` in its ``openapi_extra``; it reads ``secret`` with
    ``secret_in_headers``."""
    if not runtime.settings.serving.require_keys:
        return None
    key = await _valid_key(runtime, request, secret)
    if not key.allows(scope):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"API key {key.key_id} lacks the {scope!r} scope (has: {', '.join(key.scopes)})",
        )
    wait_s = runtime.keys.buckets.admit(key.key_id, scope)
    if wait_s:
        rate = runtime.keys.rates[scope]
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"API key {key.key_id} is over its {scope} rate of {rate.count:g} per "
            f"{rate.period_s:g} s; retry in {wait_s:.2f} s",
            headers={"Retry-After": retry_after(wait_s)},
        )
    # what a route's own finer check reads (``?explain=true``) as ``request.state.api_key``:
    # put in the state's dict itself, without building a ``State`` over it per request
    request.scope.setdefault("state", {})["api_key"] = key
    return key


def require_exposure(what: Literal["metrics", "docs"]) -> Callable[..., Awaitable[None]]:
    """A dependency for ``/metrics`` (``what="metrics"``) or the API docs (``"docs"``): open, any
    valid key, or 404, as ``auth.expose_metrics`` / ``auth.expose_docs`` say
    (``access.exposure``). It reads the key from the headers itself: the security dependencies
    would mark ``/metrics`` as needing a key in the published schema, which holds for one
    setting only (and the schema is the same whatever the setting)."""

    async def check(request: Request) -> None:
        runtime = runtime_of(request)
        settings = runtime.settings
        wanted = settings.auth.expose_metrics if what == "metrics" else settings.auth.expose_docs
        mode = exposure.resolve(wanted, settings.serving.host)
        if mode == "off":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")
        if mode == "key" and settings.serving.require_keys:
            await _valid_key(runtime, request, secret_in_headers(request))

    return check
