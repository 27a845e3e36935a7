"""An experiment's report: per-variant numbers, lifts, sample-ratio mismatch, guardrails and one
verdict line, as text, one JSON line, or a self-contained HTML page.

``build_report`` works on a ``per_unit`` frame (the columns ``decisions.outcomes.per_unit``
returns) and, for the serving guardrails, the decisions' latencies (``Decision.latency_ms``: from
the request's arrival to the response built) and the requests and failures counted per variant
(``decisions.requests``); ``experiment_report`` reads all three from the store. Decisions are taken
on the always-valid p-value (``stats.msprt_p``) because the report is meant to be looked at daily:
the fixed-horizon p is shown beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.config import DecisionSettings
from recsmith.decisions.outcomes import per_unit, shown_and_attributed
from recsmith.experiments import stats
from recsmith.experiments.adaptive_report import (
    ADAPTIVE_NOTE,
    OffPolicy,
    adaptive_verdict,
    list_rewards,
    off_policy,
)
from recsmith.experiments.spec import Experiment
from recsmith.store.base import EventStore

#: Below this SRM p-value the split is broken and no other number is trusted (the usual cut).
SRM_ALPHA = 0.001
#: Timed decisions per variant before the p99 guardrail decides: with fewer, the "p99" is
#: an interpolation between the slowest few requests, one slow request decides it.
MIN_LATENCIES = 100


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the report decides with: the test level, the smallest lift worth detecting, and the
    guardrails' margins: revenue and p99 latency relative (0.02 = treatment may be at most 2 %
    worse), the error rate absolute (0.005 = at most 0.5 percentage points above control's)."""

    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.05
    revenue_margin: float = 0.02
    latency_margin: float = 0.10
    error_margin: float = 0.005


@dataclass(frozen=True, slots=True)
class Guardrail:
    name: str
    variant: str
    status: str  # "pass" | "fail" | "pending" (not enough data) | "not recorded"
    detail: str


@dataclass(frozen=True, slots=True)
class Report:
    experiment: Experiment
    variants: dict[str, dict[str, Any]]
    srm_p: float
    comparisons: list[stats.Comparison]
    guardrails: list[Guardrail]
    verdicts: list[str]
    notes: list[str] = field(default_factory=list)
    off_policy: OffPolicy | None = None  # adaptive allocation only (``adaptive_report``)

    def to_json(self) -> dict[str, Any]:
        variants = {}
        for name, row in self.variants.items():
            out: dict[str, Any] = {}
            for key, value in row.items():
                if isinstance(value, stats.Estimate):
                    out[key] = _clean(value.value)
                    out[f"{key}_ci"] = [_clean(value.ci[0]), _clean(value.ci[1])]
                else:
                    out[key] = value
            variants[name] = out
        return {
            "experiment": self.experiment.name,
            "control": self.experiment.control,
            "weights": self.experiment.weights,
            "variants": variants,
            "srm_p": _clean(self.srm_p),
            "comparisons": [
                {
                    "metric": c.metric,
                    "variant": c.variant,
                    "control": c.control,
                    "lift": _clean(c.lift),
                    "ci": [_clean(c.ci[0]), _clean(c.ci[1])],
                    "p": _clean(c.p),
                    "p_sequential": _clean(c.p_sequential),
                }
                for c in self.comparisons
            ],
            "guardrails": [
                {"name": g.name, "variant": g.variant, "status": g.status, "detail": g.detail}
                for g in self.guardrails
            ],
            "verdict": self.verdicts,
            "notes": self.notes,
            "allocation": self.experiment.allocation,
            "off_policy": None if self.off_policy is None else _off_policy_json(self.off_policy),
        }


def _off_policy_json(found: OffPolicy) -> dict[str, Any]:
    return {
        "lists": found.lists,
        "unlogged": found.unlogged,
        "variants": {
            variant: {
                name: {"value": _clean(value), "ci": [_clean(ci[0]), _clean(ci[1])]}
                for name, (value, ci) in by.items()
            }
            for variant, by in found.values.items()
        },
    }


def _clean(x: float) -> float | None:
    """JSON has no NaN: an undefined number (no units yet) is null."""
    return None if x is None or not math.isfinite(x) else float(x)


