"""``GET /metrics``: the app's Prometheus registry in the text exposition format (open, behind
any valid key, or off: ``auth.expose_metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recsmith.serving.auth import require_exposure
from recsmith.serving.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require_exposure("metrics"))],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}
    },
)
async def metrics(runtime: RuntimeDep) -> Response:
    """Serialising the registry is quick and never blocks, so this runs on the event loop; the
    check on Redis can block (up to its 50 ms timeout), so it goes to the thread pool."""
    down = await run_in_threadpool(runtime.degraded)
    for component in ("online_state", "response_cache", "rate_limits", "store"):
        runtime.metrics.degraded.labels(component=component).set(int(component in down))
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
