"""One self-contained HTML page of an evaluation: numbers, uncertainty, trade-offs and bias plots.

The page is meant to be attached to a ticket or mailed around, so it holds everything inline (CSS,
plots as base64 PNG) and references nothing outside itself. It records the exact command and a
fingerprint of the events so a reader can tell which data produced it and rerun it. matplotlib is
an optional extra (``recsmith[report]``), imported only when a report is asked for.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pandas as pd

from recsmith.errors import MissingExtraError
from recsmith.evaluation.beyond import head_tail_share
from recsmith.evaluation.runner import Comparison, ModelResult
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.verdict import Verdict, users_needed_text
from recsmith.features.interactions import actor_keys

METRIC_COLUMNS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
#: Per-user means shown with a bootstrap 95% interval: the two headline ranking metrics.
CI_METRICS = ("ndcg", "recall")
BEYOND_COLUMNS = ("diversity", "novelty", "avg_popularity", "popularity_lift", "personalisation")
CURVE_METRICS = ("ndcg", "recall", "precision")
HEAD_FRACTION = 0.2
#: Every plot is drawn this wide at ``DPI``: the page's full 72rem column (1152 px), so a plot is
#: never shrunk to half the page with its labels (plots were 6.5 in wide and filled half of it).
DPI = 100
WIDTH_IN = 11.5
_FINGERPRINT_COLUMNS = ("event_id", "user_id", "session_id", "item_id", "event_type", "ts")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
color:#1d2330;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.3rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d8dce4;padding-bottom:.2rem}
pre{background:#f3f5f8;padding:.6rem .8rem;border-radius:4px;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d8dce4;padding:.3rem .6rem}th{background:#f3f5f8;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.best{font-weight:700;color:#13713b}
.ci{display:block;color:#667085;font-size:.78rem}.note{color:#667085;font-size:.85rem}
img{width:100%;height:auto;display:block;margin:.5rem 0}
.warning{background:#fff4e5;border-left:4px solid #e8a33d;padding:.5rem .8rem}
.verdict{font-size:1.05rem}
"""


def events_fingerprint(events: pd.DataFrame) -> str:
    """A short, row-order-independent hash of an event frame: which data a report describes.

    Rows are hashed with pandas' fixed-key hash and sorted, so the same events read in another
    order (a file vs. a store scan) give the same fingerprint.
    """
    columns = [c for c in _FINGERPRINT_COLUMNS if c in events.columns]
    frame = events[columns].astype(object)
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest = hashlib.blake2b(np.sort(rows).tobytes(), digest_size=8)
    digest.update(",".join(columns).encode())
    return digest.hexdigest()


def interaction_head_share(train: pd.DataFrame, n_items: int | None = None) -> float:
    """Share of training (user, item) pairs on head items: what the users themselves do, which
    an unbiased recommender would roughly match. ``n_items`` pads the catalogue with untouched
    items, as the interaction matrix does when a catalogue is loaded."""
    pairs = pd.DataFrame({"u": actor_keys(train), "i": train["item_id"].to_numpy(dtype=object)})
    pop = pairs.drop_duplicates().groupby("i").size().to_numpy(dtype=np.float64)
    if n_items is not None and n_items > len(pop):
        pop = np.concatenate([pop, np.zeros(n_items - len(pop))])
    empty = np.zeros((0, 1), dtype=np.int64)
    return head_tail_share(empty, pop, HEAD_FRACTION).interaction_head


def require_matplotlib() -> Any:
    """The matplotlib ``Figure`` class, or the error naming the extra that brings it.

    ``Figure`` is used directly (never pyplot), so no global backend is switched and reports can
    be drawn from any thread; savefig renders through Agg.
    """
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError("matplotlib", "report") from None
    return Figure


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(fig.get_label())}">'


