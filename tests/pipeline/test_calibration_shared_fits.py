"""Calibration shares EASE's fit pieces across its grid (``models/shared_fits.py``): what it tries,
scores and ships is the same as when every fit computes its own, with fewer solves."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from test_calibration import WEIGHTS, config, popularity_case

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models import ease
from recsmith.models.shared_fits import SharedFits
from recsmith.pipeline import calibration
from recsmith.pipeline.calibration import _grid, calibrate
from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Refs, Tried
from recsmith.simulate import simulate

SOURCES = [
    {"name": "ease", "model": "ease", "quota": 50},
    {"name": "itemknn", "model": "itemknn", "quota": 50},
]


def calibrated(monkeypatch: pytest.MonkeyPatch, share: bool) -> tuple[dict[str, Any], Any, int]:
    """(report without its seconds, the shipped configuration, EASE solves computed) on
    ``test_calibration``'s popularity case, EASE's whole grid on; ``share`` False: every fit
    computes its own pieces (the library as it was before sharing)."""
    if not share:
        monkeypatch.setattr(ease, "shared", lambda data, key, make: make())
    solves = 0
    solve = ease.EASE._solve

    def counted(self: ease.EASE, xk: Any) -> Any:
        nonlocal solves
        solves += 1
        return solve(self, xk)

    monkeypatch.setattr(ease.EASE, "_solve", counted)
    cfg = config(SOURCES)
    cc = cfg.calibration.model_copy(
        update={"ease_lowpass": [0.3, 1.0], "ease_autoencoder": [1.0], "budget_seconds": 600.0}
    )
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(
        cfg.model_copy(update={"calibration": cc}), full, ItemAttributes.from_items([], full.items)
    )
    monkeypatch.undo()
    return without_cpu(chosen.report), chosen.config, solves


#: The report's CPU and wall figures: what sharing changes, so left out of the comparison.
TIMINGS = frozenset({"seconds", "cpu_seconds", "cpu_seconds_before_grid"})


def without_cpu(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` without its timings, each grid entry's CPU seconds a try included."""
    out = {k: v for k, v in report.items() if k not in TIMINGS}
    out["grid"] = {
        k: {f: x for f, x in e.items() if f != "cpu_seconds"} if isinstance(e, dict) else e
        for k, e in report["grid"].items()
    }
    return out


def test_the_same_tries_scores_and_choice_with_fewer_solves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own, own_config, own_solves = calibrated(monkeypatch, share=False)
    report, shipped, solves = calibrated(monkeypatch, share=True)
    assert report == own
    assert shipped == own_config
    grid = report["grid"]
    assert "stopped" not in report
    tries = sum(
        len(grid[f"ease.{p}"]["ndcg@10"]) - 1 for p in ("recency", "rising", "lowpass")
    )
    assert grid["ease.autoencoder"]["ndcg@10"]  # the grid reached its last step
    # one solve per λ (the file's and those its line search tried), none for the recency, rising,
    # low-pass or network values
    lams = len(grid["ease.regularization"]["ndcg@10"])
    assert lams >= 3  # the file's λ and its two neighbours at least
    assert own_solves == lams + tries + 1
    assert solves == lams


#: Hits of 200 users as the file's EASE scores them: what every value but λ 100 scores.
OFF = np.r_[np.ones(100), np.zeros(100)]


class Savings:
    """``_Protocols`` stand-in for EASE alone on one protocol: λ 100 scores above every other
    value (20 more hits), the rising factor changes nothing, and λ 100's try saves 50 CPU s in
    shared pieces (no fit runs: the seconds are what the pieces would have cost)."""

    def __init__(self) -> None:
        self.saved = 0.0

    def tried(self, name: str, config: PipelineConfig, share: bool = True) -> Tried:
        params = config.retrieval.sources[0].params
        key = (float(params.get("regularization", 250.0)), float(params.get("rising", 0.0)))
        self.saved += 50.0 if key == (100.0, 0.0) else 0.0
        scores = OFF.copy()
        if key[0] == 100.0:
            scores[100:120] = 1.0
        return Tried(name, config, (scores,))

    pasts = 1  # validation pasts: one protocol, one past

    def saved_seconds(self) -> float:
        return self.saved

    def retain(self, *specs: SourceConfig) -> None:
        pass


def test_the_ranker_estimate_counts_what_shared_pieces_saved() -> None:
    """Review rv27b F3: the ranker refits the values kept without shared pieces, so ``_grid``'s
    ``dearer`` (what the kept values cost beyond the cheapest try) adds back the seconds the
    kept λ's try saved: 50 s (every try's own CPU is the stand-in's, ~0)."""
    cfg = config([{"name": "ease", "model": "ease", "quota": 50}])
    off = {"ease_lowpass": [], "ease_autoencoder": [], "ease_decay": []}
    cfg = cfg.model_copy(update={"calibration": cfg.calibration.model_copy(update=off)})
    protocols = Savings()
    start = protocols.tried("ease", cfg)
    refs = Refs((float(start.per_user[0].mean()) + 0.1,))
    budget = CpuBudget(1e9)
    tuned, report, _, dearer = _grid(cfg, [start], protocols, refs, 0, budget)  # type: ignore[arg-type]
    assert report["ease.regularization"]["kept"] == 100.0
    assert report["ease.rising"]["kept"] == "as configured"
    assert tuned.retrieval.sources[0].params == {"regularization": 100.0}
    assert 50.0 - 0.5 < dearer < 50.0 + 0.5


