"""Admin routes that change keys and dead letters over HTTP, as ``recsmith keys create`` and
``recsmith deadletters replay`` do: thin wrappers over ``governance.keys.create_api_key`` and
``store.dead_letter_replay.replay_dead_letters``, each audited with the key that asked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from recsmith.errors import ValidationError
from recsmith.governance.audit import record_audit
from recsmith.governance.keys import create_api_key, expiry, key_json
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.input_errors import invalid, query_time
from recsmith.serving.routers.admin import AdminKey, KeyInfo, Since, admin_key
from recsmith.serving.schemas import error_responses
from recsmith.store.dead_letter_replay import replay_dead_letters, replay_target
from recsmith.validation_reasons import KEY_EXPIRES_PATTERN, PRINTABLE_PATTERN

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_key)],
    route_class=AllowEveryMethod,  # see ``admin.router``
)


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=PRINTABLE_PATTERN,
        description="who or what holds it (shown in the key list and the audit trail)",
    )
    scopes: list[Literal["ingest", "read", "admin"]] = Field(
        min_length=1, description="admin implies the others"
    )
    expires: str | None = Field(
        None,
        pattern=KEY_EXPIRES_PATTERN,  # spans only, unlike the CLI's ``--expires``: an ISO date
        # could be in the past, which the schema cannot say
        description="how long from now: 90d, 12h, 2w (s, m, h, d, w); null: never",
    )


class CreatedKey(KeyInfo):
    secret: str = Field(description="the key itself: shown this once, only its hash is stored")


@router.post(
    "/keys",
    response_model=CreatedKey,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),  # a body: its own errors
)
async def create_key(body: KeyIn, runtime: RuntimeDep, key: AdminKey) -> dict[str, Any]:
    """A new key with these scopes and expiry: its secret is in this answer and nowhere else
    (the store keeps its SHA-256). Audited as ``key.create`` with the key that asked."""
    now = datetime.now(UTC)
    try:
        expires_at = None if body.expires is None else expiry(body.expires, now, "expires")
        created, secret = await run_in_threadpool(
            lambda: create_api_key(
                runtime.store, body.name, body.scopes, expires_at=expires_at, actor=key
            )
        )
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None
    return {**key_json(created, now), "secret": secret}


class ReplayResponse(BaseModel):
    examined: int = Field(description="dead letters read")
    stored: int = Field(description="records that pass now and were stored")
    duplicates: int = Field(description="records that pass but were stored already")
    refused_again: int = Field(description="passed the door, refused by the store again")
    not_kept_whole: int = Field(description="too large to have been kept: cannot be replayed")
    still_refused: int = Field(description="records that still fail validation (kept)")
    still_refused_by_reason: dict[str, int]


@router.post(
    "/dead-letters/replay",
    response_model=ReplayResponse,
    summary="Replay refused records after a fix",
    responses=error_responses(401, 403, 422, 503),
)
async def replay(
    runtime: RuntimeDep,
    key: AdminKey,
    since: Since = None,
    reason: Annotated[
        str | None,
        Query(max_length=500, description="only those whose errors contain this text"),
    ] = None,
) -> dict[str, Any]:
    """``recsmith deadletters replay``: validate the dead letters received at or after
    ``since`` (whose errors contain ``reason``) again under the server's current config and
    store those that pass (their letters removed); safe to run twice. Audited as
    ``deadletters.replay`` with the counts."""
    start = query_time(since, "since")
    result = await run_in_threadpool(
        replay_dead_letters, runtime.store, runtime.settings.events, since=start, reason=reason
    )
    counts = result.to_json()
    target = replay_target(since, reason)
    await run_in_threadpool(
        lambda: record_audit(
            runtime.store, action="deadletters.replay", target=target, key=key, detail=counts
        )
    )
    return counts
