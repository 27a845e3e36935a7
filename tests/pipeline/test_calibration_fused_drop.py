"""Calibration tries the fused order without the one source whose absence lifts its worst share
most, and ships that order only if it beats the fused one beyond noise (``fused_without_one``).
Hand-built per-user validation scores stand in for the protocols' fused orders: each is keyed by
the source the order leaves at the filler weight, so what is dropped, and why, is known here."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsmith.pipeline.calibration import FILLER_WEIGHT, fused_without_one
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.robust_choice import Refs, Tried

CONFIG = default_pipeline_config()
USERS = 400
#: Both protocols' best single source scores 0.5: a share is the mean over 0.5.
REFS = Refs((0.5, 0.5))


def hits(n: int, gain: int = 0, loss: int = 0) -> np.ndarray:
    """``USERS`` per-user scores, the first ``n`` users hit (1) — then ``gain`` users who missed
    hit and ``loss`` users who hit miss (a paired difference of +gain / -loss users)."""
    scores = np.zeros(USERS)
    scores[:n] = 1.0
    scores[n : n + gain] = 1.0
    scores[n - loss : n] = 0.0
    return scores


def fused() -> Tried:
    """The fused order: 160 / 180 hits of 400 (0.40 / 0.45: worst share 0.8, protocol 1)."""
    return Tried("fused", CONFIG, (hits(160), hits(180)))


def scorer(
    drops: dict[str, tuple[np.ndarray, np.ndarray]], asked: list[str]
) -> Callable[[str, PipelineConfig], Tried]:
    """The scores of the order that leaves one source at the filler weight, by that source's
    name (``drops``; every other drop scores 120 / 140 hits: worse), each asked name recorded."""

    def score(name: str, config: PipelineConfig) -> Tried:
        left = [s.name for s in config.retrieval.sources if s.weight == FILLER_WEIGHT]
        assert len(left) == 1
        asked.append(left[0])
        return Tried(name, config, drops.get(left[0], (hits(120), hits(140))))

    return score


def test_the_drop_that_lifts_the_worst_share_most_ships_when_it_wins_beyond_noise() -> None:
    """Without ials: +12 / -8 users on both protocols (worst share 0.82, within noise) and first
    in the list; without transitions: level on protocol 1, +80 on protocol 2 (the highest sum of
    means, worst share still 0.8); without itemknn_recent: +40 / +20 users, none lost (worst share
    1.0, beyond noise). itemknn_recent is dropped — to the filler weight, every other source as
    it was."""
    drops = {
        "ials": (hits(160, 12, 8), hits(180, 12, 8)),
        "itemknn_recent": (hits(160, 40), hits(180, 20)),
        "transitions": (hits(160), hits(180, 80)),
    }
    asked: list[str] = []
    shipped, report = fused_without_one(fused(), scorer(drops, asked), REFS, seed=0)
    assert asked == [s.name for s in CONFIG.retrieval.sources]  # each source once, in order
    assert report["dropped"] == "itemknn_recent"
    assert shipped.means == (0.5, 0.5)
    weights = {s.name: s.weight for s in shipped.config.retrieval.sources}
    expected = {s.name: s.weight for s in CONFIG.retrieval.sources}
    expected["itemknn_recent"] = FILLER_WEIGHT
    assert weights == expected
    assert report["itemknn_recent"] == [0.5, 0.5]
    assert report["transitions"] == [0.4, 0.65]


def test_a_drop_ahead_within_noise_does_not_ship() -> None:
    """The best drop (itemknn_recent: +14 / -8 users on each protocol, worst share 0.83) leads
    the fused order by 6 users of 400 net: noise. The fused order ships as it was."""
    drops = {
        "ials": (hits(160, 12, 8), hits(180, 12, 8)),
        "itemknn_recent": (hits(160, 14, 8), hits(180, 14, 8)),
    }
    original = fused()
    shipped, report = fused_without_one(original, scorer(drops, []), REFS, seed=0)
    assert shipped is original
    assert report["dropped"] is None
    assert "not better by more than noise" in report["why"]
    assert report["itemknn_recent"] == [0.415, 0.465]


def test_no_drop_that_lifts_the_worst_share_ships_nothing() -> None:
    original = fused()
    shipped, report = fused_without_one(original, scorer({}, []), REFS, seed=0)
    assert shipped is original
    assert report["dropped"] is None
    assert "why" not in report


def test_a_fusion_of_two_weighted_sources_tries_no_drop() -> None:
    """Without one of two sources the rest is a single source, which calibration scores alone."""
    sources = [
        s.model_copy(update={"weight": 1.0 if n < 2 else FILLER_WEIGHT})
        for n, s in enumerate(CONFIG.retrieval.sources)
    ]
    two = CONFIG.model_copy(
        update={"retrieval": CONFIG.retrieval.model_copy(update={"sources": sources})}
    )
    original = Tried("fused", two, (hits(160), hits(180)))
    asked: list[str] = []
    shipped, report = fused_without_one(original, scorer({}, asked), REFS, seed=0)
    assert shipped is original and asked == []
    assert report == {"dropped": None, "why": "2 sources carry weight"}
