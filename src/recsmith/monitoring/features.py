"""Feature drift: are the ranker's input features still distributed as they were at training?

At training the finished pipeline answers a sample of its training users (``SAMPLE_USERS``),
each at the moment and with the context of their own latest event, and the manifest keeps each
feature's deciles and missing count over the candidate rows the ranker scored
(``feature_profile``; ``ROWS_PER_QUERY`` rows per query, spread over its candidates by
``query_rows``). A server samples the rows of one query in ``[monitor] feature_sample_every``
with the same ``query_rows`` (``serving.feature_sampler``), and the monitor reports each
feature's PSI against the profile (``feature_psi``): a device mix, a price level or a user's
activity moving shows here even when scores and items look alike.

Why not profile the ranker's own training rows: they are built from the state *before* the
label window (fewer events per user and item, models fitted on less) for queries standing at
the first label-window event, and they hold the label window's positives added to the
candidates. None of that is what serving computes: on unchanged traffic those rows gave a PSI of
7.6. The profile must come from the very code path and state that serving uses, which is why it
is made from the finished pipeline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from recsmith.features.interactions import Interactions
from recsmith.monitoring.deciles import decile_profile, decile_psi
from recsmith.ranking.context import moments_of

#: Manifest key of the profile.
KEY = "feature_profile"
#: Training users whose candidate rows make the profile.
SAMPLE_USERS = 1000
#: Rows taken from one query at most, here and when serving samples.
ROWS_PER_QUERY = 20
#: How many features ``recsmith monitor`` and the console name, worst first.
WORST = 5


def query_rows(
    query: np.ndarray, picked: np.ndarray, per_query: int = ROWS_PER_QUERY
) -> np.ndarray:
    """Rows of the ``picked`` queries (``query``: each row's query, sorted): up to ``per_query``
    per query, evenly spread over its rows (the ranker scores them all, best or not)."""
    lo = np.searchsorted(query, picked, side="left")
    n = np.searchsorted(query, picked, side="right") - lo
    m = np.minimum(n, per_query)
    within = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
    return np.repeat(lo, m) + within * np.repeat(n, m) // np.repeat(np.maximum(m, 1), m)


def feature_profile(names: list[str], rows: np.ndarray) -> dict[str, Any]:
    """Each named column's ``decile_profile`` over ``rows`` [n, len(names)]."""
    if rows.shape[1] != len(names):
        raise ValueError(f"{rows.shape[1]} feature columns for {len(names)} names")
    return {
        "names": list(names),
        "n_rows": len(rows),
        "per_query": ROWS_PER_QUERY,
        "features": {name: decile_profile(rows[:, j]) for j, name in enumerate(names)},
    }


def pipeline_feature_profile(pipeline: Any, data: Interactions, seed: int = 0) -> dict[str, Any]:
    """``feature_profile`` of ``pipeline``'s candidate rows for up to ``SAMPLE_USERS`` of the
    users of ``data`` (its training interactions), each asking at their latest event's time and
    with its context, as a request for them would (a fixed-seed sample: the same release gives
    the same profile). ``pipeline`` must have a ranker."""
    names = list(pipeline.ranker.booster.feature_name())
    if not data.n_users or not len(data.event_ts):
        return feature_profile(names, np.zeros((0, len(names)), np.float32))
    users = np.arange(data.n_users)
    if len(users) > SAMPLE_USERS:
        users = np.sort(np.random.default_rng(seed).choice(users, SAMPLE_USERS, replace=False))
    order = np.lexsort((data.event_ts, data.event_users))
    owners = data.event_users[order]
    at = np.maximum(np.searchsorted(owners, users, side="right") - 1, 0)
    latest = np.where(owners[at] == users, order[at], -1)
    moments, contexts = moments_of(data, latest)
    queries = pipeline.queries(data.users.to_external(users), None, None, contexts)
    everyone = np.arange(len(users))
    kept: list[np.ndarray] = []
    pipeline.candidates(
        replace(queries, moments=moments),
        ROWS_PER_QUERY,
        tap=lambda rows, query: kept.append(rows[query_rows(query, everyone)]),
    )
    rows = kept[0] if kept else np.zeros((0, len(names)), np.float32)
    return feature_profile(names, rows)


def feature_psi(profile: dict[str, Any], rows: np.ndarray) -> dict[str, float]:
    """Each feature's PSI of ``rows`` (sampled at serving, columns as ``profile["names"]``)
    against the profile, largest first; features with nothing to compare are left out."""
    names = profile["names"]
    if rows.ndim != 2 or rows.shape[1] != len(names) or not len(rows):
        return {}
    out = {
        name: value
        for j, name in enumerate(names)
        if (value := decile_psi(profile["features"][name], rows[:, j])) is not None
    }
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
