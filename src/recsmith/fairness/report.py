"""``recsmith fairness report``: exposure, calibration and group parity from live decisions.

Everything comes from the store: the lists served in the window (decision log), the events users
sent (their history, for calibration and activity) and the events attributed to lists (outcomes,
for parity). Per figure, the report says how many lists or units it stands on, so a thin window
reads as thin rather than as a verdict.

* exposure and narrowing: ``monitor``;
* calibration: per served list, Steck's KL between the category (or property) mix of its unit's
  events in the window and the list's mix (``evaluation.fairness.miscalibration``), averaged over
  lists whose unit has events with a group;
* parity: units bucketed by activity in the window (``evaluation.parity.activity_groups``), and
  per bucket the lists served, attributed outcomes per list and the mean miscalibration.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.evaluation.fairness import group_matrix, miscalibration
from recsmith.evaluation.grouping import GroupSpec
from recsmith.evaluation.parity import activity_groups
from recsmith.fairness.monitor import live_exposure, narrowing
from recsmith.store.base import EventStore


@dataclass(frozen=True, slots=True)
class FairnessReport:
    """The report's figures (``to_json``) and their HTML page (``to_html``)."""

    window: str
    grouping: str
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"window": self.window, "grouping": self.grouping, **self.payload}

    def to_html(self) -> str:
        """One self-contained page (no scripts, no external assets)."""
        p = self.payload
        rows = "".join(
            f"<tr><td>{html.escape(g)}</td><td>{s:.1%}</td></tr>"
            for g, s in p["exposure"]["group_share"].items()
        )
        parity = "".join(
            f"<tr><td>{html.escape(b)}</td><td>{v['units']}</td><td>{v['lists']}</td>"
            f"<td>{figure(v['outcomes_per_list'])}</td><td>{figure(v['miscalibration'])}</td></tr>"
            for b, v in p["parity"].items()
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in p["notes"])
        e, c, n = p["exposure"], p["calibration"], p["narrowing"]
        return (
            "<!doctype html><meta charset='utf-8'><title>recsmith fairness report</title>"
            f"<h1>Fairness report ({html.escape(self.window)})</h1>"
            f"<p>{p['lists']} lists, {e['slots']} slots; groups: {html.escape(self.grouping)}</p>"
            f"<h2>Exposure</h2><p>Gini over items {figure(e['gini'])}, catalogue shown "
            f"{figure(e['catalogue_shown'])}</p><table><tr><th>group</th><th>slot share</th></tr>"
            f"{rows}</table><h2>Calibration</h2><p>mean miscalibration {figure(c['mean'])} over "
            f"{c['lists']} lists</p><h2>Narrowing</h2><p>{n['units']} units with enough lists; "
            f"{figure(n['share_narrowing'])} narrowing, median ratio {figure(n['median'])}</p>"
            "<h2>Parity by activity</h2><table><tr><th>bucket</th><th>units</th><th>lists</th>"
            f"<th>outcomes / list</th><th>miscalibration</th></tr>{parity}</table>"
            f"<h2>Notes</h2><ul>{notes}</ul>"
        )


