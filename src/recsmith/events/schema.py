"""Boundary records: the canonical event columns, and Item/User models.

Events are validated column-wise (see ``validate``) because they arrive by the million; items and
users are fewer and nested (lists, maps), so pydantic models validate them one record at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from recsmith.ids import check_id
from recsmith.surrogates import UNENCODABLE, any_surrogate, has_surrogate

#: Columns of a validated event frame, in store order. ``ts`` is Unix time in microseconds (int64),
#: ``value`` is NaN when absent, ``context`` a compact JSON object or None. ``recommendation_id``
#: and ``position`` (an int, or None) say which served list, and where in it, the event came
#: from (``recsmith.decisions.attribution``).
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "session_id",
    "item_id",
    "event_type",
    "value",
    "ts",
    "context",
    "recommendation_id",
    "position",
)

#: Fields a client may send for an event (``timestamp`` becomes ``ts`` once parsed).
EVENT_INPUT_FIELDS: frozenset[str] = frozenset(
    {
        "event_id",
        "user_id",
        "session_id",
        "item_id",
        "event_type",
        "value",
        "timestamp",
        "context",
        "recommendation_id",
        "position",
    }
)

MIN_TIMESTAMP = datetime(1995, 1, 1, tzinfo=UTC)

Scalar = StrictStr | float | int | StrictBool | None

#: The validation context of records arriving from outside (``validate_items``, ``validate_users``):
#: only they are held to the id rule (``recsmith.ids``). Records read back from a store or a
#: trained artifact passed the rule of the day they came in; a rule tightened since (ids may no
#: longer hold "/") must not make an existing catalogue unloadable, nor stop the server using it.
AT_THE_DOOR: dict[str, bool] = {"at_the_door": True}


def _at_the_door(info: ValidationInfo) -> bool:
    """True while validating a record arriving from outside (see ``AT_THE_DOOR``)."""
    return isinstance(info.context, dict) and bool(info.context.get("at_the_door"))


def _door_id(value: str, info: ValidationInfo) -> str:
    """``value`` held to the id rule when the record is arriving; as stored otherwise."""
    return check_id(value) if _at_the_door(info) else value


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a record was refused: which field and why."""

    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused record: its position in the batch, every field error, and the raw payload."""

    index: int
    errors: tuple[FieldError, ...]
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(f"{e.field}: {e.reason}" for e in self.errors)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to a batch: new events stored, refused records, and re-sent (duplicate)
    events."""

    accepted: int
    duplicates: int
    rejected: tuple[Rejection, ...] = ()
    #: accepted or duplicate events that came without a timestamp and were given the time
    #: received (``validate.STAMP_RULE``; live ingestion only)
    timestamped_by_server: int = 0
    #: (index, rule, recommendation_id) of each new event attributed to a served list
    #: (``decisions.attribution``): rule ``explicit`` (it named the list) or ``window``
    attributed: tuple[tuple[int, str, str], ...] = ()

    def as_counts(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "rejected": len(self.rejected),
            "duplicates": self.duplicates,
        }


def check_properties(props: dict[str, Any], at_the_door: bool = True) -> dict[str, Any]:
    """Property values that a store and a JSON response can hold: finite numbers, and (for a
    record arriving, ``at_the_door``) keys and strings UTF-8 can encode (one joined scan for the
    usual clean map). Text stored before the door checked for that stays loadable: the writers
    escape it (``json.dumps``)."""
    texts = [*props, *(v for v in props.values() if isinstance(v, str))] if at_the_door else []
    if texts and any_surrogate(texts):
        key = next(k for k, v in props.items() if has_surrogate(k) or has_surrogate(str(v)))
        raise ValueError(f"property {key!r}: {UNENCODABLE}")
    for key, val in props.items():
        if isinstance(val, float) and not math.isfinite(val):
            raise ValueError(f"property {key!r} must be finite")
    return props


class Item(BaseModel):
    """A catalog item. ``properties`` holds numeric or categorical attributes (price, brand, …)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: StrictStr
    categories: list[StrictStr] = Field(default_factory=list, max_length=100)
    tags: list[StrictStr] = Field(default_factory=list, max_length=1000)
    text: StrictStr | None = Field(None, max_length=100_000)
    properties: dict[StrictStr, Scalar] = Field(default_factory=dict)
    available: StrictBool = True
    created_at: datetime | None = None

    @field_validator("item_id")
    @classmethod
    def _item_id(cls, value: str, info: ValidationInfo) -> str:
        return _door_id(value, info)

    @field_validator("text", "categories", "tags")
    @classmethod
    def _storable_text(
        cls, value: str | list[str] | None, info: ValidationInfo
    ) -> str | list[str] | None:
        # one scan of the joined text instead of a generator per field: every catalogue item
        # passes here three times, at import and whenever a pipeline loads its catalogue
        text = value if isinstance(value, str) else "".join(value or ())
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        if _at_the_door(info) and has_surrogate(text):
            raise ValueError(UNENCODABLE)  # stored before the door checked: kept loadable
        return value

    @field_validator("properties")
    @classmethod
    def _properties(cls, props: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_properties(props, _at_the_door(info))


class User(BaseModel):
    """A user profile: properties usable by segment fallbacks and rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: StrictStr
    properties: dict[StrictStr, Scalar] = Field(default_factory=dict)

    @field_validator("user_id")
    @classmethod
    def _user_id(cls, value: str, info: ValidationInfo) -> str:
        return _door_id(value, info)

    @field_validator("properties")
    @classmethod
    def _properties(cls, props: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return check_properties(props, _at_the_door(info))
