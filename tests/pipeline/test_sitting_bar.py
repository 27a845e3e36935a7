"""Each user's latest item measured for what it is (the next step of a sitting, or a later
visit), and a time cut that does not decide barring what falls below popularity where the
latest item continues sittings (``validation.sitting_share``, ``calibration.Sittings``,
``robust_choice.vetoed``; BENCHMARKS §143, §150). Oracles: gaps and hits counted by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import sparse
from test_calibration import WEIGHTS, config, noise_after_the_cut_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import Sittings, calibrate, calibration_summary
from recsmith.pipeline.config import CalibrationConfig, PipelineConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Refs, Tried, best_single, deciding, prefer, vetoed
from recsmith.pipeline.validation import LATEST_ITEM, Validation, latest_item_split, sitting_share

MIN = 60_000_000  # a minute in microseconds


def timed(rows: list[tuple[str, str, int]]) -> Interactions:
    """Purchases (user, item, minutes after a fixed start)."""
    users, items, minutes = zip(*rows, strict=True)
    events = pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "ts": 1_700_000_000_000_000 + np.asarray(minutes, dtype=np.int64) * MIN,
            "event_id": [f"e{n}" for n in range(len(rows))],
            "session_id": None,
            "event_type": "purchase",
            "value": np.nan,
            "context": None,
        }
    )
    return Interactions.from_events(events, WEIGHTS)


def test_the_share_of_latest_items_within_30_minutes_of_the_users_previous_event() -> None:
    """Five users, their latest items' gaps to their own previous event counted by hand:
    a 10 min (within), b 2 days (not), c 31 min (its previous event is the one at 29 min, not
    its first: not), d exactly 30 min (within), e 175 min (d's event 20 min before e's latest
    is not e's previous event; not). 2 of 5 = 0.4."""
    full = timed(
        [
            ("a", "i1", 0), ("a", "i2", 10), ("a", "i3", 20),
            ("b", "i1", 0), ("b", "i4", 2 * 24 * 60),
            ("c", "i5", 0), ("c", "i6", 29), ("c", "i7", 60),
            ("d", "i2", 160), ("d", "i8", 190),
            ("e", "i4", 5), ("e", "i9", 180),
        ]
    )  # fmt: skip
    val = latest_item_split(full, max_users=100, seed=0)
    assert sorted(full.users.to_external(val.users)) == ["a", "b", "c", "d", "e"]
    assert sitting_share(full, val) == 0.4


def hits(n: int, ones: range | list[int]) -> np.ndarray:
    """Per-user NDCG of ``n`` users: 1 for the users in ``ones`` (a hit at rank 1), else 0."""
    out = np.zeros(n)
    out[list(ones)] = 1.0
    return out


def options() -> list[Tried]:
    """Popularity, transitions and trending on a 120-user time cut that does not decide
    (popularity 10 hits, transitions 8 of those, trending those 10 and one more) and 750 latest
    items where transitions leads beyond noise (70 hits against popularity's 30, a superset;
    trending 25 of popularity's 30)."""
    cfg = default_pipeline_config()
    return [
        Tried("popularity", cfg, (hits(120, range(10)), hits(750, range(30)))),
        Tried("transitions", cfg, (hits(120, range(8)), hits(750, range(70)))),
        Tried("trending", cfg, (hits(120, range(11)), hits(750, range(25)))),
    ]


def test_a_cut_that_does_not_decide_bars_only_where_it_is_told_to() -> None:
    """Without the bar transitions ships (ahead beyond noise on the latest items; 2 hits of 120
    behind on the cut is within noise, so no share there). With the cut barring (the latest
    items continue sittings), transitions' 8/120 is below popularity's 10/120 there: vetoed;
    popularity (its mean is the bar) is not, and ships."""
    singles = options()
    popularity, transitions, _ = singles
    refs, evidence = deciding(singles, seed=0)
    assert [e["decides"] for e in evidence] == [False, True]
    assert refs.bars == (None, None) and not vetoed(transitions, refs)
    assert best_single(singles, refs, seed=0) is transitions
    refs, _ = deciding(singles, seed=0, barring=[True, False])
    assert refs.bars == (10 / 120, None)
    assert vetoed(transitions, refs) and not vetoed(popularity, refs)
    assert best_single(singles, refs, seed=0) is popularity
    kept, why = prefer(popularity, "base", transitions, refs, seed=0)
    assert kept is popularity and "transitions vetoed" in why and "0.0667 < " in why


def test_a_deciding_cut_bars_nothing() -> None:
    """A cut that decides (trending 40 hits of 120 against popularity's 10) counts by its shares
    as before: asked to bar, it sets no bar."""
    singles = options()
    cfg = default_pipeline_config()
    singles[2] = Tried("trending", cfg, (hits(120, range(40)), hits(750, range(25))))
    refs, evidence = deciding(singles, seed=0, barring=[True, False])
    assert [e["decides"] for e in evidence] == [True, True]
    assert refs.bars == (None, None)


def test_where_each_step_is_a_later_visit_the_noisy_cut_bars_nothing() -> None:
    """``test_calibration``'s noise case with each chain step an hour after the one before:
    no latest item follows the user's previous event within 30 minutes (share 0.0), so the
    latest item asks about a later visit as the cut does, the cut's noise bars nothing, and the
    recent-item source (the latest item's clear winner) ships with the bar on; with it off (the
    default) the ``train`` line says nothing of sittings."""
    events = noise_after_the_cut_case(seed=0, step_us=3_600_000_000)
    knn = [{"name": "knn", "model": "itemknn", "use": "recent", "quota": 50}]
    full = Interactions.from_events(events, WEIGHTS)
    attrs = ItemAttributes.from_items([], full.items)
    report = calibrate(config(knn, sitting_bar=True), full, attrs).report
    assert report["sittings"]["latest_item_within_gap"] == 0.0
    assert report["sittings"]["measures"] == "a later visit"
    assert report["sittings"]["sitting_bar"] and not report["sittings"]["time_cut_bars"]
    assert "vetoed" not in report and report["chosen"] == "knn", report["reason"]
    report = calibrate(config(knn), full, attrs).report
    assert report["sittings"]["sitting_bar"] is False and report["chosen"] == "knn"
    assert "sitting" not in calibration_summary(report)


def split(protocol: str) -> list[Validation]:
    """A protocol's group of one split, for ``Sittings.bars`` (only the name is read)."""
    empty = sparse.csr_array((0, 1), dtype=np.float32)
    return [Validation(timed([("a", "i1", 0)]), np.zeros(0, np.int32), empty, protocol)]


CUT, LATEST = split("temporal cut at the latest 0.1"), split(LATEST_ITEM)


def test_only_time_cuts_bar_and_only_where_the_latest_item_continues_sittings() -> None:
    """The latest item never bars, whatever its share (it is the protocol the share says
    measures the order inside a sitting); a cut bars only beside a latest-item protocol whose
    share is at least 0.7 (exactly 0.7 included), and only with the switch on."""
    assert Sittings(0.9, "", on=True).bars([CUT, LATEST]) == [True, False]
    assert Sittings(1.0, "", on=True).bars([LATEST]) == [False]
    assert Sittings(0.7, "", on=True).bars([CUT, LATEST]) == [True, False]
    assert Sittings(0.6999, "", on=True).bars([CUT, LATEST]) == [False, False]
    assert Sittings(0.9, "", on=False).bars([CUT, LATEST]) == [False, False]
    assert Sittings(0.9, "", on=True).bars([CUT]) == [False]  # no latest item among them
    assert Sittings(None, "no times to tell", on=True).bars([CUT, LATEST]) == [False, False]


def test_a_share_of_exactly_seven_in_ten_bars() -> None:
    """Ten users: seven latest items 5-29 min after the user's previous event, three a day
    after. 7/10 = 0.7, the threshold itself: the cut bars."""
    rows = [(f"u{n}", "i1", 0) for n in range(10)]
    rows += [(f"u{n}", "i2", 5 + 4 * n if n < 7 else 24 * 60) for n in range(10)]
    full = timed(rows)
    sittings = Sittings.measure(full, latest_item_split(full, 100), on=True)
    assert sittings.share == 0.7
    assert sittings.bars([CUT, LATEST]) == [True, False]


def test_users_whose_earlier_events_all_tie_the_held_out_one_are_not_counted() -> None:
    """a: latest 10 min after its previous event (within); b: 2 days after (not); c: both its
    items at one minute, so nothing is strictly before the held-out one: c is out of the
    denominator, not a far gap. 1 of 2 = 0.5 (counting c: 1/3)."""
    full = timed(
        [
            ("a", "i1", 0), ("a", "i2", 10),
            ("b", "i1", 0), ("b", "i3", 2 * 24 * 60),
            ("c", "i4", 50), ("c", "i5", 50),
        ]
    )  # fmt: skip
    val = latest_item_split(full, max_users=100, seed=0)
    assert sorted(full.users.to_external(val.users)) == ["a", "b", "c"]
    assert sitting_share(full, val) == 0.5


def test_the_report_names_why_there_is_no_share() -> None:
    """No latest-item protocol among the protocols, no earlier event to measure from, no times:
    each said as itself, and ``time_cut_bars`` is always there."""
    refs = Refs((0.1, 0.1))
    row = Sittings(None, "no times to tell", on=True).row([CUT], refs)
    assert row["measures"] == "no latest-item protocol" and row["time_cut_bars"] is False
    why = "no scored user has an earlier event to measure from"
    tied = timed([("a", "i1", 5), ("a", "i2", 5), ("b", "i1", 7), ("b", "i3", 7)])
    sittings = Sittings.measure(tied, latest_item_split(tied, 100), on=True)
    assert sittings.share is None and sittings.why == why
    row = sittings.row([CUT, LATEST], refs)
    assert row["measures"] == why and row["latest_item_within_gap"] is None
    assert row["time_cut_bars"] is False and row["sitting_bar"] is True


def test_the_switch_is_a_validated_bool_off_by_default() -> None:
    """``calibration.sitting_bar``: false by default (its time-split gain was not confirmed out
    of sample, its leave-last-out loss was: BENCHMARKS §155), in both pipeline files, and not a
    string."""
    assert default_pipeline_config().calibration.sitting_bar is False
    assert CalibrationConfig().sitting_bar is False  # a file without the key
    for toml in ("examples/pipeline.toml", "src/recsmith/pipeline/default.toml"):
        text = (Path(__file__).parents[2] / toml).read_text()
        assert "\nsitting_bar = false " in text, toml
    with pytest.raises(ValidationError, match="sitting_bar"):
        PipelineConfig.model_validate({"calibration": {"sitting_bar": "no"}})
