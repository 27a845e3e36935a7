"""``POST /v1/events``: a batch of events in, per-record outcome out; 200 means durably stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from recsmith.serving.auth import require_scope
from recsmith.serving.batch import ingest_records, parse_array
from recsmith.serving.deps import Runtime, RuntimeDep
from recsmith.serving.schemas import EventIn, EventsResponse, array_body, error_responses
from recsmith.store.ingest import ingest_events

SOURCE = "http:/v1/events"

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require_scope("ingest"))])


def latest_items(events: pd.DataFrame) -> list[tuple[str, str]]:
    """(actor, item) pairs oldest first; the actor is the user_id, or the session_id of an
    anonymous visitor (which is what such a visitor asks recommendations with)."""
    ordered = events.sort_values("ts", kind="stable")
    users = ordered["user_id"].to_numpy(dtype=object)
    sessions = ordered["session_id"].to_numpy(dtype=object)
    actors = np.where(pd.isna(users), sessions, users)
    return list(zip(actors.tolist(), ordered["item_id"].tolist(), strict=True))


def _ingest(runtime: Runtime, body: bytes) -> EventsResponse:
    """Parse, validate and store one batch; blocking, so it runs in the thread pool.

    It returns only after the store committed (``EventStore.append`` is durable once it returns), so
    an event acknowledged with 200 survives a crash of the server right after the answer.
    """
    records = parse_array(body, runtime.settings.serving.max_batch)
    result = ingest_records(
        runtime.store,
        records,
        lambda objects: ingest_events(
            runtime.store,
            objects,
            runtime.settings.events,
            source=SOURCE,
            on_stored=lambda frame: runtime.state.push(latest_items(frame)),
        ),
        source=SOURCE,
    )
    runtime.metrics.count_ingest(result.accepted, result.duplicates, len(result.rejected))
    return EventsResponse.from_result(result)


@router.post(
    "/events",
    response_model=EventsResponse,
    summary="Ingest a batch of events",
    responses=error_responses(401, 403, 413, 422, 503),
    openapi_extra=array_body(EventIn),
)
async def post_events(request: Request, runtime: RuntimeDep) -> EventsResponse:
    """Store every valid event; each invalid one is listed by index with its field errors.

    The body is a JSON array (at most ``serving.max_batch`` records). An event whose ``event_id``
    is already stored counts as a duplicate, so retrying a batch after a timeout is safe; the same
    ``event_id`` with other content is rejected (field ``event_id``).
    """
    body = await request.body()
    return await run_in_threadpool(_ingest, runtime, body)
