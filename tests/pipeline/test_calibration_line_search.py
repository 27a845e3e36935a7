"""A strength's grid (EASE's λ) as a line search from the file's value (``calibration.next_value``):
its two neighbours first, then outward only on the side of the value kept, one value at a time
while each is kept. On a single-peaked validation curve it keeps what the full grid keeps with
fewer fits (BENCHMARKS §167); the values it leaves are reported with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.pipeline.calibration import GRID, _grid_param, grid_kept, next_value
from recsmith.pipeline.config import PipelineConfig, SourceConfig, default_pipeline_config
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.robust_choice import Refs, Tried

CONFIG = default_pipeline_config()
LAMBDAS = dict(GRID["ease"])["regularization"]  # 25, 100, 625, 2500 around the file's 250
FILE = 250.0  # EASE's default λ: where the line search starts


@pytest.mark.parametrize(
    ("done", "kept", "expected"),
    [
        ((), None, 100.0),  # the neighbour below first ...
        ((100.0,), FILE, 625.0),  # ... then the one above, whatever the first scored
        ((100.0, 625.0), FILE, None),  # the file's value beat both: no far value
        ((100.0, 625.0), 100.0, 25.0),  # below kept: on below, never above
        ((100.0, 625.0), 625.0, 2500.0),  # above kept: on above, never below
        ((100.0, 625.0, 25.0), 25.0, None),  # the end of the grid
        ((100.0, 625.0, 25.0), 100.0, None),  # 25 not kept: the walk ends there
        ((100.0, 625.0, 2500.0), 625.0, None),
    ],
)
def test_the_line_search_steps_by_hand(
    done: tuple[float, ...], kept: float | None, expected: float | None
) -> None:
    above = [v for v in done if v == kept]  # here only the value kept beat the file's
    assert next_value(LAMBDAS, FILE, done, kept, above) == expected


def test_both_neighbours_above_the_file_value_try_every_value() -> None:
    """A dip at the file's value: no single peak to stand on, so the full grid's values, in its
    order; one neighbour above is not a dip."""
    assert next_value(LAMBDAS, FILE, [100.0, 625.0], 100.0, [100.0, 625.0]) == 25.0
    assert next_value(LAMBDAS, FILE, [100.0, 625.0, 25.0], 25.0, [100.0, 625.0]) == 2500.0
    assert next_value(LAMBDAS, FILE, [100.0, 625.0, 25.0], 100.0, [100.0, 625.0]) == 2500.0
    assert next_value(LAMBDAS, FILE, [*LAMBDAS], 25.0, [100.0, 625.0]) is None
    assert next_value(LAMBDAS, FILE, [100.0, 625.0], 100.0, [100.0]) == 25.0
    assert next_value(LAMBDAS, FILE, [100.0, 625.0, 25.0], 100.0, [100.0]) is None


def test_without_a_start_every_value_in_the_grid_order() -> None:
    """Not a strength (a switched signal, a neighbourhood): every value is tried, in order."""
    values = (0.5, 1.0)
    assert next_value(values, None, [], None) == 0.5
    assert next_value(values, None, [0.5], 0.5) == 1.0
    assert next_value(values, None, [0.5, 1.0], 0.5) is None
    # a grid with one value on either side of its start (iALS's α 0.2 / 20 around 2): both
    assert next_value((0.2, 20.0), 2.0, [0.2], 0.2) == 20.0


class ByLambda:
    """``_Protocols`` stand-in: EASE alone on one protocol of 400 users, each λ's hits fixed."""

    def __init__(self, hits: dict[float, int]) -> None:
        self.hits, self.asked = hits, []

    def tried(self, name: str, config: PipelineConfig, share: bool = True) -> Tried:
        lam = float(config.retrieval.sources[0].params.get("regularization", FILE))
        self.asked.append(lam)
        return Tried(name, config, (np.repeat([1.0, 0.0], [self.hits[lam], 400 - self.hits[lam]]),))

    pasts = 1  # validation pasts: one protocol, one past

    def saved_seconds(self) -> float:
        return 0.0

    def retain(self, *specs: SourceConfig) -> None:
        pass


