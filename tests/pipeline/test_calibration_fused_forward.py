"""Calibration builds a fused order forward from the base single source: it adds the personal
source whose addition lifts the worst share most while ``prefer`` keeps it beyond noise, up to
``CAP`` sources (``forward_order``). Hand-built per-user validation scores stand in for the
protocols' fused orders, keyed by the sources a configuration gives a say, so what is added, in
what order it is tried, and why it stops, is known here."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError
from test_calibration import HITS, WEIGHTS, complement_case, config
from test_calibration_fused_weights import hits

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import (
    FILLER_WEIGHT,
    alone,
    calibrate,
    calibration_summary,
    fused_ships,
    personal,
)
from recsmith.pipeline.config import (
    CALIBRATION_NAMES,
    PipelineConfig,
    SourceConfig,
    default_pipeline_config,
)
from recsmith.pipeline.decayed_source import NAME
from recsmith.pipeline.fused_forward import FORWARD, forward_order
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Refs, Tried

CONFIG = default_pipeline_config()
#: The file's personal sources, fewest proposals first (the order ``forward_order`` tries them).
NAMES = [CONFIG.retrieval.sources[n].name for n in personal(CONFIG)]
#: Both protocols' best single source scores 0.4: a share is the mean over 0.4.
REFS = Refs((0.4, 0.4))

Key = frozenset[str]


def say(cfg: PipelineConfig) -> Key:
    """The sources ``cfg`` gives a say (a weight above the filler's)."""
    return frozenset(s.name for s in cfg.retrieval.sources if s.weight > FILLER_WEIGHT)


def scorer(scores: dict[Key, tuple[np.ndarray, np.ndarray]], asked: list[Key]) -> Callable:
    """Scores by the sources with a say (``scores``; any other: 150 / 150 hits of 400, below
    EASE alone's 160 / 160), each asked configuration recorded."""

    def score(name: str, cfg: PipelineConfig) -> Tried:
        asked.append(say(cfg))
        return Tried(name, cfg, scores.get(say(cfg), (hits(150), hits(150))))

    return score


def ease_alone() -> Tried:
    """EASE alone, the base single source: 160 / 160 hits of 400 (share 1.0)."""
    return Tried("ease", alone(CONFIG, "ease"), (hits(160), hits(160)))


def no_intervals(t: Tried) -> list[list[float]]:
    return [[0.0, 1.0] for _ in t.per_user]


def grow(scores: dict[Key, tuple[np.ndarray, np.ndarray]], asked: list[Key], cap: int = 3):
    return forward_order(ease_alone(), NAMES, scorer(scores, asked), (REFS, 0), no_intervals, cap)


def test_the_best_addition_beyond_noise_is_kept_and_the_next_step_starts_from_it() -> None:
    """+itemknn_recent: +40 / +30 users, none lost (beyond noise, the best worst share);
    +transitions: +45 / -5 (a lower worst share, protocol 2). itemknn_recent joins EASE; the
    second step tries each of the rest beside both, and +ials there (+10 -6 users on each,
    within noise)
    stops it: EASE + itemknn_recent serve, at weight 1 each, the rest at the filler weight."""
    ease, knn = "ease", "itemknn_recent"
    scores = {
        frozenset({ease, knn}): (hits(160, 40), hits(160, 30)),
        frozenset({ease, "transitions"}): (hits(160, 45), hits(160, 0, 5)),
        frozenset({ease, knn, "ials"}): (hits(200, 10, 6), hits(190, 10, 6)),
    }
    asked: list[Key] = []
    shipped, report = grow(scores, asked)
    assert asked == [
        frozenset({ease, "itemknn_recent"}),
        frozenset({ease, "transitions"}),
        frozenset({ease, "ials"}),
        frozenset({ease, knn, "transitions"}),
        frozenset({ease, knn, "ials"}),
    ]
    assert report["serving"] == [ease, knn]
    assert shipped.name == FORWARD and shipped.means == (0.5, 0.475)
    assert {s.name: s.weight for s in shipped.config.retrieval.sources if s.weight > 1e-3} == {
        ease: 1.0,
        knn: 1.0,
    }
    assert report["kept"][0].startswith("+itemknn_recent: beats ease by +0.1000")
    assert report["stopped"].startswith("+ials; forward not better by more than noise")
    assert [t["serving"] for t in report["tries"]][3] == [ease, knn, "transitions"]
    assert report["tries"][0]["ndcg@10"] == [0.5, 0.475]
    assert report["tries"][1]["worst_share"] == 0.9688


def test_nothing_beyond_noise_leaves_the_single_source_itself() -> None:
    """The best addition (+ials, +12 -8 users on each, the highest worst share) is within noise: the
    base single source is returned as it is, and the report says it serves alone."""
    scores = {frozenset({"ease", "ials"}): (hits(160, 12, 8), hits(160, 12, 8))}
    asked: list[Key] = []
    shipped, report = grow(scores, asked)
    assert len(asked) == 3
    assert shipped is not None and shipped.name == "ease" and report["serving"] == ["ease"]
    assert "kept" not in report and report["stopped"].startswith("+ials;")


def test_at_most_cap_sources_serve() -> None:
    """Every addition wins beyond noise, but at ``cap`` = 2 the second step is never tried;
    at 3 a third source joins (the ones tried beside two: ials and transitions)."""
    scores = {
        frozenset({"ease", "itemknn_recent"}): (hits(160, 40), hits(160, 40)),
        frozenset({"ease", "itemknn_recent", "ials"}): (hits(200, 40), hits(200, 40)),
    }
    asked: list[Key] = []
    _, report = grow(scores, asked, cap=2)
    assert report["serving"] == ["ease", "itemknn_recent"] and len(asked) == 3
    asked.clear()
    _, report = grow(scores, asked, cap=3)
    assert report["serving"] == ["ease", "itemknn_recent", "ials"] and len(asked) == 5


def test_the_summary_names_the_sources_the_forward_order_serves() -> None:
    """Chosen, the forward order names its sources, and so does the ranker trained over its
    candidates; neither ships the full fusion's own weights or drops (``fused_ships``), and
    the sources are not named where neither is chosen."""
    report = {
        "protocols": [{"protocol": "each user's latest item", "validation_users": 500}],
        "seconds": 2.0,
        "tried": [
            {"name": "ease", "worst_share": 0.8, "protocols": [{"ndcg@10": 0.4}]},
            {"name": FORWARD, "worst_share": 1.0, "protocols": [{"ndcg@10": 0.5}]},
        ],
        "chosen": FORWARD,
        "fused_forward": {"serving": ["ease", "itemknn_recent"]},
        "fused_weights": {"kept": {"ials": 0.5}},
    }
    assert calibration_summary(report).endswith("; ease 0.4000); serving ease + itemknn_recent")
    assert fused_ships(report) is False
    report["chosen"] = "ease"
    assert calibration_summary(report).endswith(f"; {FORWARD} 0.5000)")
    # the ranker trained over the forward order's candidates serves its sources too (rv28c)
    report["tried"].append({"name": "ranker", "worst_share": 1.1, "protocols": [{"ndcg@10": 0.6}]})
    report["chosen"] = "ranker"
    report["ranker"] = f"trained on each validation past over the {FORWARD} candidates"
    over = "; over the candidates of ease + itemknn_recent"
    assert calibration_summary(report).endswith(f", {FORWARD} 0.5000){over}")
    assert fused_ships(report) is False
    report["ranker"] = "trained on each validation past over the ease candidates"
    assert calibration_summary(report).endswith(f", {FORWARD} 0.5000)")


def test_it_is_off_by_default() -> None:
    assert CONFIG.calibration.fused_forward is False


@pytest.mark.parametrize("pop_weight", [1.0, 0.99])
def test_calibrate_builds_the_order_forward_and_the_full_fusion_must_beat_it(
    pop_weight: float,
) -> None:
    """``complement_case``: popularity is the base single source (the recent-item source is not
    ahead of it beyond noise where no protocol decides); the recent-item source added to it
    wins beyond noise, so both serve at weight 1. Where the file gives popularity weight 1 too,
    the full fusion is that very order and cannot beat it: the order built forward ships. At
    0.99 (no RRF ties: the chain's step first) the full fusion is another order, far above
    popularity alone but not above the forward order beyond noise: it must beat the forward
    order, not the base, so the forward order ships (a fusion judged against popularity would
    ship). Each validation past numbers its items as a model fitted on it alone would (§170), so
    the forward order's ties break as a runtime fitted on that past would break them."""
    events = complement_case()
    cfg = config(
        [
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50},
            {"name": "pop", "model": "popular", "quota": HITS, "weight": pop_weight},
        ]
    )
    on = cfg.calibration.model_copy(update={"fused_forward": True})
    full = Interactions.from_events(events, WEIGHTS)
    calibrated = calibrate(
        cfg.model_copy(update={"calibration": on}), full, ItemAttributes.from_items([], full.items)
    )
    report = calibrated.report
    tried = {t["name"]: t["protocols"][0]["ndcg@10"] for t in report["tried"]}
    assert list(tried) == ["pop", "knn", FORWARD, "fused"]
    assert report["fused_forward"]["serving"] == ["pop", "knn"]
    assert report["fused_forward"]["tries"][0]["ndcg@10"] == [tried[FORWARD]]
    assert report["chosen"] == FORWARD
    assert "; fused not better by more than noise" in report["reason"]
    if pop_weight != 1.0:
        assert tried["fused"] != tried[FORWARD] and tried["fused"] > tried["pop"] + 0.1
        return
    weights = {s.name: s.weight for s in calibrated.config.retrieval.sources}
    assert weights == {"knn": 1.0, "pop": 1.0}
    assert tried[FORWARD] > tried["pop"]
    assert tried["fused"] == tried[FORWARD]  # the same order: it beats nothing
    assert calibration_summary(report).endswith(
        "; serving pop + knn; EVIDENCE WEAK: " + (report["evidence"].removeprefix("weak: "))
    )


@pytest.mark.parametrize("name", [FORWARD, NAME, "fused", "ranker", "fused+ease"])
def test_a_source_may_not_take_a_name_calibration_gives_its_candidates(name: str) -> None:
    """A source named as one of calibration's own candidates would be read as it: one named
    ``forward`` that won alone failed training writing its summary line (review rv28c)."""
    assert name in CALIBRATION_NAMES or name.startswith("fused+")
    with pytest.raises(ValidationError, match="one calibration gives its candidates"):
        SourceConfig(name=name, model="ease")
    SourceConfig(name=f"my_{name}", model="ease")  # only the names themselves
