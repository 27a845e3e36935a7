"""``calibration.decayed_source`` (``decayed_source.py``, BENCHMARKS §171): the kept fused order
plus a time-decayed copy of its EASE source is tried last and replaces the choice so far only
beyond noise. Hand-built per-user validation scores stand in for that order's, so whether it
should ship is known here; one real calibration checks the hook and that what ships is reported."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from test_calibration import (
    HITS,
    WEIGHTS,
    complement_case,
    config,
    popularity_case,
    served_on_validation,
)

from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import FILLER_WEIGHT as FILLER
from recsmith.pipeline.calibration import calibrate
from recsmith.pipeline.config import (
    CalibrationConfig,
    PipelineConfig,
    SourceConfig,
    default_pipeline_config,
)
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.decayed_source import NAME, TRIED, decayed_copy, tried_decayed, with_decayed
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Refs, Tried

CONFIG = default_pipeline_config()
USERS = 400
REFS = Refs((0.5, 0.5))  # both protocols' best single source at 0.5


def hits(n: int, gain: int = 0) -> np.ndarray:
    """``USERS`` per-user scores: the first ``n`` users hit, then ``gain`` more."""
    scores = np.zeros(USERS)
    scores[: n + gain] = 1.0
    return scores


def test_the_copy_is_plain_ease_at_the_kept_lambda_decayed_and_appended_last() -> None:
    ease = SourceConfig(
        name="ease",
        model="ease",
        quota=150,
        weight=0.5,
        params={
            "regularization": 100.0,
            "rising": 0.5,
            "lowpass": 0.3,
            "autoencoder": 1.0,
            "recency": 3.0,
            "recency_half_places": 2.0,
        },
    )
    copy = decayed_copy(ease, 0.25)
    assert (copy.name, copy.model, copy.quota, copy.weight) == (NAME, "ease", 150, 1.0)
    assert copy.params == {"regularization": 100.0, "decay": 0.25}
    sources = [*CONFIG.retrieval.sources]
    sources[0] = ease
    fused = CONFIG.model_copy(
        update={"retrieval": CONFIG.retrieval.model_copy(update={"sources": sources})}
    )
    added = with_decayed(fused, 0.25, FILLER)
    assert added is not None
    assert added.retrieval.sources == [*sources, copy]
    assert with_decayed(added, 0.25, FILLER) is None  # one copy at most
    no_ease = [s for s in sources if s.model != "ease"]
    bare = fused.model_copy(
        update={"retrieval": fused.retrieval.model_copy(update={"sources": no_ease})}
    )
    assert with_decayed(bare, 0.25, FILLER) is None
    # an EASE the fused order left at the filler weight has no say to sit beside (review rv28c)
    sources[0] = ease.model_copy(update={"weight": FILLER})
    dropped = fused.model_copy(
        update={"retrieval": fused.retrieval.model_copy(update={"sources": sources})}
    )
    assert with_decayed(dropped, 0.25, FILLER) is None
    assert with_decayed(dropped, 0.25, FILLER / 2) is not None


def scorer(
    scores: tuple[np.ndarray, np.ndarray], asked: list[PipelineConfig]
) -> Callable[[str, PipelineConfig], Tried]:
    """Every configuration scores ``scores``; each one asked is recorded in ``asked``."""

    def score(name: str, config: PipelineConfig) -> Tried:
        assert name == TRIED
        asked.append(config)
        return Tried(name, config, scores)

    return score


def test_it_replaces_the_choice_only_beyond_noise() -> None:
    """The choice so far: 160 / 180 hits of 400. +40 users on both protocols ships the decayed
    order (beyond noise); +3 on both does not (within noise, though higher)."""
    fused = Tried("fused", CONFIG, (hits(150), hits(170)))
    choice = Tried("ease", CONFIG, (hits(160), hits(180)))
    budget = CpuBudget(600.0)
    asked: list[PipelineConfig] = []
    shipped, _, report, tried = tried_decayed(
        fused,
        (choice, "base"),
        scorer((hits(160, 40), hits(180, 40)), asked),
        (REFS, 0, budget),
        0.25,
        FILLER,
    )
    assert shipped is tried[0] and shipped.name == TRIED and report["ships"] is True
    assert asked == [
        with_decayed(CONFIG, 0.25, FILLER)
    ]  # built from the fused order, not the choice
    assert report["ndcg@10"] == [0.5, 0.55]
    kept, why, report, tried = tried_decayed(
        fused,
        (choice, "base"),
        scorer((hits(160, 3), hits(180, 3)), []),
        (REFS, 0, budget),
        0.25,
        FILLER,
    )
    assert (kept, report["ships"]) == (choice, False)
    assert why.startswith("base; fused+ease_decayed not better by more than noise")
    assert [t.name for t in tried] == [TRIED]  # listed in the manifest all the same


def test_it_is_not_tried_without_an_ease_source_or_once_the_budget_is_spent() -> None:
    choice = Tried("ease", CONFIG, (hits(160), hits(180)))
    asked: list[PipelineConfig] = []
    score = scorer((hits(160, 40), hits(180, 40)), asked)
    spent = CpuBudget(600.0, started=-1e9)  # as if a billion CPU seconds had passed
    kept, _, report, tried = tried_decayed(
        choice, (choice, "base"), score, (REFS, 0, spent), 0.25, FILLER
    )
    assert (kept, tried, asked) == (choice, [], [])
    assert report["skipped"] == "the 600 s CPU budget spent"
    sources = [s for s in CONFIG.retrieval.sources if s.model != "ease"]
    bare = CONFIG.model_copy(
        update={"retrieval": CONFIG.retrieval.model_copy(update={"sources": sources})}
    )
    fused = Tried("fused", bare, choice.per_user)
    kept, _, report, tried = tried_decayed(
        fused, (choice, "base"), score, (REFS, 0, CpuBudget(600.0)), 0.25, FILLER
    )
    assert (kept, tried, asked) == (choice, [], [])
    assert report["skipped"] == "no EASE source with a say in the fused order"


def test_off_by_default_and_a_calibration_reports_and_ships_the_try() -> None:
    assert CalibrationConfig().decayed_source == 0
    assert CONFIG.calibration.decayed_source == 0
    cfg = config(
        [
            {"name": "ease", "model": "ease", "quota": 50},
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50},
        ]
    )
    cc = cfg.calibration.model_copy(
        update={"ease_lowpass": [], "ease_autoencoder": [], "budget_seconds": 300.0}
    )
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    attrs = ItemAttributes.from_items([], full.items)
    off = calibrate(cfg.model_copy(update={"calibration": cc}), full, attrs)
    assert "decayed_source" not in off.report
    assert TRIED not in [t["name"] for t in off.report["tried"]]
    on_cc = cc.model_copy(update={"decayed_source": 0.25})
    on = calibrate(cfg.model_copy(update={"calibration": on_cc}), full, attrs)
    entry = next(t for t in on.report["tried"] if t["name"] == TRIED)
    report = on.report["decayed_source"]
    assert report["ndcg@10"] == [p["ndcg@10"] for p in entry["protocols"]]
    assert report["share"] == 0.25
    names = [s.name for s in on.config.retrieval.sources]
    assert report["ships"] is (on.report["chosen"] == TRIED) is (NAME in names)
    if not report["ships"]:  # the rest of the choice is main's
        assert on.report["chosen"] == off.report["chosen"]
        assert on.config == off.config.model_copy(update={"calibration": on_cc})


def test_the_copy_joins_the_fused_order_as_kept_not_as_the_file_wrote_it() -> None:
    """``complement_case`` with EASE beside the recent-item source and popularity, EASE's
    weight written 0.3: the weight steps (``fused_weights``) keep it at 0.6, so the fused order
    as kept differs from the file's. The decayed copy is tried beside the kept order (review
    rv28c): its manifest row carries the kept weights, and its validation score is what the
    runtime, trained on the rebuilt validation split, serves for the kept order plus the copy,
    not for the file's order plus the copy."""
    cfg = config(
        [
            {"name": "knn", "model": "itemknn", "use": "recent", "quota": 50, "weight": 0.5},
            {"name": "pop", "model": "popular", "quota": HITS, "weight": 0.99},
            {"name": "ease", "model": "ease", "quota": 50, "weight": 0.3},
        ]
    )
    cc = cfg.calibration.model_copy(
        update={
            "fused_weights": True,
            "decayed_source": 0.25,
            "ease_lowpass": [],
            "ease_autoencoder": [],
            "budget_seconds": 300.0,
        }
    )
    cfg = cfg.model_copy(update={"calibration": cc})
    events = complement_case()
    full = Interactions.from_events(events, WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    report = chosen.report
    assert report["chosen"] == "fused"  # so the shipped configuration is the kept order
    assert report["fused_weights"]["kept"] == {"ease": 0.6}  # not the file's 0.3
    entry = next(t for t in report["tried"] if t["name"] == TRIED)
    assert entry["weights"] == {"knn": 0.5, "pop": 0.99, "ease": 0.6, NAME: 1.0}
    kept = with_decayed(chosen.config, 0.25, FILLER)
    sources = [
        s.model_copy(update={"weight": 0.3}) if s.name == "ease" else s
        for s in chosen.config.retrieval.sources
    ]
    retrieval = chosen.config.retrieval.model_copy(update={"sources": sources})
    as_written = with_decayed(
        chosen.config.model_copy(update={"retrieval": retrieval}), 0.25, FILLER
    )
    assert kept is not None and as_written is not None
    on_kept, _ = served_on_validation(kept, events)
    on_file, _ = served_on_validation(as_written, events)
    assert entry["protocols"][0]["ndcg@10"] == pytest.approx(on_kept, abs=1e-4)
    assert abs(on_kept - on_file) > 1e-3  # the two orders tell apart on validation
