"""Admin routes: make the servers pick up a deploy now instead of at their next poll."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel

from recsmith.serving.auth import require_scope
from recsmith.serving.schemas import ErrorResponse, error_responses

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)


class ReloadResponse(BaseModel):
    model_version: str | None


@router.post(
    "/reload",
    response_model=ReloadResponse,
    summary="Load the registry's current release",
    responses={
        **error_responses(401, 403),
        409: {
            "model": ErrorResponse,
            "description": "serving.registry is not configured, or the registry's current "
            "release does not load: `detail` says why, and the previous release keeps serving",
        },
    },
)
async def reload(request: Request) -> ReloadResponse:
    """Swap to the model registry's current release (no-op when it is already served) in the
    process that answers, and within a second in every other worker and replica that follows
    the same registry; ``model_version`` is what the answering process serves now."""
    reloader = getattr(request.app.state, "reloader", None)
    if reloader is None:
        raise HTTPException(status.HTTP_409_CONFLICT, "serving.registry is not configured")
    return ReloadResponse(model_version=await reloader.request())
