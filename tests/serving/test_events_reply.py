"""``events_reply`` (the body ``POST /v1/events`` writes directly) against the documented model,
``EventsResponse``: the same fields, values and order for every kind of result."""

from __future__ import annotations

import json

import pytest
from starlette.responses import JSONResponse

from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.serving.events_reply import events_reply
from recsmith.serving.schemas import EventsResponse

RESULTS = [
    IngestResult(1, 0),
    IngestResult(0, 3, timestamped_by_server=2),
    IngestResult(
        2,
        1,
        (
            Rejection(
                0, (FieldError("user_id", "required"), FieldError("b\\ud800", "unknown")), {}
            ),
            Rejection(4, (FieldError("value", "must be within [-10, 10] (é)"),), {"value": 11}),
        ),
        1,
        ((1, "explicit", "rec-1"), (3, "window", "rec-2")),
    ),
]


@pytest.mark.parametrize("result", RESULTS)
def test_the_direct_reply_is_the_documented_response(result: IngestResult) -> None:
    expected = EventsResponse.from_result(result).model_dump(mode="json")
    body = json.loads(JSONResponse(events_reply(result)).body)
    assert body == expected
    assert list(body) == list(expected)
    EventsResponse.model_validate(body)  # and the schema's model reads it back
