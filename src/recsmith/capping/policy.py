"""What capping does to one list: pure functions of what the unit was shown (no I/O, no clock).

``caps`` turns the unit's recent lists (``history.shown_since``) into the items to withhold from
the pipeline's candidates and the items to demote; ``demote`` moves demoted items below every
other item of a served list, pinned slots kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from recsmith.capping.history import Shown

Action = Literal["drop", "demote"]


@dataclass(frozen=True, slots=True)
class Caps:
    """One request's capping: ``withheld`` never reach the candidates (dropped by the frequency
    cap, or shown already in this page view); ``demoted`` sink to the end of the list.
    ``capped`` counts the items the frequency cap acted on, ``repeated`` the page view's."""

    withheld: tuple[str, ...] = ()
    demoted: frozenset[str] = frozenset()
    capped: int = 0
    repeated: int = 0


NONE = Caps()


def caps(
    shown: Shown,
    *,
    max_shows: int | None,
    window_since_us: int,
    action: Action,
    page_view: str | None,
    pinned: Collection[str] = (),
) -> Caps:
    """The capping for a request from ``shown`` (``history.shown_since``: one row per list and
    item).

    An item counts one show per list that showed it within ``[window_since_us, …]``; at
    ``max_shows`` shows it is capped (a next show would be one too many). ``max_shows`` None: no
    frequency cap. Items of ``page_view``'s lists are withheld whatever their count. ``pinned``
    items are exempt from both: a rule's pin wins."""
    free = ~np.isin(shown.item_id, np.asarray(list(pinned), dtype=object))
    capped: list[str] = []
    if max_shows is not None:
        recent = shown.item_id[free & (shown.served_at >= window_since_us)]
        items, counts = np.unique(recent.astype(str), return_counts=True)
        capped = items[counts >= max_shows].tolist()
    repeated: set[str] = set()
    if page_view is not None:
        repeated = set(shown.item_id[free & (shown.page_view == page_view)].tolist())
    if action == "demote":  # the page view's items go whatever the count; the rest sink
        sink = frozenset(capped) - repeated
        return Caps(tuple(sorted(repeated)), sink, 0, len(repeated))
    again = sorted(repeated - set(capped))
    return Caps((*capped, *again), frozenset(), len(capped), len(again))


def demote(
    items: Sequence[Mapping[str, Any]], demoted: Collection[str], pins: Mapping[str, int]
) -> tuple[list[Mapping[str, Any]], int]:
    """``items`` with the ``demoted`` ones after every other (both groups in their order), and
    how many were demoted. An item at the slot a rule pins it to (``pins``: item -> 0-based
    slot) stays there, and is never demoted; the others fill the remaining slots in order."""
    if not demoted:
        return list(items), 0
    fixed = {n: item for n, item in enumerate(items) if pins.get(str(item["item_id"])) == n}
    rest = [item for n, item in enumerate(items) if n not in fixed]
    sunk = [item for item in rest if item["item_id"] in demoted]
    order = iter([item for item in rest if item["item_id"] not in demoted] + sunk)
    return [fixed[n] if n in fixed else next(order) for n in range(len(items))], len(sunk)
