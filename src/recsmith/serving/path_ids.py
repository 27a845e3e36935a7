"""Ids in URL paths: each is exactly one path segment, held to the id rule of ``recsmith.ids``.

Routes declare ``{item_id:id}``. The ``path`` convertor they used let ``/`` into an id, so
``PUT /v1/items/x/similar`` created an item called ``x/similar``; ids may no longer hold ``/``,
and this convertor never matches one, so such a path reaches no handler (404, or 405 where
another route owns it). Unlike Starlette's ``str`` convertor it matches an empty segment, so
``/v1/users//recommendations`` is answered with the reason (422), not a bare 404.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.convertors import Convertor, register_url_convertor

from recsmith.ids import MAX_ID_LENGTH, check_id

_ALLOWED = r"[^\x00-\x1f\x7f-\x9f/]"
#: The id rule as the published schema states it, for a path parameter's ``json_schema_extra``:
#: a client (or fuzzer) generating requests from the schema then never sends an id the server
#: refuses as malformed. ``path_id`` still checks, with the rule's own reasons.
ID_SCHEMA = {
    "minLength": 1,
    "maxLength": MAX_ID_LENGTH,
    "pattern": rf"^{_ALLOWED}*[^\s\x00-\x1f\x7f-\x9f/]{_ALLOWED}*$",
}


class IdSegment(Convertor[str]):
    """One path segment, possibly empty, as the id text (percent-decoding is done already)."""

    regex = "[^/]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdSegment())


def path_id(value: str, name: str) -> str:
    """An id from the URL path, held to the rules every id meets at ingestion: an empty or
    malformed id is a client mistake (422 naming it), not an unknown user to answer with
    popular items."""
    try:
        return check_id(value)
    except ValueError as exc:
        raise HTTPException(422, [{"field": name, "reason": str(exc)}]) from None
