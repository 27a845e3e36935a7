"""Each personal source's weight in the fused order, stepped on validation (#15).

The fused order serves with the weights the file writes; calibration otherwise chooses only which
sources serve (one alone, the fusion, the fusion without one: ``fused_without_one``). On a shape
nobody tuned for, one personal source's say may be too loud or too quiet for the others'
(iALS at weight 1 beside EASE on the marketplace shape, BENCHMARKS §82). This is a small,
budgeted search: one pass over the personal sources, cheapest first (fewest proposals, as the
merge's cost grows with them), each tried at half and at twice its weight — every source is
fitted already, so a try is a merge and a score per validation split — and the better of the
two replaces the order so far only where it beats it as every choice here must
(``robust_choice.prefer``: beyond noise). Weight 0 is not a step here: the drop is
``fused_without_one``'s (``calibration.fused_drop``). Off unless ``calibration.fused_weights``
asks (BENCHMARKS §163: not confirmed on unread samples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.robust_choice import Refs, Tried, prefer, worst_share

#: The factors each personal source's weight is tried at, in order: a halving and a doubling
#: move a source's RRF say past the neighbours' next ranks (1/61 against 1/62..) without a grid.
STEPS = (0.5, 2.0)


def stepped_weights(
    fused: Tried,
    steppable: Sequence[int],
    score: Callable[[str, PipelineConfig], Tried],
    context: tuple[Refs, int, CpuBudget],
    intervals: Callable[[Tried], list[list[float]]],
) -> tuple[Tried, dict[str, Any]]:
    """The fused order with each source of ``steppable`` (indices into its sources, in the order
    to try) at the weight that serves it best: for each in turn, its weight times each of
    ``STEPS`` in the order kept so far; the step with the higher worst share replaces that order
    where it is higher than the order's own and ``prefer`` says beyond noise. ``score``: a
    configuration's fused order on every protocol; ``context``: references, seed and the CPU
    budget — a step is not tried where, costing what the last did, it would pass half the
    budget (the grid's bar: the rest is the ranker's); ``intervals``: a try's bootstrap
    intervals as the manifest shows them. Returns the order to compete and a report: every
    configuration's validation means (``ndcg@10``, by ``SOURCE xFACTOR``) and intervals, the
    weights that changed (``kept``) and, where it stopped, why."""
    refs, seed, budget = context
    means: dict[str, list[float]] = {"as configured": [round(m, 5) for m in fused.means]}
    bounds: dict[str, list[list[float]]] = {"as configured": intervals(fused)}
    report: dict[str, Any] = {"ndcg@10": means, "interval": bounds}
    best, last = fused, 0.0
    for n in steppable:
        spec = best.config.retrieval.sources[n]
        tries: list[Tried] = []
        for factor in STEPS:
            label = f"{spec.name} x{factor:g}"
            if budget.passes(last, share=0.5):
                report["stopped"] = f"before {label}: half the {budget.seconds:g} s CPU budget"
                break
            began = budget.spent()
            sources = list(best.config.retrieval.sources)
            sources[n] = spec.model_copy(update={"weight": spec.weight * factor})
            retrieval = best.config.retrieval.model_copy(update={"sources": sources})
            t = score("fused", best.config.model_copy(update={"retrieval": retrieval}))
            means[label], bounds[label] = [round(m, 5) for m in t.means], intervals(t)
            tries.append(t)
            last = budget.spent() - began
        step = max(tries, key=lambda t: worst_share(t, refs), default=best)
        if worst_share(step, refs) > worst_share(best, refs):
            best = prefer(best, "", step, refs, seed)[0]
        if "stopped" in report:
            break
    original = {s.name: s.weight for s in fused.config.retrieval.sources}
    report["kept"] = {
        s.name: s.weight for s in best.config.retrieval.sources if s.weight != original[s.name]
    }
    return best, report
