"""A time-decayed EASE beside the plain one in the fused order (#15, BENCHMARKS §171).

EASE's ``decay`` (``pair_decay``: a pair counts 0.5 ** (age / (share × span))) as a
*replacement* for plain EASE was never kept (§164): on dense ml-100k a half-life of a quarter of
the span lifted EASE's time cuts +47 % but lost each user's latest item −28 %, so the worst share
kept it off. The two protocols want different things — plain EASE for the next item of a
sequence, decayed EASE for what is current after a time cut — and a fused order can hold both.
So calibration (``calibration.decayed_source``, a half-life share; 0 = off) also tries the
fused order as kept plus a copy of its EASE source at that decay, weight 1, and the copy ships
only where that order beats the choice so far beyond noise (``robust_choice.prefer``), as every
richer choice must.

The copy is plain EASE at the kept source's λ (and its solve's other settings): no rising
factor, low-pass filter, autoencoder or recency weights beside it — those are the kept source's
to carry, and §171 measured the copy without them (review rv30s F1: recency was kept before).
It costs one EASE solve more per validation past and, where it
ships, one more item × item matrix at serving (4 bytes an entry at float32: 576 MB at 12,000
items).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recsmith.pipeline.config import PipelineConfig, SourceConfig
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.robust_choice import Refs, Tried, prefer

#: The added source's name (the fused order's other sources keep theirs).
NAME = "ease_decayed"
#: What the tried configuration is called in the manifest (``fused_ships`` reads the prefix).
TRIED = f"fused+{NAME}"
#: EASE's parameters that put something beside its solve; the copy leaves them off (see above).
BESIDE = ("rising", "lowpass", "autoencoder", "decay", "recency", "recency_half_places")


def decayed_copy(spec: SourceConfig, share: float) -> SourceConfig:
    """``spec`` (an EASE source) as plain EASE at its own λ with ``decay = share``, weight 1."""
    params = {k: v for k, v in spec.params.items() if k not in BESIDE}
    return spec.model_copy(
        update={"name": NAME, "params": {**params, "decay": share}, "weight": 1.0, "tune": {}}
    )


def with_decayed(fused: PipelineConfig, share: float, filler: float) -> PipelineConfig | None:
    """``fused`` with a decayed copy of its first EASE source appended (``decayed_copy``); None
    where it holds no EASE source with a say, or already the copy: an EASE that
    ``fused_without_one`` left at ``filler`` (the weight of a source with no say) would come back
    at full weight, not beside a plain one (review rv28c)."""
    sources = fused.retrieval.sources
    ease = next((s for s in sources if s.kind == "model" and s.model == "ease"), None)
    if ease is None or ease.weight <= filler or any(s.name == NAME for s in sources):
        return None
    retrieval = fused.retrieval.model_copy(
        update={"sources": [*sources, decayed_copy(ease, share)]}
    )
    return fused.model_copy(update={"retrieval": retrieval})


def tried_decayed(
    fused: Tried,
    so_far: tuple[Tried, str],
    score: Callable[[str, PipelineConfig], Tried],
    context: tuple[Refs, int, CpuBudget],
    share: float,
    filler: float,
) -> tuple[Tried, str, dict[str, Any], list[Tried]]:
    """``fused`` (the fused order as kept) plus a copy of its EASE decayed at ``share``
    (``with_decayed``), scored by ``score`` (a configuration's fused order on every protocol)
    and set against the choice so far (``so_far``: it and its reason) by ``prefer``: it
    replaces that choice only beyond noise. Not tried where the fused order holds no EASE or the
    CPU budget (``context``: references, seed, budget) is spent: the copy is one EASE solve more
    per validation past. Returns the choice, its reason, a report (the try's validation means
    and CPU seconds, or why it was skipped) and the try (none where skipped), for the
    manifest's list."""
    choice, reason = so_far
    refs, seed, budget = context
    config = with_decayed(fused.config, share, filler)
    if config is None:
        return (
            choice,
            reason,
            {"share": share, "skipped": "no EASE source with a say in the fused order"},
            [],
        )
    if budget.passes(0.0):
        spent = f"the {budget.seconds:g} s CPU budget spent"
        return choice, reason, {"share": share, "skipped": spent}, []
    began = budget.spent()
    t = score(TRIED, config)
    choice, reason = prefer(choice, reason, t, refs, seed)
    report = {
        "share": share,
        "ndcg@10": [round(m, 5) for m in t.means],
        "cpu_seconds": round(budget.spent() - began, 2),
        "ships": choice is t,
    }
    return choice, reason, report, [t]