def test_a_validation_past_holds_one_solve_between_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Review rv27b F1, as ``AFTER_SOLVE`` now bounds it: while EASE's whole grid runs (time
    decay's included) a validation past holds at most the kept value's solve and the try's
    (counted after every piece asked for, the new one included), and after each try's
    ``retain`` the kept value's alone."""
    held: list[int] = []
    retained: list[int] = []
    piece, retain = SharedFits.piece, SharedFits.retain

    def counted(self: SharedFits, key: Any, make: Any) -> Any:
        out = piece(self, key, make)
        held.append(sum("solve" in k for k in self._pieces))
        return out

    def counted_retain(self: SharedFits, *owners: Any) -> None:
        retain(self, *owners)
        retained.append(sum("solve" in k for k in self._pieces))

    monkeypatch.setattr(SharedFits, "piece", counted)
    monkeypatch.setattr(SharedFits, "retain", counted_retain)
    cfg = config(SOURCES)
    grid = {"ease_lowpass": [0.3, 1.0], "ease_decay": [0.5, 1.0], "budget_seconds": 600.0}
    cfg = cfg.model_copy(update={"calibration": cfg.calibration.model_copy(update=grid)})
    full = Interactions.from_events(popularity_case(), WEIGHTS)
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    assert len(chosen.report["grid"]["ease.decay"]["ndcg@10"]) == 3  # the grid reached it
    assert max(held) == 2
    assert max(retained) == 1


def test_the_solves_held_over_every_past_stay_within_the_old_peak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review rv30c F1/F3: summed over every validation past (the memory that matters), the
    solves held when a solve returns, it included, stay within k + 1 for k = 4 pasts (the time
    cut's 3 pooled cuts and the latest item): each past's kept solve and the running one. Keeping
    a λ try's solve on the pasts before the running one would reach k + (k − 1) + 1 = 8; the old
    peak, k kept and a solve's 4 n × n arrays, is k + 4 (bounds hand-counted, not the code's)."""
    fits: list[SharedFits] = []
    most: list[int] = []
    init, solve = SharedFits.__init__, ease.EASE._solve

    def registered(self: SharedFits, data: Any) -> None:
        init(self, data)
        fits.append(self)

    def counted(self: ease.EASE, xk: Any) -> Any:
        out = solve(self, xk)
        most.append(1 + sum("solve" in k for f in fits for k in f._pieces))
        return out

    monkeypatch.setattr(SharedFits, "__init__", registered)
    monkeypatch.setattr(ease.EASE, "_solve", counted)
    cfg = config([{"name": "ease", "model": "ease", "quota": 50}])
    off = {"ease_lowpass": [], "ease_autoencoder": [], "budget_seconds": 600.0}
    cfg = cfg.model_copy(update={"calibration": cfg.calibration.model_copy(update=off)})
    full = shop()
    chosen = calibrate(cfg, full, ItemAttributes.from_items([], full.items))
    pasts = [p.get("cuts", p.get("folds", 1)) for p in chosen.report["protocols"]]
    assert pasts == [3, 1]
    assert chosen.report["grid"]["ease.regularization"]["kept"] == 100.0  # not the file's λ
    assert max(most) == 4 + 1


def shop() -> Interactions:
    """The simulator's shop at 300 users and 150 items (seed 0): a sample where EASE's grid
    keeps λ 100, not the file's 250, so the steps after λ fit at a λ of the line search's."""
    sim = simulate(n_users=300, n_items=150, seed=0)
    settings = EventSettings()
    events, _ = validate_events(sim.events, settings)
    return Interactions.from_events(events, dict(settings.weights))


def test_a_kept_lambda_is_solved_once_per_past(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the grid keeps a λ other than the file's, the rising, low-pass and network steps
    reuse that λ's solve from its own try (before: solved again on every past, BENCHMARKS §184):
    no (past, λ) is solved twice, and the report and the configuration shipped are those of a
    calibration whose every fit computes its own pieces. The shop validates on 4 pasts, past
    ``SHARED_SOLVE_PASTS`` (memory: the test above), so the bound is raised here to reach the
    reuse."""
    monkeypatch.setattr(calibration, "SHARED_SOLVE_PASTS", 4)
    full = shop()
    cfg = config(SOURCES)
    cc = cfg.calibration.model_copy(
        update={"ease_lowpass": [0.3, 1.0], "ease_autoencoder": [1.0], "budget_seconds": 600.0}
    )
    cfg = cfg.model_copy(update={"calibration": cc})
    attrs = ItemAttributes.from_items([], full.items)

    def run(share: bool) -> tuple[dict[str, Any], PipelineConfig, list[tuple[int, float]]]:
        solved: list[tuple[int, float]] = []
        solve = ease.EASE._solve

        def counted(self: ease.EASE, xk: Any) -> Any:
            solved.append((xk.shape[0] * 1_000_003 + xk.nnz, self.config.regularization))
            return solve(self, xk)

        with monkeypatch.context() as patch:
            patch.setattr(ease.EASE, "_solve", counted)
            if not share:
                patch.setattr(ease, "shared", lambda data, key, make: make())
            chosen = calibrate(cfg, full, attrs)
        return without_cpu(chosen.report), chosen.config, solved

    own, own_config, own_solved = run(share=False)
    report, shipped, solved = run(share=True)
    grid = report["grid"]
    assert grid["ease.regularization"]["kept"] == 100.0
    assert grid["ease.autoencoder"]["ndcg@10"]  # the grid reached its last step
    assert report == own
    assert shipped == own_config
    assert len(solved) == len(set(solved))  # no λ solved twice on one past
    assert set(solved) == set(own_solved)  # … and every one the unshared calibration solved
