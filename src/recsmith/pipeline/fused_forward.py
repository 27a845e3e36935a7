"""Which sources serve: a fused order built forward from the best single source (#15).

Calibration otherwise weighs one source alone against the fusion of ALL the file's sources (or
that fusion less one, ``fused_without_one``). On a shape where a weak source drags the fusion,
both can lose to a fusion of the strong sources only: on the hidden-long proxy the fused order
of all sources scored below EASE alone (0.1115 / 0.1205 vs 0.1414 / 0.1384, BENCHMARKS §166)
while item-kNN over the latest items nearly matched EASE there. This is forward selection: start
from the single source calibration picked (``best_single``), add the personal source whose
addition (weight 1, the others left at ``FILLER_WEIGHT`` as ``alone`` leaves them) lifts the
worst share most, keep it only where it beats the order so far as every richer choice must
(``robust_choice.prefer``: beyond noise), and repeat until nothing is kept or ``CAP`` sources
serve. Every source is fitted already, so a try is a merge and a score per validation split.
The result is the simpler rival the full fusion must then beat (calibration.py). Off unless
``calibration.fused_forward`` asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.robust_choice import Refs, Tried, prefer, worst_share

#: At most this many sources carry weight in the order built forward: each step is a bootstrap
#: test, and beyond three the order is nearly the full fusion, which competes anyway.
CAP = 3

#: The name a forward order with more than one source carries in the manifest. Not "fused…":
#: ``fused_ships`` would then ship the full fusion's own weights and drops with it.
FORWARD = "forward"


def with_say(config: PipelineConfig, name: str) -> PipelineConfig:
    """``config`` with source ``name`` at weight 1 (a full say, as ``alone`` gives the one
    source that serves); the others unchanged."""
    sources = [
        s.model_copy(update={"weight": 1.0}) if s.name == name else s
        for s in config.retrieval.sources
    ]
    retrieval = config.retrieval.model_copy(update={"sources": sources})
    return config.model_copy(update={"retrieval": retrieval})


def forward_order(
    best: Tried,
    candidates: Sequence[str],
    score: Callable[[str, PipelineConfig], Tried],
    judge: tuple[Refs, int],
    intervals: Callable[[Tried], list[list[float]]],
    cap: int = CAP,
) -> tuple[Tried, dict[str, Any]]:
    """The order grown from ``best`` (a single source alone, as calibration scored it) by adding,
    one at a time, the source of ``candidates`` (names of the file's personal sources, in the
    order to try; ties go to the first) whose addition has the highest worst share, for as long
    as ``prefer`` keeps it over the order so far and fewer than ``cap`` sources serve. ``score``:
    a configuration's fused order on every protocol (``_Protocols.tried``); ``judge``: the
    references and the seed every choice is read against; ``intervals``: a try's bootstrap
    intervals as the manifest shows them. Returns the order (``best`` itself where nothing was
    added) and a report: every try (the sources serving, validation means, intervals, worst
    share), the sources that serve and where and why it stopped."""
    refs, seed = judge
    current, serving = best, [best.name]
    present = {s.name for s in best.config.retrieval.sources}
    left = [c for c in candidates if c != best.name and c in present]
    tries: list[dict[str, Any]] = []
    report: dict[str, Any] = {"start": best.name, "tries": tries}
    while left and len(serving) < cap:
        step: list[tuple[str, Tried]] = []
        for name in left:
            t = score(FORWARD, with_say(current.config, name))
            tries.append(
                {
                    "serving": [*serving, name],
                    "ndcg@10": [round(m, 5) for m in t.means],
                    "interval": intervals(t),
                    "worst_share": round(worst_share(t, refs), 4),
                }
            )
            step.append((name, t))
        name, top = max(step, key=lambda s: worst_share(s[1], refs))  # ties: the first
        kept, why = prefer(current, "", top, refs, seed)
        if kept is current:
            report["stopped"] = f"+{name}{why}"  # "; forward not better by more than noise (…)"
            break
        current, serving = top, [*serving, name]
        left.remove(name)
        report.setdefault("kept", []).append(f"+{name}: {why}")
    report["serving"] = serving
    return current, report