def build_report(
    experiment: Experiment,
    per_unit: pd.DataFrame,
    latencies: pd.DataFrame | None = None,
    thresholds: Thresholds = Thresholds(),
    requests: pd.DataFrame | None = None,
    adaptive: OffPolicy | None = None,
) -> Report:
    """The report of ``experiment`` on ``per_unit`` (one row per unit and variant).
    ``latencies``: one row per timed decision with ``variant`` and ``latency_ms``; ``requests``:
    one row per variant with ``requests`` and ``errors`` (``EventStore.request_counts``). None
    for either: not recorded, and its guardrail says so. ``adaptive``: the off-policy estimates
    of an adaptively allocated experiment (``adaptive_report``), on which its verdict rests."""
    names = [v.name for v in experiment.variants]
    frame = per_unit[per_unit["variant"].astype(str).isin(names)]
    summary = stats.summarize(frame)
    units = {name: int(summary[name]["units"]) if name in summary else 0 for name in names}
    srm = stats.srm_p(units, experiment.weights)
    comparisons = stats.compare(summary, experiment.control)
    guardrails = _guardrails(experiment, comparisons, latencies, requests, thresholds)
    notes = [
        "p99 latency: from the request's arrival to the response built, per timed decision; "
        "error rate: 5xx answers / requests served under the variant (4xx not counted)"
    ]
    if experiment.adaptive:
        notes.append(
            ADAPTIVE_NOTE.format(
                kpi=experiment.kpi, floor=experiment.min_share, burn_in=experiment.burn_in
            )
        )
        verdicts = [
            adaptive_verdict(
                experiment,
                t,
                adaptive,
                [g.name for g in guardrails if g.variant == t and g.status == "fail"],
            )
            for t in names[1:]
        ]
        return Report(
            experiment, summary, math.nan, comparisons, guardrails, verdicts, notes, adaptive
        )
    verdicts = [
        _verdict(experiment, t, summary, comparisons, guardrails, srm, thresholds)
        for t in names[1:]
    ]
    return Report(experiment, summary, srm, comparisons, guardrails, verdicts, notes)


def _guardrails(
    experiment: Experiment,
    comparisons: list[stats.Comparison],
    latencies: pd.DataFrame | None,
    requests: pd.DataFrame | None,
    th: Thresholds,
) -> list[Guardrail]:
    out = []
    p99 = _p99(latencies)
    counts = _counts(requests)
    control = experiment.control
    for v in experiment.variants[1:]:
        rev = next(
            (c for c in comparisons if c.variant == v.name and c.metric == "revenue_per_unit"), None
        )
        if rev is None:
            out.append(Guardrail("revenue_per_unit", v.name, "pending", "no units yet"))
        elif not math.isfinite(rev.ci[0]):  # one unit has no variance
            out.append(
                Guardrail("revenue_per_unit", v.name, "pending", "too few units for an interval")
            )
        else:
            ci = f"lift {rev.lift:+.1%}, CI [{rev.ci[0]:+.1%}, {rev.ci[1]:+.1%}]"
            if rev.ci[0] >= -th.revenue_margin:
                status = "pass"
            elif rev.ci[1] < 0 and rev.lift < -th.revenue_margin:
                status = "fail"
            else:
                status = "pending"
            out.append(
                Guardrail(
                    "revenue_per_unit",
                    v.name,
                    status,
                    f"{ci}; fails below -{th.revenue_margin:.0%}",
                )
            )
        out.append(_latency_guardrail(p99, control, v.name, th))
        out.append(_error_guardrail(counts, control, v.name, th))
    return out


def _latency_guardrail(
    p99: dict[str, tuple[float, int]] | None, control: str, variant: str, th: Thresholds
) -> Guardrail:
    """Fail when the variant's p99 exceeds control's by more than ``latency_margin``."""
    if p99 is None:
        return Guardrail("p99_latency", variant, "not recorded", "no latency per decision")
    (c, n_c), (t, n_t) = p99.get(control, (math.nan, 0)), p99.get(variant, (math.nan, 0))
    if min(n_c, n_t) < MIN_LATENCIES:
        detail = f"{n_t} and {n_c} (control) timed decisions; needs {MIN_LATENCIES} each"
        return Guardrail("p99_latency", variant, "pending", detail)
    limit = c * (1 + th.latency_margin)
    status = "pass" if t <= limit else "fail"
    detail = f"{t:.1f} ms vs control {c:.1f} ms (limit {limit:.1f}; {n_t} and {n_c} decisions)"
    return Guardrail("p99_latency", variant, status, detail)


