"""Read routes: a user's recommendations, an item's neighbours, and the popular list.

Work per recommendation request is one indexed store query (what the user has *now*, so an event
ingested a moment ago already counts) plus one ``bundle.recommend`` call. Endpoints are ``def``: the
store query blocks, and FastAPI runs them in its thread pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from uuid import uuid4

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query

from recsmith.serving.auth import require_scope
from recsmith.serving.deps import BundleDep, RuntimeDep
from recsmith.serving.schemas import (
    PopularResponse,
    RecommendationResponse,
    ScoredItem,
    SimilarResponse,
    error_responses,
)

MAX_K = 1000

router = APIRouter(
    prefix="/v1", tags=["recommendations"], dependencies=[Depends(require_scope("read"))]
)

K = Annotated[int, Query(ge=1, le=MAX_K, description=f"List length, 1 to {MAX_K}")]


def _scored(item_ids: np.ndarray, scores: np.ndarray) -> list[ScoredItem]:
    ids: Sequence[str] = item_ids.tolist()
    values: Sequence[float] = scores.tolist()
    return [ScoredItem(item_id=i, score=s) for i, s in zip(ids, values, strict=True)]


@router.get(
    "/users/{user_id:path}/recommendations",
    response_model=RecommendationResponse,
    summary="Top-k items for a user",
    responses=error_responses(401, 403, 422, 503),
)
def recommend(
    user_id: str, runtime: RuntimeDep, bundle: BundleDep, k: K = 10
) -> RecommendationResponse:
    """Items the user has not interacted with, best first.

    Items the user has in the store now are excluded, on top of the training data. A user the model
    does not know gets the popular items (``fallback: "popular"``), never a 404.
    """
    seen = runtime.store.user_items(user_id)
    recs = bundle.recommend([user_id], k, extra_seen=[seen])
    fallback = "popular" if bool(recs.fallback[0]) else None
    runtime.metrics.recommendations.labels(fallback=fallback or "none").inc()
    return RecommendationResponse(
        recommendation_id=uuid4().hex,
        user_id=user_id,
        model_version=bundle.version,
        fallback=fallback,
        items=_scored(recs.item_ids[0], recs.scores[0]),
    )


@router.get(
    "/items/{item_id:path}/similar",
    response_model=SimilarResponse,
    summary="Items similar to an item",
    responses=error_responses(401, 403, 404, 422, 503),
)
def similar(item_id: str, bundle: BundleDep, k: K = 10) -> SimilarResponse:
    """The model's nearest items; 404 for an item the model was not trained on."""
    try:
        ids, scores = bundle.similar_items(item_id, k)
    except KeyError:
        raise HTTPException(
            404,
            f"item {item_id!r} is unknown to model {bundle.version} "
            "(items appear after the next training that sees events for them)",
        ) from None
    return SimilarResponse(
        recommendation_id=uuid4().hex,
        item_id=item_id,
        model_version=bundle.version,
        items=_scored(ids, scores),
    )


@router.get(
    "/popular",
    response_model=PopularResponse,
    summary="The most popular items",
    responses=error_responses(401, 403, 422, 503),
)
def popular(bundle: BundleDep, k: K = 10) -> PopularResponse:
    """The fallback list, as of the model's training data."""
    ids, scores = bundle.popular_items(k)
    return PopularResponse(
        recommendation_id=uuid4().hex, model_version=bundle.version, items=_scored(ids, scores)
    )
