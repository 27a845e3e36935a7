"""``POST /v1/events``: a batch of events in, per-record outcome out; 200 means durably stored.

Single events from browsers and apps arrive here thousands of times a second, so the handler is
kept to what a request needs: FastAPI's per-request pass is skipped (``direct_route``), the key is
checked by ``auth.admit`` called directly (the published schema still names both key headers,
``auth.SECURITY``), and the answer is written as JSON directly instead of through a
response-model pass (``serving.events_reply``; ``EventsResponse`` still documents it).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from recsmith.serving.auth import SECURITY, admit, secret_in_headers
from recsmith.serving.batch import parse_array
from recsmith.serving.deps import runtime_of
from recsmith.serving.direct_route import DirectRoute
from recsmith.serving.events_reply import events_reply
from recsmith.serving.schemas import EventIn, EventsResponse, array_body, error_responses

#: Where dead letters of this route say they came from.
SOURCE = "http:/v1/events"

router = APIRouter(prefix="/v1", tags=["events"], route_class=DirectRoute)


@router.post(
    "/events",
    response_model=EventsResponse,
    summary="Ingest a batch of events",
    responses=error_responses(401, 403, 413, 422, 503),
    openapi_extra={**array_body(EventIn), "security": SECURITY},
)
async def post_events(request: Request) -> JSONResponse:
    """Store every valid event; each invalid one is listed by index with its field errors.

    The body is a JSON array (at most ``serving.max_batch`` records). An event whose ``event_id``
    is already stored counts as a duplicate, so retrying a batch after a timeout is safe; the same
    ``event_id`` with other content is rejected (field ``event_id``). An event with an
    ``event_id`` may omit ``timestamp``: it gets the time received (counted in
    ``timestamped_by_server``) and a retry of it stays a duplicate, keeping its first time. Without
    an ``event_id`` the timestamp is required, since the id the server derives from the content
    includes it and a retry stamped later would count twice. The answer comes only after
    the store committed the events (requests arriving together share one commit:
    ``serving/group_commit.py``), so an event acknowledged with 200 survives a crash right after.
    """
    runtime = runtime_of(request)
    await admit(runtime, request, "ingest", secret_in_headers(request))
    records = parse_array(await request.body(), runtime.settings.serving.max_batch)
    result = await runtime.events.ingest(records)
    runtime.metrics.count_ingest(result.accepted, result.duplicates, len(result.rejected))
    return JSONResponse(events_reply(result))
