"""``settle_worker``'s collector settings: young collections every 10,000 net allocations in a
serving worker, never fewer than the process already asked for, and left off where they are."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recsmith.serving.worker_process import settle_worker


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's thresholds and frozen objects as they were, afterwards."""
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("collector")
@pytest.mark.parametrize(
    ("asked", "settled"),
    [
        ((700, 10, 10), (10_000, 10, 10)),  # CPython's default: raised, the older two kept
        ((700, 3, 7), (10_000, 3, 7)),
        ((9_999, 10, 10), (10_000, 10, 10)),
        ((10_000, 10, 10), (10_000, 10, 10)),
        ((50_000, 5, 5), (50_000, 5, 5)),  # an operator's higher threshold is kept
        ((0, 10, 10), (0, 10, 10)),  # threshold 0 turns collections off: left off
    ],
)
def test_young_threshold(asked: tuple[int, int, int], settled: tuple[int, int, int]) -> None:
    gc.set_threshold(*asked)
    settle_worker(collect=False)
    assert gc.get_threshold() == settled
    settle_worker(collect=False)  # again, as after each release swap: nothing moves
    assert gc.get_threshold() == settled


@pytest.mark.usefixtures("collector")
def test_young_collections_counted() -> None:
    """The collector really waits: 5,000 container allocations kept alive start no young
    collection after settling, where CPython's default 700 would have started several."""
    gc.set_threshold(700, 10, 10)
    settle_worker(collect=False)
    collections = gc.get_stats()[0]["collections"]
    kept = [[i] for i in range(5_000)]
    assert gc.get_stats()[0]["collections"] == collections
    assert len(kept) == 5_000
