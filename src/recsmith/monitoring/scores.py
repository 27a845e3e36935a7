"""Score drift: are the scores the served release gives its users still distributed as they were
when it was trained?

At training a pipeline answers a sample of its training users (``SAMPLE_USERS``, lists of
``K``) and the manifest keeps where those scores fall (``score_profile``: the nine inner decile
cuts and the count in each of the ten buckets). The monitor takes the scores the decision log
recorded for that release's lists to known users in the window (the same quantity: the served
list's score, computed on the same kind of user; fallback lists for unknown users are another
distribution and are left out), buckets them at the same cuts and reports the PSI. Scores
sliding as a whole (a feature whose inputs moved, a source that went quiet) show here even when
the items served look alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from recsmith.ids import IdMap
from recsmith.monitoring.deciles import bucket_counts, cuts, decile_psi
from recsmith.store.base import EventStore

#: Manifest key of the profile.
KEY = "score_profile"
#: Training users whose lists make the profile, and the length of each list.
SAMPLE_USERS = 1000
K = 10


def score_profile(scores: np.ndarray) -> dict[str, Any]:
    """The cuts between ten equal-mass buckets of ``scores`` and the count of scores in each
    (``monitoring.deciles``); non-finite scores (a short list's padding) are left out."""
    values = np.asarray(scores, dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return {"edges": [], "counts": [], "n_scores": 0}
    edges = cuts(values)
    return {
        "edges": edges.tolist(),
        "counts": bucket_counts(edges, values).tolist(),
        "n_scores": len(values),
    }


def pipeline_score_profile(pipeline: Any, seed: int = 0) -> dict[str, Any]:
    """``score_profile`` of ``pipeline``'s lists for up to ``SAMPLE_USERS`` of its training
    users (a fixed-seed sample: the same release gives the same profile)."""
    users = np.asarray(pipeline.bundle.users.external_ids, dtype=object)
    if len(users) > SAMPLE_USERS:
        users = np.random.default_rng(seed).choice(users, SAMPLE_USERS, replace=False)
    if not len(users):
        return score_profile(np.empty(0))
    rows = pipeline.answer(users.tolist(), K).lists.scores  # rows may be short: ragged
    scores = np.concatenate([np.asarray(row, dtype=np.float64).ravel() for row in rows])
    return {**score_profile(scores), "k": K}


def score_psi(profile: dict[str, Any], scores: np.ndarray) -> float | None:
    """PSI of ``scores`` against the training ``profile`` over its buckets (None: nothing to
    compare)."""
    if not profile.get("counts") or not len(scores):
        return None
    return decile_psi(profile, scores)


def served_scores(store: EventStore, version: str, users: IdMap, since: datetime) -> np.ndarray:
    """The scores of the items the decision log shows ``version`` served since ``since`` on the
    recommendations route to users it was trained on."""
    shown = store.scan_decisions(since)
    if shown.empty:
        return np.empty(0)
    keep = (shown["route"] == "recommendations") & (shown["release"] == version)
    keep &= shown["unit"].notna() & shown["score"].notna()
    shown = shown[keep]
    known = users.to_index(shown["unit"].to_numpy(dtype=object)) >= 0
    scores = shown["score"].to_numpy(dtype=np.float64)[known]
    return scores[np.isfinite(scores)]
