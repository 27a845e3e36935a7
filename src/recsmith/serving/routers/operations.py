"""Admin routes the console runs on: releases (list, deploy, roll back), drift, fairness, the
overview's figures, and a user's history.

The same operations as ``recsmith releases|deploy|rollback|monitor`` and ``recsmith fairness
report``, over HTTP with an admin key, so the console (``recsmith.console``) needs nothing the API
does not offer to any other client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from recsmith.decisions.timespec import PATTERN
from recsmith.errors import RecsmithError, ValidationError
from recsmith.evaluation.grouping import parse_group_spec
from recsmith.fairness.report import report_from_store
from recsmith.governance.audit import record_audit
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry
from recsmith.monitoring.gauges import served_release_dir
from recsmith.monitoring.overview import overview
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import monitor
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.input_errors import invalid, query_time
from recsmith.serving.metrics import UNMATCHED
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.routers.admin import AdminKey, admin_key
from recsmith.serving.schemas import error_responses
from recsmith.serving.strict_json import StrictJSONRoute
from recsmith.validation_reasons import ITEM_GROUPS_PATTERN

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_key)],
    route_class=StrictJSONRoute,  # deploy and rollback take no body: one sent is refused
)


class ReleaseRow(BaseModel):
    version: str
    kind: str
    created_at: str
    current: bool


class ReleasesResponse(BaseModel):
    current: str | None
    serving: str | None  # what the answering process serves (differs while a deploy loads)
    history: list[str]
    releases: list[ReleaseRow]


class DeployResponse(BaseModel):
    version: str
    previous: str | None


def _registry(runtime: RuntimeDep) -> ModelRegistry:
    root = runtime.settings.serving.registry
    if root is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "serving.registry is not configured")
    return ModelRegistry(root)


RegistryDep = Annotated[ModelRegistry, Depends(_registry)]


@router.get(
    "/releases",
    response_model=ReleasesResponse,
    summary="Published releases and the current one",
    responses=error_responses(401, 403, 409),
)
def releases(runtime: RuntimeDep, registry: RegistryDep) -> ReleasesResponse:
    """Every published release (newest last), which is current, and the rollback history."""
    found = registry.releases()
    return ReleasesResponse(
        current=registry.current(),
        serving=runtime.bundle.version if runtime.bundle is not None else None,
        history=registry.history(),
        releases=[
            ReleaseRow(version=r.version, kind=r.kind, created_at=r.created_at, current=r.current)
            for r in found
        ],
    )


@router.post(
    "/releases/{version:id}/deploy",
    response_model=DeployResponse,
    summary="Deploy a published release",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def deploy(
    version: Annotated[str, Path(json_schema_extra=ID_SCHEMA)],
    request: Request,
    runtime: RuntimeDep,
    registry: RegistryDep,
    key: AdminKey,
) -> DeployResponse:
    """Make ``version`` current after loading it and asking it once, as ``recsmith deploy``
    does (409 with the reason when it does not load); every server follows within a second.
    Recorded in the audit trail, refusals included."""
    path_id(version, "version")
    try:
        where = await run_in_threadpool(registry.path, version)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from None
    try:
        await run_in_threadpool(check_release, where)
    except RecsmithError as exc:
        reason = f"{version} does not load: {exc}"
        await _audit(runtime, "deploy", version, reason, key)
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from None
    previous = registry.current()
    await run_in_threadpool(registry.deploy, version)
    await _audit(runtime, "deploy", version, "ok", key, {"previous": previous})
    await _follow(request, registry)
    return DeployResponse(version=version, previous=previous)


@router.post(
    "/rollback",
    response_model=DeployResponse,
    summary="Roll back to the release deployed before the current one",
    responses=error_responses(401, 403, 409),
)
async def rollback(
    request: Request, runtime: RuntimeDep, registry: RegistryDep, key: AdminKey
) -> DeployResponse:
    """As ``recsmith rollback``: 409 when there is nothing to go back to or it no longer loads.
    Recorded in the audit trail, refusals included."""
    target = registry.previous()
    if target is None:
        reason = "no earlier deployed release to go back to"
        await _audit(runtime, "rollback", "", reason, key)
        raise HTTPException(status.HTTP_409_CONFLICT, reason)
    try:
        await run_in_threadpool(check_release, registry.path(target))
    except RecsmithError as exc:
        reason = f"{target} does not load: {exc}"
        await _audit(runtime, "rollback", target, reason, key)
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from None
    previous = registry.current()
    version = await run_in_threadpool(registry.rollback)
    await _audit(runtime, "rollback", version, "ok", key, {"previous": previous})
    await _follow(request, registry)
    return DeployResponse(version=version, previous=previous)


async def _audit(
    runtime: RuntimeDep,
    action: str,
    target: str,
    outcome: str,
    key: AdminKey,
    detail: dict[str, Any] | None = None,
) -> None:
    await run_in_threadpool(
        record_audit,
        runtime.store,
        action=action,
        target=target,
        outcome=outcome,
        key=key,
        detail=detail,
    )


async def _follow(request: Request, registry: ModelRegistry) -> None:
    """This process serves the new pointer before answering; the others follow the marker."""
    reloader = getattr(request.app.state, "reloader", None)
    if reloader is not None:
        await reloader.request()
    else:
        await run_in_threadpool(registry.request_reload)


@router.get(
    "/monitor",
    summary="Drift and freshness of the served release",
    responses=error_responses(401, 403, 409, 422, 503),
)
async def drift(
    runtime: RuntimeDep,
    since: Annotated[
        str, Query(pattern=PATTERN, description="the recent window: 1d, 12h, … or an ISO date")
    ] = "1d",
) -> dict[str, Any]:
    """``recsmith monitor --json`` for the release this process serves."""
    start = query_time(since, "since")
    served = runtime.bundle.version if runtime.bundle is not None else None
    where = served_release_dir(runtime.settings.serving, served)
    if where is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "no release is served, or not from disk")
    assert start is not None

    def compute() -> dict[str, Any]:
        report = monitor(runtime.store, ReleaseView.read(where), start, runtime.settings.monitor)
        return report.as_dict()

    return await run_in_threadpool(compute)


@router.get(
    "/overview",
    summary="Events per minute, dead letters and latency, for the console's overview",
    responses=error_responses(401, 403, 503),
)
async def get_overview(runtime: RuntimeDep) -> dict[str, Any]:
    """Events per minute (event time) over the last hour and the dead letters of the last day
    from the store; p50/p99 latency of this process's traffic routes since it started."""
    now = datetime.now(UTC)
    histogram = runtime.metrics.request_duration
    return await run_in_threadpool(overview, runtime.store, histogram, UNMATCHED, now)


