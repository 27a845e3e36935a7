"""Privacy routes (``recsmith.privacy``): erase a person, export what is held about them, record
their consent (``admin`` scope: they reach every piece of one person's data), and link an
anonymous visitor to the user they logged in as (``ingest`` scope: a shop's backend does it at
each login)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from recsmith.privacy.consent import Consent, ErasedPerson, set_consent
from recsmith.privacy.erase import Reach, erase_people
from recsmith.privacy.export import export_person
from recsmith.privacy.identity import AliasConflict, AliasKind, link_alias, unlink_alias
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.auth import require_scope
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.schemas import ErrorResponse, error_responses
from recsmith.store.base import ApiKey

router = APIRouter(prefix="/v1", tags=["privacy"], route_class=AllowEveryMethod)

AdminKey = Annotated[ApiKey | None, Depends(require_scope("admin"))]
IngestKey = Annotated[ApiKey | None, Depends(require_scope("ingest"))]
UserId = Annotated[str, Path(json_schema_extra=ID_SCHEMA)]


class ErasureResponse(BaseModel):
    user_id: str
    subject: str = Field(description="the salted hash the audit trail and tombstone keep")
    removed: dict[str, int] = Field(
        description="rows or entries removed, by kind: events, profile, decisions, shown_items, "
        "attributions, dead_letters, aliases, online_state, response_cache (a linked visitor's "
        "count as the person's)"
    )
    note: str


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personalization: StrictBool = Field(description="false: the person gets non-personalised lists")
    tracking: StrictBool = Field(
        description="false: the person's events are refused and nothing about them is stored"
    )


class ConsentResponse(BaseModel):
    user_id: str
    personalization: bool
    tracking: bool


@router.delete(
    "/users/{user_id:id}",
    response_model=ErasureResponse,
    summary="Erase a person everywhere",
    responses=error_responses(401, 403, 422, 503),
)
async def erase(user_id: UserId, runtime: RuntimeDep, key: AdminKey) -> ErasureResponse:
    """Deletes the person's events, profile, decisions shown to them, attributions, dead letters
    that name them, online state and cached lists, in every worker and replica within a second;
    their later lists are the non-personalised one and their events are refused for good, and
    later trainings leave them out (a tombstone keeps a salted hash of the id, never the id).
    Answers after a second sweep ``privacy.erase_settle_s`` later, which catches what other
    processes recorded before they learnt of it. An id the store never saw is erased all the
    same (every count 0, the tombstone written): the erasure may come before their data does."""
    path_id(user_id, "user_id")
    reach = Reach(runtime.state, runtime.cache, runtime.decisions)
    settle = runtime.settings.privacy.erase_settle_s
    [done] = await run_in_threadpool(
        lambda: erase_people(runtime.store, [user_id], reach=reach, settle_s=settle, key=key)
    )
    return ErasureResponse(
        user_id=user_id,
        subject=done.subject,
        removed=done.removed,
        note="their next list is the non-personalised one; their events are refused from now "
        "on, and the next training leaves them out",
    )


@router.get(
    "/users/{user_id:id}/export",
    summary="Everything held about a person",
    responses=error_responses(401, 403, 422, 503),
)
async def export(user_id: UserId, runtime: RuntimeDep, key: AdminKey) -> dict[str, Any]:
    """One JSON document: the person's events (in the shape ``recsmith import`` reads), profile,
    the lists shown to them and their consent; empty lists for a person the store does not
    know."""
    path_id(user_id, "user_id")
    return await run_in_threadpool(lambda: export_person(runtime.store, user_id, key=key))


@router.put(
    "/users/{user_id:id}/consent",
    response_model=ConsentResponse,
    summary="Record a person's consent",
    responses={
        **error_responses(401, 403, 422, 503),
        409: {"model": ErrorResponse, "description": "the person was erased"},
    },
)
async def consent(
    user_id: UserId, body: ConsentIn, runtime: RuntimeDep, key: AdminKey
) -> ConsentResponse:
    """Without ``personalization`` the person gets the non-personalised list (the response's
    ``not_personalised`` says why); without ``tracking`` their events are refused with a reason
    (or dropped: ``events.untracked``) and nothing about them is stored. Applies in this worker
    at once, in the others within a second; every change is audited."""
    path_id(user_id, "user_id")
    wanted = Consent(body.personalization, body.tracking)
    try:
        await run_in_threadpool(lambda: set_consent(runtime.store, user_id, wanted, key=key))
    except ErasedPerson as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ConsentResponse(
        user_id=user_id, personalization=wanted.personalization, tracking=wanted.tracking
    )


#: The alias body's two keys, of which it holds exactly one.
ALIAS_KEYS = ("session_id", "device_id")


class AliasIn(BaseModel):
    """A session or a device alias: exactly one of the two ids. One model rather than a union of
    two, so a wrong body gets one reason (a union reported each member's: a misspelt key came
    back as four errors, two of them "required" for keys the client never meant to send)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": [key]} for key in ALIAS_KEYS]},
    )

    # ``SkipJsonSchema[None]``: None is the absent key, not a value a client may send (the schema
    # says string; ``_a_string`` refuses an explicit null)
    session_id: str | SkipJsonSchema[None] = Field(
        None,
        description="the visitor's session id (their events' session_id)",
        json_schema_extra=ID_SCHEMA,
    )
    device_id: str | SkipJsonSchema[None] = Field(
        None,
        description="the visitor's device id (sent as user_id while anonymous)",
        json_schema_extra=ID_SCHEMA,
    )

    @field_validator(*ALIAS_KEYS, mode="before")
    @classmethod
    def _a_string(cls, value: object) -> object:
        """Any non-string refused here with one reason: left to the ``str | None`` type, a number
        came back as two (``session_id.str`` and ``session_id.none``, one per union member)."""
        if not isinstance(value, str):
            null = ", not null" if value is None else ""
            raise ValueError(f"must be a string (the alias's id){null}")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> AliasIn:
        given = [key for key in ALIAS_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            got = "both" if given else "neither"
            raise ValueError(f"give exactly one of session_id or device_id (got {got})")
        return self


class AliasResponse(BaseModel):
    user_id: str = Field(description="the user the alias belongs to (the end of a chain)")
    alias: str
    kind: AliasKind
    changed: bool = Field(description="false: it was linked so already")
    moved_recent_items: int = Field(description="recent items moved into the user's online state")


class UnlinkResponse(BaseModel):
    user_id: str
    alias: str
    unlinked: bool


def _alias_of(body: AliasIn) -> tuple[str, AliasKind]:
    """The id and its kind, held to the id rule (a 422 naming the field otherwise)."""
    if body.session_id is not None:
        return path_id(body.session_id, "session_id"), "session"
    assert body.device_id is not None  # ``AliasIn`` holds exactly one
    return path_id(body.device_id, "device_id"), "device"


@router.post(
    "/users/{user_id:id}/aliases",
    response_model=AliasResponse,
    summary="Link an anonymous visitor to a user",
    responses={
        **error_responses(401, 403, 422, 503),
        409: {
            "model": ErrorResponse,
            "description": "the alias belongs to another user, is the user, or the user was erased",
        },
    },
)
async def link(
    user_id: UserId, body: AliasIn, runtime: RuntimeDep, key: IngestKey
) -> AliasResponse:
    """From now on the visitor's history is the user's: their recent items move into the user's
    online state at once (the user's next list follows what they browsed), and every later
    training counts the visitor's events as the user's. An alias belongs to one user; a chain
    ends at its user (README: Identity merge). Audited."""
    path_id(user_id, "user_id")
    alias, kind = _alias_of(body)
    try:
        done = await run_in_threadpool(
            lambda: link_alias(runtime.store, user_id, alias, kind, state=runtime.state, key=key)
        )
    except AliasConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return AliasResponse(
        user_id=done.user_id,
        alias=done.alias,
        kind=done.kind,
        changed=done.changed,
        moved_recent_items=done.moved,
    )


@router.delete(
    "/users/{user_id:id}/aliases/{alias:id}",
    response_model=UnlinkResponse,
    summary="Unlink a visitor from a user",
    responses=error_responses(401, 403, 404, 422, 503),
)
async def unlink(
    user_id: UserId,
    alias: Annotated[str, Path(json_schema_extra=ID_SCHEMA)],
    runtime: RuntimeDep,
    key: IngestKey,
) -> UnlinkResponse:
    """Undo a link: the visitor's recent items leave the user's at once (in this process and
    Redis), the next training keeps the visitor's events apart; 404 when the alias is not linked
    to this user. Audited."""
    path_id(user_id, "user_id")
    path_id(alias, "alias")
    removed = await run_in_threadpool(
        lambda: unlink_alias(runtime.store, user_id, alias, state=runtime.state, key=key)
    )
    if not removed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{alias!r} is not an alias of {user_id!r}")
    return UnlinkResponse(user_id=user_id, alias=alias, unlinked=True)
