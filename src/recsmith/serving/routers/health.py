"""Probes for orchestrators (no auth): liveness = the process answers, readiness = it can serve."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from recsmith.serving.deps import RuntimeDep
from recsmith.serving.schemas import LiveResponse, ReadyResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=LiveResponse, summary="Liveness")
async def live() -> LiveResponse:
    """Always 200 while the process serves requests."""
    return LiveResponse()


@router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="Readiness",
    responses={503: {"model": ReadyResponse, "description": "A check failed (named in `failed`)"}},
)
def ready(runtime: RuntimeDep) -> JSONResponse:
    """200 when the store answers a query and a model is loaded; 503 naming the failed checks.

    ``def`` because the store ping blocks (FastAPI runs it in the thread pool).
    """
    try:
        store_ok = runtime.store.ping()
    except Exception:  # a probe must answer, whatever the backend raises
        store_ok = False
    checks = {"store": store_ok, "model": runtime.bundle is not None}
    failed = [name for name, ok in checks.items() if not ok]
    degraded = runtime.degraded()
    body = ReadyResponse(
        status="unavailable" if failed else "degraded" if degraded else "ok",
        checks=checks,
        failed=failed,
        degraded=degraded,
        model_version=runtime.bundle.version if runtime.bundle is not None else None,
    )
    return JSONResponse(body.model_dump(), status_code=503 if failed else 200)
