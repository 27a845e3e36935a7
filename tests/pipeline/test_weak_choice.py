"""Where no protocol tells the single sources apart, the popularity calibration added itself does
not ship on its best mean: the file's own sources compete (BENCHMARKS §95). Each case's scores
are made by hand, and whether a protocol decides is worked out by hand from the hits; where a
protocol decides, the rule of sources ahead of popularity (``robust_choice.best_single``) chooses
instead, checked through ``calibrate`` on events whose every score is worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_calibration import WEIGHTS, config, frame, purchases

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import best_single_source, calibrate
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Tried, deciding, worst_share

FILE = frozenset({"knn"})  # the file's sources: calibration added "popularity"
SOURCES = [
    {"name": "knn", "model": "itemknn", "use": "recent", "quota": 20, "params": {"neighbors": 50}},
]
TRENDING = [
    {"name": "recent", "model": "trending", "quota": 20, "params": {"half_life_days": 1}},
    {"name": "steady", "model": "trending", "quota": 20, "params": {"half_life_days": 45}},
]


def scores(hits: dict[int, float], users: int = 200) -> np.ndarray:
    out = np.zeros(users)
    out[list(hits)] = list(hits.values())
    return out


def singles(popularity: np.ndarray, knn: np.ndarray) -> list[Tried]:
    cfg = config(SOURCES)
    return [Tried("popularity", cfg, (popularity,)), Tried("knn", cfg, (knn,))]


def test_a_lucky_popularity_lead_on_two_hits_of_200_users_does_not_ship() -> None:
    """Popularity hits users 3 and 80 at rank 1 (mean 0.01), item-kNN user 7 at rank 2 (0.63 /
    200): a bootstrap of 200 users draws neither of popularity's two hits in (198/200)^200 ≈
    13.4 % of resamples, well above the 2.5 % a 95 % interval leaves below its lower end, so its
    score is not beyond 0; and a lead of one user's hit is well inside the noise, so nothing
    decides. Popularity's mean is the higher, and the file's item-kNN ships, saying why."""
    tried = singles(scores({3: 1.0, 80: 1.0}), scores({7: 0.6309}))
    refs, said = deciding(tried, seed=0)
    assert not any(s["decides"] for s in said)
    best, why = best_single_source(tried, refs, own=FILE, seed=0)
    assert best.name == "knn"
    assert why == (
        "best single source of the file's own (popularity's best mean left out: "
        "no protocol decides, its score not beyond 0)"
    )


def test_popularity_ships_where_it_is_told_apart_or_the_file_lists_it() -> None:
    """Popularity hits 60 of 200 users, item-kNN none: the protocol decides for popularity (and
    calibration then never asks ``best_single_source``; its score, 60 users, is beyond 0 too, so
    it would ship there as well). On the two-hit case, a file that lists popularity keeps it
    among its own sources (its best mean ships, as before); and where it is the only source,
    it ships."""
    strong = singles(scores(dict.fromkeys(range(60), 0.5)), scores({}))
    refs, said = deciding(strong, seed=0)
    assert said[0]["decides"]
    assert best_single_source(strong, refs, own=FILE, seed=0)[0].name == "popularity"
    lucky = singles(scores({3: 1.0, 80: 1.0}), scores({7: 0.6309}))
    refs, _ = deciding(lucky, seed=0)
    listed = frozenset({"knn", "popularity"})
    assert best_single_source(lucky, refs, own=listed, seed=0)[0].name == "popularity"
    alone = lucky[:1]
    assert best_single_source(alone, refs, own=FILE, seed=0)[0].name == "popularity"


def triples_then_unique() -> Interactions:
    """20 triples (x, y, z); of user u's triple j = u // 3, user u takes two items — (x, y),
    (y, z) or (x, z) by u % 3 — then an item no one else takes."""
    rows = []
    for u in range(60):
        x = 100 + 3 * (u // 3)
        first, second = [(x, x + 1), (x + 1, x + 2), (x, x + 2)][u % 3]
        rows += [(u, first), (u, second), (u, 500 + u)]
    return Interactions.from_events(frame(rows), WEIGHTS)


def test_through_calibrate_a_tie_at_zero_ships_the_files_source_not_popularity() -> None:
    """``triples_then_unique``, worked out by hand: each user's latest item (the unique one) is
    a hit for no source, so every order scores 0 on the 60 users and nothing decides. Before,
    popularity (first on ties) shipped; now the file's item-kNN does (it proposes each user the
    third item of their triple, where popularity, 60 items taken twice each, knows nothing), at
    weight 1."""
    full = triples_then_unique()
    cal = calibrate(config(SOURCES), full, ItemAttributes.from_items([], full.items))
    report = cal.report
    (protocol,) = report["protocols"]
    assert protocol["validation_users"] == 60 and not protocol["decides"]
    assert {t["name"]: t["protocols"][0]["ndcg@10"] for t in report["tried"]} == {
        "popularity": 0.0,
        "knn": 0.0,
        "fused": 0.0,
    }
    assert report["chosen"] == "knn"
    assert {s.name: s.weight for s in cal.config.retrieval.sources}["knn"] == 1.0
    assert report["evidence"].startswith("weak: ")


def test_a_popularity_lead_beyond_zero_still_ships_where_nothing_decides() -> None:
    """Popularity hits users 0–29 at 0.5 (mean 0.075), item-kNN users 10–37 (0.07): they share
    20 users, so their difference is 10 users against 8, inside the noise — nothing decides —
    but popularity's own score is far from 0 (30 users: a resample without any of them is
    impossible in practice), so it is a signal, not luck, and it ships as the best mean (the
    marketplace case: `market` / ml-100k / 1, BENCHMARKS §95)."""
    popularity, knn = dict.fromkeys(range(30), 0.5), dict.fromkeys(range(10, 38), 0.5)
    tried = singles(scores(popularity), scores(knn))
    refs, said = deciding(tried, seed=0)
    assert not any(s["decides"] for s in said)
    best, why = best_single_source(tried, refs, own=FILE, seed=0)
    assert best.name == "popularity" and why == "best single source"


def test_popularity_beyond_zero_on_one_protocol_of_two_is_a_signal_and_ships() -> None:
    """Two protocols, neither deciding. Protocol 1 is the beyond-zero case above (popularity
    users 0–29 at 0.5, item-kNN 10–37); protocol 2 the lucky one (popularity users 3 and 80 at
    1.0, item-kNN user 7 at 0.6309: not beyond 0). Worst shares by hand (no protocol decides:
    each counts against its best mean): popularity 1 on both; item-kNN 0.07 / 0.075 and
    0.0031545 / 0.01 = 0.315. Popularity is the best, and beyond 0 on protocol 1 (30 users):
    a signal somewhere, so it ships — it is left out only where it shows nothing on every
    protocol."""
    pop = (scores(dict.fromkeys(range(30), 0.5)), scores({3: 1.0, 80: 1.0}))
    knn = (scores(dict.fromkeys(range(10, 38), 0.5)), scores({7: 0.6309}))
    cfg = config(SOURCES)
    tried = [Tried("popularity", cfg, pop), Tried("knn", cfg, knn)]
    refs, said = deciding(tried, seed=0)
    assert [s["decides"] for s in said] == [False, False]
    assert worst_share(tried[1], refs) == pytest.approx(0.0031545 / 0.01)
    best, why = best_single_source(tried, refs, own=FILE, seed=0)
    assert best.name == "popularity" and why == "best single source"


def test_a_lead_of_one_users_hit_after_the_time_cuts_does_not_ship_over_popularity() -> None:
    """sparse / ml-100k / 9's shape (BENCHMARKS §104): 64 users after the time cuts, where
    popularity finds users 0–2 and transitions 0–3; 554 latest items, where popularity finds
    0–75 and transitions 20–75 and 200–209. Nothing decides; popularity's score is beyond zero
    (76 users of 554). Worst shares by hand: popularity 3/4 = 0.75, transitions 66/76 = 0.868 —
    the maximin's pick, which scored 0.24× popularity on test. Pooled over the 618 entries in
    units of each protocol's best mean, transitions' lead sums to 16 − 10 · 554/76 < 0: not
    ahead, popularity ships, and the reason says so, naming transitions as passed over."""
    cfg = config(SOURCES)
    popularity = (
        scores(dict.fromkeys(range(3), 1.0), 64),
        scores(dict.fromkeys(range(76), 1.0), 554),
    )
    ahead_on_cuts = dict.fromkeys([*range(20, 76), *range(200, 210)], 1.0)
    transitions = (scores(dict.fromkeys(range(4), 1.0), 64), scores(ahead_on_cuts, 554))
    tried = [Tried("popularity", cfg, popularity), Tried("transitions", cfg, transitions)]
    refs, said = deciding(tried, seed=0)
    assert [s["decides"] for s in said] == [False, False]
    best, why = best_single_source(tried, refs, own=frozenset({"transitions"}), seed=0)
    assert best.name == "popularity"
    assert why == (
        "popularity: no source ahead of it beyond noise on the validation users pooled, no "
        "protocol deciding (transitions, worst share 0.868 against 0.750, is not)"
    )


def test_a_listed_popularity_not_beyond_zero_is_no_bar_and_competes_on_its_mean() -> None:
    """A file that lists popularity: 250 users, popularity hits users 3 and 80, ease 1, 2, 5 and
    9 (all at rank 1). Nothing decides (2 users' lead of 6 that differ); popularity's score is
    not beyond 0 ((248/250)^250 ≈ 13 % of resamples draw neither hit). As the bar, nothing
    pooled could show ease ahead of 2 hits and popularity shipped on them (§95's failure, for a
    file that lists it); as one of the file's sources, ease's mean (4/250) beats popularity's
    (2/250) and ease ships. Where popularity's mean is the higher, it ships among them."""
    cfg = config(SOURCES)
    popularity = scores({3: 1.0, 80: 1.0}, 250)
    ease = scores(dict.fromkeys([1, 2, 5, 9], 1.0), 250)
    tried = [Tried("popularity", cfg, (popularity,)), Tried("ease", cfg, (ease,))]
    refs, said = deciding(tried, seed=0)
    assert not any(s["decides"] for s in said)
    listed = frozenset({"ease", "popularity"})
    assert best_single_source(tried, refs, own=listed, seed=0) == (tried[1], "best single source")
    fewer = [tried[0], Tried("ease", cfg, (scores({1: 1.0}, 250),))]
    refs, _ = deciding(fewer, seed=0)
    assert best_single_source(fewer, refs, own=listed, seed=0) == (fewer[0], "best single source")


def test_popularity_added_and_tied_with_the_files_source_is_said_to_be_left_out() -> None:
    """Popularity (added) hits users 3 and 80, item-kNN 7 and 9, all at rank 1: equal means, equal
    worst shares (1.0), so popularity, first on ties, would be the top; its score is not beyond
    0, so item-kNN ships and the reason says popularity was left out."""
    tried = singles(scores({3: 1.0, 80: 1.0}), scores({7: 1.0, 9: 1.0}))
    refs, _ = deciding(tried, seed=0)
    assert worst_share(tried[0], refs) == worst_share(tried[1], refs) == 1.0
    best, why = best_single_source(tried, refs, own=FILE, seed=0)
    assert best is tried[1] and "popularity's best mean left out" in why


def test_one_protocol_a_runner_up_ahead_of_popularity_ships_and_the_reason_says_so() -> None:
    """One protocol of 300 users: popularity hits 0–49, b 50–109 (the best mean, 60), t 0–54.
    b − popularity is +10 users over 110 that differ: within noise, nothing decides. t is
    popularity's hits and 5 more: a resample misses all 5 with probability (295/300)^300 ≈
    0.7 %, under 2.5 %, so t is ahead beyond noise and competes; b does not. Worst shares by hand
    against b's mean: b 1.0, t 55/60, popularity 50/60; t ships, and the reason names t as
    ahead and b, the higher worst share, as not."""
    cfg = config(SOURCES)
    pop = scores(dict.fromkeys(range(0, 50), 1.0), 300)
    b = scores(dict.fromkeys(range(50, 110), 1.0), 300)
    t = scores(dict.fromkeys(range(0, 55), 1.0), 300)
    tried = [Tried("popularity", cfg, (pop,)), Tried("b", cfg, (b,)), Tried("t", cfg, (t,))]
    refs, said = deciding(tried, seed=0)
    assert not any(s["decides"] for s in said)
    best, why = best_single_source(tried, refs, own=frozenset({"b", "t"}), seed=0)
    assert best is tried[2]
    assert why == (
        "best single source: t ahead of popularity beyond noise on the validation users pooled, "
        "no protocol deciding (b, worst share 1.000 against 0.917, is not)"
    )


def test_where_popularity_is_left_out_the_best_of_several_own_sources_ships() -> None:
    """The lucky two-hit popularity (mean 0.01, not beyond 0) beside three of the file's own
    sources, each hitting one user: knn at 0.3 (mean 0.0015), ease at 0.6309 (0.0031545), rnn
    at 0.5 (0.0025). Nothing decides (one user's hit against two); popularity's mean is the
    best and is left out; of the file's own, ease has the best mean (and worst share) — neither
    the first listed nor the last."""
    cfg = config(SOURCES)
    tried = [
        Tried("popularity", cfg, (scores({3: 1.0, 80: 1.0}),)),
        Tried("knn", cfg, (scores({7: 0.3}),)),
        Tried("ease", cfg, (scores({9: 0.6309}),)),
        Tried("rnn", cfg, (scores({11: 0.5}),)),
    ]
    refs, said = deciding(tried, seed=0)
    assert not said[0]["decides"]
    best, why = best_single_source(tried, refs, own=frozenset({"knn", "ease", "rnn"}), seed=0)
    assert best.name == "ease" and "popularity's best mean left out" in why


DAY = 86_400_000_000
TIERS = {"popularity": range(0, 10), "steady": range(10, 20), "recent": range(20, 30)}
HIT = float(np.mean(1 / np.log2(np.arange(2, 12))))  # a hit at places 1..10 of a tier, evenly


def three_tiers() -> pd.DataFrame:
    """Three tiers of ten items, each the top ten of one global order and of no other: one-item
    users take each of items 0–9 100 times on day 0, 10–19 60 times on day 60, 20–29 30 times
    on day 89. All-time popularity (distinct users) ranks 0–9 first; a trending order with a
    45-day half-life (``steady``) 10–19 (60 · 2^(−29.5/45) ≈ 38 against 30 and 25); one with a
    1-day half-life (``recent``) 20–29; ties by index, so each item sits at its place in its
    tier. 630 users take a filler, then a first-tier item (33 each, day 0) or a second-tier
    one (30 each, day 60): they only add to their tier in a time cut's past (steady's 10–19 ≈
    57 against 34 and 30 there). 200 users take a filler on day 89.5 and come back on day 95,
    all at one moment (6 % of the events), so the three time cuts are that moment: 60 of them
    to the third tier, 20 to the first, 30 to the second (evenly over each tier's items) and
    90 to items no one else takes."""
    users: list[list[tuple[int, int]]] = []  # each user's (item, ts) in time order
    for first, times, day in ((0, 100, 0), (10, 60, 60), (20, 30, 89)):
        users += [[(first + n % 10, day * DAY)] for n in range(10 * times)]
    for n in range(630):
        day, item = (0, n % 10) if n < 330 else (60, 10 + n % 10)
        users.append([(1000 + n, day * DAY), (item, day * DAY + 1)])
    back = [*TIERS["recent"]] * 6 + [*TIERS["popularity"]] * 2 + [*TIERS["steady"]] * 3
    for n in range(200):
        users.append([(2000 + n, int(89.5 * DAY)), (back[n] if n < 110 else 5000 + n, 95 * DAY)])
    rows = [(u, item, ts) for u, events in enumerate(users) for item, ts in events]
    return purchases(*zip(*rows, strict=True))


def test_where_a_protocol_decides_the_base_is_ahead_of_popularity_not_the_weak_reading() -> None:
    """``three_tiers`` through ``calibrate``: each source alone hits exactly the users whose item
    is in its tier (NDCG 1/log2(place + 1), ``HIT`` on average). Worked out by hand: the time
    cut (200 users) holds recent 60 hits, steady 30, popularity 20 — recent − popularity beyond
    noise: it decides; the latest item (830 users: the 200 again, same places, and the 630)
    holds popularity 350, steady 330 (within noise: it does not decide), recent 60 (below
    popularity beyond noise). Worst shares: popularity 20/60, steady 30/60 (no share on the
    latest item: not below popularity beyond noise), recent 60/350. Steady has the highest
    but is ahead of popularity beyond noise nowhere and below it on the latest item; recent
    lifts the time cut beyond noise but falls below popularity beyond noise on the latest item:
    popularity is the base (``robust_choice.best_single``), and the fused order (recent's
    collapse again, 60/350) does not replace it. Reading the decided case as weak (the file's
    best mean among its own sources) or as the plain highest worst share ships steady."""
    full = Interactions.from_events(three_tiers(), WEIGHTS)
    cfg = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": TRENDING, "recent_items": 1},
            "ranking": {"enabled": False},
            "calibration": {"enabled": True, "latest_folds": 1, "share": 0.01},
        }
    )
    report = calibrate(cfg, full, ItemAttributes.from_items([], full.items)).report
    cut, latest = report["protocols"]
    assert (cut["validation_users"], latest["validation_users"]) == (200, 830)
    assert (cut["decides"], latest["decides"]) == (True, False)
    hits = {"popularity": (20, 350), "steady": (30, 330), "recent": (60, 60)}
    for t in report["tried"][:3]:
        means = [h * HIT / n for h, n in zip(hits[t["name"]], (200, 830), strict=True)]
        assert [p["ndcg@10"] for p in t["protocols"]] == pytest.approx(means, abs=1e-5)
    shares = {t["name"]: t["worst_share"] for t in report["tried"][:3]}
    assert shares == pytest.approx(
        {"popularity": 1 / 3, "steady": 0.5, "recent": 60 / 350}, abs=1e-4
    )
    assert report["chosen"] == "popularity"
    assert report["reason"].startswith(
        "best single source ahead of popularity (steady, worst share 0.500 against 0.333, is not)"
    )
