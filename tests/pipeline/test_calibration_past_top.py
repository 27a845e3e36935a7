"""EASE's companion weights past the grid's top (``calibration.ease_past_top``): where the grid
keeps the largest low-pass (or Mult-DAE) weight the file lists, it steps on up the half-decade
ladder (1 → 3 → 10, EASE's cap) while each step is kept, by the rule the listed weights are kept
by (each beats off beyond noise, the best worst share wins; BENCHMARKS §173)."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.pipeline.calibration import _grid_param, grid_kept, step_past, step_up
from recsmith.pipeline.config import PipelineConfig, SourceConfig, default_pipeline_config
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.robust_choice import Refs, Tried

LISTED = (0.3, 1.0)  # the default file's low-pass weights
USERS = 400
REFS = Refs((0.6,))


def config(on: bool) -> PipelineConfig:
    base = default_pipeline_config()
    calibration = base.calibration.model_copy(update={"ease_past_top": on})
    return base.model_copy(update={"calibration": calibration})


@pytest.mark.parametrize(
    ("value", "most", "expected"),
    [
        (1.0, 10.0, 3.0),
        (3.0, 10.0, 10.0),
        (10.0, 10.0, None),  # EASE takes no weight above 10
        (0.3, 10.0, 1.0),
        (0.5, 10.0, 1.0),
        (0.1, 10.0, 0.3),
        (3.0, 5.0, None),  # 10 is past what the model accepts
        (1e-12, 10.0, 3e-12),  # a tiny listed weight steps by its own decade, not to 0
        (3e-11, 10.0, 1e-10),
    ],
)
def test_the_ladder_by_hand(value: float, most: float, expected: float | None) -> None:
    assert step_up(value, most) == expected


def test_a_step_only_above_a_kept_top() -> None:
    """The walk starts only once every listed value is tried and the highest tried is kept."""
    assert step_past(LISTED, [0.3, 1.0], 1.0, 10.0) == 3.0
    assert step_past(LISTED, [0.3, 1.0], 0.3, 10.0) is None  # the top lost: nothing above it
    assert step_past(LISTED, [0.3, 1.0], None, 10.0) is None  # off kept
    assert step_past(LISTED, [0.3, 1.0, 3.0], 3.0, 10.0) == 10.0
    assert step_past(LISTED, [0.3, 1.0, 3.0], 1.0, 10.0) is None  # 3 not kept: the walk ends
    assert step_past(LISTED, [0.3, 1.0, 3.0, 10.0], 10.0, 10.0) is None  # EASE's cap


class ByWeight:
    """``_Protocols`` stand-in: EASE alone on one protocol of ``USERS`` users, each weight of
    ``param``'s hits fixed (the first ``hits`` users hit, so a larger count is a superset);
    ``shared`` records whether each try was asked to reuse λ's solve."""

    def __init__(self, hits: dict[float, int], param: str = "lowpass") -> None:
        self.hits, self.param, self.asked, self.shared = hits, param, [], []

    def tried(self, name: str, config: PipelineConfig, share: bool = True) -> Tried:
        weight = float(config.retrieval.sources[0].params.get(self.param, 0.0))
        self.asked.append(weight)
        self.shared.append(share)
        hits = self.hits[weight]
        return Tried(name, config, (np.repeat([1.0, 0.0], [hits, USERS - hits]),))

    pasts = 1  # validation pasts: one protocol, one past

    def saved_seconds(self) -> float:
        return 0.0

    def retain(self, *specs: SourceConfig) -> None:
        pass


def walk(
    hits: dict[float, int],
    on: bool = True,
    grid: tuple[str, list[float]] = ("lowpass", LISTED),
    budget: CpuBudget | None = None,
) -> tuple[dict, Tried, list, ByWeight]:
    protocols = ByWeight(hits, grid[0])
    cfg = config(on)
    start = protocols.tried("ease", cfg)
    protocols.asked.clear()
    protocols.shared.clear()
    context = (protocols, REFS, 0, budget or CpuBudget(1e9))
    entry, best, tried = _grid_param(cfg, 0, start, grid, context)  # type: ignore[arg-type]
    return entry, best, tried, protocols


class TenSecondTries(CpuBudget):
    """A budget whose clock reads 10 CPU s more for each try ``protocols`` made: the grid's
    half-budget stop at a known step, whatever this machine's speed."""

    def __init__(self, seconds: float, protocols: list[ByWeight]) -> None:
        super().__init__(seconds)
        self.protocols = protocols

    def spent(self) -> float:
        return 10.0 * sum(len(p.asked) for p in self.protocols)


def full_grid(hits: dict[float, int]) -> float | str:
    """What keeping the best of every ladder value up to EASE's cap would keep (``grid_kept``
    over all of them): the oracle for a single-peaked curve."""
    everything = ByWeight(hits)
    cfg = config(True)
    start = everything.tried("ease", cfg)
    tries = []
    for w in (0.3, 1.0, 3.0, 10.0):
        sources = list(cfg.retrieval.sources)
        sources[0] = sources[0].model_copy(update={"params": {"lowpass": w}})
        retrieval = cfg.retrieval.model_copy(update={"sources": sources})
        tries.append(everything.tried("ease", cfg.model_copy(update={"retrieval": retrieval})))
    kept = grid_kept(start, tries, "lowpass", REFS, 0)
    return kept.config.retrieval.sources[0].params.get("lowpass", "as configured")


