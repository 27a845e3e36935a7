"""The diagnosis of BENCHMARKS §174: ``choice_oracle``'s recorders pass calibration's newer
arguments through (a time cut's bar, ``prefer``'s user ids) and keep what they saw; and
``market_diagnosis``'s loss classes, worked out by hand on small score vectors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import choice_oracle
import market_diagnosis

from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.robust_choice import Tried


def _tried(name: str, *per_user: list[float]) -> Tried:
    return Tried(name, default_pipeline_config(), tuple(np.array(p) for p in per_user))


def test_the_recorded_deciding_passes_a_time_cuts_bar_through_and_keeps_the_call() -> None:
    # protocol 0 (a time cut): popularity best, the other source level with it → not deciding;
    # protocol 1: the source 1 ahead on every user → decides. With the cut barring, its bar is
    # popularity's mean there, 0.5 (by hand); without the argument passed there is no bar.
    popularity = _tried("popularity", [1.0, 0.0, 1.0, 0.0], [0.0] * 20)
    source = _tried("ease", [0.0, 1.0, 1.0, 0.0], [1.0] * 20)
    choice_oracle.CALLS.clear()
    refs, said = choice_oracle._recorded_deciding([popularity, source], 0, [True, False])
    assert refs.bars == (0.5, None)
    assert [s["decides"] for s in said] == [False, True]
    kind, singles, out, seed = choice_oracle.CALLS[-1]
    assert (kind, [t.name for t in singles], out[0], seed) == ("deciding", ["popularity", "ease"],
                                                              refs, 0)  # fmt: skip


def test_the_loss_classes() -> None:
    peer = np.array([0.2, 0.2, 0.2, 0.2])
    # 0.22 / 0.2 = 1.10 ≥ 1.05
    assert market_diagnosis._loss(np.full(4, 0.22), {"a": np.full(4, 0.22)}, peer) == "met"
    # an option ahead of the shipped one on every user: its ratio's interval is above 1
    shipped = np.array([0.1, 0.1, 0.1, 0.1])
    ahead = {"shipped": shipped, "other": np.array([0.3, 0.3, 0.3, 0.3])}
    assert market_diagnosis._loss(shipped, ahead, peer) == "rule"
    # no option above the shipped one beyond noise, and none reaches the peer's 0.2
    level = {"shipped": shipped, "other": np.array([0.2, 0.0, 0.1, 0.1])}
    assert market_diagnosis._loss(shipped, level, peer) == "sources"
    # an option above the peer's mean by its point estimate only (one user of four carries it)
    lucky = {"shipped": shipped, "other": np.array([0.0, 0.0, 0.0, 0.9])}
    assert market_diagnosis._loss(shipped, lucky, peer) == "noise"


def test_a_stems_data_set_keeps_its_dashes() -> None:
    assert market_diagnosis._split("market-ml-latest-small-12") == (
        "market",
        "ml-latest-small",
        "12",
    )
