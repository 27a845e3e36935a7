"""Probes for orchestrators (no auth): liveness = the process answers, readiness = it can serve."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from recsmith.serving.deps import RuntimeDep
from recsmith.serving.schemas import LiveResponse, ReadyResponse, ReleaseStatus

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
def ready(runtime: RuntimeDep, request: Request) -> JSONResponse:
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
    release = _release(request)
    if release is not None and release.error is not None:
        degraded.append("release")
    body = ReadyResponse(
        status="unavailable" if failed else "degraded" if degraded else "ok",
        checks=checks,
        failed=failed,
        degraded=degraded,
        model_version=runtime.bundle.version if runtime.bundle is not None else None,
        release=release,
    )
    # ``release`` only where a registry is followed: the body stays as it was everywhere else
    shown = body.model_dump(exclude=None if release else {"release"})
    return JSONResponse(shown, status_code=503 if failed else 200)


def _release(request: Request) -> ReleaseStatus | None:
    """The reloader's last look at the registry (None when the server follows none)."""
    reloader = getattr(request.app.state, "reloader", None)
    return None if reloader is None else ReleaseStatus(**asdict(reloader.state))
