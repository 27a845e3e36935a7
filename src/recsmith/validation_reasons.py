"""pydantic's error messages reworded where they describe pydantic rather than the input.

"Unable to extract tag using discriminator 'type'" and "String should match pattern '^(\\d{1,6}…'"
tell a client nothing it can act on. The HTTP 422s (``serving.input_errors``) and the rule
parsers (``rerank.rules``, ``merchandising.document``) all word their reasons here, so a reason
reads the same wherever the input came from: the field named, and what is accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recsmith.decisions.timespec import PATTERN as TIME_PATTERN

#: What a value matching a published ``pattern`` is, in words (patterns not listed keep
#: pydantic's message).
PATTERN_MEANINGS: dict[str, str] = {
    TIME_PATTERN: "a span such as 7d, 12h, or an ISO date",
}

Loc = tuple[int | str, ...]


def reworded(err: Mapping[str, Any], tags: Sequence[str] = ()) -> tuple[Loc, str]:
    """One pydantic error dict as (where, reason). A tagged union's missing or unknown tag is
    the tag field's error (``loc`` extended by it) listing the accepted values: ``tags`` gives
    them where pydantic does not (a missing tag); a pattern mismatch says what is accepted."""
    loc: Loc = tuple(err.get("loc", ()))
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        field = str(ctx.get("discriminator", "")).strip("'")
        if not field.isidentifier():  # a callable discriminator: no field to name
            return loc, msg
        allowed = ", ".join(tags) or str(ctx.get("expected_tags", "")).replace("'", "")
        if kind == "union_tag_not_found":
            return (*loc, field), f"required, one of {allowed}" if allowed else "required"
        tag = repr(ctx.get("tag"))
        return (*loc, field), f"{tag} is not one of {allowed}" if allowed else f"{tag} is unknown"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_MEANINGS:
        return loc, f"{err.get('input')!r} is not {PATTERN_MEANINGS[ctx['pattern']]}"
    return loc, msg
