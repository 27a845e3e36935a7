"""``--since 7d`` / ``?since=2026-05-01``: a relative span back from now, or a date-time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from recsmith.errors import ValidationError

#: What ``parse_time`` reads, for a schema to publish (OpenAPI ``pattern``): a span, or an ISO
#: 8601 date with an optional time and zone.
PATTERN = (
    r"^(\d{1,6}(\.\d{1,3})?[smhdw]|\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?)?)$"
)
_SPAN = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def span_seconds(text: str, field: str) -> float:
    """``30s``, ``15m``, ``24h``, ``7d``, ``2w`` in seconds; an error naming ``field`` else."""
    span = _SPAN.fullmatch(text.strip())
    if span is None:
        raise ValidationError(field, f"{text!r} is not a span (30s, 15m, 24h, 7d, 2w)")
    return float(span.group(1)) * _UNIT_S[span.group(2)]


def parse_time(text: str | None, field: str, now: datetime | None = None) -> datetime | None:
    """``7d`` (also s, m, h, w) means that long before ``now``; otherwise an ISO 8601 date or
    date-time (UTC unless it names a zone). None stays None."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if _SPAN.fullmatch(text.strip()) is not None:
        try:  # ``99999999999d`` leaves the calendar: an error naming the field, not a traceback
            return now - timedelta(seconds=span_seconds(text, field))
        except (OverflowError, ValueError):
            raise ValidationError(
                field, f"{text!r} is a span too long for the calendar (years 1 to 9999)"
            ) from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            field, f"{text!r} is neither a span (7d, 12h, 30m) nor an ISO 8601 date-time"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse_window(
    since: str | None, until: str | None, fields: tuple[str, str] = ("since", "until")
) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` (``parse_time``, named by ``fields``), refusing an end that is
    not after the start: such a window holds nothing, and reading it answered an empty table
    as if nothing had been served. Both spans count back from the same "now", so equal spans
    (``since=7d&until=7d``) are refused too, not a window of the microseconds between two reads
    of the clock."""
    now = datetime.now(UTC)
    start, end = parse_time(since, fields[0], now), parse_time(until, fields[1], now)
    if start is not None and end is not None and end <= start:
        raise ValidationError(fields[1], f"must be after {fields[0]}")
    return start, end
