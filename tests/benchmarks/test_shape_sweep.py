"""The sweep's own protocol and metric code (``benchmarks/shape_sweep.py``), against values worked
out by hand: it stands in for the outside scorer of #15, so it must not lean on recsmith's."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import shape_sweep


def frame(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    users, items, ts = zip(*rows, strict=True)
    return pd.DataFrame({"user_id": users, "item_id": items, "ts": ts})


def test_time_cut_holds_out_items_new_to_users_known_before_it() -> None:
    # ts 1..10: the 0.8 quantile is 8.2, so ts 9 and 10 are the test part
    events = frame([
        ("a", "x", 1), ("a", "y", 2), ("b", "w", 3), ("e", "x", 4), ("e", "y", 5),
        ("e", "z", 6), ("f", "x", 7), ("f", "q", 8), ("a", "z", 9), ("b", "w", 10),
    ])  # fmt: skip
    events.loc[len(events)] = ("c", "q", 10)  # c is new after the cut: not scored
    s = shape_sweep.split(events, "temporal")
    assert s.truth == {"a": {"z"}}  # b's w is not new to b
    assert sorted(s.train["ts"]) == list(range(1, 9))


def test_last_event_held_out_where_the_user_has_another_and_it_is_new() -> None:
    events = frame([
        ("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("d", "x", 5), ("d", "x", 6), ("e", "y", 7),
    ])  # fmt: skip
    s = shape_sweep.split(events, "last")
    assert s.truth == {"a": {"z"}}
    # a's z and d's second x leave the train part; e's only event stays
    assert sorted(zip(s.train["user_id"], s.train["item_id"], strict=True)) == [
        ("a", "x"), ("a", "y"), ("d", "x"), ("e", "y"),
    ]  # fmt: skip


def test_ndcg_drops_seen_items_without_refilling_and_scores_a_missing_list_zero() -> None:
    events = frame([
        ("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("b", "x", 4), ("b", "y", 5), ("b", "w", 6),
        ("b", "v", 7),
    ])  # fmt: skip
    s = shape_sweep.split(events, "last")  # truth: a {z}, b {v}
    lists = {"a": ["x", "q", "z"]}  # x is seen: dropped, so z ranks 2nd
    got = shape_sweep.ndcg_at_10(lists, s)
    assert got == pytest.approx([1 / np.log2(3), 0.0])


def test_ratio_interval_of_equal_scores_is_one_and_of_doubled_scores_two() -> None:
    a = np.array([0.0, 0.5, 1.0, 0.25])
    assert shape_sweep.ratio_interval(a, a) == pytest.approx((1.0, 1.0, 1.0))
    assert shape_sweep.ratio_interval(2 * a, a) == pytest.approx((2.0, 2.0, 2.0))


def test_ndcg_with_several_truth_items_more_than_ten_and_seen_items_in_the_top_ten() -> None:
    """Ideal DCG over min(|truth|, 10) places; seen items dropped before the list is cut to 10."""
    train = [("a", "s1", 1), ("a", "s2", 2), ("b", "s1", 3)]
    s = shape_sweep.Split(frame(train), {"a": {"t1", "t2"}, "b": {f"u{n}" for n in range(12)}})
    d = 1.0 / np.log2(np.arange(2, 12))  # the discounts of places 1..10, by hand
    # a: two seen items in the top ten; once dropped, t2 is 1st and t1 is 10th (the 12th raw place)
    a_list = ["s1", "t2", "x1", "s2", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "t1"]
    # b: twelve truth items, ten listed: a perfect list scores 1 (ideal capped at ten places)
    b_list = [f"u{n}" for n in range(12)]
    got = shape_sweep.ndcg_at_10({"a": a_list, "b": b_list}, s)
    assert got == pytest.approx([(d[0] + d[9]) / (d[0] + d[1]), 1.0])


def test_pooled_ratio_sums_every_sample_users_and_reads_each_sample_own_best_peer() -> None:
    """Pooled, a shape's ratio is its summed scores' (a sample weighs by its users), not the mean
    of its samples' ratios, and each sample is read against its own best peer."""

    def row(shape: str, seed: int, scores: dict[str, list[float]], best: str) -> shape_sweep.Row:
        arrays = {name: np.array(v) for name, v in scores.items()}
        people = np.array([f"{seed}/{n}" for n in range(len(scores["pipeline"]))])
        return shape_sweep.Row(
            shape, "d", seed, "", arrays, best, "", shape_sweep.Usage(0.0, 0.0, 0.0), people
        )

    rows = [
        # pipeline / popular 2 (0.5 / 0.25), / its peer 0.5 (0.5 / 1)
        row("m", 0, {"pipeline": [1, 0], "popular": [0.25, 0.25], "EASE {}": [1, 1],
                     "implicit ALS {}": [0, 0]}, "EASE {}"),
        # pipeline / popular 1, / its peer 2 (1/3 / 1/6)
        row("m", 1, {"pipeline": [0, 0, 1], "popular": [1, 0, 0], "EASE {}": [0, 0, 0],
                     "implicit ALS {}": [0, 0, 0.5]}, "implicit ALS {}"),
        row("s", 0, {"pipeline": [1], "popular": [0.5], "EASE {}": [4]}, "EASE {}"),
    ]  # fmt: skip
    got = shape_sweep.pooled(rows)
    assert list(got) == [("m", "d"), ("s", "d")]
    samples, users, to_popular, to_peer = got[("m", "d")]
    assert (samples, users) == (2, 5)
    # summed by hand: pipeline 2, popular 1.5, the two samples' own peers 2 + 0.5
    assert to_popular[0] == pytest.approx(2 / 1.5)  # the mean of the ratios would be 1.5
    assert to_peer[0] == pytest.approx(2 / 2.5)  # the mean of the ratios would be 1.25
    for ratio, low, high in (to_popular, to_peer):
        assert low <= ratio <= high
    assert got[("s", "d")][2][0] == pytest.approx(2.0)
    assert got[("s", "d")][3][0] == pytest.approx(0.25)


