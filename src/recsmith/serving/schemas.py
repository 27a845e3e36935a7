"""HTTP response shapes (and the event/item input shapes, for the OpenAPI docs), in snake_case.

Ingest endpoints do not validate their body with these models: they take a JSON array of arbitrary
objects and validate record by record (``store.ingest``), so one bad record never fails its batch.
``EventIn`` and ``ItemIn`` exist to document what a good record looks like.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recsmith.events.schema import IngestResult, Item, User
from recsmith.explain.schema import ItemExplanation

_EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "e-000123",
    "user_id": "u42",
    "session_id": "s-9f1c",
    "item_id": "sku-1001",
    "event_type": "purchase",
    "value": None,
    "timestamp": "2024-05-01T12:30:00Z",
    "context": {"page": "home", "position": 3},
}


class EventIn(BaseModel):
    """One event as a client sends it (documentation only; see the module docstring)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})

    user_id: str | None = Field(None, description="Who; required unless session_id is given")
    session_id: str | None = Field(None, description="Anonymous visitor's session")
    item_id: str | None = Field(None, description="What; required except in an identify event")
    event_type: str = Field(
        description="One of the configured events.weights types, or 'identify' (user_id and "
        "session_id, no item: links the visitor's session to the user, like POST …/aliases)"
    )
    value: float | None = Field(
        None,
        description="Needed by value-weighted types (rating, play); a JSON number: the string "
        "\"5\" is refused (value: must be a number, got the string '5')",
    )
    timestamp: str | float | None = Field(
        None,
        description="ISO 8601 with a zone (Z, +01:00; events.naive_timestamps), or Unix s/ms; "
        "may be left out when event_id is given: the server then uses the time received",
    )
    event_id: str | None = Field(
        None,
        description="Idempotency key; derived from the content (timestamp included) when absent",
    )
    context: dict[str, str | float | int | bool | None] | None = None
    recommendation_id: str | None = Field(
        None,
        description="the list the event came from (a response's recommendation_id): attributes "
        "it to that list; an unknown id, or an item not in that list, is refused",
    )
    position: int | None = Field(
        None,
        ge=1,
        description="where the list showed the item (1 = first; a JSON number); needs the id",
    )


_ITEM_EXAMPLE: dict[str, Any] = {
    "item_id": "sku-1001",
    "categories": ["shoes"],
    "tags": ["running"],
    "text": "Trail running shoe",
    "properties": {"price": 89.9, "brand": "acme"},
    "available": True,
}

#: A string ``Item`` takes: its validators refuse NUL (which PostgreSQL text cannot hold).
_NO_NUL = {"type": "string", "pattern": "^[^\\x00]*$"}


def _item_schema(schema: dict[str, Any]) -> None:
    """What ``Item`` accepts beyond what its annotations say: no NUL in text, categories or tags,
    and ``created_at`` as Unix seconds as well as ISO 8601 (pydantic's datetime takes both)."""
    fields = schema["properties"]
    fields["categories"]["items"] = fields["tags"]["items"] = _NO_NUL
    fields["text"]["anyOf"][0] = {**fields["text"]["anyOf"][0], **_NO_NUL}
    # pydantic reads |n| > 2e10 as milliseconds: the range is 0001-01-01 to 9999-12-31, in ms
    unix = {"type": "number", "minimum": -62135596800000, "exclusiveMaximum": 253402300800000}
    unix["description"] = "Unix seconds (milliseconds when beyond ±2e10)"
    fields["created_at"]["anyOf"].insert(1, unix)
    schema["examples"] = [_ITEM_EXAMPLE]


class ItemIn(Item):
    """A catalog item as a client sends it (documentation only)."""

    model_config = ConfigDict(json_schema_extra=_item_schema)


class FieldErrorOut(BaseModel):
    field: str
    reason: str


class RejectionOut(BaseModel):
    """A refused record: its position in the request array and every reason."""

    index: int
    errors: list[FieldErrorOut]


class IngestResponse(BaseModel):
    """What happened to a batch. A 200 means every accepted record is durably stored."""

    accepted: int
    duplicates: int
    rejected: list[RejectionOut]

    @classmethod
    def from_result(cls, result: IngestResult) -> IngestResponse:
        return cls(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=[
                RejectionOut(
                    index=r.index,
                    errors=[FieldErrorOut(field=e.field, reason=e.reason) for e in r.errors],
                )
                for r in result.rejected
            ],
        )


class AttributedOut(BaseModel):
    index: int
    rule: Literal["explicit", "window"] = Field(
        description="explicit: the event named the list; window: the latest list that showed "
        "the item to the same user within [decisions] attribution_window_h"
    )
    recommendation_id: str


