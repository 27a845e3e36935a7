"""Each user's latest items one at a time: the deeper latest-item protocol calibration asks for
where one latest item per user tells the single sources apart by no more than noise. Checked
against splits written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_calibration import purchases

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.pipeline.validation import latest_items_one_at_a_time


def test_each_split_holds_the_next_item_of_users_with_twice_as_many_items() -> None:
    """u0 takes items 0..5 in order, u1 items 10..13, u2 items 20, 21, u3 item 30 alone, u4
    items 40, 41, 42, 43 then 41 again (a repeat: its latest event teaches nothing). By hand,
    split k holds out the (k + 1)-th latest event of every user with at least 2 (k + 1) distinct
    items, on the events without that user's latest k + 1:
    split 0: u0 → 5, u1 → 13, u2 → 21 (u4's latest is a repeat, u3 has one item);
    split 1: u0 → 4 (past 0..3), u1 → 12 (past 10, 11), u4 → 43 (past 40..42);
    split 2: u0 → 3 (past 0..2) — u1 and u4 have four distinct items, not six."""
    rows = [(0, i) for i in range(6)] + [(1, 10 + i) for i in range(4)] + [(2, 20), (2, 21)]
    rows += [(3, 30)] + [(4, i) for i in (40, 41, 42, 43, 41)]
    users, items = zip(*rows, strict=True)
    events = purchases(users, items, np.arange(len(rows)) * 1_000_000)
    full = Interactions.from_events(events, EventSettings().weights)
    splits = latest_items_one_at_a_time(full, max_users=5000, seed=0, depth=3)
    assert [v.protocol for v in splits] == ["each user's latest 3 items, one at a time"] * 3
    expected = [
        {"u0000": "i0005", "u0001": "i0013", "u0002": "i0021"},
        {"u0000": "i0004", "u0001": "i0012", "u0004": "i0043"},
        {"u0000": "i0003"},
    ]
    dropped = [  # each user's events missing from that split's past (u4's repeat, as in the
        {"u0000": 1, "u0001": 1, "u0002": 1, "u0004": 1},  # one-item protocol: held, unscored)
        {"u0000": 2, "u0001": 2, "u0004": 2},
        {"u0000": 3},
    ]
    per_user = events.groupby("user_id").size()
    for val, want, gone in zip(splits, expected, dropped, strict=True):
        users_out = list(full.users.to_external(val.users))
        held = dict(zip(users_out, full.items.to_external(val.truth.indices), strict=True))
        assert held == want
        assert np.diff(val.truth.indptr).tolist() == [1] * len(want)  # one item per user
        past_users = full.users.to_external(val.past.event_users)
        sizes = {u: int((past_users == u).sum()) for u in per_user.index}
        # users with a (k + 1)-th latest event lose their latest k + 1; the rest keep theirs
        assert sizes == {u: int(n) - gone.get(u, 0) for u, n in per_user.items()}
        # the query stands at the held-out event itself
        assert list(full.items.to_external(full.event_items[val.first])) == list(want.values())


def test_a_user_count_above_the_cap_is_sampled_per_split() -> None:
    rows = [(u, (u + j) % 50) for u in range(60) for j in range(6)]
    users, items = zip(*rows, strict=True)
    events = purchases(users, items, np.arange(len(rows)) * 1_000_000)
    full = Interactions.from_events(events, EventSettings().weights)
    splits = latest_items_one_at_a_time(full, max_users=25, seed=3, depth=3)
    assert [len(v.users) for v in splits] == [25, 25, 25]
    assert sum(len(v.users) for v in latest_items_one_at_a_time(full, 5000, 3, 3)) == 180
    with pytest.raises(AssertionError):
        assert splits[0].users.tolist() == list(range(25))  # seeded sample, not the first 25
