"""The body of ``POST /v1/events``'s 200, built as plain JSON values from an ``IngestResult``.

FastAPI's response-model pass (building ``schemas.EventsResponse``, validating it, dumping it) cost
a single-event request more than its share of the group commit; the route returns these values in
a ``JSONResponse`` instead. ``EventsResponse`` remains the documented shape, and
``tests/serving/test_events_reply.py`` holds this function to it.
"""

from __future__ import annotations

from typing import Any

from recsmith.events.schema import IngestResult


def events_reply(result: IngestResult) -> dict[str, Any]:
    """``EventsResponse.from_result(result).model_dump(mode="json")``, fields in the same order."""
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [
            {
                "index": r.index,
                "errors": [{"field": e.field, "reason": e.reason} for e in r.errors],
            }
            for r in result.rejected
        ],
        "timestamped_by_server": result.timestamped_by_server,
        "attributed": [
            {"index": index, "rule": rule, "recommendation_id": rid}
            for index, rule, rid in result.attributed
        ],
    }
