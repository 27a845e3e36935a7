"""``capping.policy`` by hand: counts per list, the page view's items, pins exempt and kept."""

from __future__ import annotations

import numpy as np

from recsmith.capping.history import Shown
from recsmith.capping.policy import caps, demote


def _shown(rows: list[tuple[str, int, str, str | None]]) -> Shown:
    """(recommendation_id, served_at µs, item, page_view) rows as ``history.Shown``."""
    return Shown(
        np.array([r[2] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=object),
    )


SHOWN = _shown(
    [
        ("r1", 100, "a", None),
        ("r1", 100, "b", None),
        ("r2", 200, "a", None),
        ("r2", 200, "c", None),
        ("r3", 300, "a", "pv"),
        ("r3", 300, "b", "pv"),
        ("r3", 300, "p", "pv"),
        ("r4", 400, "p", None),
        ("r4", 400, "p2", None),
    ]
)


def test_counts_within_the_window_and_the_page_view() -> None:
    # in [150, …]: a twice (r2, r3), b, c, p2 once, p twice; r1 is before the window
    got = caps(
        SHOWN, max_shows=2, window_since_us=150, action="drop", page_view="pv", pinned=("p",)
    )
    assert got.withheld == ("a", "b") and got.capped == 1 and got.repeated == 1
    wider = caps(SHOWN, max_shows=2, window_since_us=0, action="drop", page_view=None)
    assert wider.withheld == ("a", "b", "p") and wider.capped == 3  # a 3, b 2, p 2


def test_demote_keeps_the_page_view_out_and_sinks_the_rest() -> None:
    got = caps(
        SHOWN, max_shows=1, window_since_us=0, action="demote", page_view="pv", pinned=("p",)
    )
    assert got.withheld == ("a", "b") and got.repeated == 2
    assert got.demoted == frozenset({"c", "p2"}) and got.capped == 0


def test_demote_sinks_in_order_and_leaves_pinned_slots() -> None:
    items = [{"item_id": x} for x in ["c", "p", "x", "p2", "y", "z"]]
    out, moved = demote(items, {"c", "p2", "z"}, {"p": 1, "q": 0})
    # slot 1 holds p (pinned there); the rest: x, y, then c, p2, z
    assert [i["item_id"] for i in out] == ["x", "p", "y", "c", "p2", "z"] and moved == 3
    same, none = demote(items, set(), {"p": 1})
    assert same == items and none == 0
