"""Each user's latest item measured for what it is (the next step of a sitting, or a later
visit), and a time cut that does not decide barring what falls below popularity where the
latest item continues sittings (``validation.sitting_share``, ``calibration.sitting_bars``,
``robust_choice.vetoed``; BENCHMARKS §143, §150). Oracles: gaps and hits counted by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_calibration import WEIGHTS, config, noise_after_the_cut_case

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import calibrate, calibration_summary
from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Tried, best_single, deciding, prefer, vetoed
from recsmith.pipeline.validation import latest_item_split, sitting_share

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


def test_latest_items_in_one_sitting_let_the_noisy_cut_bar_the_latest_items_winner() -> None:
    """``test_calibration``'s noise case, each chain step 3.6 s after the one before: 880 of
    the 1,000 latest items follow the user's previous event within the sitting (all but the
    120 users whose last item comes long after their first three), 0.88 >= 0.7. The cut (111
    users, not deciding) now bars the recent-item source, whose 0.014 there is below
    popularity's 0.027: popularity ships, and the report and the summary say why."""
    events = noise_after_the_cut_case(seed=0, step_us=3_600_000)
    cfg = config([{"name": "knn", "model": "itemknn", "use": "recent", "quota": 50}])
    full = Interactions.from_events(events, WEIGHTS)
    report = calibrate(cfg, full, ItemAttributes.from_items([], full.items)).report
    assert report["sittings"]["latest_item_within_gap"] == 0.88
    assert report["sittings"]["measures"].startswith("the next step of a sitting")
    assert report["sittings"]["time_cut_bars"]
    cut, latest = report["protocols"]
    assert not cut["decides"] and latest["decides"] and "bars_below_popularity" in cut
    assert report["vetoed"] == ["knn"]
    assert report["chosen"] == "popularity", report["reason"]
    assert report["reason"].startswith("best single source ahead of popularity (knn, ")
    assert ": vetoed, below popularity on a time cut" in report["reason"]
    assert "barring what falls below popularity" in calibration_summary(report)