def test_pooled_resamples_a_user_in_several_samples_as_one_and_counts_them_once() -> None:
    """Two people in each of three samples of one data set (user ids as the data set names
    them): "a" scores 1 for the pipeline and 1 for popular in each, "b" 1 and 0.5. Resampling two
    people gives aa (ratio 1), ab or bb (2), aa and bb a quarter of draws each, so the 95 %
    interval is exactly [1, 2]; rows resampled as six independent users would almost never draw
    six a-rows (1/64), so its lower end would be above 1."""
    rows = [
        shape_sweep.Row(
            "long", "ml-100k", seed, "",
            {"pipeline": np.array([1.0, 1.0]), "popular": np.array([1.0, 0.5]),
             "EASE {}": np.array([1.0, 0.5])},
            "EASE {}", "", shape_sweep.Usage(0.0, 0.0, 0.0),
            shape_sweep.people_of("ml-100k", seed, ["a", "b"]),
        )
        for seed in (60, 61, 62)
    ]  # fmt: skip
    samples, users, to_popular, to_peer = shape_sweep.pooled(rows)[("long", "ml-100k")]
    assert (samples, users) == (3, 2)
    for ratio, low, high in (to_popular, to_peer):
        assert ratio == pytest.approx(6 / 4.5)
        assert (low, high) == pytest.approx((1.0, 2.0))


def test_simulated_users_of_two_seeds_are_different_people() -> None:
    """Each seed simulates a new world: the same id in two seeds' samples is two people, while a
    shared data set's id is one person in every sample."""
    sim = [shape_sweep.people_of("simulated", seed, ["u1", "u2"]) for seed in (66, 67)]
    assert len(set(np.concatenate(sim))) == 4
    shared = [shape_sweep.people_of("ml-100k", seed, ["u1", "u2"]) for seed in (66, 67)]
    assert len(set(np.concatenate(shared))) == 2


def test_reviews_keep_each_user_first_event_on_an_item_and_users_with_enough_items() -> None:
    """Worked by hand: a's repeat of x (ts 4) is dropped, so a has x, y, z (three items) and
    stays at least=3; b has five rows but two items, so b goes whatever b's row order."""
    events = frame([
        ("b", "x", 9), ("a", "x", 1), ("a", "y", 2), ("b", "w", 3), ("a", "x", 4), ("a", "z", 5),
        ("b", "x", 6), ("b", "w", 7), ("b", "x", 8),
    ])  # fmt: skip
    got = shape_sweep.reviews(events, least=3)
    assert list(zip(got["user_id"], got["item_id"], got["ts"], strict=True)) == [
        ("a", "x", 1), ("a", "y", 2), ("a", "z", 5),
    ]  # fmt: skip
    assert shape_sweep.reviews(events, least=2)["user_id"].tolist() == ["a", "a", "b", "a", "b"]


def test_cli_reads_the_usage_of_its_own_child() -> None:
    """The CPU ``cli`` reports for one ``recsmith`` process is what the kernel's running total
    over this process's reaped children grew by across the call (an independent reading), its
    peak memory at most the largest child's so far; a failing command raises with its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out, used = shape_sweep.cli("version")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    grew = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert out.strip()
    # user and system time each count whole microseconds: their float sums may differ by two
    assert used.cpu == pytest.approx(grew, abs=2.1e-6)
    assert used.cpu > 0.05  # importing recsmith alone takes more than this
    assert 20 < used.peak_mib <= after.ru_maxrss / 1024
    assert used.wall >= used.cpu / os.cpu_count()  # type: ignore[operator]
    with pytest.raises(RuntimeError, match="no-such-command"):
        shape_sweep.cli("no-such-command")


def test_stops_names_every_budget_stop_of_a_calibration_report_with_its_path() -> None:
    """A report shaped as calibration's (``grid`` keyed by source.param, each entry possibly
    ``stopped``, the grid itself ``stopped``; other parts too): every stop, path first, in the
    report's order; a report without one yields nothing."""
    report = {
        "chosen": "ease",
        "grid": {
            "ease.regularization": {"param": "regularization", "kept": "as configured"},
            "ease.rising": {"param": "rising", "kept": 0.5, "stopped": "before 1.0: half"},
            "stopped": "half the 600 s CPU budget reached",
        },
        "fused_weights": {"kept": {}, "stopped": "before ials 0.5: half"},
        "ranker": "not trained (not_better)",
    }
    assert list(shape_sweep.stops(report)) == [
        "grid.ease.rising: before 1.0: half",
        "grid: half the 600 s CPU budget reached",
        "fused_weights: before ials 0.5: half",
    ]
    assert list(shape_sweep.stops({"grid": {"ease.rising": {"kept": 1.0}}})) == []