@pytest.mark.parametrize(
    ("hits", "asked", "kept", "skipped"),
    [
        # rising to 3, falling at 10: the walk stops at 10 (tried, not kept), nothing left
        ({0.0: 200, 0.3: 230, 1.0: 250, 3.0: 260, 10.0: 255}, [0.3, 1.0, 3.0, 10.0], 3.0, []),
        # the peak at the list's top: one step tried, the rest of the ladder left
        ({0.0: 200, 0.3: 230, 1.0: 250, 3.0: 240, 10.0: 300}, [0.3, 1.0, 3.0], 1.0, ["10.0"]),
        # the top not kept: no step at all (10 would have won: a second peak the walk gives up)
        ({0.0: 200, 0.3: 250, 1.0: 240, 3.0: 300, 10.0: 300}, [0.3, 1.0], 0.3, ["3.0", "10.0"]),
        # rising all the way: up to EASE's cap, nothing left
        ({0.0: 200, 0.3: 210, 1.0: 220, 3.0: 230, 10.0: 240}, [0.3, 1.0, 3.0, 10.0], 10.0, []),
    ],
)
def test_the_walk_stops_where_a_step_is_not_kept(
    hits: dict[float, int], asked: list[float], kept: float, skipped: list[str]
) -> None:
    """Hand-made scores: the weights asked for, in order; the one kept; the ladder values the
    report says it left (each past a value not kept); on a single peak the full ladder's choice
    (``full_grid``); the report and the variants handed on list the steps after the listed
    values."""
    entry, best, tried, protocols = walk(hits)
    assert protocols.asked == asked
    assert entry["kept"] == kept
    assert best.config.retrieval.sources[0].params["lowpass"] == kept
    assert sorted(entry.get("skipped", {})) == sorted(skipped)
    assert all("did not keep" in why for why in entry.get("skipped", {}).values())
    assert list(entry["ndcg@10"]) == ["as configured", *map(str, asked)]
    assert [v.params["lowpass"] for v, _ in tried] == asked
    assert list(entry["cpu_seconds"]) == [str(v) for v in asked]
    assert all(protocols.shared)  # every step reuses λ's solve (AFTER_SOLVE), as listed ones do


def test_the_autoencoder_weight_walks_as_the_low_pass_weight_does() -> None:
    """The Mult-DAE's weight (listed [1.0]) walks on past its top too: 1 → 3 kept, 10 not."""
    hits = {0.0: 200, 1.0: 230, 3.0: 250, 10.0: 240}
    entry, best, _, protocols = walk(hits, grid=("autoencoder", [1.0]))
    assert protocols.asked == [1.0, 3.0, 10.0]
    assert entry["kept"] == 3.0 and best.config.retrieval.sources[0].params["autoencoder"] == 3.0
    assert "skipped" not in entry and all(protocols.shared)


def test_a_walk_the_budget_stops_says_where_and_skips_nothing() -> None:
    """Each try costs 10 s of a 60 s budget: the grid stops before a try that would pass half
    of it (0.3, 1, 3 tried: 30 s), says so, keeps the best so far and lists no ``skipped``."""
    rising = {0.0: 200, 0.3: 210, 1.0: 220, 3.0: 230, 10.0: 240}
    seen: list[ByWeight] = []
    budget = TenSecondTries(60.0, seen)
    protocols = ByWeight(rising)
    seen.append(protocols)
    cfg = config(True)
    start = protocols.tried("ease", cfg)
    protocols.asked.clear()
    entry, _, _ = _grid_param(cfg, 0, start, ("lowpass", LISTED), (protocols, REFS, 0, budget))  # type: ignore[arg-type]
    assert protocols.asked == [0.3, 1.0, 3.0]
    assert entry["stopped"].startswith("before 10.0: half the 60 s CPU budget")
    assert entry["kept"] == 3.0 and "skipped" not in entry


@pytest.mark.parametrize("peak", [0.3, 1.0, 3.0, 10.0])
def test_one_peak_keeps_what_the_whole_ladder_keeps(peak: float) -> None:
    """A single-peaked curve (hits falling by 10 a step away from ``peak``, all above off): the
    walk keeps the weight that scoring every ladder value to EASE's cap keeps."""
    ladder = [0.3, 1.0, 3.0, 10.0]
    hits = {0.0: 150} | {w: 250 - 10 * abs(k - ladder.index(peak)) for k, w in enumerate(ladder)}
    entry, _, _, _ = walk(hits)
    assert entry["kept"] == peak == full_grid(hits)


def test_a_step_within_noise_of_the_top_is_kept_by_its_worst_share() -> None:
    """The rule chosen: a step need not beat the weight kept before it beyond noise, only beat off
    beyond noise and score higher (3 by one user over 1): as the listed weights are kept."""
    entry, _, _, protocols = walk({0.0: 200, 0.3: 230, 1.0: 250, 3.0: 251, 10.0: 240})
    assert protocols.asked == [0.3, 1.0, 3.0, 10.0]
    assert entry["kept"] == 3.0


def test_off_by_default_the_grid_ends_at_its_top() -> None:
    """``ease_past_top`` off (the file's default): the listed values only, nothing reported
    skipped — the report is main's."""
    entry, _, _, protocols = walk({0.0: 200, 0.3: 230, 1.0: 250, 3.0: 260, 10.0: 270}, on=False)
    assert protocols.asked == [0.3, 1.0]
    assert entry["kept"] == 1.0
    assert "skipped" not in entry
    assert default_pipeline_config().calibration.ease_past_top is False
