"""Decisions and attributions as rows for the SQL stores, and back: one place for both backends.

A decision is stored as a header row (``decisions``) and one row per shown item
(``decision_items``) carrying the unit and time again, so "the latest list that showed this item
to this user" (the window rule, ``attribution``) is one index range, not a join.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import pandas as pd

from recsmith.decisions.record import Decision

#: Columns of ``decisions`` in insert order.
DECISION_COLUMNS = (
    "recommendation_id",
    "served_at",
    "unit",
    "unit_kind",
    "route",
    "placement",
    "release",
    "experiment",
    "variant",
    "latency_ms",
    "assignment_propensity",
    "page_view",
    "arm",
    "arm_propensity",
    "arm_context",
    "size",
)
#: Columns of ``decision_items`` in insert order.
ITEM_COLUMNS = (
    "recommendation_id",
    "position",
    "item_id",
    "score",
    "sources",
    "propensity",
    "unit",
    "served_at",
)
#: Columns of ``attributions``; ``ts`` is the event's time (µs), ``rule`` explicit or window.
ATTRIBUTION_COLUMNS = (
    "event_id",
    "recommendation_id",
    "position",
    "rule",
    "event_type",
    "value",
    "ts",
)
#: The columns of ``decisions`` a reader gets back: all but ``size`` (the item count, kept for SQL
#: over the table; a ``Decision`` counts its items itself). Adding a column here reaches the
#: stores' selects, ``SHOWN_COLUMNS`` and ``SCAN_SQL`` at once.
DECISION_HEADER = DECISION_COLUMNS[:-1]
#: What a reader gets of each shown item.
SHOWN_ITEM = ("position", "item_id", "score", "sources", "propensity")
#: What ``scan_decisions`` returns: one row per shown item (an empty list: one row, no item).
SHOWN_COLUMNS = (*DECISION_HEADER, *SHOWN_ITEM)
#: What the lookups for attribution return (``shown_in``, ``shown_to``); ``served_at`` in µs.
LOOKUP_COLUMNS = (
    "recommendation_id",
    "unit",
    "served_at",
    "position",
    "item_id",
    "release",
    "variant",
    "experiment",
    "page_view",
    "arm",
    "arm_context",
    "placement",
)
#: What capping reads of one unit's recent lists (``shows_of``): plain rows, no frame, since it
#: runs on every request and pandas' fixed cost was most of it (BENCHMARKS "Capping").
SHOWS_COLUMNS = ("recommendation_id", "item_id", "served_at", "page_view")
#: ``shows_of``'s query; ``{p}`` the driver's placeholder. One unit, so an equality on the
#: ``decision_items_unit`` index rather than a membership test.
SHOWS_SQL = (
    "SELECT i.recommendation_id, i.item_id, i.served_at, d.page_view "
    "FROM decision_items i JOIN decisions d ON d.recommendation_id = i.recommendation_id "
    "WHERE i.unit = {p} AND i.served_at >= {p} AND i.served_at <= {p}"
)
#: Per (experiment, variant, minute): requests answered or failed by the server, and failures
#: (``decisions.requests``); the experiment report's error-rate guardrail reads them.
REQUEST_COLUMNS = ("experiment", "variant", "minute", "requests", "errors")
#: The SELECT of a lookup, ``WHERE`` to be appended (on ``i``, the item rows).
LOOKUP_SQL = (
    "SELECT i.recommendation_id, i.unit, i.served_at, i.position, i.item_id, d.release, "
    "d.variant, d.experiment, d.page_view, d.arm, d.arm_context, d.placement "
    "FROM decision_items i JOIN decisions d ON d.recommendation_id = i.recommendation_id "
)

SCAN_SQL = (
    f"SELECT {', '.join(f'd.{c}' for c in DECISION_HEADER)}, "
    f"{', '.join(f'i.{c}' for c in SHOWN_ITEM)} "
    "FROM decisions d LEFT JOIN decision_items i ON i.recommendation_id = d.recommendation_id "
    "WHERE d.served_at >= {p} AND d.served_at < {p} ORDER BY d.served_at, d.recommendation_id, "
    "i.position"
)

#: ``count_decisions``: how many lists were served in a time range (an index range count).
COUNT_SQL = "SELECT COUNT(*) FROM decisions WHERE served_at >= {p} AND served_at < {p}"

#: ``decision_latencies``: the timed decisions of one experiment in a time range.
LATENCY_SQL = (
    "SELECT variant, latency_ms FROM decisions WHERE experiment = {p} AND served_at >= {p} "
    "AND served_at < {p} AND latency_ms IS NOT NULL"
)
#: ``add_request_counts``: counts add to what other processes stored for the same minute.
UPSERT_REQUESTS_SQL = (
    f"INSERT INTO experiment_requests ({', '.join(REQUEST_COLUMNS)}) VALUES ({{p}}, {{p}}, {{p}}, "
    "{p}, {p}) ON CONFLICT (experiment, variant, minute) DO UPDATE SET "
    "requests = experiment_requests.requests + excluded.requests, "
    "errors = experiment_requests.errors + excluded.errors"
)
#: ``request_counts``: per variant, over the minutes that overlap the range.
REQUESTS_SQL = (
    "SELECT variant, SUM(requests), SUM(errors) FROM experiment_requests WHERE experiment = {p} "
    "AND minute >= {p} AND minute <= {p} GROUP BY variant ORDER BY variant"
)
MICROS_PER_MINUTE = 60_000_000


def minute_bounds(lo_us: int, hi_us: int) -> tuple[int, int]:
    """The first and last minute (since the epoch) overlapping ``[lo_us, hi_us)``."""
    return lo_us // MICROS_PER_MINUTE, (hi_us - 1) // MICROS_PER_MINUTE


def latency_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=["variant", "latency_ms"])
    frame["variant"] = frame["variant"].astype(object)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"]).astype(np.float64)
    return frame


def request_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=["variant", "requests", "errors"])
    frame["variant"] = frame["variant"].astype(object)
    frame["requests"] = frame["requests"].astype(np.int64)
    frame["errors"] = frame["errors"].astype(np.int64)
    return frame


def micros_of(decision: Decision) -> int:
    return int(decision.served_at.timestamp() * 1_000_000)


def decision_rows(
    decisions: Sequence[Decision],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Header rows and item rows ready for parameterised INSERTs (``item_columns`` as rows)."""
    return header_rows(decisions), list(zip(*item_columns(decisions), strict=True))


