"""An experiment's report: per-variant numbers, lifts, sample-ratio mismatch, guardrails and one
verdict line, as text, one JSON line, or a self-contained HTML page.

``build_report`` works on a ``per_unit`` frame (the columns ``decisions.outcomes.per_unit``
returns) and, for the latency guardrail, the served decisions' latencies; ``experiment_report``
reads the frame from the store. Decisions are taken on the always-valid p-value (``stats.msprt_p``)
because the report is meant to be looked at daily: the fixed-horizon p is shown beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.decisions.outcomes import per_unit
from recsmith.experiments import stats
from recsmith.experiments.spec import Experiment
from recsmith.store.base import EventStore

#: Below this SRM p-value the split is broken and no other number is trusted (the usual cut).
SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the report decides with: the test level, the smallest lift worth detecting, and the
    guardrails' margins (relative: 0.02 = treatment may be at most 2 % worse)."""

    alpha: float = 0.05
    power: float = 0.8
    mde: float = 0.05
    revenue_margin: float = 0.02
    latency_margin: float = 0.10


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
        }


def _clean(x: float) -> float | None:
    """JSON has no NaN: an undefined number (no units yet) is null."""
    return None if x is None or not math.isfinite(x) else float(x)


def build_report(
    experiment: Experiment,
    per_unit: pd.DataFrame,
    latencies: pd.DataFrame | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Report:
    """The report of ``experiment`` on ``per_unit`` (one row per unit and variant).
    ``latencies``: one row per served decision with ``variant`` and ``latency_ms``, or None
    when the decision log does not record them (the latency guardrail then says so)."""
    names = [v.name for v in experiment.variants]
    frame = per_unit[per_unit["variant"].astype(str).isin(names)]
    summary = stats.summarize(frame)
    units = {name: int(summary[name]["units"]) if name in summary else 0 for name in names}
    srm = stats.srm_p(units, experiment.weights)
    comparisons = stats.compare(summary, experiment.control)
    guardrails = _guardrails(experiment, comparisons, latencies, thresholds)
    notes = [
        "error rate per variant is not recorded by the decision log (a failed request makes "
        "no decision); watch the server's 5xx metrics"
    ]
    verdicts = [
        _verdict(experiment, t, summary, comparisons, guardrails, srm, thresholds)
        for t in names[1:]
    ]
    return Report(experiment, summary, srm, comparisons, guardrails, verdicts, notes)


def _guardrails(
    experiment: Experiment,
    comparisons: list[stats.Comparison],
    latencies: pd.DataFrame | None,
    th: Thresholds,
) -> list[Guardrail]:
    out = []
    p99 = _p99(latencies)
    control = experiment.control
    for v in experiment.variants[1:]:
        rev = next(
            (c for c in comparisons if c.variant == v.name and c.metric == "revenue_per_unit"), None
        )
        if rev is None or not math.isfinite(rev.ci[0]):
            out.append(Guardrail("revenue_per_unit", v.name, "pending", "no units yet"))
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
        if p99 is None or control not in p99 or v.name not in p99:
            out.append(Guardrail("p99_latency", v.name, "not recorded", "no latency per decision"))
        else:
            limit = p99[control] * (1 + th.latency_margin)
            status = "pass" if p99[v.name] <= limit else "fail"
            detail = f"{p99[v.name]:.1f} ms vs control {p99[control]:.1f} ms (limit {limit:.1f})"
            out.append(Guardrail("p99_latency", v.name, status, detail))
    return out


def _p99(latencies: pd.DataFrame | None) -> dict[str, float] | None:
    if latencies is None or latencies.empty or "latency_ms" not in latencies:
        return None
    grouped = latencies.groupby(latencies["variant"].astype(str))["latency_ms"]
    return {str(k): float(v) for k, v in grouped.quantile(0.99).items()}


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
    n_c, n_t = int(summary[experiment.control]["units"]), int(summary[treatment]["units"])
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
    lines.append(f"sample ratio mismatch: p = {report.srm_p:.3g}")
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
            f"<p>Sample ratio mismatch: p = {report.srm_p:.3g}</p>",
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
    """The report from the store's decision log (``decisions.outcomes.per_unit``), over the
    experiment's running time. The decision log does not record latencies yet, so the latency
    guardrail says "not recorded" (``build_report`` takes them once it does)."""
    since = datetime.fromisoformat(experiment.started_at) if experiment.started_at else None
    until = datetime.fromisoformat(experiment.stopped_at) if experiment.stopped_at else None
    frame = per_unit(store, since, until, experiment.name)
    return build_report(experiment, frame, None, thresholds)