class HistoryResponse(BaseModel):
    user_id: str
    items: list[str]  # what the store holds for the user (what lists leave out)
    recent: list[str]  # newest first, as "recent" pipeline sources see them


@router.get(
    "/users/{user_id:id}/history",
    response_model=HistoryResponse,
    summary="What the engine knows a user did",
    responses=error_responses(401, 403, 422, 503),
)
async def history(
    user_id: Annotated[str, Path(json_schema_extra=ID_SCHEMA)],
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200, description="recent items at most")] = 20,
) -> HistoryResponse:
    """The user's items in the store and their recent items in the online state: the history
    the console's preview shows beside their list."""
    path_id(user_id, "user_id")
    items = await run_in_threadpool(runtime.store.user_items, user_id)
    return HistoryResponse(
        user_id=user_id, items=items, recent=runtime.state.recent(user_id, limit)
    )


@router.get(
    "/fairness",
    summary="Exposure, calibration, narrowing and parity of the lists served",
    responses=error_responses(401, 403, 422, 503),
)
async def fairness(
    runtime: RuntimeDep,
    since: Annotated[
        str, Query(pattern=PATTERN, description="30d, 12h, … back from now, or an ISO date")
    ] = "30d",
    item_groups: Annotated[
        str,
        # the published pattern's refusal is said in words (``validation_reasons``)
        Query(
            max_length=100, pattern=ITEM_GROUPS_PATTERN, description="category, or property:NAME"
        ),
    ] = "category",
    last: Annotated[
        int, Query(ge=1, le=100, description="narrowing: latest N lists vs N before")
    ] = 5,
) -> dict[str, Any]:
    """``recsmith fairness report --json`` over the store this server uses."""
    start = query_time(since, "since")
    try:
        spec = parse_group_spec(item_groups, "item_groups", "category")
    except ValidationError as exc:
        raise invalid(exc.field, exc.reason) from None

    def compute() -> dict[str, Any]:
        found = report_from_store(runtime.store, start, spec, window=f"since {since}", last=last)
        return found.to_json()

    return await run_in_threadpool(compute)
