"""``finite_or_null``: what recsmith writes as JSON holds no ``NaN``/``Infinity`` (not JSON)."""

from __future__ import annotations

import json
import math

from recsmith.json_text import finite_or_null


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def test_every_non_finite_float_becomes_null_at_any_depth() -> None:
    payload = {"a": math.nan, "b": [math.inf, 1.5, (-math.inf, "x")], "c": 2, "d": {"e": None}}
    expected = {"a": None, "b": [None, 1.5, [None, "x"]], "c": 2, "d": {"e": None}}
    assert finite_or_null(payload) == expected
    # the strict reading of what json.dumps writes from it: no NaN/Infinity constant
    assert json.loads(json.dumps(finite_or_null(payload)), parse_constant=_refuse) == expected
