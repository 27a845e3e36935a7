"""Catalog writes: ``PUT /v1/items/{item_id}`` replaces one item, ``PATCH`` changes some of its
fields (JSON merge patch, RFC 7396: a shop marks an item out of stock without re-sending, or
wiping, its categories and properties), ``POST /v1/items`` upserts a batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from recsmith.events.schema import IngestResult
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving.allowed_methods import AllowEveryMethod
from recsmith.serving.auth import require_scope
from recsmith.serving.batch import ingest_records, parse_array, parse_json
from recsmith.serving.catalog_sync import CatalogSync
from recsmith.serving.deps import Runtime, RuntimeDep
from recsmith.serving.input_errors import invalid
from recsmith.serving.path_ids import ID_SCHEMA, path_id
from recsmith.serving.schemas import (
    ItemIn,
    ItemsResponse,
    array_body,
    error_responses,
    item_body,
    item_patch_body,
)
from recsmith.store.ingest import ingest_items

SOURCE = "http:/v1/items"

router = APIRouter(
    prefix="/v1",
    tags=["items"],
    dependencies=[Depends(require_scope("ingest"))],
    route_class=AllowEveryMethod,  # PUT and PATCH share a path: a 405 lists both
)
#: The id rule in the published schema too: a client generating ids from it (a fuzzer) then never
#: sends one the route refuses as malformed.
ItemId = Annotated[str, Path(json_schema_extra=ID_SCHEMA)]


def _upsert_batch(runtime: Runtime, sync: CatalogSync, body: bytes) -> ItemsResponse:
    records = parse_array(body, runtime.settings.serving.max_batch)
    result = ingest_records(
        runtime.store,
        records,
        lambda objects: ingest_items(runtime.store, objects, source=SOURCE),
        source=SOURCE,
    )
    sync.poll()  # this process's next request already filters by the new catalogue
    rejected = {r.index for r in result.rejected}
    accepted = [r["item_id"] for n, r in enumerate(records) if n not in rejected]
    return _answer(result, sync, accepted)


def _answer(result: IngestResult, sync: CatalogSync, item_ids: list[str]) -> ItemsResponse:
    """The ingest result and when ``item_ids`` (the accepted items) are served."""
    response = ItemsResponse.from_result(result)
    response.servable = servable(sync.app.state.runtime, item_ids) if item_ids else None
    return response


def servable(runtime: Runtime, item_ids: list[str]) -> str:
    """When the written items reach lists, as the release served now (after this process's
    catalogue sync applied them) says: at once here and within the sync interval elsewhere;
    items new since training through a pipeline's new-arrivals source, or, on a single model,
    after the next training."""
    bundle = runtime.bundle
    if bundle is None:
        return "after the first training: no model is loaded yet"
    when = (
        "now in this server process, within "
        f"{runtime.settings.serving.catalog_sync_interval_s:g} s in the others"
    )
    if isinstance(bundle, Pipeline):
        cold = bundle.cold_reach(item_ids)
        return when if cold is None else f"{when}; {cold}"
    unknown = int((bundle.items.to_index(item_ids) < 0).sum())
    if unknown == 0:
        return f"{when} (a single model applies availability only)"
    return (
        f"{when} for the items model {bundle.version} knows; {unknown} item(s) new to it appear "
        "after the next training that sees events for them (a single model cannot list items "
        "it was not trained on; a pipeline with a new_arrivals source lists them at once)"
    )


def _upsert_one(runtime: Runtime, sync: CatalogSync, item_id: str, body: bytes) -> ItemsResponse:
    path_id(item_id, "item_id")
    record: Any = parse_json(body)
    if not isinstance(record, dict):
        raise HTTPException(422, "request body must be a JSON object (one item)")
    return _upsert_record(runtime, sync, item_id, record)


def _upsert_record(
    runtime: Runtime, sync: CatalogSync, item_id: str, record: dict[str, Any]
) -> ItemsResponse:
    """Validate and store one item record (422 listing its field errors), then apply it to the
    served release."""
    if record.setdefault("item_id", item_id) != item_id:
        raise invalid(
            "item_id", f"the body's {record['item_id']!r} differs from the path's {item_id!r}"
        )
    result = ingest_items(runtime.store, [record], source=SOURCE)
    if result.rejected:
        raise HTTPException(
            422, [{"field": e.field, "reason": e.reason} for e in result.rejected[0].errors]
        )
    sync.poll()
    return _answer(result, sync, [item_id])


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: an object patch sets each of its keys on the target, recursively for objects,
    and a null removes the key (back to its default); any other patch replaces the target."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patched(
    body: bytes, key: str, record_id: str, read: Callable[[str], BaseModel | None], missing: str
) -> dict[str, Any]:
    """The stored record ``read(record_id)`` with the body's merge patch applied: 422 for a body
    that is not an object or changes ``key``, 404 (``missing``) when nothing is stored. Read,
    merge, write: concurrent patches of one record apply in turn, the last write winning."""
    path_id(record_id, key)
    patch: Any = parse_json(body)
    if not isinstance(patch, dict):
        raise HTTPException(422, "request body must be a JSON object (the fields to change)")
    if patch.get(key, record_id) != record_id:
        raise invalid(key, "cannot be changed by a patch")
    stored = read(record_id)
    if stored is None:
        raise HTTPException(404, missing)
    return merge_patch(stored.model_dump(mode="json", exclude_none=True), patch)


def _patch_one(runtime: Runtime, sync: CatalogSync, item_id: str, body: bytes) -> ItemsResponse:
    missing = f"no item {item_id!r} in the catalogue (PUT creates one)"
    record = patched(body, "item_id", item_id, runtime.store.get_item, missing)
    return _upsert_record(runtime, sync, item_id, record)


@router.patch(
    "/items/{item_id:id}",
    response_model=ItemsResponse,
    summary="Change some fields of one item",
    responses=error_responses(401, 403, 404, 422, 503),
    openapi_extra=item_patch_body(),
)
async def patch_item(item_id: ItemId, request: Request, runtime: RuntimeDep) -> ItemsResponse:
    """Apply a JSON merge patch (RFC 7396) to the stored item: ``{"available": false}`` marks it
    out of stock and keeps everything else; ``{"properties": {"price": 9.5}}`` changes one
    property; a ``null`` removes a field or property. 404 for an item not in the catalogue.
    """
    body = await request.body()
    sync = request.app.state.catalog_sync
    return await run_in_threadpool(_patch_one, runtime, sync, item_id, body)


@router.put(
    "/items/{item_id:id}",
    response_model=ItemsResponse,
    summary="Create or replace one item",
    responses=error_responses(401, 403, 422, 503),
    openapi_extra=item_body(),
)
async def put_item(item_id: ItemId, request: Request, runtime: RuntimeDep) -> ItemsResponse:
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
    responses=error_responses(401, 403, 413, 422, 503),
    openapi_extra=array_body(ItemIn),
)
async def post_items(request: Request, runtime: RuntimeDep) -> ItemsResponse:
    """Upsert each valid item of a JSON array; invalid ones are listed by index with reasons."""
    body = await request.body()
    sync = request.app.state.catalog_sync
    return await run_in_threadpool(_upsert_batch, runtime, sync, body)