def peaked(at: float) -> dict[float, int]:
    """Hits per λ falling by 10 a step on the ladder away from ``at``: one peak."""
    ladder = sorted((*LAMBDAS, FILE))
    return {v: 200 - 10 * abs(k - ladder.index(at)) for k, v in enumerate(ladder)}


def grid_param(hits: dict[float, int]) -> tuple[dict, Tried, list, ByLambda]:
    protocols = ByLambda(hits)
    start = protocols.tried("ease", CONFIG)
    protocols.asked.clear()
    context = (protocols, Refs((0.6,)), 0, CpuBudget(1e9))
    grid = ("regularization", LAMBDAS)
    entry, best, tried = _grid_param(CONFIG, 0, start, grid, context)  # type: ignore[arg-type]
    return entry, best, tried, protocols


@pytest.mark.parametrize(
    ("peak", "asked", "skipped"),
    [
        (FILE, [100.0, 625.0], ["25.0", "2500.0"]),
        (100.0, [100.0, 625.0, 25.0], ["2500.0"]),
        (25.0, [100.0, 625.0, 25.0], ["2500.0"]),
        (625.0, [100.0, 625.0, 2500.0], ["25.0"]),
        (2500.0, [100.0, 625.0, 2500.0], ["25.0"]),
    ],
)
def test_one_peak_keeps_what_the_full_grid_keeps_with_fewer_fits(
    peak: float, asked: list[float], skipped: list[str]
) -> None:
    """``_grid_param`` on a single-peaked curve: the values asked for, in that order; the value
    kept is the full grid's (``grid_kept`` over every value); the report lists the values tried in
    the grid's order and says why each other one was left; the variants handed on (the fused
    order's grid) are in the grid's order too."""
    hits = peaked(peak)
    entry, best, tried, protocols = grid_param(hits)
    assert protocols.asked == asked
    everything = ByLambda(hits)
    start = everything.tried("ease", CONFIG)
    full = [
        everything.tried("ease", with_lambda(v)) for v in LAMBDAS
    ]  # what a full grid would have scored
    expected = grid_kept(start, full, "regularization", Refs((0.6,)), 0)
    lam = expected.config.retrieval.sources[0].params  # the λ the full grid keeps
    assert best.config.retrieval.sources[0].params == lam
    assert entry["kept"] == (peak if peak != FILE else "as configured")
    grid_order = [v for v in LAMBDAS if v in asked]
    assert list(entry["ndcg@10"]) == ["as configured", *map(str, grid_order)]
    assert [v.params["regularization"] for v, _ in tried] == grid_order
    assert sorted(entry["skipped"]) == sorted(skipped)
    assert all("did not keep" in why for why in entry["skipped"].values())
    assert list(entry["cpu_seconds"]) == [str(v) for v in asked]


def with_lambda(lam: float) -> PipelineConfig:
    sources = list(CONFIG.retrieval.sources)
    sources[0] = sources[0].model_copy(update={"params": {"regularization": lam}})
    return CONFIG.model_copy(
        update={"retrieval": CONFIG.retrieval.model_copy(update={"sources": sources})}
    )


def test_a_far_value_past_a_lower_neighbour_is_not_tried_even_where_it_would_win() -> None:
    """Two peaks (noise, or a curve that is not single-peaked): 100 below the file's 250, 25
    above everything. The line search keeps the file's value and says it left 25 — what the rule
    gives up, by design, for the solves it saves."""
    hits = {25.0: 260, 100.0: 180, FILE: 200, 625.0: 190, 2500.0: 150}
    entry, _, _, protocols = grid_param(hits)
    assert protocols.asked == [100.0, 625.0]
    assert entry["kept"] == "as configured"
    assert set(entry["skipped"]) == {"25.0", "2500.0"}


def test_a_dip_at_the_file_value_runs_the_full_grid() -> None:
    """Both neighbours above the file's 250 (diginetica-sample's short samples, §167): every value
    is fitted, nothing is reported skipped, and the best of them is kept, as the full grid."""
    hits = {25.0: 170, 100.0: 210, FILE: 200, 625.0: 205, 2500.0: 230}
    entry, _, _, protocols = grid_param(hits)
    assert protocols.asked == [100.0, 625.0, 25.0, 2500.0]
    assert entry["kept"] == 2500.0
    assert "skipped" not in entry
