"""Admin routes the console's Experiments page runs on: the registry's experiments and each one's
report, as ``recsmith experiment list`` and ``recsmith experiment report --json`` give them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from recsmith.errors import ValidationError
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.report import experiment_report
from recsmith.governance.releases import ModelRegistry
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.routers.admin import admin_key
from recsmith.serving.routers.operations import RegistryDep
from recsmith.serving.schemas import error_responses

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin_key)])


class VariantRow(BaseModel):
    name: str
    target: str = Field(description="a release of the registry, or a model directory")
    weight: float
    share: float = Field(description="its share of the units: the weights normalised")


class ExperimentRow(BaseModel):
    name: str
    status: str = Field(description="running or stopped")
    unit: str
    placement: str | None
    canary: bool
    started_at: str
    stopped_at: str | None
    variants: list[VariantRow] = Field(description="the first is the control")


class ExperimentReport(BaseModel):
    """``recsmith experiment report --json``: per variant KPIs with their 95 % intervals
    (``<kpi>_ci``), lifts against the control with intervals and p-values, sample-ratio
    mismatch, guardrails and the verdict."""

    experiment: str
    control: str
    weights: dict[str, float]
    variants: dict[str, dict[str, Any]]
    srm_p: float | None
    comparisons: list[dict[str, Any]]
    guardrails: list[dict[str, Any]]
    verdict: list[str]
    notes: list[str]


def _experiments(registry: ModelRegistry) -> ExperimentRegistry:
    return ExperimentRegistry(registry.root)


@router.get(
    "/experiments",
    response_model=list[ExperimentRow],
    summary="Experiments, running ones first",
    responses=error_responses(401, 403, 409),
)
def experiments(registry: RegistryDep) -> list[ExperimentRow]:
    """Every experiment of the registry with its variants and their traffic shares."""
    found = sorted(_experiments(registry).all(), key=lambda e: (not e.running, e.started_at))
    return [
        ExperimentRow(
            name=e.name,
            status="running" if e.running else "stopped",
            unit=e.unit,
            placement=e.placement,
            canary=e.canary,
            started_at=e.started_at,
            stopped_at=e.stopped_at,
            variants=[
                VariantRow(name=v.name, target=v.target, weight=v.weight, share=share)
                for v, share in zip(e.variants, e.weights.values(), strict=True)
            ],
        )
        for e in found
    ]


@router.get(
    "/experiments/{name:id}/report",
    response_model=ExperimentReport,
    summary="An experiment's report",
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def report(
    name: Annotated[str, Path(json_schema_extra=ID_SCHEMA)],
    runtime: RuntimeDep,
    registry: RegistryDep,
) -> dict[str, Any]:
    """The report over the experiment's running time from the decision log (default
    thresholds: ``recsmith experiment report`` takes others); 404 for an unknown name."""
    path_id(name, "name")
    try:
        found = await run_in_threadpool(_experiments(registry).get, name)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from None
    done = await run_in_threadpool(experiment_report, runtime.store, found)
    return done.to_json()