def figure(x: float | None) -> str:
    """A figure as the report shows it (HTML and ``fairness report``'s lines): three decimals,
    or ``n/a`` where there was nothing to compute it on (JSON's null)."""
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def fairness_report(
    shown: pd.DataFrame,
    events: pd.DataFrame,
    attributions: pd.DataFrame,
    item_labels: Mapping[str, Sequence[str]],
    *,
    window: str,
    grouping: str,
    catalogue: int,
    last: int = 5,
) -> FairnessReport:
    """The report over ``shown`` (``scan_decisions``), ``events`` (user_id, item_id) and
    ``attributions`` (recommendation_id per attributed event); ``item_labels`` maps item ids to
    their groups (categories, or one property value)."""
    notes: list[str] = []
    first = {i: labels[0] for i, labels in item_labels.items() if labels}
    items = shown.dropna(subset=["item_id"])
    exp = live_exposure(items, first, catalogue)
    ratio = narrowing(items, first, last)
    lists = shown.drop_duplicates("recommendation_id")[["recommendation_id", "unit"]]
    kl = _list_miscalibration(items, events, item_labels)
    activity = events.groupby("user_id").size()
    parity: dict[str, Any] = {}
    if len(activity):
        labels, cut = activity_groups(activity.to_numpy())
        bucket = pd.Series(labels, index=activity.index.astype(str))
        notes.append(f"activity buckets: {cut.replace('training', 'window')}")
        per_list = lists.assign(bucket=lists["unit"].astype(str).map(bucket))
        outcomes = attributions.groupby("recommendation_id").size()
        per_list = per_list.assign(
            outcomes=per_list["recommendation_id"].map(outcomes).fillna(0),
            kl=per_list["recommendation_id"].map(kl),
        )
        for name, part in per_list.dropna(subset=["bucket"]).groupby("bucket"):
            parity[str(name)] = {
                "units": int(part["unit"].nunique()),
                "lists": len(part),
                "outcomes_per_list": float(part["outcomes"].mean()),
                "miscalibration": _finite(float(part["kl"].mean())),
            }
    else:
        notes.append("no events in the window: no calibration or parity")
    if len(lists) < 100:
        notes.append(f"only {len(lists)} lists in the window: figures are noisy")
    return FairnessReport(
        window,
        grouping,
        {
            "lists": len(lists),
            "exposure": {
                "slots": exp.slots,
                "gini": _finite(exp.gini),
                "catalogue_shown": _finite(exp.catalogue_shown),
                "group_share": exp.group_share,
            },
            "calibration": {"mean": _finite(float(kl.mean())), "lists": int(kl.notna().sum())},
            "narrowing": {
                "last": last,
                "units": len(ratio),
                "share_narrowing": _finite(float((ratio < 1).mean())) if len(ratio) else None,
                "median": _finite(float(ratio.median())) if len(ratio) else None,
            },
            "parity": parity,
            "notes": notes,
        },
    )


def report_from_store(
    store: EventStore, since: datetime | None, spec: GroupSpec, *, window: str, last: int = 5
) -> FairnessReport:
    """``fairness_report`` over what ``store`` holds since ``since``: the decisions served, the
    events and the attributions of those decisions, with items grouped by ``spec`` (categories,
    or one property's value). What ``recsmith fairness report`` and the console show."""
    shown = store.scan_decisions(since, None)
    frames = [f[["user_id", "item_id"]] for f in store.scan(since=since)]
    events = pd.concat(frames) if frames else pd.DataFrame(columns=["user_id", "item_id"])
    attributions = store.scan_attributions(since)
    catalogue = store.items()
    attributions = attributions[attributions["recommendation_id"].isin(shown["recommendation_id"])]
    if spec.kind == "property":
        labels = {
            it.item_id: ((str(it.properties[spec.name]),) if spec.name in it.properties else ())
            for it in catalogue
        }
    else:
        labels = {it.item_id: tuple(it.categories) for it in catalogue}
    return fairness_report(
        shown,
        events,
        attributions,
        labels,
        window=window,
        grouping=spec.label,
        catalogue=len(catalogue),
        last=last,
    )


def _list_miscalibration(
    items: pd.DataFrame, events: pd.DataFrame, item_labels: Mapping[str, Sequence[str]]
) -> pd.Series:
    """Per recommendation_id: KL(unit's event mix ‖ list mix); NaN without a mix to compare."""
    if items.empty:
        return pd.Series(dtype=float)
    names = sorted(set(items["item_id"].astype(str)) | set(events["item_id"].astype(str)))
    code = {n: j for j, n in enumerate(names)}
    groups, _ = group_matrix([item_labels.get(n, ()) for n in names])
    rec_ids = items["recommendation_id"].drop_duplicates().to_list()
    row_of = {r: j for j, r in enumerate(rec_ids)}
    pos = items.groupby("recommendation_id").cumcount().to_numpy()
    width = int(pos.max()) + 1
    recs = np.full((len(rec_ids), width), -1)
    recs[items["recommendation_id"].map(row_of).to_numpy(), pos] = (
        items["item_id"].astype(str).map(code).to_numpy()
    )
    # a list served to no unit (``/popular``, a withheld person) has no history: "" has no events
    # (pandas 3 keeps a missing unit NaN through astype(str), which then breaks the sort)
    units = items.drop_duplicates("recommendation_id")["unit"].fillna("").astype(str).to_list()
    unit_code = {u: j for j, u in enumerate(sorted(set(units)))}
    ev = events[events["user_id"].astype(str).isin(unit_code)]
    per_unit = sparse.csr_array(
        (
            np.ones(len(ev)),
            (ev["user_id"].astype(str).map(unit_code), ev["item_id"].astype(str).map(code)),
        ),
        shape=(len(unit_code), len(names)),
    )
    history = per_unit[np.asarray([unit_code[u] for u in units], np.int64)]
    return pd.Series(miscalibration(recs, history, groups), index=rec_ids)
