"""Thompson-sampling traffic allocation between an experiment's variants (``allocation =
"thompson"``): traffic moves towards the variant that looks best on the KPI, and every variant
keeps a floor so the comparison never starves.

The policy, per request:

* **burn-in**: until every variant has ``burn_in`` impressions, the experiment's fixed weights;
* then **shares** p_v = m + (1 − V·m) · P̂(v is best), where m is ``min_share`` and P̂(v is best)
  is the share of ``BANK_DRAWS`` joint draws of the variants' Beta(1 + successes, 1 + failures)
  posteriors (successes: attributed clicks for ``kpi = "ctr"``, purchases for ``"conversion"``;
  trials: impressions) in which v's draw is the largest;
* the variant is drawn from p by a uniform hashed from the request's recommendation id, so a
  request replays, and its p_v is logged as the decision's ``assignment_propensity``.

**Per request, not sticky.** Shares move as evidence arrives, and a hash of the unit against
moving shares would move units anyway; keeping a unit's first variant would need a stored lookup
per request. So one user may see several variants over an experiment; what is learned and
reported is the KPI per impression, which needs no stickiness. A fixed-weight experiment stays
sticky per unit (``assignment``).

The counts are arms of the shared bandit board (``exploration.board``), keyed by the
experiment's salt and the variant (``arm_key``): every worker and replica adds to and reads the
same totals, they survive a restart, and a restarted experiment (a new salt) learns afresh.
Shares are exact for the policy a process runs: they are computed once per counts snapshot
(``ArmCounts.version``) from a bank seeded by that version and the arms. A process that has not
synced yet (just started) holds no counts and serves the weights, logging them as such.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsmith.experiments.assignment import bucket, pick
from recsmith.experiments.spec import Experiment
from recsmith.exploration.arms import ArmCounts
from recsmith.exploration.thompson import bank_seed, posterior_bank

if TYPE_CHECKING:
    from recsmith.experiments.live import LiveExperiments

#: Joint posterior draws behind one set of shares (P̂(best) within ±0.016 at 2 standard errors).
BANK_DRAWS = 4000
#: The outcome kind (``exploration.arms.KINDS``) each KPI counts as a success.
KPI_KIND = {"ctr": "click", "conversion": "purchase"}
#: Arm keys of experiment variants start with this (item ids, the board's other arms, do not).
ARM_PREFIX = "\x1fexperiment\x1f"


@dataclass(frozen=True, slots=True)
class Allocated:
    """The variant a request gets, the probability it had (``assignment_propensity``) and the
    board arm its impressions count under."""

    variant: str
    propensity: float
    arm: str


def arm_key(experiment: Experiment, variant: str) -> str:
    """The board arm of ``variant``: the salt makes each start of an experiment its own arm."""
    return f"{ARM_PREFIX}{experiment.salt}\x1f{variant}"


def shares(experiment: Experiment, counts: ArmCounts) -> np.ndarray:
    """Each variant's share of the next request (see module docstring), in variant order."""
    keys = np.array([arm_key(experiment, v.name) for v in experiment.variants], dtype=object)
    trials, wins = counts.lookup(keys, KPI_KIND[experiment.kpi])
    key = (experiment.salt, counts.version, trials.tobytes() + wins.tobytes())
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    weights = np.array(list(experiment.weights.values()))
    if trials.min() < experiment.burn_in:
        out = weights
    else:
        seed = bank_seed(counts.version, keys)
        bank = posterior_bank(trials, wins, (1.0, 1.0), BANK_DRAWS, seed)
        best = np.bincount(bank.argmax(axis=1), minlength=len(keys)) / BANK_DRAWS
        floor = experiment.min_share
        out = floor + (1.0 - len(keys) * floor) * best
    _CACHE.put(key, out)
    return out


def allocate(experiment: Experiment, counts: ArmCounts, recommendation_id: str) -> Allocated:
    """The variant for one request of an adaptive experiment, drawn from ``shares``."""
    share = shares(experiment, counts)
    at = int(pick(np.array([bucket(recommendation_id, experiment.salt)]), share)[0])
    name = experiment.variants[at].name
    return Allocated(name, float(share[at]), arm_key(experiment, name))


def variant_outcomes(attributed: pd.DataFrame, live: LiveExperiments | None) -> pd.DataFrame:
    """The attributions (``Attributor.attribute``'s frame) to lists of the running adaptive
    experiments, their ``item_id`` replaced by the variant's arm key: what
    ``BanditBoard.attributed`` counts as the variant's successes."""
    running = () if live is None else live.running
    adaptive = {x.experiment.name: x.experiment for x in running if x.experiment.adaptive}
    if not adaptive or len(attributed) == 0 or "experiment" not in attributed:
        return attributed.iloc[:0]
    mine = attributed[attributed["experiment"].isin(list(adaptive))]
    keys = [
        arm_key(adaptive[e], str(v))
        for e, v in zip(mine["experiment"], mine["variant"], strict=True)
    ]
    return mine.assign(item_id=np.asarray(keys, dtype=object))


class _Shares:
    """Shares per (salt, counts version, the variants' counts): a handful live at a time, so
    the bound is small."""

    LIMIT = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str, int, bytes], np.ndarray] = {}

    def get(self, key: tuple[str, int, bytes]) -> np.ndarray | None:
        return self._by_key.get(key)

    def put(self, key: tuple[str, int, bytes], value: np.ndarray) -> None:
        with self._lock:
            if len(self._by_key) >= self.LIMIT:
                self._by_key.clear()
            self._by_key[key] = value


_CACHE = _Shares()