def curves_figure(figure: Any, results: Sequence[ModelResult]) -> Any:
    """Metric@k curves side by side; one legend for all, right of the plots, where it can cover
    no curve (inside an axes it sat on the curves it names)."""
    fig = figure(figsize=(WIDTH_IN, 3.6), label="metric against list length", layout="constrained")
    for n, metric in enumerate(CURVE_METRICS, start=1):
        ax = fig.add_subplot(1, len(CURVE_METRICS), n)
        for r in results:
            values = r.curves.get(metric, [])
            ax.plot(range(1, len(values) + 1), values, marker=".", label=r.model)
        ax.set(title=f"{metric}@k", xlabel="k")
        ax.grid(alpha=0.3)
    fig.legend(*fig.axes[0].get_legend_handles_labels(), loc="outside right upper")
    return fig


def _tradeoff(figure: Any, results: Sequence[ModelResult], k: int) -> str:
    fig = figure(
        figsize=(WIDTH_IN, 4.5), label="accuracy, coverage and novelty", layout="constrained"
    )
    ax = fig.add_subplot()
    x = [r.coverage for r in results]
    y = [r.metrics["ndcg"] for r in results]
    nov = [r.beyond.get("novelty", math.nan) for r in results]
    points = ax.scatter(x, y, c=nov, s=90, cmap="viridis", edgecolors="black")
    for r, xi, yi in zip(results, x, y, strict=True):
        ax.annotate(r.model, (xi, yi), xytext=(6, 4), textcoords="offset points")
    fig.colorbar(points, ax=ax, label="novelty (bits)")
    ax.set(xlabel=f"catalogue coverage@{k}", ylabel=f"ndcg@{k}")
    ax.grid(alpha=0.3)
    return _png(fig)