def _error_guardrail(
    counts: dict[str, tuple[int, int]] | None, control: str, variant: str, th: Thresholds
) -> Guardrail:
    """Pass when the interval of (variant's error rate - control's) stays below
    ``error_margin``; fail when the two-proportion test finds the variant worse and the
    difference is beyond the margin; pending in between."""
    if counts is None:
        return Guardrail("error_rate", variant, "not recorded", "no request counts")
    (n_c, e_c), (n_t, e_t) = counts.get(control, (0, 0)), counts.get(variant, (0, 0))
    if n_c == 0 or n_t == 0:
        return Guardrail("error_rate", variant, "pending", "no requests yet")
    diff = stats.rate_difference(e_t, n_t, e_c, n_c, th.alpha)
    if diff.ci[1] <= th.error_margin:
        status = "pass"
    elif diff.p < th.alpha and diff.difference > th.error_margin:
        status = "fail"
    else:
        status = "pending"
    detail = (
        f"{e_t}/{n_t} = {e_t / n_t:.2%} vs control {e_c}/{n_c} = {e_c / n_c:.2%}: "
        f"{diff.difference * 100:+.2f} pp, CI [{diff.ci[0] * 100:+.2f}, {diff.ci[1] * 100:+.2f}], "
        f"p = {diff.p:.3g}; fails above +{th.error_margin * 100:.2f} pp"
    )
    return Guardrail("error_rate", variant, status, detail)


def _p99(latencies: pd.DataFrame | None) -> dict[str, tuple[float, int]] | None:
    """Per variant: p99 (linear interpolation, as ``numpy.percentile``) and the count."""
    if latencies is None or "latency_ms" not in latencies:
        return None
    grouped = latencies.groupby(latencies["variant"].astype(str))["latency_ms"]
    p99, n = grouped.quantile(0.99), grouped.count()
    return {str(k): (float(p99[k]), int(n[k])) for k in p99.index}


def _counts(requests: pd.DataFrame | None) -> dict[str, tuple[int, int]] | None:
    if requests is None:
        return None
    return {
        str(v): (int(n), int(e))
        for v, n, e in zip(
            requests["variant"], requests["requests"], requests["errors"], strict=True
        )
    }


def _verdict(
    experiment: Experiment,
    treatment: str,
    summary: dict[str, dict[str, Any]],
    comparisons: list[stats.Comparison],
    guardrails: list[Guardrail],
    srm: float,
    th: Thresholds,
) -> str:
    """One line: what to do with ``treatment`` now."""
    ctr = next((c for c in comparisons if c.variant == treatment and c.metric == "ctr"), None)
    if srm < SRM_ALPHA:
        return (
            f"{treatment}: do not trust this experiment: sample ratio mismatch (p = {srm:.2g}); "
            "the split or the logging is broken"
        )
    if ctr is None or not math.isfinite(ctr.lift):
        return f"{treatment}: keep running: no impressions yet"
    n_c, n_t = int(summary[experiment.control]["units"]), int(summary[treatment]["units"])
    if not (math.isfinite(ctr.ci[0]) and math.isfinite(ctr.ci[1])):  # one unit has no variance
        return (
            f"keep running: {treatment}: too few units for an interval ({n_c} control, {n_t} "
            f"{treatment}; needs at least 2 each)"
        )
    failed = [g.name for g in guardrails if g.variant == treatment and g.status == "fail"]
    text = (
        f"{ctr.lift:+.1%} CTR, CI [{ctr.ci[0]:+.1%}, {ctr.ci[1]:+.1%}], "
        f"p = {ctr.p_sequential:.3g} (always-valid)"
    )
    if failed:
        return f"stop {treatment}: guardrail {', '.join(failed)} failed ({text})"
    if ctr.p_sequential <= th.alpha:
        if ctr.lift > 0:
            return f"promote {treatment}: {text}"
        return f"stop {treatment}: {text}"
    c, t = summary[experiment.control]["ctr"], summary[treatment]["ctr"]
    needed = stats.units_needed(c.value, c.se, n_c, t.se, n_t, th.mde, th.alpha, th.power)
    share = experiment.weights
    # units the whole experiment still needs for both arms to reach ``needed``, at the weights
    more = max(
        0,
        math.ceil((needed - n_c) / share[experiment.control]),
        math.ceil((needed - n_t) / share[treatment]),
    )
    if more > 0:
        return (
            f"keep running: {treatment}: {more} more units (all variants) needed for the "
            f"{th.mde:.0%} MDE ({text})"
        )
    return f"no significant difference: {treatment}: {text}; a {th.mde:.0%} lift would show"


