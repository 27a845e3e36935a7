"""Catalog writes: ``PUT /v1/items/{item_id}`` for one item, ``POST /v1/items`` for a batch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from recsmith.serving.auth import require_scope
from recsmith.serving.batch import ingest_records, parse_array, parse_json
from recsmith.serving.catalog_sync import CatalogSync
from recsmith.serving.deps import Runtime, RuntimeDep
from recsmith.serving.schemas import (
    ItemIn,
    ItemsResponse,
    array_body,
    error_responses,
    object_body,
)
from recsmith.store.ingest import ingest_items

SOURCE = "http:/v1/items"

router = APIRouter(prefix="/v1", tags=["items"], dependencies=[Depends(require_scope("ingest"))])


def _upsert_batch(runtime: Runtime, sync: CatalogSync, body: bytes) -> ItemsResponse:
    records = parse_array(body, runtime.settings.serving.max_batch)
    result = ingest_records(
        runtime.store,
        records,
        lambda objects: ingest_items(runtime.store, objects, source=SOURCE),
        source=SOURCE,
    )
    sync.poll()  # this process's next request already filters by the new catalogue
    return ItemsResponse.from_result(result)


def _upsert_one(runtime: Runtime, sync: CatalogSync, item_id: str, body: bytes) -> ItemsResponse:
    record: Any = parse_json(body)
    if not isinstance(record, dict):
        raise HTTPException(422, "request body must be a JSON object (one item)")
    if record.setdefault("item_id", item_id) != item_id:
        raise HTTPException(
            422, f"item_id in the body ({record['item_id']!r}) differs from the path ({item_id!r})"
        )
    result = ingest_items(runtime.store, [record], source=SOURCE)
    if result.rejected:
        raise HTTPException(
            422, [{"field": e.field, "reason": e.reason} for e in result.rejected[0].errors]
        )
    sync.poll()
    return ItemsResponse.from_result(result)


@router.put(
    "/items/{item_id:path}",
    response_model=ItemsResponse,
    summary="Create or replace one item",
    responses=error_responses(401, 403, 422),
    openapi_extra=object_body(ItemIn),
)
async def put_item(item_id: str, request: Request, runtime: RuntimeDep) -> ItemsResponse:
    """Upsert the item; ``item_id`` may be left out of the body, and must match the path if given.

    An invalid item answers 422 with ``detail`` listing ``{field, reason}`` pairs.
    """
    body = await request.body()
    sync = request.app.state.catalog_sync
    return await run_in_threadpool(_upsert_one, runtime, sync, item_id, body)


@router.post(
    "/items",
    response_model=ItemsResponse,
    summary="Create or replace a batch of items",
    responses=error_responses(401, 403, 413, 422),
    openapi_extra=array_body(ItemIn),
)
async def post_items(request: Request, runtime: RuntimeDep) -> ItemsResponse:
    """Upsert each valid item of a JSON array; invalid ones are listed by index with reasons."""
    body = await request.body()
    sync = request.app.state.catalog_sync
    return await run_in_threadpool(_upsert_batch, runtime, sync, body)
