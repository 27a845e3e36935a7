"""API keys: creation (secret shown once, only its SHA-256 stored) and the per-route scope check.

A key holds scopes ``ingest``, ``read`` and ``admin`` (admin implies the others). Clients send it as
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. With ``serving.require_keys = false`` the
check is skipped entirely: that is meant for a server on localhost during development only.

Lookups are cached in-process for ``KEY_CACHE_TTL_S`` seconds so that a busy client does not cost a
store query per request; the price is that revoking a key takes up to that long to bite. While the
store is unavailable, a key verified before stays valid from the cache however old its entry (the
server keeps answering reads from memory, so its clients must keep getting in); a key the cache
does not hold cannot be checked, which is a 503 (``StoreUnavailable``), not a 401.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from recsmith.errors import StoreUnavailable, ValidationError
from recsmith.serving.deps import runtime_of
from recsmith.store.base import SCOPES, ApiKey, EventStore

KEY_PREFIX = "rsk_"
KEY_CACHE_TTL_S = 30.0
#: Upper bound on cached keys; past it the cache is emptied (a flood of fake keys cannot grow it).
KEY_CACHE_MAX = 10_000

_bearer = HTTPBearer(auto_error=False, description="API key as `Authorization: Bearer rsk_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key as `X-API-Key`")


def hash_key(secret: str) -> str:
    """What the store keeps instead of the secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(store: EventStore, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    """Store a new key; return it with its secret, which is never stored and cannot be shown again.

    The secret reads ``rsk_<key_id>_<random>``: the key id makes a leaked key easy to find and
    revoke.
    """
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    wanted = tuple(dict.fromkeys(scopes))  # de-duplicated, order kept
    if not wanted:
        raise ValidationError("scopes", f"at least one is needed ({', '.join(SCOPES)})")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ValidationError("scopes", f"unknown scope(s) {unknown} (known: {', '.join(SCOPES)})")
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    key = ApiKey(key_id=key_id, name=name.strip(), scopes=wanted, created_at=datetime.now(UTC))
    store.add_api_key(key, hash_key(secret))
    return key, secret


class KeyCache:
    """Key lookups by secret hash, remembered for ``ttl`` seconds (unknown keys are not cached)."""

    def __init__(self, store: EventStore, ttl: float = KEY_CACHE_TTL_S) -> None:
        self._store = store
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def cached(self, key_hash: str) -> ApiKey | None:
        with self._lock:
            entry = self._entries.get(key_hash)
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


def require_scope(scope: str) -> Callable[..., Awaitable[ApiKey | None]]:
    """A dependency admitting requests whose key holds ``scope``: 401 without a valid key, 403 else.

    It is ``async`` so a cached key costs no thread hop; only a cache miss queries the store, in the
    thread pool. Returns the key, or None when keys are not required.
    """
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (known: {', '.join(SCOPES)})")

    async def check(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> ApiKey | None:
        runtime = runtime_of(request)
        if not runtime.settings.serving.require_keys:
            return None
        secret = _presented_secret(bearer, header)
        if secret is None:
            raise _unauthorized(_missing_key_reason(request.headers.get("authorization")))
        key_hash = hash_key(secret)
        key = runtime.keys.cached(key_hash)
        if key is None:
            key = await run_in_threadpool(runtime.keys.lookup, key_hash)
        if key is None:
            raise _unauthorized("invalid API key")
        if key.revoked:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"API key {key.key_id} is revoked")
        if not key.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"API key {key.key_id} lacks the {scope!r} scope (has: {', '.join(key.scopes)})",
            )
        return key

    return check