def header_rows(decisions: Sequence[Decision]) -> list[tuple[Any, ...]]:
    """One row of ``DECISION_COLUMNS`` per decision."""
    return [
        (
            d.recommendation_id,
            micros_of(d),
            d.unit,
            d.unit_kind,
            d.route,
            d.placement,
            d.release,
            d.experiment,
            d.variant,
            d.latency_ms,
            d.assignment_propensity,
            d.page_view,
            d.arm,
            d.arm_propensity,
            context_text(d.arm_context),
            len(d.item_ids),
        )
        for d in decisions
    ]


def item_columns(decisions: Sequence[Decision]) -> tuple[list[Any], ...]:
    """The item rows of ``decisions`` as columns, one list per ``ITEM_COLUMNS`` entry.

    Columns, not rows: each is one ``chain`` over the lists' own tuples (or a value repeated for
    a list's items) run in C, where a row is a tuple of eight built per item in Python; the
    writer stores ten a served list (BENCHMARKS §56). A list whose scores, sources or
    propensities do not match its items in number is refused (``ValueError``), not stored
    shifted against another list's."""
    sizes = [len(d.item_ids) for d in decisions]
    for d, n in zip(decisions, sizes, strict=True):
        if not len(d.scores) == len(d.sources) == len(d.propensities) == n:
            raise ValueError(
                f"decision {d.recommendation_id}: {n} items but {len(d.scores)} scores, "
                f"{len(d.sources)} source lists and {len(d.propensities)} propensities"
            )
    # a batch repeats a few source sets many times: each spelt once
    spelt = {
        src: json.dumps(list(src)) for src in set(chain.from_iterable(d.sources for d in decisions))
    }

    def each(values: Sequence[Any]) -> list[Any]:
        """One value per list, repeated for each of its items."""
        return list(chain.from_iterable(map(repeat, values, sizes)))

    return (
        each([d.recommendation_id for d in decisions]),
        list(chain.from_iterable(range(1, n + 1) for n in sizes)),
        list(chain.from_iterable(d.item_ids for d in decisions)),
        list(chain.from_iterable(d.scores for d in decisions)),
        list(map(spelt.__getitem__, chain.from_iterable(d.sources for d in decisions))),
        list(chain.from_iterable(d.propensities for d in decisions)),
        each([d.unit for d in decisions]),
        each([micros_of(d) for d in decisions]),
    )


