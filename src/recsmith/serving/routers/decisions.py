"""Admin routes of the decision log: one served list, and the KPIs (``recsmith.decisions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from recsmith.decisions.kpis import By, catalogue_size, kpis
from recsmith.decisions.record import Decision
from recsmith.decisions.timespec import PATTERN
from recsmith.ids import UUID4_HEX_PATTERN
from recsmith.serving.auth import require_scope
from recsmith.serving.deps import RuntimeDep
from recsmith.serving.input_errors import query_window
from recsmith.serving.schemas import error_responses

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)


class ShownItem(BaseModel):
    position: int
    item_id: str
    score: float
    sources: list[str]
    propensity: float


class DecisionResponse(BaseModel):
    recommendation_id: str
    served_at: str
    unit: str | None
    unit_kind: str
    route: str
    placement: str | None
    release: str
    experiment: str | None
    variant: str | None
    latency_ms: float | None = Field(
        description="ms from the request's arrival to the response built (null: not timed)"
    )
    items: list[ShownItem]

    @classmethod
    def of(cls, d: Decision) -> DecisionResponse:
        return cls(
            recommendation_id=d.recommendation_id,
            served_at=d.served_at.isoformat(),
            unit=d.unit,
            unit_kind=d.unit_kind,
            route=d.route,
            placement=d.placement,
            release=d.release,
            experiment=d.experiment,
            variant=d.variant,
            latency_ms=d.latency_ms,
            items=[
                ShownItem(position=n + 1, item_id=i, score=s, sources=list(src), propensity=p)
                for n, (i, s, src, p) in enumerate(
                    zip(d.item_ids, d.scores, d.sources, d.propensities, strict=True)
                )
            ],
        )


@router.get(
    "/decisions/{recommendation_id}",
    response_model=DecisionResponse,
    summary="One served list, as the decision log recorded it",
    responses=error_responses(401, 403, 404, 422, 503),
)
def get_decision(
    recommendation_id: Annotated[
        str, Path(pattern=UUID4_HEX_PATTERN, description="a response's recommendation_id")
    ],
    runtime: RuntimeDep,
) -> DecisionResponse:
    """The list answered with this ``recommendation_id``: who, when, which release and variant,
    and per shown item its position, score, sources and propensity. 404 for an id no list was
    served with (or one past ``[decisions] retain_days``)."""
    log = runtime.decisions
    found = log.pending(recommendation_id) if log is not None else None
    found = found or runtime.store.get_decision(recommendation_id)
    if found is None:
        raise HTTPException(404, f"no served list has recommendation_id {recommendation_id!r}")
    return DecisionResponse.of(found)


@router.get(
    "/kpis",
    summary="Business KPIs of the lists served",
    responses=error_responses(401, 403, 422, 503),
)
def get_kpis(
    runtime: RuntimeDep,
    since: Annotated[
        str, Query(pattern=PATTERN, description="7d, 12h, … back from now, or an ISO date")
    ] = "7d",
    until: Annotated[
        str | None, Query(pattern=PATTERN, description="end (exclusive); default now")
    ] = None,
    by: Annotated[
        By | None, Query(description="group by release, variant, placement or day")
    ] = None,
    k: Annotated[int, Query(ge=1, le=1000, description="positions CTR@k counts")] = 10,
) -> dict[str, Any]:
    """Impressions, users, CTR and CTR@k, add-to-cart rate, conversion, revenue per user and
    per impression, and catalogue coverage, per group (definitions: ``decisions.kpis``)."""
    start, end = query_window(since, until)
    store = runtime.store
    table = kpis(
        store,
        runtime.settings.decisions.kinds(),
        since=start,
        until=end,
        by=by,
        k=k,
        catalogue_size=catalogue_size(store),
    )
    return {
        "since": start.isoformat() if start else None,
        "until": end.isoformat() if end else None,
        "by": by,
        "k": k,
        "groups": _records(table),
    }


def _records(table: Any) -> list[dict[str, Any]]:
    """Rows as JSON objects (NaN and None as null)."""
    return [
        {key: (None if value != value else value) for key, value in row.items()}
        for row in table.to_dict(orient="records")
    ]
