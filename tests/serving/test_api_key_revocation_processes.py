"""Two real server processes (replicas) on one store: a key revoked by the CLI is refused by both
within a second, a key that expires is refused by both from its expiry on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from live_server import live_server

from recsmith.config import Settings
from recsmith.governance.keys import create_api_key, revoke_api_key
from recsmith.store.open import open_store

pytestmark = pytest.mark.slow
PROMISE_S = 1.0


def status(base: str, secret: str) -> int:
    # a new connection per request (no keep-alive): nothing carried over between requests
    return httpx.get(f"{base}/v1/popular", headers={"X-API-Key": secret}, timeout=5).status_code


def test_two_replicas_refuse_a_revoked_and_an_expired_key(bundle_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    settings = Settings(store={"url": url}, serving={"model_dir": bundle_dir})
    store = open_store(url)
    (a_dir := tmp_path / "a").mkdir()
    (b_dir := tmp_path / "b").mkdir()
    try:
        victim, secret = create_api_key(store, "leaked", ["read"])
        with live_server(settings, a_dir) as a, live_server(settings, b_dir) as b:
            bases = (a.base, b.base)
            expires = datetime.now(UTC) + timedelta(seconds=2)
            _, short = create_api_key(store, "short", ["read"], expires_at=expires)
            assert [status(base, s) for base in bases for s in (secret, short)] == [200] * 4
            started = time.monotonic()
            revoke_api_key(store, victim.key_id)  # what `recsmith keys revoke` does
            refused_after: dict[str, float] = {}
            while len(refused_after) < 2 and time.monotonic() - started < 5:
                for base in bases:
                    if base not in refused_after and status(base, secret) == 403:
                        refused_after[base] = time.monotonic() - started
                time.sleep(0.02)
            assert set(refused_after) == set(bases)
            assert max(refused_after.values()) <= PROMISE_S, refused_after
            assert [status(base, short) for base in bases] == [200, 200]  # still valid
            time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.01)
            assert [status(base, short) for base in bases] == [403, 403]
    finally:
        store.close()