def popularity_figure(figure: Any, results: Sequence[ModelResult], reference: float | None) -> Any:
    """Head share per model against the two reference lines; the legend right of the axes, where
    it can cover no bar top (inside, it hid the bars it was compared with)."""
    fig = figure(figsize=(WIDTH_IN, 4), label="popularity bias", layout="constrained")
    ax = fig.add_subplot()
    names = [r.model for r in results]
    ax.bar(names, [r.head_share for r in results], color="#4c78a8")
    ax.axhline(HEAD_FRACTION, color="#888", linestyle=":", label="head items' share of catalogue")
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, color="#e45756", linestyle="--", label="head share of interactions")
    ax.set(ylabel="share of recommended slots on head items", ylim=(0, 1.05))
    fig.legend(loc="outside right upper", fontsize="small")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def _distribution(figure: Any, results: Sequence[ModelResult], k: int) -> str:
    fig = figure(figsize=(WIDTH_IN, 4), label="per-user ndcg", layout="constrained")
    ax = fig.add_subplot()
    ax.boxplot([r.per_user["ndcg"] for r in results], showmeans=True)
    ax.set_xticks(range(1, len(results) + 1), [r.model for r in results], rotation=30)
    ax.set(ylabel=f"ndcg@{k} per user")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def _table(headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    """Rows are (model name for ``data-model``, already-escaped cell HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr data-model="{escape(key)}">{"".join(cells)}</tr>'
        if key
        else f"<tr>{''.join(cells)}</tr>"
        for key, cells in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(text: str, metric: str = "", best: bool = False, extra: str = "") -> str:
    cls = "num best" if best else "num"
    attr = f' data-metric="{escape(metric)}"' if metric else ""
    return f'<td class="{cls}"{attr}>{escape(text)}{extra}</td>'


def _metric_rows(results: Sequence[ModelResult], k: int) -> tuple[list[str], list]:
    metrics = [m for m in METRIC_COLUMNS if all(m in r.metrics for r in results)]
    best = {m: max(r.metrics[m] for r in results) for m in metrics}
    rows = []
    for r in results:
        cells = [f"<td>{escape(r.model)}</td>"]
        for m in metrics:
            extra = ""
            values = np.asarray(r.per_user.get(m, []), dtype=np.float64)
            values = values[np.isfinite(values)]
            if m in CI_METRICS and len(values):
                low, high = bootstrap_ci(values)
                extra = f'<span class="ci">[{low:.4f}, {high:.4f}]</span>'
            cells.append(_num(f"{r.metrics[m]:.4f}", m, r.metrics[m] == best[m], extra))
        cells.append(_num(f"{r.coverage:.4f}", "coverage"))
        cells += [_num(f"{r.fit_seconds:.2f}"), _num(f"{r.recommend_seconds:.2f}")]
        rows.append((r.model, cells))
    headers = ["model", *(f"{m}@{k}" for m in metrics), f"coverage@{k}", "fit s", "recommend s"]
    return headers, rows


FAIRNESS_COLUMNS = (
    ("exposure_gini", "exposure Gini"),
    ("exposure_entropy", "exposure entropy (bits)"),
    ("exposure_gini_weighted", "Gini, position-weighted"),
    ("catalogue_shown", "catalogue shown"),
    ("miscalibration", "miscalibration"),
)


def _fairness_table(results: Sequence[ModelResult], k: int) -> str:
    """One table: exposure spread, miscalibration, ndcg by user group with intervals, the gap
    between the best- and worst-served group, and the note saying when that gap is weak."""
    rows = []
    for r in results:
        cells = [f"<td>{escape(r.model)}</td>"]
        cells += [_num(f"{r.beyond.get(key, math.nan):.4f}", key) for key, _ in FAIRNESS_COLUMNS]
        g = r.groups
        if g is None:
            cells += ["<td>—</td>", "<td>—</td>"]
        else:
            by_group = "<br>".join(
                f"{escape(s.name)} (n = {s.users:,}): {s.metrics[g.metric]:.4f} "
                f'<span class="ci">[{s.ci_low:.4f}, {s.ci_high:.4f}]</span>'
                for s in g.groups
            )
            gap = (
                f"{g.gap:+.4f} ({escape(g.best)} − {escape(g.worst)})"
                f'<span class="ci">[{g.gap_ci_low:+.4f}, {g.gap_ci_high:+.4f}], '
                f"p = {g.gap_p_value:.2g}</span>"
                if g.best is not None and g.worst is not None
                else "—"
            )
            note = f'<span class="ci">{escape(g.note)}</span>' if g.note else ""
            cells += [f"<td>{by_group}</td>", f'<td data-metric="gap">{gap}{note}</td>']
        rows.append((r.model, cells))
    first = next((r.groups for r in results if r.groups is not None), None)
    metric = f"{first.metric}@{k}" if first is not None else f"ndcg@{k}"
    headers = [
        "model",
        *(label for _, label in FAIRNESS_COLUMNS),
        f"{metric} by user group",
        "gap best − worst",
    ]
    cut = f" Groups: {escape(first.cut)}." if first is not None else ""
    return (
        _table(headers, rows)
        + '<p class="note">Exposure: Gini and entropy of slot counts over every catalogue item '
        "(never-shown items count as zero); position-weighted: slot j counts 1/log2(j+1). "
        "Miscalibration: Steck's KL(p‖q̃) of the user's history category mix p and the list's q "
        "(every slot equal), q̃ = 0.99 q + 0.01 p, nats, mean over users. Group intervals: "
        f"bootstrap 95%; gap: Welch's t interval.{cut}</p>"
    )


def write_report(
    path: Path,
    *,
    results: Sequence[ModelResult],
    comparisons: Sequence[Comparison],
    verdict: Verdict | None = None,
    stats: dict[str, Any],
    k: int,
    split: str,
    command: str,
    data_fingerprint: str,
    data_source: str,
) -> None:
    """Write the evaluation page to ``path``; raises ``MissingExtraError`` without matplotlib.

    ``stats`` is ``evaluate_models``' split statistics; an ``interaction_head_share`` entry, when
    present, is drawn as the reference line of the popularity-bias plot.
    """
    figure = require_matplotlib()
    if not results:
        raise ValueError("no results to report")
    headers, rows = _metric_rows(results, k)
    stat_rows = [("", [f"<td>{escape(str(key))}</td>", _num(_fmt(v))]) for key, v in stats.items()]
    beyond_rows = [
        (
            r.model,
            [
                f"<td>{escape(r.model)}</td>",
                *(_num(f"{r.beyond.get(c, math.nan):.4f}", c) for c in BEYOND_COLUMNS),
                _num(f"{r.head_share:.3f}", "head_share"),
            ],
        )
        for r in results
    ]
    tested = comparisons[0].metric if comparisons else "ndcg"  # ndcg_debiased with --debias
    sig_rows = [
        (
            c.model,
            [
                f"<td>{escape(c.best)}</td>",
                f"<td>{escape(c.model)}</td>",
                _num(f"{c.mean_diff:+.4f}"),
                _num(f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]"),
                _num(f"{c.p_value:.2g}"),
                _num(f"{c.p_holm:.2g}"),
                _num(users_needed_text(c)),
            ],
        )
        for c in comparisons
    ]
    reference = stats.get("interaction_head_share")
    has_curves = any(r.curves.get("ndcg") for r in results)
    not_computed = '<p class="note">Not computed.</p>'
    curves = _png(curves_figure(figure, results)) if has_curves else not_computed
    parts = [
        f"<h1>recsmith evaluation: {escape(split)} split, k = {k}</h1>",
        f'<p class="note">generated {escape(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))}</p>',
        f"<h2>Command</h2><pre><code>{escape(command)}</code></pre>",
        f"<p>data: <code>{escape(redact(data_source))}</code> — fingerprint "
        f'<code class="fingerprint">{escape(data_fingerprint)}</code></p>',
        "<h2>Split</h2>" + _table(["statistic", "value"], stat_rows),
        "<h2>Accuracy</h2>" + _table(headers, rows),
        '<p class="note">Bracketed: percentile bootstrap 95% interval of the per-user mean '
        "(2000 resamples, seed 0). Bold: best in column.</p>",
        "<h2>Beyond accuracy</h2>"
        + _table(
            ["model", *BEYOND_COLUMNS, f"head share ({HEAD_FRACTION:.0%} items)"], beyond_rows
        ),
        f"<h2>Fairness: exposure, calibration and group parity @{k}</h2>"
        + _fairness_table(results, k),
        f"<h2>Significance (paired t-test on per-user {tested}@{k}, Holm-corrected)</h2>"
        + (
            _table(
                ["best", "vs", f"Δ {tested}", "95% CI", "p", "p (Holm)", "users needed"], sig_rows
            )
            if sig_rows
            else '<p class="note">Only one model: nothing to compare.</p>'
        ),
        '<p class="note">Users needed: how many users a paired test needs to detect that '
        "difference at p &lt; 0.05 with 80% power, if per-user differences keep their spread.</p>",
        _verdict_html(verdict),
        "<h2>Metrics against list length</h2>" + curves,
        "<h2>Accuracy, coverage and novelty</h2>"
        '<p class="note">Colour: mean novelty (higher = less popular items).</p>'
        + _tradeoff(figure, results, k),
        "<h2>Popularity bias</h2>"
        f'<p class="note">Share of recommended slots on the most popular {HEAD_FRACTION:.0%} of '
        "items; the dotted line is what uniform exposure would give, the dashed line what users "
        "actually interact with.</p>" + _png(popularity_figure(figure, results, reference)),
        f"<h2>Per-user ndcg@{k}</h2>" + _distribution(figure, results, k),
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>recsmith evaluation — {escape(split)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def _verdict_html(verdict: Verdict | None) -> str:
    """The verdict under the significance table, with the too-few-users warning above it."""
    if verdict is None:
        return ""
    warning = (
        f'<p class="warning"><strong>Warning:</strong> {escape(verdict.warning)}</p>'
        if verdict.warning is not None
        else ""
    )
    return f'{warning}<p class="verdict"><strong>Verdict:</strong> {escape(verdict.text)}</p>'


def redact(source: str) -> str:
    """``source`` with a URL password replaced by ``***``: reports get shared, credentials not."""
    try:
        parts = urlsplit(source)
    except ValueError:
        return source
    if parts.password is None:
        return source
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    return f"{value:.4f}"
