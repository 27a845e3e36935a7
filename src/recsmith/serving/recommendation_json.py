"""A user's recommendation list written as JSON without building its pydantic models: the bytes
``RecommendationResponse`` would write, for a fraction of the CPU.

Every served list built ``RecommendationResponse(...)`` (ten ``ScoredItem`` models validated from
the route's own dicts), and ``DirectRoute`` then had FastAPI validate the model again before its
``dump_json``: 16.0 µs of thread CPU a list at load against 6.9 µs written here (BENCHMARKS §81's
table; §74 timed the model alone at 19–30 µs). What the route hands over is its own output, whose
types it already knows, so nothing is left to validate: here the fields go, in the model's order,
to pydantic's own serializer (``pydantic_core.to_json``, with the model's ``ser_json_inf_nan``),
which writes strings, floats and numbers as the model's fields do.
``tests/serving/test_recommendation_json.py`` holds the bytes to the model's over many shapes
(unicode and escaped ids, empty lists, every tier).

A list with explanations (``?explain=true``, an admin's rare request) still goes through the
model: its explanations are models of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

from recsmith.serving.schemas import RecommendationResponse

#: The fields in the order the model writes them; ``explanations`` is left out, as the model
#: leaves it out when it is None (``Explanations``' ``exclude_if``).
FIELDS = tuple(name for name in RecommendationResponse.model_fields if name != "explanations")
#: How the model writes a score that is not finite (``ser_json_inf_nan``, ``"null"`` unless set)
_INF_NAN = RecommendationResponse.model_config.get("ser_json_inf_nan", "null")


def recommendation_json(fields: Mapping[str, Any]) -> bytes:
    """The JSON of ``RecommendationResponse(**fields)`` without explanations, for ``fields`` that
    already are what the model writes — a dict of exactly ``FIELDS`` in that order, its items
    dicts of exactly ``item_id``, ``score``, ``sources`` and ``reason`` in that order, each score
    a ``float`` — as the recommendation route builds them: written as they are, without a copy
    of each item and of the fields (3–4 µs a list of ten, about half of this call; §124).
    ``tests/serving/test_recommendation_json.py`` holds the route's fields, cached and demoted
    lists included, to the model's bytes."""
    return to_json(fields, inf_nan_mode=_INF_NAN)


_JSON = "application/json"
#: The content type ``Response(..., media_type=_JSON)`` gives (no charset: not ``text/``)
_JSON_TYPE = (b"content-type", _JSON.encode("latin-1"))


def recommendation_response(fields: Mapping[str, Any]) -> Response:
    """``recommendation_json`` as the 200 the route answers: a plain ``Response`` (so the lean
    app sends it as is: ``direct_route.lean``) with the attributes and headers
    ``Response(body, 200, media_type="application/json")`` gives, set directly: Starlette's
    ``__init__`` works the headers out from its arguments for every request (``init_headers``:
    the media type's charset rule, the status's no-body rule), ~0.7 µs of a quiet machine's
    ~1.0 (BENCHMARKS §147). ``tests/serving/test_recommendation_json.py`` holds it to what
    Starlette builds."""
    body = recommendation_json(fields)
    response = Response.__new__(Response)
    response.status_code = 200
    response.media_type = _JSON
    response.background = None
    response.body = body
    response.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]
    return response
