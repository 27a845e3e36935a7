"""Admin routes: pick up a deploy now, list and revoke API keys, read the audit trail and the
dead letters. Every change made here is written to the audit trail under the acting key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from recsmith.decisions.timespec import PATTERN
from recsmith.errors import ValidationError
from recsmith.governance.audit import ACTION_FILTERS, action_filter, record_audit
from recsmith.governance.keys import UnknownKey, key_json, revoke_api_key
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.auth import require_scope
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.input_errors import MAX_STORED_INT, invalid, query_time
from recsmith.serving.schemas import ErrorResponse, error_responses
from recsmith.store.base import ApiKey

#: One dependency object for the router and the handlers that need the key: FastAPI runs it
#: once per request and hands its result to both.
admin_key = require_scope("admin")
AdminKey = Annotated[ApiKey | None, Depends(admin_key)]
Since = Annotated[
    str | None, Query(pattern=PATTERN, description="7d, 12h, … back from now, or an ISO date")
]
Limit = Annotated[int, Query(ge=1, le=10_000, description="the latest this many")]

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_key)],
    route_class=AllowEveryMethod,  # GET and POST /keys are two routes: a 405 lists both
)


class ReloadResponse(BaseModel):
    model_version: str | None


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Load the registry's current release",
    responses={
        **error_responses(401, 403),
        409: {
            "model": ErrorResponse,
            "description": "serving.registry is not configured, or the registry's current "
            "release does not load: `detail` says why, and the previous release keeps serving",
        },
    },
)
async def reload(request: Request, runtime: RuntimeDep, key: AdminKey) -> ReloadResponse:
    """Swap to the model registry's current release (no-op when it is already served; retried
    when it failed before) in the process that answers, and within a second in every other
    worker and replica that follows the same registry; ``model_version`` is what the answering
    process serves now. Audited as ``reload``."""
    reloader = getattr(request.app.state, "reloader", None)
    if reloader is None:
        reason = "serving.registry is not configured"
        await run_in_threadpool(
            record_audit, runtime.store, action="reload", target="", outcome=reason, key=key
        )
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    state = await reloader.request()
    outcome = "ok" if state.error is None else f"not loaded: {state.error}"
    target = str(state.wanted or state.serving)
    await run_in_threadpool(
        record_audit, runtime.store, action="reload", target=target, outcome=outcome, key=key
    )
    if state.error is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"release {state.wanted} not loaded, still serving {state.serving}: {state.error}",
        )
    return ReloadResponse(model_version=state.serving)


# --- keys ---


class KeyInfo(BaseModel):
    """A key as listed: never its secret or its hash."""

    key_id: str
    name: str
    scopes: list[str]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    state: str = Field(description="active, expired or revoked")


@router.get(
    "/keys",
    response_model=list[KeyInfo],
    summary="Every API key (no secrets)",
    responses=error_responses(401, 403, 503),
)
def list_keys(runtime: RuntimeDep) -> list[dict[str, Any]]:
    """Id, name, scopes, creation, expiry, revocation and state of every key, oldest first."""
    now = datetime.now(UTC)
    return [key_json(k, now) for k in runtime.store.api_keys()]


@router.delete(
    "/keys/{key_id}",
    response_model=KeyInfo,
    summary="Revoke an API key",
    responses={
        **error_responses(401, 403, 404, 422, 503),
        409: {
            "model": ErrorResponse,
            "description": "the key is the one making the request: revoke it with another "
            "admin key or `recsmith keys revoke`",
        },
    },
)
def revoke_key(
    key_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the key's id")],
    runtime: RuntimeDep,
    key: AdminKey,
) -> dict[str, Any]:
    """Revoke the key: this process refuses it at once, every other worker and replica over
    the same store within a second. Revoking it again changes nothing (its first revocation
    time stays); an unknown id is 404. A key cannot revoke itself here (409): a slip would lock
    its holder out, perhaps with the last admin key; the CLI can. Audited as ``key.revoke``."""
    if key is not None and key.key_id == key_id:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"API key {key_id} is the key making this request: revoke it with another admin key "
            "or `recsmith keys revoke`",
        )
    try:
        revoked = revoke_api_key(runtime.store, key_id, actor=key)
    except UnknownKey as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from None
    runtime.keys.forget(key_id)
    return key_json(revoked, datetime.now(UTC))


# --- audit ---


class AuditEntry(BaseModel):
    at: str = Field(description="UTC, ISO 8601")
    key_id: str | None = Field(description="the acting key's id; null for the CLI")
    key_name: str | None = Field(description="the key's name, or cli:<os user>")
    action: str
    target: str
    outcome: str = Field(description="ok, or why it failed")
    detail: dict[str, Any]


@router.get(
    "/audit",
    response_model=list[AuditEntry],
    summary="The audit trail",
    responses=error_responses(401, 403, 422, 503),
)
def audit_trail(
    runtime: RuntimeDep,
    since: Since = None,
    action: Annotated[
        str | None,
        Query(
            max_length=100,
            description="only this action (key: key.create and key.revoke)",
            # published, so a client (and the schema fuzzer) knows the names action_filter takes
            json_schema_extra={"enum": sorted(ACTION_FILTERS)},
        ),
    ] = None,
    limit: Limit = 1000,
) -> list[dict[str, Any]]:
    """Who (key id and name) did what, to what, when and how it ended: the latest ``limit``
    records at or after ``since``, oldest first."""
    start = query_time(since, "since")
    try:
        wanted = action_filter(action)
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None
    return [r.to_json() for r in runtime.store.scan_audit(start, wanted, limit)]


# --- dead letters ---


class DeadLetterEntry(BaseModel):
    id: int = Field(description="pass the last one as after_id for the next page")
    received_at: str = Field(description="UTC, ISO 8601")
    source: str = Field(description="the route or file the record came from")
    record_index: int = Field(description="its position in that request or file")
    errors: list[dict[str, str]] = Field(description="every field error: {field, reason}")
    payload: Any = Field(description="the record as sent (a marker when it was too large)")


@router.get(
    "/dead-letters",
    response_model=list[DeadLetterEntry],
    summary="Refused records and why",
    responses=error_responses(401, 403, 422, 503),
)
def dead_letters(
    runtime: RuntimeDep,
    since: Since = None,
    reason: Annotated[
        str | None,
        Query(max_length=500, description="only those whose errors contain this text"),
    ] = None,
    after_id: Annotated[
        int,
        Query(ge=0, le=MAX_STORED_INT, description="only those with a larger id"),
    ] = 0,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """The first ``limit`` dead letters, oldest first, received at or after ``since``; replay
    them after a fix with ``recsmith deadletters replay``."""
    start = query_time(since, "since")
    found = runtime.store.dead_letters(limit, since=start, reason=reason, after_id=after_id)
    return [d.to_json() for d in found]
