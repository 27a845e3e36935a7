"""Admin routes of the live business rules (``recsmith.merchandising``): read, set, validate,
and go back to the pipeline's own rules. Every change is a new version in the store, applied by
every worker and replica within a second, and written to the audit trail (``rules.set``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from recsmith.errors import ValidationError
from recsmith.json_text import REPEATED_KEY, decode, repeated_path
from recsmith.merchandising.checking import NEEDS_PIPELINE, check_served
from recsmith.merchandising.document import RuleDocument, load_text, parse_document
from recsmith.merchandising.live import LiveRules
from recsmith.merchandising.versions import (
    RuleSet,
    current_rules,
    rule_history,
    rule_version,
    set_rules,
)
from recsmith.pipeline.rule_check import RuleWarning
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.deps import BundleDep, RuntimeDep
from recsmith.serving.input_errors import MAX_STORED_INT, invalid
from recsmith.serving.request_body import TOML_TYPE
from recsmith.serving.routers.admin import AdminKey, admin_key
from recsmith.serving.schemas import ErrorResponse, error_responses, media_body

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_key)],
    route_class=AllowEveryMethod,  # GET, PUT and DELETE on /rules: a 405 names all three
)

#: Versions listed in ``history``.
HISTORY = 20
_EXAMPLE = {"rerank": {"rules": [{"type": "exclude", "items": ["sku-13"]}]}}
#: ``openapi_extra`` of the routes that take a rule file (the body is read by ``_rule_file``).
#: TOML is said in words only: a schema fuzzer (tests/serving/test_openapi_fuzz.py) cannot
#: write an ``application/toml`` body from a schema.
_RULE_FILE_BODY = media_body(
    {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "A rule file: rerank.rules and placements.NAME.rerank.rules, as "
                "in a pipeline file ({} = the pipeline's rules). The same file as TOML is taken "
                "with Content-Type: application/toml.",
            },
            "example": _EXAMPLE,
        }
    }
)
_NEEDS_PIPELINE = {
    "model": ErrorResponse,
    "description": "the deployment serves a single model: rules need a pipeline",
}


class RuleWarningOut(BaseModel):
    field: str = Field(description="the rule or value, e.g. rerank.rules[2].equals")
    message: str


def _warnings_field() -> Any:
    return Field(
        default_factory=list,
        description="rules and values that match no item of the served catalogue: accepted, "
        "but likely typos",
    )


class RuleVersion(BaseModel):
    version: int
    set_by: str | None
    set_at: str
    pipeline_rules: bool = Field(description="the empty file: the pipeline's rules")


class RulesResponse(BaseModel):
    """The live rule file and where it comes from."""

    version: int = Field(description="the version shown (0: never set: the pipeline's rules)")
    current_version: int = Field(description="the version being applied")
    set_by: str | None = None
    set_at: str | None = None
    rules: dict[str, Any] = Field(description="the live rule file ({}: the pipeline's rules)")
    pipeline: dict[str, Any] | None = Field(
        None, description="the served release's own rules (the defaults), as a rule file"
    )
    history: list[RuleVersion] = Field(description=f"the latest {HISTORY} versions, newest first")
    warnings: list[RuleWarningOut] = _warnings_field()


class ValidateResponse(BaseModel):
    valid: bool
    rules: dict[str, Any] = Field(description="the rule file as it would be stored")
    warnings: list[RuleWarningOut] = _warnings_field()


def _pipeline_rules(served: Any) -> dict[str, Any] | None:
    """The served release's own rules, in the shape of a rule file (None for a single model)."""
    if not isinstance(served, Pipeline):
        return None
    config = served.config
    places = {
        name: {"rerank": {"rules": list(config.for_placement(name).rerank.rules)}}
        for name in config.placements
    }
    own = RuleDocument.model_validate(
        {"rerank": {"rules": list(config.rerank.rules)}, "placements": places}
    )
    return own.to_json()


def _shown(runtime: RuntimeDep, shown: RuleSet | None, current: int) -> RulesResponse:
    history = rule_history(runtime.store, HISTORY)
    return RulesResponse(
        version=0 if shown is None else shown.version,
        current_version=current,
        set_by=None if shown is None else shown.set_by,
        set_at=None if shown is None else shown.set_at.isoformat(),
        rules={} if shown is None else shown.document.to_json(),
        pipeline=_pipeline_rules(runtime.bundle),
        history=[
            RuleVersion(
                version=h.version,
                set_by=h.set_by,
                set_at=h.set_at.isoformat(),
                pipeline_rules=h.document.empty,
            )
            for h in history
        ],
    )


async def _rule_file(request: Request) -> dict[str, Any]:
    """The body's tables: TOML when sent as ``application/toml`` (the file ``recsmith rules
    set`` reads, as the console's editor may hold it), JSON otherwise, decoded as strictly as
    every other JSON body (``json_text.decode``: no NaN/Infinity, a repeated key named); 422
    naming ``body``, as for an empty body (``EMPTY_RULE_FILE``) or a TOML one with no tables
    (only comments: a file as empty in practice, ``EMPTY_TOML_RULE_FILE``)."""
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    raw = await request.body()
    empty = EMPTY_TOML_RULE_FILE if media == TOML_TYPE else EMPTY_RULE_FILE
    if not raw.strip():  # a client that sent nothing, not one dropping every live rule
        raise invalid("body", empty)
    if media != TOML_TYPE:
        try:
            data, repeated = decode(raw)
        except ValueError as exc:
            raise invalid("body", f"not valid JSON: {exc}") from None
        where = repeated_path(data) if repeated else None
        if where is not None:
            raise invalid(where, REPEATED_KEY)
        if not isinstance(data, dict):
            raise invalid("body", "a rule file is a table (TOML) or an object (JSON)")
        return data
    try:
        data = load_text(raw.decode("utf-8"), "body", toml=True)
    except UnicodeDecodeError:
        raise invalid("body", "not UTF-8 text") from None
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None
    if not data:  # TOML has no ``{}``: a JSON client's explicit "no live rules" is not this
        raise invalid("body", empty)
    return data


