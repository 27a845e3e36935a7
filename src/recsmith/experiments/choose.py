"""Per request: which bundle serves this unit, and under which experiment and variant.

The running experiments' variant bundles are loaded once per experiment start (``live.py``) and
held on the immutable ``Runtime``, so choosing is a hash and a dictionary lookup with no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recsmith.experiments.adaptive import allocate
from recsmith.experiments.assignment import assign

if TYPE_CHECKING:
    from recsmith.experiments.live import LiveExperiments
    from recsmith.exploration.arms import ArmCounts
    from recsmith.serving.deps import Served


@dataclass(slots=True)
class Chosen:
    """The bundle to answer with; ``experiment``/``variant`` are None outside any experiment.
    ``propensity``: the probability of this variant for this request (the decision's
    ``assignment_propensity``); ``arm``: the bandit arm its impressions count under (adaptive
    allocation only).

    Not frozen (never changed once built): one is built per request on the event loop, where
    a frozen class's ``__init__`` sets each field by ``object.__setattr__`` (BENCHMARKS §141)."""

    bundle: Served
    experiment: str | None
    variant: str | None
    propensity: float | None = None
    arm: str | None = None


def choose(
    live: LiveExperiments | None,
    bundle: Served,
    unit: str | None,
    placement: str | None,
    counts: ArmCounts | None = None,
    recommendation_id: str = "",
) -> Chosen:
    """The variant's bundle when ``unit`` falls in a running experiment on ``placement`` (an
    experiment without a placement covers every one), else ``bundle``, the deployed release. A
    variant that serves the deployed release itself uses ``bundle`` (kept up to date by the
    catalogue sync) instead of a copy, unless a deploy has moved ``bundle`` on since the
    experiment was bound: then the release the variant named, held as ``shared``. An adaptive
    experiment (``allocation = "thompson"``) draws the variant per request from the shared
    ``counts`` (``BanditBoard.counts``), seeded by ``recommendation_id``."""
    if live is None or unit is None:
        return Chosen(bundle, None, None)
    for running in live.running:
        exp = running.experiment
        if exp.placement is not None and exp.placement != placement:
            continue
        if exp.adaptive and counts is not None:
            drawn = allocate(exp, counts, recommendation_id)
            variant, propensity, arm = drawn.variant, drawn.propensity, drawn.arm
        else:
            variant = assign(unit, exp)
            propensity, arm = exp.weights[variant], None
        served = running.bundles.get(variant)
        if served is None:
            moved_on = running.shared is not None and running.shared.version != bundle.version
            served = running.shared if moved_on else bundle
        return Chosen(served, exp.name, variant, propensity, arm)
    return Chosen(bundle, None, None)
