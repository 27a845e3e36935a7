"""Off-policy estimates of a target policy from a log: join, model, estimate, diagnose.

All joins are pandas merges and all sums ``np.bincount`` over integer codes: the cost is a few
passes over the log and the target, with no Python loop over rounds (BENCHMARKS §10)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError
from recsmith.ope.bootstrap import percentile_intervals
from recsmith.ope.estimators import (
    ESTIMATORS,
    Impressions,
    check_estimators,
    choose_tau,
    effective_sample_size,
    ratio_parts,
)
from recsmith.ope.inputs import check_log, check_target, slot_keys
from recsmith.ope.reward_model import Rows, assign_folds, cross_fitted

#: Warn when the effective sample size is below this share of the logged impressions.
ESS_WARN_SHARE = 0.1
#: Warn when the target puts more than this mass per impression on actions never logged.
SUPPORT_WARN_MASS = 1e-9


@dataclass(frozen=True, slots=True)
class OpeReport:
    """Estimates with intervals, and what the engine knows about how far to trust them."""

    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    rounds: int
    impressions: int
    ess: float
    unsupported_mass: float
    switch_tau: float | None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """Undefined numbers (SNIPS when no logged action has target mass, τ with no positive
        weight) are null, so the line stays valid JSON."""
        payload: dict[str, object] = {
            name: {
                "value": _finite(self.values[name]),
                "ci": [_finite(b) for b in self.intervals[name]],
            }
            for name in self.values
        }
        payload.update(
            ess=self.ess,
            rounds=self.rounds,
            impressions=self.impressions,
            unsupported_mass=self.unsupported_mass,
            switch_tau=None if self.switch_tau is None else _finite(self.switch_tau),
            warnings=self.warnings,
        )
        return payload


def estimate(
    log: pd.DataFrame,
    target: pd.DataFrame,
    estimators: tuple[str, ...] = ESTIMATORS,
    *,
    clip: float | None = None,
    switch_tau: float | None = None,
    folds: int = 5,
    shrinkage: float = 10.0,
    bootstrap: int = 1000,
    seed: int = 0,
) -> OpeReport:
    """Estimate the target's reward per impression with each of ``estimators`` (definitions in
    :mod:`recsmith.ope.estimators`); ``clip`` caps the IPS weight, ``switch_tau`` is Switch-DR's
    threshold (chosen from the data when None); ``folds`` and ``shrinkage`` set the cross-fitted
    reward model; intervals are 95 % percentile intervals from ``bootstrap`` replicates."""
    check_estimators(estimators)
    if clip is not None and not clip > 0:
        raise ValidationError("--clip", "must be > 0")
    if switch_tau is not None and not switch_tau > 0:
        raise ValidationError("--switch-tau", "must be > 0")
    if bootstrap < 1:
        raise ValidationError("--bootstrap", "must be at least 1")
    log = log.reset_index(drop=True).copy()
    target = target.reset_index(drop=True).copy()
    contexts = check_log(log)
    check_target(target, log)
    keys = slot_keys(log)
    warnings: list[str] = []

    imp, joined = _impressions(log, target, keys, contexts, folds, seed, shrinkage, warnings)
    unsupported_mass = _unsupported_mass(log, joined, keys)
    ess = effective_sample_size(imp.weight)
    warnings += _weak_estimate_warnings(unsupported_mass, ess, len(log), "position" in keys)

    tau = None
    if "switch-dr" in estimators:
        tau = float(switch_tau) if switch_tau is not None else choose_tau(imp)
    parts = [
        ratio_parts(
            name, imp, clip=np.inf if clip is None else clip, tau=np.inf if tau is None else tau
        )
        for name in estimators
    ]
    num = np.stack([p[0] for p in parts])
    den = np.stack([p[1] for p in parts])
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0: SNIPS with Σw = 0, null in JSON
        values = num.sum(axis=1) / den.sum(axis=1)
    bounds = percentile_intervals(num, den, replicates=bootstrap, seed=seed)
    return OpeReport(
        values={name: float(v) for name, v in zip(estimators, values, strict=True)},
        intervals={
            name: (float(lo), float(hi)) for name, (lo, hi) in zip(estimators, bounds, strict=True)
        },
        rounds=imp.n_rounds,
        impressions=len(log),
        ess=ess,
        unsupported_mass=unsupported_mass,
        switch_tau=tau,
        warnings=warnings,
    )


def _impressions(
    log: pd.DataFrame,
    target: pd.DataFrame,
    keys: list[str],
    contexts: list[str],
    folds: int,
    seed: int,
    shrinkage: float,
    warnings: list[str],
) -> tuple[Impressions, pd.DataFrame]:
    """Join the target onto the logged impressions, fit the cross-fitted reward model, and
    return the per-impression arrays with the joined target rows (one per target row of a
    logged impression); says in ``warnings`` what did not join."""
    round_codes, round_ids = pd.factorize(log["round"])
    n = len(log)
    log = log.assign(_slot=np.arange(n), _round=round_codes)
    target = target[[*keys, "action", "probability"]]  # other columns (say an x_*) are not used
    joined = target.merge(log[[*keys, "_slot", "_round", *contexts]], on=keys, how="inner")
    if len(target) > len(joined):
        warnings.append(
            f"{len(target) - len(joined)} target rows are for rounds/positions not in the log "
            "and were ignored"
        )
    uncovered = int((np.bincount(joined["_slot"], minlength=n) == 0).sum())
    if uncovered:
        warnings.append(
            f"{uncovered} logged impressions have no target row: the target is taken to show "
            "nothing there (reward 0)"
        )
    at_logged = log[[*keys, "action"]].merge(target, on=[*keys, "action"], how="left")

    action_codes, _ = pd.factorize(pd.concat([log["action"], joined["action"]], ignore_index=True))
    if "position" in keys:
        position_codes, _ = pd.factorize(
            pd.concat([log["position"], joined["position"]], ignore_index=True)
        )
    else:
        position_codes = np.zeros(len(action_codes), dtype=np.int64)
    logged_rows = Rows(
        round_codes, action_codes[:n], position_codes[:n], log[contexts].to_numpy(np.float64)
    )
    target_rows = Rows(
        joined["_round"].to_numpy(),
        action_codes[n:],
        position_codes[n:],
        joined[contexts].to_numpy(np.float64),
    )
    reward = log["reward"].to_numpy()
    q_logged, q_joined = cross_fitted(
        logged_rows,
        reward,
        [logged_rows, target_rows],
        assign_folds(len(round_ids), folds, seed),
        shrinkage=shrinkage,
    )
    imp = Impressions(
        round=round_codes,
        weight=at_logged["probability"].fillna(0.0).to_numpy() / log["propensity"].to_numpy(),
        reward=reward,
        q_logged=q_logged,
        q_target=np.bincount(
            joined["_slot"], weights=joined["probability"].to_numpy() * q_joined, minlength=n
        ),
        n_rounds=len(round_ids),
    )
    return imp, joined


def _weak_estimate_warnings(
    unsupported_mass: float, ess: float, n: int, positions: bool
) -> list[str]:
    """What makes these estimates weak: support deficiency and a small effective sample."""
    out = []
    if unsupported_mass > SUPPORT_WARN_MASS:
        out.append(
            f"support deficiency: the target puts {unsupported_mass:.3g} of its mass per "
            "impression on actions never logged"
            + (" at that position" if positions else "")
            + "; IPS and SNIPS cannot see their rewards (IPS misses that mass times their mean "
            "reward; SNIPS rescales the rest), DM and DR rely on the reward model there"
        )
    if ess < ESS_WARN_SHARE * n:
        out.append(
            f"effective sample size {ess:.1f} is under {ESS_WARN_SHARE:.0%} of the {n} logged "
            "impressions: the target differs a lot from the logging policy, so the weighted "
            "estimates (IPS, SNIPS, DR) rest on few rows and their intervals may be too narrow"
        )
    return out


def _unsupported_mass(log: pd.DataFrame, joined: pd.DataFrame, keys: list[str]) -> float:
    """Mean target mass per logged impression on actions that appear nowhere in the log (at that
    position, when there are positions)."""
    scope = ["position", "action"] if "position" in keys else ["action"]
    seen = log[scope].drop_duplicates().assign(_seen=True)
    marked = joined[[*scope, "probability"]].merge(seen, on=scope, how="left")
    return float(marked["probability"].where(marked["_seen"].isna(), 0.0).sum()) / len(log)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None
