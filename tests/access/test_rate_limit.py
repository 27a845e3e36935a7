"""Token buckets by hand: sizes, refill, separate buckets per key and scope, Retry-After."""

from __future__ import annotations

import pytest

from recsmith.access.rate_limit import Rate, TokenBuckets, parse_rate, retry_after
from recsmith.errors import ValidationError


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/s", Rate(100, 1)),
        ("6000/min", Rate(6000, 60)),
        ("10 / h", Rate(10, 3600)),
        ("1.5/second", Rate(1.5, 1)),
        ("2/m", Rate(2, 60)),
    ],
)
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text, "read") == rate


@pytest.mark.parametrize("text", ["100", "100/d", "0/s", "0.5/s", "-1/s", "fast", "100/s/s"])
def test_bad_rates_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_rate(text, "read")
    assert info.value.field == "read"


def test_a_bucket_holds_one_period_and_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets({"read": Rate(2, 1)}, clock)  # 2 a second, bursts of 2
    assert buckets.admit("k", "read") == 0.0
    assert buckets.admit("k", "read") == 0.0
    assert buckets.admit("k", "read") == pytest.approx(0.5)  # empty: one token in 1/2 s
    clock.now += 0.25  # half a token back
    assert buckets.admit("k", "read") == pytest.approx(0.25)
    clock.now += 0.5  # 0.5 + 1.0 = 1.5 tokens
    assert buckets.admit("k", "read") == 0.0
    assert buckets.admit("k", "read") == pytest.approx(0.25)  # 0.5 left: 1/4 s to one
    clock.now += 100  # never more than the bucket's size
    assert [buckets.admit("k", "read") for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]


def test_keys_and_scopes_have_their_own_buckets_and_unlisted_scopes_are_free() -> None:
    buckets = TokenBuckets({"read": Rate(1, 60)}, Clock())
    assert buckets.admit("a", "read") == 0.0
    assert buckets.admit("a", "read") == pytest.approx(60.0)
    assert buckets.admit("b", "read") == 0.0  # another key
    assert all(buckets.admit("a", "ingest") == 0.0 for _ in range(1000))  # no ingest rate


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (19.2, "20"), (20.0, "20")])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    assert retry_after(wait) == header