#: The 422 of an empty rule body: a file empty by mistake would otherwise replace every live
#: rule with the pipeline's own.
EMPTY_RULE_FILE = "empty: send {} (or DELETE /v1/admin/rules) to go back to the pipeline's rules"
#: The same for a TOML body, empty or comments only: TOML cannot write ``{}`` (it is not valid
#: TOML), so the way back is DELETE, or ``{}`` sent as JSON.
EMPTY_TOML_RULE_FILE = (
    "empty (no tables): DELETE /v1/admin/rules (or send {} as application/json) to go back to "
    "the pipeline's rules"
)

RuleFile = Annotated[dict[str, Any], Depends(_rule_file)]


def _checked(body: dict[str, Any], served: Any) -> tuple[RuleDocument, list[RuleWarning]]:
    """The rule file and its warnings, or the 422 naming its field / the 409 of a single
    model."""
    if not isinstance(served, Pipeline):  # whatever the file says: nothing could apply it
        raise HTTPException(status.HTTP_409_CONFLICT, NEEDS_PIPELINE)
    try:
        document = parse_document(body)
        warnings = check_served(document, served)
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None
    return document, warnings


def _warnings_out(warnings: list[RuleWarning]) -> list[RuleWarningOut]:
    return [RuleWarningOut(**w.to_json()) for w in warnings]


def _set(request: Request, runtime: RuntimeDep, document: RuleDocument, key: Any) -> RuleSet:
    """Store and audit the version, and apply it in this process at once."""
    stored = set_rules(runtime.store, document, key)
    live: LiveRules | None = getattr(request.app.state, "live_rules", None)
    if live is not None:
        live.adopt(stored)
    return stored


@router.get(
    "/rules",
    response_model=RulesResponse,
    summary="The live business rules",
    responses=error_responses(401, 403, 404, 422, 503),
)
def get_rules(
    runtime: RuntimeDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_STORED_INT, description="an older version")
    ] = None,
) -> RulesResponse:
    """The live rule file (the current version, or ``version``), the served release's own
    rules that apply where it sets none, and the latest versions."""
    current = current_rules(runtime.store)
    shown = current if version is None else rule_version(runtime.store, version)
    if version is not None and shown is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rules version {version}")
    return _shown(runtime, shown, 0 if current is None else current.version)


@router.put(
    "/rules",
    response_model=RulesResponse,
    summary="Replace the live business rules",
    responses={**error_responses(401, 403, 422, 503), 409: _NEEDS_PIPELINE},
    openapi_extra=_RULE_FILE_BODY,
)
async def put_rules(
    request: Request, body: RuleFile, runtime: RuntimeDep, bundle: BundleDep, key: AdminKey
) -> RulesResponse:
    """Check the file against the served release and catalogue as training checks a pipeline's
    rules (422 naming e.g. ``rerank.rules[2].item``), store it as the next version (audited as
    ``rules.set``) and apply it: in this process at once, in every other worker and replica
    within ``serving.catalog_sync_interval_s``. ``{}`` goes back to the pipeline's rules. The
    body is JSON, or TOML sent as ``application/toml``; rules and values that match no item
    are stored and listed in ``warnings``."""
    document, warnings = _checked(body, bundle)
    stored = await run_in_threadpool(_set, request, runtime, document, key)
    shown = await run_in_threadpool(_shown, runtime, stored, stored.version)
    return shown.model_copy(update={"warnings": _warnings_out(warnings)})


@router.delete(
    "/rules",
    response_model=RulesResponse,
    summary="Back to the pipeline's own rules",
    responses=error_responses(401, 403, 503),
)
async def delete_rules(request: Request, runtime: RuntimeDep, key: AdminKey) -> RulesResponse:
    """Store the empty file as the next version (audited): the served release's own rules
    apply again everywhere. Earlier versions stay in the history."""
    stored = await run_in_threadpool(_set, request, runtime, RuleDocument(), key)
    return await run_in_threadpool(_shown, runtime, stored, stored.version)


@router.post(
    "/rules/validate",
    response_model=ValidateResponse,
    summary="Check a rule file without applying it",
    responses={**error_responses(401, 403, 422, 503), 409: _NEEDS_PIPELINE},
    openapi_extra=_RULE_FILE_BODY,
)
def validate_rules(body: RuleFile, bundle: BundleDep) -> ValidateResponse:
    """What ``PUT`` would check (422 naming the rule and field, ``warnings`` listing what
    matches no item), without storing anything."""
    document, warnings = _checked(body, bundle)
    return ValidateResponse(valid=True, rules=document.to_json(), warnings=_warnings_out(warnings))
