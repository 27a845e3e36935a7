"""Quality gates: ``ndcg@10 >= 0.98 * current``, ``recall@20 >= current - 0.005``, ``map@10 > 0.1``.

A gate compares one metric of the candidate with the current release's (or with a number). The
grammar is deliberately tiny — a metric at k, ``>=`` or ``>``, and a right side that is a number,
``current``, ``FACTOR * current`` or ``current ± DELTA`` — so a typo is an error naming what was
expected, never a gate that silently passes.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from recsmith.errors import ValidationError
from recsmith.evaluation.metrics import DEFAULT_METRICS

_NUMBER = r"\d+(?:\.\d+)?"
_GATE = re.compile(
    rf"^\s*(?P<metric>[a-z_]+)@(?P<k>\d+)\s*(?P<op>>=|>)\s*(?:"
    rf"(?P<factor>{_NUMBER})\s*\*\s*current"
    rf"|current\s*(?P<sign>[+-])\s*(?P<delta>{_NUMBER})"
    rf"|(?P<current>current)"
    rf"|(?P<value>{_NUMBER}))\s*$"
)
_OPS = {">=": operator.ge, ">": operator.gt}
DEFAULT_GATE = "ndcg@10 >= 0.98 * current"


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    k: int
    op: str
    factor: float = 1.0  # threshold = factor * current + offset (factor 0: a fixed number)
    offset: float = 0.0

    @property
    def needs_current(self) -> bool:
        return self.factor != 0.0

    def threshold(self, current: float | None) -> float:
        if not self.needs_current:
            return self.offset
        if current is None:
            raise ValueError(f"gate {self.text!r} needs the current release's {self.metric}")
        return self.factor * current + self.offset

    def passes(self, candidate: float, current: float | None) -> bool:
        return bool(_OPS[self.op](candidate, self.threshold(current)))


def parse_gate(text: str, field: str = "--gate") -> Gate:
    """A ``Gate`` from its text; a ValidationError naming ``field`` and the grammar otherwise."""
    found = _GATE.match(text)
    if found is None:
        raise ValidationError(
            field,
            f"{text!r} is not a gate: write METRIC@K >= (NUMBER | current | FACTOR * current | "
            f"current - DELTA), e.g. {DEFAULT_GATE!r}",
        )
    metric, k = found["metric"], int(found["k"])
    if metric not in DEFAULT_METRICS:
        raise ValidationError(
            field, f"unknown metric {metric!r} (known: {', '.join(DEFAULT_METRICS)})"
        )
    if k < 1:
        raise ValidationError(field, "k must be at least 1")
    common = {"text": text.strip(), "metric": metric, "k": k, "op": found["op"]}
    if found["factor"] is not None:
        return Gate(**common, factor=float(found["factor"]))
    if found["delta"] is not None:
        sign = 1.0 if found["sign"] == "+" else -1.0
        return Gate(**common, offset=sign * float(found["delta"]))
    if found["current"] is not None:
        return Gate(**common)
    return Gate(**common, factor=0.0, offset=float(found["value"]))
