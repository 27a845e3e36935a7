"""Time windows on business rules: a weekend promotion switches itself on and off.

Any rule may carry ``start`` and/or ``end`` (ISO-8601 with a timezone; TOML's own offset
date-times too). A rule is active from ``start`` (inclusive) until ``end`` (exclusive); outside
that it is as if it were not written. A time without a timezone is refused rather than guessed:
"Saturday 00:00" means different instants on two servers in different zones.

Which rules are active is decided when a re-ranker is built (``Pipeline.rules_at``), not per row:
the serving side rebuilds when the clock crosses an edge (``merchandising.live``), so a request
pays nothing for windows it is not crossing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator


def _unset(value: Any) -> bool:
    return value is None


class Window(BaseModel):
    """``start`` / ``end`` of a rule (mixed into every rule type); both optional."""

    # strict=False: a JSON body or a TOML string gives the time as text
    start: AwareDatetime | None = Field(
        None, strict=False, exclude_if=_unset, description="active from (ISO-8601 with timezone)"
    )
    end: AwareDatetime | None = Field(
        None, strict=False, exclude_if=_unset, description="inactive from (ISO-8601 with timezone)"
    )

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start")
        if end is not None and start is not None and end <= start:
            raise ValueError(f"end ({end.isoformat()}) is not after start ({start.isoformat()})")
        return end

    def active(self, at: datetime) -> bool:
        """Whether the rule applies at ``at`` (timezone-aware)."""
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)


R = TypeVar("R")


def active_rules(rules: Iterable[R], at: datetime) -> list[R]:
    """The rules of ``rules`` in force at ``at`` (rules without a window always are)."""
    return [r for r in rules if not isinstance(r, Window) or r.active(at)]


def window_edges(rules: Iterable[Any]) -> list[float]:
    """Sorted POSIX times at which some rule of ``rules`` switches on or off: between two
    consecutive edges the active set cannot change."""
    edges = {
        t.timestamp()
        for r in rules
        if isinstance(r, Window)
        for t in (r.start, r.end)
        if t is not None
    }
    return sorted(edges)
