"""Probes for orchestrators (no auth): liveness = the process answers, readiness = it can serve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from recsmith.errors import StoreUnavailable
from recsmith.serving.deps import Runtime, RuntimeDep, no_model_reason
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
    """200 when the store answers a query and takes writes (its heartbeat row, and no event
    write failed within ``Outage.STALE_S``: a store can answer reads while refusing every
    write, e.g. on a full disk) and a model is loaded; 503 naming the failed checks. A store
    that cannot be read is ``degraded`` as well: recommendations are then answered from memory.
    A release the server follows but could not load is ``degraded`` (the old one serves).

    ``def`` because the store probes block (FastAPI runs it in the thread pool).
    """
    reads = _probe(runtime.store.ping)
    # no second wait on a store that is down; an event write that failed lately counts too (a
    # one-row heartbeat can fit where event batches do not, e.g. on a full disk)
    writes = reads and _probe(runtime.store.heartbeat)
    writes = writes and "write" not in runtime.store.outage.failing
    checks = {"store": reads, "store_writes": writes, "model": runtime.bundle is not None}
    failed = [name for name, ok in checks.items() if not ok]
    degraded = runtime.degraded()  # after the probes: a failed read is recorded by now
    release = _release(request)
    if release is not None and release.error is not None:
        degraded.append("release")
    body = ReadyResponse(
        status="unavailable" if failed else "degraded" if degraded else "ok",
        checks=checks,
        failed=failed,
        hints={"model": no_model_reason(runtime.settings)} if runtime.bundle is None else None,
        degraded=degraded,
        model_version=runtime.bundle.version if runtime.bundle is not None else None,
        release=release,
        decisions=_decision_log(runtime),
    )
    # ``release`` only where a registry is followed, ``hints`` only where there is one: the body
    # stays as it was everywhere else
    shown = body.model_dump(
        exclude={name for name in ("release", "hints", "decisions") if not getattr(body, name)}
    )
    return JSONResponse(shown, status_code=503 if failed else 200)


def _decision_log(runtime: Runtime) -> dict[str, object] | None:
    """The decision log's counts (None when it is off): what a full buffer dropped shows here
    and in ``recsmith_decisions_dropped_total``; it never fails readiness, since serving goes
    on without it."""
    log = runtime.decisions
    return None if log is None or not log.enabled else asdict(log.status())


def _probe(check: Callable[[], object]) -> bool:
    """False when ``check`` returns False or the store is unavailable (a bug still raises: it
    is a 500 with an error id, not a store outage)."""
    try:
        return check() is not False
    except StoreUnavailable:
        return False


def _release(request: Request) -> ReleaseStatus | None:
    """The reloader's last look at the registry (None when the server follows none)."""
    reloader = getattr(request.app.state, "reloader", None)
    return None if reloader is None else ReleaseStatus(**asdict(reloader.state))
