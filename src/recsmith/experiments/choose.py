"""Per request: which bundle serves this unit, and under which experiment and variant.

The running experiments' variant bundles are loaded once per experiment start (``live.py``) and
held on the immutable ``Runtime``, so choosing is a hash and a dictionary lookup with no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recsmith.experiments.assignment import assign

if TYPE_CHECKING:
    from recsmith.experiments.live import LiveExperiments
    from recsmith.serving.deps import Served


@dataclass(frozen=True, slots=True)
class Chosen:
    """The bundle to answer with; ``experiment``/``variant`` are None outside any experiment."""

    bundle: Served
    experiment: str | None
    variant: str | None


def choose(
    live: LiveExperiments | None, bundle: Served, unit: str | None, placement: str | None
) -> Chosen:
    """The variant's bundle when ``unit`` falls in a running experiment on ``placement`` (an
    experiment without a placement covers every one), else ``bundle``, the deployed release. A
    variant that serves the deployed release itself uses ``bundle`` (kept up to date by the
    catalogue sync) instead of a copy, unless a deploy has moved ``bundle`` on since the
    experiment was bound: then the release the variant named, held as ``shared``."""
    if live is None or unit is None:
        return Chosen(bundle, None, None)
    for running in live.running:
        exp = running.experiment
        if exp.placement is not None and exp.placement != placement:
            continue
        variant = assign(unit, exp)
        served = running.bundles.get(variant)
        if served is None:
            moved_on = running.shared is not None and running.shared.version != bundle.version
            served = running.shared if moved_on else bundle
        return Chosen(served, exp.name, variant)
    return Chosen(bundle, None, None)
