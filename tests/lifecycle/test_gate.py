"""Gate expressions: thresholds worked out by hand, and clear errors for what is not a gate."""

from __future__ import annotations

import pytest

from recsmith.errors import ValidationError
from recsmith.lifecycle.gate import parse_gate


@pytest.mark.parametrize(
    ("text", "current", "threshold"),
    [
        ("ndcg@10 >= 0.98 * current", 0.5, 0.49),
        ("recall@20 >= current - 0.005", 0.2, 0.195),
        ("map@5 > current + 0.01", 0.3, 0.31),
        ("hit_rate@10 >= current", 0.7, 0.7),
        ("precision@10 >= 0.05", None, 0.05),
    ],
)
def test_thresholds(text: str, current: float | None, threshold: float) -> None:
    gate = parse_gate(text)
    assert gate.threshold(current) == pytest.approx(threshold)
    assert gate.passes(threshold, current) is (gate.op == ">=")
    assert gate.passes(threshold + 1e-9, current) is True
    assert gate.passes(threshold - 1e-9, current) is False


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ndcg >= current", "is not a gate"),
        ("ndcg@10 <= current", "is not a gate"),
        ("ndcg@10 >= 0.98 * current extra", "is not a gate"),
        ("nDCG@10 >= current", "is not a gate"),
        ("auc@10 >= current", "unknown metric 'auc'"),
        ("ndcg@0 >= current", "k must be at least 1"),
    ],
)
def test_what_is_not_a_gate_is_an_error(text: str, reason: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_gate(text)
    assert error.value.field == "--gate" and reason in error.value.reason


def test_a_relative_gate_needs_the_current_figure() -> None:
    with pytest.raises(ValueError, match="needs the current release's ndcg"):
        parse_gate("ndcg@10 >= 0.98 * current").threshold(None)
