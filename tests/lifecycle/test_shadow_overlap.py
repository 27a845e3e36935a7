"""List overlap by hand, and the shadow queue's bound (dropped, counted, never blocking)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from recsmith.config import LifecycleSettings
from recsmith.lifecycle.overlap import jaccard, rbo
from recsmith.lifecycle.shadow import ShadowJob, ShadowMetrics, ShadowRunner, _Tally
from recsmith.serving.coalesce import Options, UserQuery


@pytest.mark.parametrize(
    ("a", "b", "j", "r"),
    [
        # sets {1,2,3} and {2,1,4}: 2 shared of 4; prefixes agree 0/1, 2/2, 2/3 at depths 1..3
        (["1", "2", "3"], ["2", "1", "4"], 2 / 4, (0 + 0.9 * 1 + 0.81 * 2 / 3) / 2.71),
        (["a", "b"], ["b", "a"], 1.0, (0 + 0.9 * 1) / 1.9),
        (["a", "b", "c"], ["a"], 1 / 3, (1 + 0.9 * 1 / 2 + 0.81 * 1 / 3) / 2.71),
        (["a", "b"], ["c", "d"], 0.0, 0.0),
        (["a", "b", "c"], ["a", "b", "c"], 1.0, 1.0),
        ([], [], 1.0, 1.0),
    ],
)
def test_overlap_by_hand(a: list[str], b: list[str], j: float, r: float) -> None:
    assert jaccard(a, b) == pytest.approx(j)
    assert rbo(a, b) == pytest.approx(r)
    assert rbo(b, a) == pytest.approx(r)  # symmetric


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    registry = CollectorRegistry()
    runner = ShadowRunner(None, LifecycleSettings(), ShadowMetrics(registry), queue_size=2)
    runner._tally = _Tally("candidate", sample=1.0)  # as if loaded; no thread drains the queue
    for n in range(5):
        query = UserQuery("u1", [], [], {}, f"{n:032x}")
        runner.offer(ShadowJob(query, Options(5), ["i1"], 1.0))
    assert runner.report()["dropped"] == 3 and runner.report()["queued"] == 2
    dropped = registry.get_sample_value("recsmith_shadow_requests_total", {"outcome": "dropped"})
    assert dropped == 3.0


def test_the_sample_is_drawn_from_the_recommendation_id() -> None:
    runner = ShadowRunner(None, LifecycleSettings(), ShadowMetrics(CollectorRegistry()), 100)
    runner._tally = _Tally("candidate", sample=0.25)
    # ids whose first 8 hex digits are below 0x40000000 (a quarter of the range) are sampled
    ids = ["3fffffff" + "0" * 24, "40000000" + "0" * 24, "00000000" + "f" * 24, "ffffffff" * 4]
    assert [runner.wants(rid) for rid in ids] == [True, False, True, False]  # asked first
    for rid in ids:
        runner.offer(ShadowJob(UserQuery("u", [], [], {}, rid), Options(3), [], None))
    assert runner.report()["queued"] == 2


def test_without_a_shadow_no_request_is_wanted() -> None:
    """The route builds a shadow job only when ``wants`` says so: never without a shadow."""
    runner = ShadowRunner(None, LifecycleSettings(), ShadowMetrics(CollectorRegistry()), 100)
    assert not runner.wants("00000000" * 4)
    runner._tally = _Tally("candidate", sample=1.0)
    assert runner.wants("ffffffff" * 4)