def text_lines(report: Report) -> list[str]:
    """The report as plain lines (the CLI prints them; tables via ``rich`` there)."""
    lines = [f"experiment {report.experiment.name} (control: {report.experiment.control})"]
    for name, row in report.variants.items():
        parts = [f"{name}: {row['units']} units, {row['impressions']} impressions"]
        for metric in stats.METRICS:
            e = row[metric]
            parts.append(f"{metric} {_fmt(e.value)} [{_fmt(e.ci[0])}, {_fmt(e.ci[1])}]")
        lines.append("  " + "; ".join(parts))
    lines.extend(_srm_lines(report))
    for c in report.comparisons:
        lines.append(
            f"  {c.metric} {c.variant} vs {c.control}: {c.lift:+.2%} "
            f"[{c.ci[0]:+.2%}, {c.ci[1]:+.2%}] p = {c.p:.3g}, always-valid p = {c.p_sequential:.3g}"
        )
    for g in report.guardrails:
        lines.append(f"  guardrail {g.name} ({g.variant}): {g.status.upper()}: {g.detail}")
    lines.extend(f"note: {n}" for n in report.notes)
    lines.extend(report.verdicts)
    return lines


def _srm_lines(report: Report) -> list[str]:
    """The sample-ratio check, or for adaptive traffic why it is skipped and what replaces it."""
    if report.experiment.adaptive:
        skipped = "sample ratio mismatch: not checked (adaptive allocation)"
        return [skipped, *_off_policy_lines(report.off_policy)]
    return [f"sample ratio mismatch: p = {report.srm_p:.3g}"]


def _off_policy_lines(found: OffPolicy | None) -> list[str]:
    if found is None:
        return ["off-policy: under two lists with a logged assignment propensity"]
    lines = [f"off-policy ({found.lists} lists; {found.unlogged} without a propensity left out):"]
    for variant, by in found.values.items():
        parts = [f"{n} {_fmt(v)} [{_fmt(ci[0])}, {_fmt(ci[1])}]" for n, (v, ci) in by.items()]
        lines.append(f"  {variant}: " + "; ".join(parts))
    return lines


def _fmt(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.4g}"


def write_html(report: Report, path: Path) -> Path:
    """One self-contained page (inline CSS, nothing fetched), like the evaluation report."""
    from recsmith.evaluation.report import _CSS

    head = ["variant", "units", "impressions", *stats.METRICS]
    rows = []
    for name, row in report.variants.items():
        cells = [name, str(row["units"]), str(row["impressions"])]
        for metric in stats.METRICS:
            e = row[metric]
            cells.append(f"{_fmt(e.value)}<span class=ci>[{_fmt(e.ci[0])}, {_fmt(e.ci[1])}]</span>")
        rows.append(cells)
    comp = [
        [
            c.metric,
            c.variant,
            f"{c.lift:+.2%}",
            f"[{c.ci[0]:+.2%}, {c.ci[1]:+.2%}]",
            f"{c.p:.3g}",
            f"{c.p_sequential:.3g}",
        ]
        for c in report.comparisons
    ]
    guards = [[g.name, g.variant, g.status, escape(g.detail)] for g in report.guardrails]
    body = "".join(
        [
            f"<h1>Experiment {escape(report.experiment.name)}</h1>",
            *(f"<p class=verdict>{escape(v)}</p>" for v in report.verdicts),
            "<h2>Variants</h2>",
            _table(head, rows),
            *(f"<p>{escape(line)}</p>" for line in _srm_lines(report)),
            "<h2>Treatment vs control</h2>",
            _table(["metric", "variant", "lift", "95% CI", "p", "always-valid p"], comp),
            "<h2>Guardrails</h2>",
            _table(["guardrail", "variant", "status", "detail"], guards),
            *(f"<p class=note>{escape(n)}</p>" for n in report.notes),
            f"<p class=note>generated {datetime.now(UTC).isoformat(timespec='seconds')}</p>",
        ]
    )
    page = f"<!doctype html><meta charset=utf-8><title>{escape(report.experiment.name)}</title>"
    path.write_text(f"{page}<style>{_CSS}</style>{body}")
    return path


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def experiment_report(
    store: EventStore, experiment: Experiment, thresholds: Thresholds = Thresholds()
) -> Report:
    """The report from the store's decision log over the experiment's running time: outcomes
    (``decisions.outcomes.per_unit``), latencies of the timed decisions and the request counts
    per variant (per minute, so the minutes the experiment started and stopped in count whole)."""
    since = datetime.fromisoformat(experiment.started_at) if experiment.started_at else None
    until = datetime.fromisoformat(experiment.stopped_at) if experiment.stopped_at else None
    frame = per_unit(store, since, until, experiment.name)
    latencies = store.decision_latencies(experiment.name, since, until)
    requests = store.request_counts(experiment.name, since, until)
    adaptive = None
    if experiment.adaptive:
        shown, attributions = shown_and_attributed(store, since, until, DecisionSettings().kinds())
        adaptive = off_policy(experiment, list_rewards(experiment, shown, attributions))
    return build_report(experiment, frame, latencies, thresholds, requests, adaptive)
