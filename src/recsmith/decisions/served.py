"""The one call a serving route makes for a list it answers: record it, count its impressions.

Kept here so routes stay thin (``serving.routers.recommend`` passes what its response holds) and
so the HTTP routes and the batch command record lists the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsmith.decisions.record import UnitKind, decision

if TYPE_CHECKING:
    from recsmith.decisions.log import DecisionLog
    from recsmith.exploration.contextual import Choice
    from recsmith.serving.metrics import Metrics

#: Where ``serving.edge.Edge`` puts the request's arrival (``perf_counter``) in
#: the ASGI scope: the start of the span ``Decision.latency_ms`` measures.
ARRIVED = "recsmith.arrived"


def since_arrival_ms(scope: Mapping[str, Any]) -> float | None:
    """Milliseconds since the request arrived (None when nothing stamped it: an app without the
    app's outer layer, ``serving.edge``)."""
    arrived = scope.get(ARRIVED)
    return None if arrived is None else (time.perf_counter() - arrived) * 1000.0


def record_served(
    log: DecisionLog | None,
    metrics: Metrics,
    recommendation_id: str,
    *,
    route: str,
    release: str,
    item_ids: Sequence[str],
    scores: Sequence[float],
    sources: Sequence[Sequence[str]],
    unit: str | None = None,
    unit_kind: UnitKind = "none",
    placement: str | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    latency_ms: float | None = None,
    propensities: Sequence[float] | None = None,
    assignment_propensity: float | None = None,
    page_view: str | None = None,
    arm: Choice | None = None,
) -> None:
    """Buffer the list's ``Decision`` (never blocks: ``DecisionLog.record``) and count its
    items in ``recsmith_impressions_total``. A no-op with the log disabled. A ``page_view``'s
    list is stored before this returns (``DecisionLog.store_now``: blocking)."""
    if log is None or not log.enabled:
        return
    (log.record if page_view is None else log.store_now)(
        decision(
            recommendation_id,
            unit=unit,
            unit_kind=unit_kind,
            route=route,
            release=release,
            item_ids=item_ids,
            scores=scores,
            sources=sources,
            placement=placement,
            experiment=experiment,
            variant=variant,
            latency_ms=latency_ms,
            propensities=propensities,
            assignment_propensity=assignment_propensity,
            page_view=page_view,
            arm=None if arm is None else arm.arm,
            arm_propensity=None if arm is None else arm.propensity,
            arm_context=None if arm is None else arm.context,
        )
    )
    if item_ids:
        metrics.child(metrics.impressions, route, release, variant or "").inc(len(item_ids))


def count_attributed(metrics: Metrics, attributed: pd.DataFrame, kinds: dict[str, str]) -> None:
    """Count a batch's attributions (``Attributor.attribute``'s frame) by kind, rule, release
    and variant in ``recsmith_attributed_events_total``."""
    kind = attributed["event_type"].map(lambda t: kinds.get(t, t))
    keys = pd.DataFrame(
        {
            "kind": kind,
            "rule": attributed["rule"],
            "release": attributed["release"].fillna(""),
            "variant": attributed["variant"].fillna(""),
        }
    )
    for (k, rule, release, variant), n in keys.value_counts().items():
        metrics.attributed.labels(kind=k, rule=rule, release=release, variant=variant).inc(n)
