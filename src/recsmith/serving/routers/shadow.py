"""Admin routes of shadow mode (``lifecycle.shadow``): what the shadow release has shown so far,
and which release shadows live traffic. Changes are audited (``shadow.start``, ``shadow.stop``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from recsmith.errors import ValidationError
from recsmith.lifecycle.shadow import ShadowRunner
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.path_ids import ID_SCHEMA
from recsmith.serving.routers.admin import AdminKey, admin_key
from recsmith.serving.routers.operations import RegistryDep, _audit
from recsmith.serving.schemas import error_responses

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=[Depends(admin_key)],
    route_class=AllowEveryMethod,  # a 405 on /shadow names GET, PUT and DELETE
)


class Percentiles(BaseModel):
    p50: float
    p99: float


class ShadowReport(BaseModel):
    """The answering server process's figures since its shadow release was set."""

    release: str | None = Field(description="the release asked to shadow (null: none)")
    active: bool = Field(description="whether it is loaded and scoring requests here")
    error: str | None = Field(None, description="why it is not loaded, or its latest failure")
    sample: float | None = None
    since: str | None = Field(None, description="when this process started shadowing it")
    compared: int = Field(0, description="sampled requests it answered and was compared on")
    dropped: int = Field(0, description="sampled requests left out: the shadow queue was full")
    failed: int = Field(0, description="sampled requests it raised on")
    store_failed: int = Field(
        0,
        description="sampled requests left out: the store failed to read the user's stored "
        "items again in their time order (not the release's failure)",
    )
    queued: int = 0
    jaccard: float | None = Field(None, description="mean Jaccard overlap with the served list")
    rbo: float | None = Field(None, description="mean rank-biased overlap (p = 0.9), top-weighted")
    shadow_latency_ms: Percentiles | None = Field(None, description="its pipeline call")
    served_latency_ms: Percentiles | None = Field(
        None, description="the served requests it shadowed, as the decision log times them"
    )


class ShadowSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    release: str = Field(json_schema_extra=ID_SCHEMA, description="a published release")
    sample: float = Field(0.1, gt=0, le=1, description="the share of requests it scores")


def _runner(request: Request) -> ShadowRunner:
    runner: ShadowRunner = request.app.state.shadow
    return runner


Runner = Annotated[ShadowRunner, Depends(_runner)]


@router.get(
    "/shadow",
    response_model=ShadowReport,
    summary="The shadow release's overlap and latency",
    responses=error_responses(401, 403),
)
def shadow_report(runner: Runner) -> dict[str, Any]:
    """Overlap (Jaccard, rank-biased) of the shadow release's lists with the served ones, its
    latency beside the served requests', and how many sampled requests were compared, dropped
    (the queue was full) or failed, in the answering process (Prometheus sums every process)."""
    return runner.report()


@router.put(
    "/shadow",
    response_model=ShadowReport,
    summary="Shadow live traffic with a release",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def start_shadow(
    body: ShadowSet, runtime: RuntimeDep, registry: RegistryDep, runner: Runner, key: AdminKey
) -> dict[str, Any]:
    """Have ``release`` score ``sample`` of the recommendation requests beside the served
    release, unseen; every server process following the registry within a second. 404 for a
    release not published, 409 for one that does not load (the previous shadow stays)."""
    try:
        await run_in_threadpool(registry.path, body.release)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from None
    detail = {"sample": body.sample}
    try:
        await run_in_threadpool(runner.set, body.release, body.sample)
    except Exception as exc:  # whatever a broken release raises when loaded
        reason = f"{body.release} does not load: {exc}"
        await _audit(runtime, "shadow.start", body.release, reason, key, detail)
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from None
    await _audit(runtime, "shadow.start", body.release, "ok", key, detail)
    return runner.report()


@router.delete(
    "/shadow",
    response_model=ShadowReport,
    summary="Stop shadowing",
    responses=error_responses(401, 403, 409),
)
async def stop_shadow(
    runtime: RuntimeDep, registry: RegistryDep, runner: Runner, key: AdminKey
) -> dict[str, Any]:
    """No release shadows any more, in every process within a second; the answer is this
    process's last figures."""
    last = runner.report()
    await run_in_threadpool(runner.set, None, last.get("sample") or 0.1)
    await _audit(runtime, "shadow.stop", str(last["release"] or ""), "ok", key)
    return last