def decision_from_rows(head: Sequence[Any], items: Sequence[Sequence[Any]]) -> Decision:
    """A ``Decision`` from its header row (``DECISION_COLUMNS``) and its item rows
    (``position, item_id, score, sources, propensity`` in position order)."""
    rid, served, unit, kind, route, placement, release, experiment, variant, latency = head[:10]
    chance, page_view = head[10], head[11]
    arm, arm_chance, arm_context = head[12:15]
    return Decision(
        recommendation_id=rid,
        served_at=pd.Timestamp(int(served), unit="us", tz="UTC").to_pydatetime(),
        unit=unit,
        unit_kind=kind,
        route=route,
        placement=placement,
        release=release,
        experiment=experiment,
        variant=variant,
        item_ids=tuple(str(r[1]) for r in items),
        scores=tuple(float(r[2]) for r in items),
        sources=tuple(tuple(json.loads(r[3])) for r in items),
        propensities=tuple(float(r[4]) for r in items),
        latency_ms=None if latency is None else float(latency),
        assignment_propensity=None if chance is None else float(chance),
        page_view=page_view,
        arm=arm,
        arm_propensity=None if arm_chance is None else float(arm_chance),
        arm_context=None if arm_context is None else tuple(json.loads(arm_context)),
    )


def context_text(context: Sequence[float] | None) -> str | None:
    """A decision's ``arm_context`` as stored: a JSON array (NULL without a contextual arm)."""
    return None if context is None else json.dumps([float(x) for x in context])


def shown_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """``scan_decisions``' frame from SELECTed rows (``SCAN_SQL``): times as UTC timestamps,
    positions nullable integers, sources joined with ``|``."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(SHOWN_COLUMNS))
    served = pd.to_datetime(frame["served_at"].astype(np.int64), unit="us", utc=True)
    frame["served_at"] = served.astype("datetime64[ns, UTC]")
    frame["position"] = frame["position"].astype("Int64")
    frame["score"] = pd.to_numeric(frame["score"]).astype(np.float64)
    frame["propensity"] = pd.to_numeric(frame["propensity"]).astype(np.float64)
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"]).astype(np.float64)  # None -> NaN
    chance = pd.to_numeric(frame["assignment_propensity"]).astype(np.float64)
    frame["assignment_propensity"] = chance
    frame["arm_propensity"] = pd.to_numeric(frame["arm_propensity"]).astype(np.float64)
    # a window holds millions of rows but few distinct source lists: decode each one once
    raw = frame["sources"]
    joined = {s: "|".join(json.loads(s)) for s in raw.dropna().unique()}
    frame["sources"] = [joined[s] if isinstance(s, str) else None for s in raw]
    return frame


def lookup_rows(d: Decision) -> pd.DataFrame:
    """A decision not stored yet as the rows a lookup returns (``LOOKUP_COLUMNS``)."""
    n = len(d.item_ids)
    return pd.DataFrame(
        {
            "recommendation_id": [d.recommendation_id] * n,
            "unit": [d.unit] * n,
            "served_at": np.full(n, micros_of(d), dtype=np.int64),
            "position": np.arange(1, n + 1, dtype=np.int64),
            "item_id": list(d.item_ids),
            "release": [d.release] * n,
            "variant": [d.variant] * n,
            "experiment": [d.experiment] * n,
            "page_view": [d.page_view] * n,
            "arm": [d.arm] * n,
            "arm_context": [context_text(d.arm_context)] * n,
            "placement": [d.placement] * n,
        }
    )


def lookup_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=list(LOOKUP_COLUMNS))
    frame["served_at"] = frame["served_at"].astype(np.int64)
    frame["position"] = frame["position"].astype(np.int64)
    return frame


def attribution_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """Rows for ``attributions`` from a frame with ``ATTRIBUTION_COLUMNS`` (NaN -> NULL)."""
    cols: list[list[Any]] = []
    for name in ATTRIBUTION_COLUMNS:
        values = frame[name].to_numpy(dtype=object)
        cols.append(np.where(pd.isna(values), None, values).tolist())
    return list(zip(*cols, strict=True))


def attribution_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=list(ATTRIBUTION_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(np.float64)
    frame["ts"] = frame["ts"].astype(np.int64)
    frame["position"] = frame["position"].astype("Int64")
    return frame
