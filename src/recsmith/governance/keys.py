"""API keys' life: created (the secret shown once, only its SHA-256 stored), listed, expired,
revoked. Every creation and revocation is written to the audit trail.

The request-time check (which key may call which route, how often) lives in ``serving.auth``;
this module is what the CLI and the admin routes call to change keys.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from recsmith.decisions.timespec import parse_time
from recsmith.errors import ValidationError
from recsmith.governance.audit import record_audit
from recsmith.store.base import SCOPES, ApiKey, EventStore
from recsmith.validation_reasons import unprintable

KEY_PREFIX = "rsk_"


class UnknownKey(ValidationError):
    """No stored key has this id (404 over HTTP, exit 2 in the CLI)."""

    def __init__(self, key_id: str) -> None:
        super().__init__("key_id", f"no API key has the id {key_id!r}")


def hash_key(secret: str) -> str:
    """What the store keeps instead of the secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def expiry(text: str, now: datetime, field: str = "--expires") -> datetime:
    """When a key given ``--expires TEXT`` at ``now`` expires: a span from now (``90d``,
    ``12h``, ``2w``) or an ISO 8601 date-time (UTC unless it names a zone), in the future."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:  # a span, read as parse_time reads one (that long before now), mirrored
        back = parse_time(text, field, now)
        assert back is not None  # parse_time returns None only for None
        at = now + (now - back)
    else:
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if at <= now:
        raise ValidationError(field, f"{text!r} is not in the future")
    return at


def create_api_key(
    store: EventStore,
    name: str,
    scopes: Sequence[str],
    *,
    expires_at: datetime | None = None,
    actor: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; return it with its secret, which is never stored and cannot be shown again.

    The secret reads ``rsk_<key_id>_<random>``: the key id makes a leaked key easy to find and
    revoke. ``actor`` is the key that asked (None: the CLI), for the audit record.
    """
    if not name.strip():
        raise ValidationError("name", "must not be empty")
    problem = unprintable(name)
    if problem is not None:
        raise ValidationError("name", problem)
    wanted = tuple(dict.fromkeys(scopes))  # de-duplicated, order kept
    if not wanted:
        raise ValidationError("scopes", f"at least one is needed ({', '.join(SCOPES)})")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ValidationError("scopes", f"unknown scope(s) {unknown} (known: {', '.join(SCOPES)})")
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise ValidationError("expires", f"{expires_at.isoformat()} is not in the future")
    key_id = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(24)}"
    key = ApiKey(key_id, name.strip(), wanted, now, expires_at=expires_at)
    store.add_api_key(key, hash_key(secret))
    detail = {"name": key.name, "scopes": list(wanted), "expires_at": _iso(expires_at)}
    record_audit(store, action="key.create", target=key_id, key=actor, detail=detail)
    return key, secret


def revoke_api_key(store: EventStore, key_id: str, *, actor: ApiKey | None = None) -> ApiKey:
    """Revoke a key (again: a no-op that keeps the first revocation time). Servers refuse it
    within ``serving.auth.KEY_CACHE_TTL_S``; raises ``UnknownKey`` for an unknown id."""
    revoked = store.revoke_api_key(key_id, datetime.now(UTC))
    outcome = "ok" if revoked is not None else "unknown key"
    record_audit(store, action="key.revoke", target=key_id, outcome=outcome, key=actor)
    if revoked is None:
        raise UnknownKey(key_id)
    return revoked


def key_state(key: ApiKey, now: datetime) -> str:
    """``revoked``, ``expired`` or ``active``."""
    if key.revoked:
        return "revoked"
    return "expired" if key.expired(now) else "active"


def key_json(key: ApiKey, now: datetime) -> dict[str, Any]:
    """What ``keys list --json`` and ``GET /v1/admin/keys`` show of a key: never its hash."""
    return {
        "key_id": key.key_id,
        "name": key.name,
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "state": key_state(key, now),
    }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
