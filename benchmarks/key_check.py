"""Cost of the API-key check every request pays (µs per call, best of 5 rounds of 100,000).

Three cases of ``serving.auth.require_scope("read")`` with the key already cached (what a busy
client meets): no rate limits configured; a read rate configured (a token bucket taken per call);
and, for scale, the floor of any key check (SHA-256 of the secret and a dictionary read). The
0.5 s cache refresh is timed on its own: one store read per key, server process and half second.

    PYTHONPATH=src python benchmarks/key_check.py
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from calibration import calibration_line
from fastapi.security import HTTPAuthorizationCredentials

from recsmith.config import Settings
from recsmith.governance.keys import create_api_key, hash_key
from recsmith.serving.auth import KeyCache, require_scope
from recsmith.store.sqlite import SQLiteStore

CALLS, ROUNDS = 100_000, 5
#: A browser-like request's headers, the key among them
HEADERS = [
    (b"host", b"api.example.com"),
    (b"user-agent", b"Mozilla/5.0"),
    (b"accept", b"application/json"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
    (b"authorization", b"Bearer rsk_..."),
    (b"x-request-id", b"0123456789abcdef"),
    (b"content-type", b"application/json"),
]


async def per_call_us(check: Callable[..., Awaitable[Any]], *args: Any) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            await check(*args)
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


async def main() -> None:
    print(calibration_line(), flush=True)
    store = SQLiteStore(Path(tempfile.mkdtemp()) / "keys.sqlite")
    _, secret = create_api_key(store, "bench", ["read"])
    bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=secret)
    check = require_scope("read")
    for name, settings in (
        ("no rate limits", Settings()),
        ("read = 1e9/s", Settings(auth={"rate_limits": {"read": "1000000000/s"}})),
    ):
        keys = KeyCache(store, settings.auth.rates(), ttl=1e9)  # always a cache hit
        runtime = SimpleNamespace(settings=settings, keys=keys, store=store)
        request = SimpleNamespace(
            app=SimpleNamespace(state=SimpleNamespace(runtime=runtime)),
            scope={"headers": HEADERS},  # scanned for a second key (refused: which one asks?)
            state=SimpleNamespace(),  # where admit leaves the key for a route's finer check
        )
        await check(request, bearer, None)  # the one lookup that fills the cache
        print(
            f"require_scope, {name:15s} {await per_call_us(check, request, bearer, None):5.2f} µs"
        )
    table = {hash_key(secret): object()}

    async def floor() -> None:
        table.get(hashlib.sha256(secret.encode()).hexdigest())

    print(f"floor: sha256 + dict read      {await per_call_us(floor):5.2f} µs")
    keys = KeyCache(store)
    started = time.perf_counter()
    for _ in range(2000):
        keys.lookup(hash_key(secret))
    refresh = (time.perf_counter() - started) / 2000 * 1e6
    print(f"cache refresh (SQLite read)    {refresh:5.1f} µs, once per key per 0.5 s and process")
    store.close()


asyncio.run(main())
