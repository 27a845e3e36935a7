"""User profiles: ``PUT /v1/users/{user_id}`` stores a user's properties (age, plan, segment…),
``PATCH`` changes some of them (JSON merge patch, RFC 7396; a null removes one). The ranker's
profile features read them at the next training (``events.profiles``). ``ingest`` scope, as the
catalogue: a shop's backend sends them; erasing a person (``DELETE``, admin) removes theirs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from recsmith.events.profiles import store_profiles
from recsmith.events.schema import Scalar
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.auth import require_scope
from recsmith.serving.batch import parse_json
from recsmith.serving.deps import Runtime, RuntimeDep
from recsmith.serving.input_errors import invalid
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.routers.items import patched
from recsmith.serving.schemas import ErrorResponse, error_responses, profile_body

SOURCE = "http:/v1/users"
UserId = Annotated[str, Path(json_schema_extra=ID_SCHEMA)]

router = APIRouter(
    prefix="/v1",
    tags=["users"],
    dependencies=[Depends(require_scope("ingest"))],
    route_class=AllowEveryMethod,  # PUT, PATCH and the privacy DELETE share a path
)


class ProfileResponse(BaseModel):
    user_id: str
    properties: dict[str, Scalar]


_REFUSED = {409: {"model": ErrorResponse, "description": "the person was erased or is untracked"}}


def _store(runtime: Runtime, user_id: str, record: dict[str, Any]) -> ProfileResponse:
    """Validate and store one profile: 422 naming each bad field, 409 for a person whose data
    may not be kept."""
    if record.setdefault("user_id", user_id) != user_id:
        raise invalid(
            "user_id", f"the body's {record['user_id']!r} differs from the path's {user_id!r}"
        )
    result = store_profiles(runtime.store, [record], source=SOURCE)
    if result.rejected:
        errors = result.rejected[0].errors
        if not result.rejected[0].payload and errors[0].field == "user_id":  # privacy refusal
            raise HTTPException(status.HTTP_409_CONFLICT, errors[0].reason)
        raise HTTPException(422, [{"field": e.field, "reason": e.reason} for e in errors])
    stored = runtime.store.get_user(user_id)
    assert stored is not None
    return ProfileResponse(user_id=user_id, properties=stored.properties)


def _put(runtime: Runtime, user_id: str, body: bytes) -> ProfileResponse:
    path_id(user_id, "user_id")
    record: Any = parse_json(body)
    if not isinstance(record, dict):
        raise HTTPException(422, "request body must be a JSON object (one profile)")
    return _store(runtime, user_id, record)


def _patch(runtime: Runtime, user_id: str, body: bytes) -> ProfileResponse:
    missing = f"no profile for user {user_id!r} (PUT creates one)"
    return _store(
        runtime, user_id, patched(body, "user_id", user_id, runtime.store.get_user, missing)
    )


@router.put(
    "/users/{user_id:id}",
    response_model=ProfileResponse,
    summary="Create or replace a user's profile",
    responses={**error_responses(401, 403, 422, 503), **_REFUSED},
    openapi_extra=profile_body(),
)
async def put_profile(user_id: UserId, request: Request, runtime: RuntimeDep) -> ProfileResponse:
    """Store ``{"properties": {...}}`` (numbers, text, true/false) as the user's profile;
    ``user_id`` may be left out of the body and must match the path if given. A bad property
    answers 422 naming it."""
    body = await request.body()
    return await run_in_threadpool(_put, runtime, user_id, body)


@router.patch(
    "/users/{user_id:id}",
    response_model=ProfileResponse,
    summary="Change some properties of a user's profile",
    responses={**error_responses(401, 403, 404, 422, 503), **_REFUSED},
    openapi_extra=profile_body(patch=True),
)
async def patch_profile(user_id: UserId, request: Request, runtime: RuntimeDep) -> ProfileResponse:
    """Apply a JSON merge patch to the stored profile: ``{"properties": {"plan": "pro"}}`` sets
    one property and keeps the others; a null removes one. 404 for a user without a profile."""
    body = await request.body()
    return await run_in_threadpool(_patch, runtime, user_id, body)