class EventsResponse(IngestResponse):
    """``IngestResponse`` plus how many events the server timestamped (sent without one) and
    which events were attributed to a served list."""

    timestamped_by_server: int = Field(
        0,
        description="accepted or duplicate events sent without a timestamp, given the time "
        "received (only events with an event_id may omit it; a duplicate keeps its first time)",
    )
    attributed: list[AttributedOut] = Field(
        default_factory=list,
        description="the events attributed to a served list, by index, with the rule that did "
        "it; an event not listed was attributed to none",
    )

    @classmethod
    def from_result(cls, result: IngestResult) -> EventsResponse:
        base = IngestResponse.from_result(result)
        attributed = [
            AttributedOut(index=i, rule=rule, recommendation_id=rid)  # type: ignore[arg-type]
            for i, rule, rid in result.attributed
        ]
        return cls(
            **base.model_dump(),
            timestamped_by_server=result.timestamped_by_server,
            attributed=attributed,
        )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 2,
                    "duplicates": 1,
                    "timestamped_by_server": 2,
                    "rejected": [
                        {
                            "index": 3,
                            "errors": [
                                {
                                    "field": "event_type",
                                    "reason": "unknown event type (known: click, view)",
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )


class ItemsResponse(IngestResponse):
    """``IngestResponse`` plus when the accepted items reach recommendation lists."""

    servable: str | None = Field(
        None,
        description="when the accepted items are served: at once in the server process that "
        "answered, within serving.catalog_sync_interval_s in the others; items new since "
        "training, on a pipeline, through its new_arrivals source only; on a single model, "
        "after the next training",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 1,
                    "duplicates": 0,
                    "rejected": [
                        {"index": 1, "errors": [{"field": "item_id", "reason": "required"}]}
                    ],
                    "servable": "now in this server process, within 1 s in the others; 1 "
                    "item(s) new since training have no collaborative score until the next "
                    "training: they reach lists through new_arrivals (newest created_at first)",
                }
            ]
        }
    )


class ScoredItem(BaseModel):
    item_id: str
    score: float = Field(
        description="higher is better; what it measures is one thing per route: a user list's "
        "ranking score (popularity fills below the lowest model score; a list popularity "
        "answered whole keeps popularity's own: users who interacted), similarity (/similar), "
        "the co-occurrence metric (/together), users who interacted (/popular), decayed event "
        "counts (/trending)"
    )
    sources: list[str] = Field(
        default_factory=list, description="candidate sources that proposed the item"
    )
    reason: str | None = Field(None, description="a short, human-readable why")


#: ``?explain=true`` only, on every list route: absent unless asked (one check per response,
#: none per item).
Explanations = Annotated[
    list[ItemExplanation] | None,
    Field(
        exclude_if=lambda value: value is None,
        description="?explain=true only: explanations[i] says where items[i] came from and what "
        "moved it",
    ),
]


class _ListResponse(BaseModel):
    recommendation_id: str = Field(description="uuid4 hex; send it back with events to join them")
    model_version: str
    items: list[ScoredItem]
    experiment: str | None = Field(None, description="The running experiment this list is from")
    variant: str | None = Field(None, description="The experiment's variant that served it")


class RecommendationResponse(_ListResponse):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recommendation_id": "3f2b8c0e9a7d4c1b8e5f6a7b8c9d0e1f",
                    "user_id": "u42",
                    "model_version": "itemknn-20240501120000-a1b2c3",
                    "tier": "personalised",
                    "fallback": None,
                    "items": [
                        {
                            "item_id": "sku-1001",
                            "score": 0.83,
                            "sources": ["ials"],
                            "reason": "picked for you",
                        },
                        {
                            "item_id": "sku-2002",
                            "score": 0.61,
                            "sources": ["itemknn_recent"],
                            "reason": "similar to what you viewed recently",
                        },
                    ],
                }
            ]
        }
    )

    user_id: str
    tier: Literal["personalised", "session", "profile", "category", "segment", "popular"] = Field(
        "personalised", description="which tier of the fallback chain answered"
    )
    fallback: Literal["session", "profile", "category", "segment", "popular"] | None = Field(
        description="Set when the personalised tier could not answer: 'session' (from the "
        "request's recent items), 'profile' (a model with a user tower, two_tower, scored the "
        "stored profile of a user unknown at training, and any recent items), 'category' "
        "(popular within the requested categories), "
        "'segment' (popular among users whose profile matches the user's: a profile, no "
        "events; within the requested categories when such users had any of their items) or "
        "'popular' (nothing known about the visitor, or the model or the pipeline's sources "
        "propose nothing for a known user); a personalised list popularity filled in "
        "part says 'popular_fill' in degraded instead"
    )
    explanations: Explanations = None
    degraded: list[str] = Field(
        default_factory=list,
        description="parts this list was computed without: 'store' when the event store was "
        "unavailable (items the user has there now were not excluded); 'exposure:<group>' when "
        "an exposure floor of the pipeline could not be met from the items rules allow; "
        "'popular_fill' when the model or the sources proposed fewer items than asked for a "
        "known user and popularity filled the rest (those items' sources say 'popular'); "
        "'placement_release' when the release the placement names could not be served (the "
        "deployed one answered)",
    )
    not_personalised: str | None = Field(
        None,
        description="why the list ignores everything known about the user although they may be "
        "known: they were erased, or withdrew consent to personalization (``recsmith.privacy``)",
    )
    capped: int = Field(
        0,
        description="items frequency capping ([capping]) kept out of this list (action drop) or "
        "moved to its end (demote): shown to this person max_shows times within the window",
    )
    page_view_excluded: int = Field(
        0,
        description="items withheld because an earlier list of the same page_view_id showed them",
    )


