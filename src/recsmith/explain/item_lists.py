"""Explanations of an item list (``/similar``, ``/together``, ``/popular``, ``/trending`` with
``?explain=true``): one source each, so per item its rank and score in that source's own list,
the anchor (the item a neighbour list is about) and what moved it.

Between the source and the list stands one step: items the live catalogue marks unavailable are
left out (``bundle.shown``), which lifts the items below them. The source's own list is read
again with every item allowed (``bundle.every_item_shown``), so an item's rank there counts the
unavailable items above it, and ``moved_by`` says ``availability`` where the two differ.
Business rules re-rank user lists only; these lists have no other stage.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recsmith.bundle import every_item_shown
from recsmith.explain.positions import moved_by
from recsmith.explain.rule_steps import AVAILABILITY
from recsmith.explain.schema import Anchor, ItemExplanation, SourceSay

Fetch = Callable[[int], tuple[np.ndarray, np.ndarray]]


def explain_list(
    fetch: Fetch, listed: np.ndarray, source: str, anchor: str | None = None
) -> list[ItemExplanation]:
    """An explanation per item of ``listed`` (external ids, as ``fetch(k)`` answered them).
    ``anchor``: the item a neighbour list was asked for, behind every item of it."""
    ids, scores = source_list(fetch, listed)
    rank_of = {item: n for n, item in enumerate(ids.tolist(), start=1)}
    out = []
    for slot, item in enumerate(listed.tolist(), start=1):
        rank = rank_of[item]
        score = float(scores[rank - 1])
        at: dict[str, int | None] = {"ranked": rank, AVAILABILITY: slot}
        finite = score if np.isfinite(score) else None
        out.append(
            ItemExplanation(
                sources=[SourceSay(name=source, rank=rank, score=finite)],
                positions=at,
                moved_by=moved_by(at),
                anchors=[Anchor(source=source, item_id=anchor, weight=finite or 0.0)]
                if anchor is not None
                else [],
            )
        )
    return out


def source_list(fetch: Fetch, listed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The source's list with every item allowed, long enough to hold every listed item (it
    grows as ``shown`` does, until it does or the source runs out)."""
    want = max(len(listed), 1)
    needed = set(listed.tolist())
    while True:
        with every_item_shown():
            ids, scores = fetch(want)
        if needed <= set(ids.tolist()) or len(ids) < want:
            return ids, scores
        want *= 4
