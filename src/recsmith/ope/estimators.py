"""The estimators, each written as a ratio of per-round sums so one bootstrap serves them all.

Notation, per logged impression i (a round, or a (round, position) pair when the log has
positions) with logged action aᵢ, reward rᵢ and logging propensity π₀(aᵢ | i):

* wᵢ = π(aᵢ | i) / π₀(aᵢ | i), the importance weight of the target policy π;
* q̂ᵢ = q̂(i, aᵢ), the cross-fitted reward model at the logged action (``reward_model``);
* d̂ᵢ = Σₐ π(a | i) q̂(i, a), the model's value of the target's distribution at i.

The estimand is the target's **expected reward per impression** (per round when the log has no
positions), over the n logged impressions:

* IPS (Horvitz–Thompson; Precup et al. 2000):  (1/n) Σ min(wᵢ, C) rᵢ  (C = ``clip``, ∞ by
  default; clipping the weight from above trades bias for variance, Ionides 2008);
* SNIPS (Swaminathan & Joachims 2015, "The self-normalized estimator for counterfactual
  learning"):  Σ wᵢ rᵢ / Σ wᵢ  (unclipped);
* DM (direct method):  (1/n) Σ d̂ᵢ;
* DR (Dudík, Langford & Li 2011, "Doubly robust policy evaluation and learning"):
  (1/n) Σ [d̂ᵢ + wᵢ (rᵢ − q̂ᵢ)]  (unclipped, as in the paper);
* Switch-DR (Wang, Agarwal & Dudík 2017, "Optimal and adaptive off-policy evaluation in
  contextual bandits"):  (1/n) Σ [d̂ᵢ + wᵢ (rᵢ − q̂ᵢ) 1{wᵢ ≤ τ}]: DR where the weight is at most
  τ, the model alone where it is larger. This is the Open Bandit Pipeline's ``SwitchDR`` form;
  the paper switches per action a, which needs π₀ for actions that were not logged, which a log
  does not hold. τ is ``switch_tau`` or else :func:`choose_tau`.

With positions, each (round, position) is one logged action whose propensity is the logging
policy's marginal probability of that action at that position; this assumes the reward at a
position depends only on the action there (independent, position-based examination), not on the
rest of the list. IPS, DM, DR and Switch-DR are then unbiased per impression under that
assumption; SNIPS is consistent. Rounds are the sampling unit (the bootstrap resamples rounds),
so impressions of one list are never treated as independent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.errors import ValidationError

ESTIMATORS = ("ips", "snips", "dm", "dr", "switch-dr")


def check_estimators(names: tuple[str, ...], option: str = "--estimators") -> None:
    """Refuse an empty or unknown name, naming ``option`` (``evaluate`` calls it ``--ope``), so
    that a command can check its names before it reads any log."""
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown or not names:
        raise ValidationError(
            option,
            f"unknown {', '.join(unknown) or '(none)'}: choose from {', '.join(ESTIMATORS)}",
        )


#: Weight quantiles :func:`choose_tau` tries (1.0 = the largest weight, i.e. plain DR).
TAU_QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True, slots=True)
class Impressions:
    """One entry per logged impression; ``round`` codes index the rounds 0 … n_rounds − 1."""

    round: np.ndarray
    weight: np.ndarray
    reward: np.ndarray
    q_logged: np.ndarray
    q_target: np.ndarray
    n_rounds: int


def ratio_parts(
    name: str, imp: Impressions, *, clip: float = np.inf, tau: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Per-round numerator and denominator sums: the estimate is Σ num / Σ den."""
    w, r = imp.weight, imp.reward
    if name == "ips":
        contribution, denominator = np.minimum(w, clip) * r, None
    elif name == "snips":
        contribution, denominator = w * r, w
    elif name == "dm":
        contribution, denominator = imp.q_target, None
    elif name == "dr":
        contribution, denominator = imp.q_target + w * (r - imp.q_logged), None
    elif name == "switch-dr":
        contribution = imp.q_target + np.where(w <= tau, w * (r - imp.q_logged), 0.0)
        denominator = None
    else:
        raise KeyError(name)
    num = np.bincount(imp.round, weights=contribution, minlength=imp.n_rounds)
    if denominator is None:
        den = np.bincount(imp.round, minlength=imp.n_rounds).astype(np.float64)
    else:
        den = np.bincount(imp.round, weights=denominator, minlength=imp.n_rounds)
    return num, den


def choose_tau(imp: Impressions) -> float:
    """τ for Switch-DR when none is given: of the quantiles ``TAU_QUANTILES`` of the positive
    weights, the one with the smallest estimated MSE: the variance of the mean contribution
    plus the squared estimated bias, the bias being the mean of the correction it drops
    (V_DR − V_switch). In the spirit of Wang et al. 2017 §4.2, who bound the bias instead (their
    bound needs π₀ of unlogged actions, which a log does not hold). Like the reward model, τ is
    held fixed across bootstrap replicates."""
    w, residual = imp.weight, imp.reward - imp.q_logged
    positive = w[w > 0]
    if not positive.size:
        return np.inf
    best, best_mse = np.inf, np.inf
    for tau in np.unique(np.quantile(positive, TAU_QUANTILES)):
        kept = w <= tau
        contribution = imp.q_target + np.where(kept, w * residual, 0.0)
        bias = float(np.mean(np.where(kept, 0.0, w * residual)))
        mse = float(contribution.var()) / len(w) + bias**2
        if mse < best_mse:
            best, best_mse = float(tau), mse
    return best


def effective_sample_size(weight: np.ndarray) -> float:
    """Kish's effective sample size of the importance weights, (Σ w)² / Σ w²: how many
    impressions an equally weighted sample of the same information would hold."""
    total_sq = float(np.square(weight).sum())
    return float(weight.sum()) ** 2 / total_sq if total_sq > 0 else 0.0
