"""The statistics of an online experiment: per-variant estimates, lifts, sample-ratio mismatch,
an always-valid sequential p-value and sample-size planning.

Everything works on sufficient statistics (counts, sums, sums of squares and cross-products), so
the same formulas serve a report over one ``per_unit`` frame and a simulation of thousands of
experiments at once (arrays of any shape). The randomisation unit is the user (or session), not
the impression: impressions of one user are correlated, so CTR = clicks / impressions is a ratio
of two per-unit means and its variance comes from the delta method over units (Deng, Knoblich &
Lu 2018, "Applying the Delta Method in Metric Analytics"), never from a binomial over impressions,
which would understate it and make every lift look significant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from recsmith.errors import ValidationError

#: Columns ``decisions.outcomes.per_unit`` returns (the loop contract); what ``summarize`` needs.
PER_UNIT_COLUMNS = ("unit", "variant", "impressions", "clicks", "purchases", "revenue")
#: The metrics compared between variants: CTR (ratio over units), conversion, revenue per unit.
METRICS = ("ctr", "conversion", "revenue_per_unit")
#: Mixture standard deviations of the mSPRT, on the relative-lift scale, mixed with equal weights.
#: One scale alone is slow wherever it is wrong: N(0, 0.05^2) gathers evidence only once the
#: lift's standard error falls below ~0.05, so a +200 % lift on a few hundred users would read
#: "no evidence" for thousands more; 0.2 and 1 answer large effects early, at the cost of at most
#: a factor of three in the likelihood ratio at the designed (~5 %) effect.
MSPRT_TAUS = (0.05, 0.2, 1.0)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate, its standard error and its 95 % interval."""

    value: float
    se: float
    ci: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One metric of a treatment against the control: relative lift (treatment / control - 1)
    with its 95 % interval, the fixed-horizon p-value and the always-valid one."""

    metric: str
    variant: str
    control: str
    lift: float
    ci: tuple[float, float]
    p: float
    p_sequential: float


def _z(alpha: float) -> float:
    return float(st.norm.ppf(1 - alpha / 2))


def mean_estimate(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and its standard error from ``n`` units, the sum ``s`` and sum of squares ``ss``
    (sample variance with n - 1)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        var = np.maximum(ss - n * mean**2, 0.0) / (n - 1)
        return mean, np.sqrt(var / n)


def ratio_estimate(
    n: np.ndarray,
    sx: np.ndarray,
    sy: np.ndarray,
    sxx: np.ndarray,
    syy: np.ndarray,
    sxy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Ratio of means r = mean(x) / mean(y) over units and its delta-method standard error:
    Var(r) ~ (Var x - 2 r Cov(x, y) + r^2 Var y) / (n mean(y)^2)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = sx / n, sy / n
        vx = (sxx - n * mx * mx) / (n - 1)
        vy = (syy - n * my * my) / (n - 1)
        cxy = (sxy - n * mx * my) / (n - 1)
        r = mx / my
        var = np.maximum(vx - 2 * r * cxy + r * r * vy, 0.0) / (n * my * my)
        return r, np.sqrt(var)


def relative_lift(
    treatment: np.ndarray, se_t: np.ndarray, control: np.ndarray, se_c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relative lift t / c - 1 of two independent estimates, its delta-method standard error
    (t / c) * sqrt((se_t / t)^2 + (se_c / c)^2), and the two-sided p-value of a z test of
    lift = 0 on that scale (so the 95 % interval excludes 0 exactly when p < 0.05)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = treatment / control
        se = np.sqrt(se_t**2 / control**2 + treatment**2 * se_c**2 / control**4)
        p = 2 * st.norm.sf(np.abs(ratio - 1) / se)
        return ratio - 1, se, p


def msprt_p(
    estimate: np.ndarray, se: np.ndarray, taus: tuple[float, ...] = MSPRT_TAUS
) -> np.ndarray:
    """Always-valid p-value of H0: effect = 0 from the mixture sequential probability ratio test
    with a normal mixture (Johari, Koomen, Pekelis & Walsh 2017, "Peeking at A/B tests: why it
    matters, and what to do about it", KDD; the two-sample normal case).

    With V = se^2, the mixture N(0, tau^2) gives the likelihood ratio
    Lambda_tau = sqrt(V / (V + tau^2)) * exp(tau^2 * estimate^2 / (2 V (V + tau^2))).
    Each is a martingale under H0, and so is their equal-weight average over ``taus`` (a scale
    mixture of normals is a mixing distribution too), so P(ever Lambda >= 1/alpha) <= alpha
    (Ville): the p-value 1/Lambda may be looked at after every batch of data and acted on when
    it first drops below alpha, without inflating false positives. Take the running minimum over
    looks for a monotone p-value."""
    v = np.asarray(se, dtype=float)[..., None] ** 2
    t2 = np.asarray(taus, dtype=float) ** 2
    theta = np.asarray(estimate, dtype=float)[..., None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(v / (v + t2)) + t2 * theta**2 / (2 * v * (v + t2))
        # log of the mean of the ratios, without overflowing exp
        top = np.max(log_lr, axis=-1)
        log_mean = top + np.log(np.mean(np.exp(log_lr - top[..., None]), axis=-1))
        p = np.minimum(1.0, np.exp(-log_mean))
    return np.where(np.isfinite(p), p, 1.0)


def srm_p(units: dict[str, int], weights: dict[str, float]) -> float:
    """Sample-ratio-mismatch test: the chi-square p-value of the units per variant against the
    configured weights. A tiny p (< 0.001 by convention) means assignment or logging is broken
    and no other number of the experiment can be trusted."""
    names = list(weights)
    observed = np.array([units.get(name, 0) for name in names], dtype=float)
    total = observed.sum()
    if total == 0 or len(names) < 2:
        return 1.0
    share = np.array([weights[name] for name in names], dtype=float)
    expected = total * share / share.sum()
    return float(st.chisquare(observed, expected).pvalue)


def plan(baseline_ctr: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Units per variant to detect a relative CTR lift of ``mde`` with a two-sided test at
    ``alpha`` and the given power, for units of one impression each (two proportions:
    (z_{1-alpha/2} + z_power)^2 (p1 q1 + p2 q2) / (p2 - p1)^2). Units that see several
    impressions with correlated clicks need fewer or more; ``units_needed`` answers that from
    the observed variance once an experiment runs."""
    for name, value, low, high in (
        ("--baseline-ctr", baseline_ctr, 0.0, 1.0),
        ("--alpha", alpha, 0.0, 1.0),
        ("--power", power, 0.0, 1.0),
    ):
        if not low < value < high:
            raise ValidationError(name, f"must be between {low:g} and {high:g} (exclusive)")
    p2 = baseline_ctr * (1 + mde)
    if mde == 0 or not 0 < p2 < 1:
        raise ValidationError("--mde", "must be a non-zero relative lift keeping the CTR in (0, 1)")
    z = _z(alpha) + float(st.norm.ppf(power))
    variance = baseline_ctr * (1 - baseline_ctr) + p2 * (1 - p2)
    return int(np.ceil(z**2 * variance / (p2 - baseline_ctr) ** 2))


def units_needed(
    control: float,
    se_c: float,
    n_c: int,
    se_t: float,
    n_t: int,
    mde: float,
    alpha: float,
    power: float,
) -> int:
    """Units per variant for the observed per-unit variances to detect a relative lift of
    ``mde`` on a control mean of ``control`` (the fixed-horizon formula with sigma^2 = n se^2)."""
    sigma2 = n_c * se_c**2 + n_t * se_t**2
    z = _z(alpha) + float(st.norm.ppf(power))
    if not np.isfinite(sigma2) or control == 0:
        return 0
    return int(np.ceil(z**2 * sigma2 / (mde * control) ** 2))


def _moments(frame: pd.DataFrame) -> pd.DataFrame:
    """Per variant: units and the sums the estimators need (one groupby, no per-unit loop)."""
    missing = [c for c in PER_UNIT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError("per_unit", f"missing column(s) {', '.join(missing)}")
    f = pd.DataFrame(
        {
            "variant": frame["variant"].astype(str),
            "i": frame["impressions"].astype(float),
            "c": frame["clicks"].astype(float),
            "b": (frame["purchases"] > 0).astype(float),
            "r": frame["revenue"].astype(float),
        }
    )
    f["ii"], f["cc"], f["ci"] = f.i * f.i, f.c * f.c, f.c * f.i
    f["rr"] = f.r * f.r
    grouped = f.groupby("variant", sort=True)
    out = grouped[["i", "c", "b", "r", "ii", "cc", "ci", "rr"]].sum()
    out["n"] = grouped.size()
    return out


def _interval(value: float, se: float, alpha: float = 0.05) -> tuple[float, float]:
    half = _z(alpha) * se
    return (value - half, value + half)


def summarize(frame: pd.DataFrame) -> dict[str, dict[str, Estimate | int]]:
    """Per variant: ``units``, ``impressions``, ``clicks`` and an ``Estimate`` of ``ctr``,
    ``conversion`` (units with a purchase / units) and ``revenue_per_unit``."""
    m = _moments(frame)
    ctr, ctr_se = ratio_estimate(m.n, m.c, m.i, m.cc, m.ii, m.ci)
    conv, conv_se = mean_estimate(m.n, m.b, m.b)  # b is 0/1: b^2 = b
    rpu, rpu_se = mean_estimate(m.n, m.r, m.rr)
    out: dict[str, dict[str, Estimate | int]] = {}
    for k, name in enumerate(m.index):
        est = {
            "ctr": (float(ctr.iloc[k]), float(ctr_se.iloc[k])),
            "conversion": (float(conv.iloc[k]), float(conv_se.iloc[k])),
            "revenue_per_unit": (float(rpu.iloc[k]), float(rpu_se.iloc[k])),
        }
        out[str(name)] = {
            "units": int(m.n.iloc[k]),
            "impressions": int(m.i.iloc[k]),
            "clicks": int(m.c.iloc[k]),
            **{key: Estimate(v, s, _interval(v, s)) for key, (v, s) in est.items()},
        }
    return out


def compare(
    summary: dict[str, dict[str, Estimate | int]],
    control: str,
    taus: tuple[float, ...] = MSPRT_TAUS,
) -> list[Comparison]:
    """Every treatment against ``control`` on every metric of ``METRICS``."""
    if control not in summary:
        return []
    base = summary[control]
    out = []
    for name, row in summary.items():
        if name == control:
            continue
        for metric in METRICS:
            t, c = row[metric], base[metric]
            assert isinstance(t, Estimate) and isinstance(c, Estimate)
            lift, se, p = relative_lift(
                np.float64(t.value), np.float64(t.se), np.float64(c.value), np.float64(c.se)
            )
            seq = msprt_p(lift, se, taus)
            lo, hi = _interval(float(lift), float(se))
            out.append(
                Comparison(metric, name, control, float(lift), (lo, hi), float(p), float(seq))
            )
    return out


@dataclass(frozen=True, slots=True)
class RateDifference:
    """Treatment's rate minus control's (absolute, e.g. error rates), its interval and the
    two-proportion test's p-value."""

    difference: float
    ci: tuple[float, float]
    p: float


def rate_difference(
    hits_t: int, n_t: int, hits_c: int, n_c: int, alpha: float = 0.05
) -> RateDifference:
    """``hits_t / n_t - hits_c / n_c`` with the pooled two-proportion z-test's two-sided p and the
    Agresti–Caffo interval (one hit and one miss added to each arm). Why not the plain Wald
    interval: error rates sit near 0, where it collapses to a width of 0 whenever both arms have
    no error yet, and would pass a guardrail on ten requests. Both counts must be positive."""
    d = hits_t / n_t - hits_c / n_c
    pooled = (hits_t + hits_c) / (n_t + n_c)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p = 1.0 if se0 == 0 else float(2 * st.norm.sf(abs(d) / se0))
    at, ac = (hits_t + 1) / (n_t + 2), (hits_c + 1) / (n_c + 2)
    se = np.sqrt(at * (1 - at) / (n_t + 2) + ac * (1 - ac) / (n_c + 2))
    lo, hi = _interval(float(at - ac), float(se), alpha)
    return RateDifference(float(d), (lo, hi), p)