class SimilarResponse(_ListResponse):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recommendation_id": "9a7d4c1b8e5f6a7b3f2b8c0e8c9d0e1f",
                    "item_id": "sku-1001",
                    "model_version": "itemknn-20240501120000-a1b2c3",
                    "items": [{"item_id": "sku-2002", "score": 0.42}],
                }
            ]
        }
    )

    item_id: str
    explanations: Explanations = None


class PopularResponse(_ListResponse):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "recommendation_id": "0e1f3f2b8c0e9a7d4c1b8e5f6a7b8c9d",
                    "model_version": "itemknn-20240501120000-a1b2c3",
                    "items": [{"item_id": "sku-1001", "score": 118.0}],
                }
            ]
        }
    )

    explanations: Explanations = None


class LiveResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReleaseStatus(BaseModel):
    """The registry's release as this process sees it (servers that follow serving.registry)."""

    serving: str | None = Field(description="the release this process answers with")
    wanted: str | None = Field(description="the registry's current release")
    error: str | None = Field(
        None, description="why `wanted` is not served (it does not load); null when it is"
    )


class ReadyResponse(BaseModel):
    """Readiness: every check must pass; ``failed`` names the ones that did not."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "checks": {"store": True, "store_writes": True, "model": True},
                    "failed": [],
                    "model_version": "itemknn-20240501120000-a1b2c3",
                },
                {
                    "status": "unavailable",
                    "checks": {"store": True, "store_writes": True, "model": False},
                    "failed": ["model"],
                    "model_version": None,
                },
            ]
        }
    )

    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, bool]
    degraded: list[str] = Field(
        default_factory=list,
        description="parts running on a fallback: online_state, response_cache or rate_limits "
        "(per-process buckets) when Redis is down (readiness stays 200), store when the store "
        "cannot be read (recommendations come from memory; the store check fails too), "
        "ranker_scoring when the ranker could not be compiled and scores with LightGBM's own "
        "predict (same lists, more CPU; the log says why), ranker_compiling while the "
        "compiled ranker is still being built after a start or reload (LightGBM scores "
        "meanwhile)",
    )
    failed: list[str]
    hints: dict[str, str] | None = Field(
        None,
        description="present when a check failed for a reason an operator can fix: what to do, "
        "by check (e.g. `model`: no model is loaded, and how to train one)",
    )
    model_version: str | None
    release: ReleaseStatus | None = Field(
        None,
        description="present when following a registry; a release that failed to load is "
        "named here (and `release` in `degraded`) while the previous one keeps serving",
    )
    decisions: dict[str, Any] | None = Field(
        None,
        description="the decision log, when enabled: decisions buffered (not stored yet), "
        "dropped (buffer full; the oldest go) and written by this process, and the last store "
        "error while it lasts",
    )


class ErrorResponse(BaseModel):
    """FastAPI's error shape, for the documented 401/403/404/413/503 responses; a 503 from an
    unavailable store adds ``cause`` (and a ``Retry-After`` header), a 500 an ``error_id`` to
    find in the server log."""

    detail: Any
    cause: str | None = None
    error_id: str | None = None


_ERROR_TEXT = {
    400: "Content-Encoding is gzip but the body is not gzip data",
    401: "No API key, or an unknown one",
    403: "The key is revoked or lacks the scope",
    404: "Not known to the model",
    409: "The deployment cannot do this (named in detail)",
    413: "More records than serving.max_batch, or a body over serving.max_body_bytes",
    415: "A body that is not JSON, or a Content-Encoding other than gzip",
    422: "Body is not JSON, not the expected shape, or a parameter is out of range",
    429: "The key is over its rate for this scope (auth.rate_limits): retry after `Retry-After` s",
    503: "No model is loaded, or the store is unavailable (`cause`, `Retry-After`)",
}

#: What any route that reads a body may answer before it looks at the body's content (the body
#: helpers below document them, so no route that takes a body can leave them out).
_BODY_ERRORS = (400, 413, 415)


def _body_responses() -> dict[str, Any]:
    """OpenAPI ``responses`` for ``_BODY_ERRORS``, written out: ``openapi_extra`` is raw OpenAPI."""
    content = {"application/json": {"schema": ErrorResponse.model_json_schema()}}
    return {
        str(code): {"description": _ERROR_TEXT[code], "content": content} for code in _BODY_ERRORS
    }


class InputErrorResponse(BaseModel):
    """Every 422: each bad input named with the reason (``serving/input_errors.py``)."""

    detail: list[FieldErrorOut]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error codes, all in FastAPI's ``detail`` shape.
    A route that takes a key (401) may also answer 429 (``auth.rate_limits``)."""
    if 401 in codes:
        codes = (*codes, 429)
    return {
        code: {
            "model": InputErrorResponse if code == 422 else ErrorResponse,
            "description": _ERROR_TEXT[code],
        }
        for code in codes
    }


def array_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON-array request body of ``model`` records.

    Each record is validated on its own and a bad one is rejected at its index inside a 200, so
    the array takes any value: a record shaped like ``model``, or anything else (rejected). Saying
    ``items: model`` would promise a 4xx for a batch the server answers 200.
    """
    record = {
        "anyOf": [
            model.model_json_schema(),
            {"description": "any other value: rejected at its index, the rest is stored"},
        ]
    }
    return {
        "requestBody": {
            "required": True,
            "description": "A JSON array of records, at most serving.max_batch (default 1000)",
            "content": {"application/json": {"schema": {"type": "array", "items": record}}},
        },
        "responses": _body_responses(),
    }


def _without_item_id(schema: dict[str, Any]) -> dict[str, Any]:
    """An item schema whose ``item_id`` comes from the path: the body leaves it out."""
    properties = {k: v for k, v in schema["properties"].items() if k != "item_id"}
    required = [name for name in schema.get("required", []) if name != "item_id"]
    examples = [{k: v for k, v in ex.items() if k != "item_id"} for ex in schema["examples"]]
    out = {**schema, "properties": properties, "required": required, "examples": examples}
    out["description"] = "The item's fields; item_id comes from the path (if sent, it must match)"
    return out


def _merge_patch(schema: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 over an object schema: every field optional, and null removes it."""
    nullable = {
        name: {"anyOf": [field, {"type": "null"}]} for name, field in schema["properties"].items()
    }
    out = {**schema, "properties": nullable, "required": []}
    out["description"] = "JSON merge patch (RFC 7396): the fields to change; null removes one"
    return out


def item_body() -> dict[str, Any]:
    """``openapi_extra`` documenting ``PUT /v1/items/{item_id}``'s body: the item, less its id."""
    return _json_body(_without_item_id(ItemIn.model_json_schema()))


def item_patch_body() -> dict[str, Any]:
    """``openapi_extra`` documenting ``PATCH /v1/items/{item_id}``'s body: a merge patch."""
    schema = _merge_patch(_without_item_id(ItemIn.model_json_schema()))
    return _json_body(schema, "application/merge-patch+json")


def profile_body(patch: bool = False) -> dict[str, Any]:
    """``openapi_extra`` documenting ``PUT`` (the profile) or ``PATCH`` (a merge patch of it)
    ``/v1/users/{user_id}``'s body; ``user_id`` comes from the path (if sent, it must match)."""
    schema = User.model_json_schema()
    schema["properties"].pop("user_id")
    schema["required"] = []
    schema["examples"] = [{"properties": {"age": 34, "gender": "F", "plan": "pro"}}]
    if patch:
        return _json_body(_merge_patch(schema), "application/merge-patch+json")
    return _json_body(schema)


def _json_body(schema: dict[str, Any], *also: str) -> dict[str, Any]:
    return media_body({name: {"schema": schema} for name in ("application/json", *also)})


def media_body(content: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads its body itself: the body's media types (each
    ``{"schema": ...}``) and the body errors answered before it is read."""
    return {"requestBody": {"required": True, "content": content}, "responses": _body_responses()}


def body_errors() -> dict[str, Any]:
    """``openapi_extra`` of a route whose body FastAPI parses from its handler's model: the
    body errors it may answer before (``_BODY_ERRORS``)."""
    return {"responses": _body_responses()}
