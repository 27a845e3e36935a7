"""``users_items``: a group's users' items by one query, on SQLite and PostgreSQL, held to an
independent oracle (``testing.items_oracle``: each user's ``SELECT DISTINCT`` run alone): the
same lists, in the order asked, a user asked twice answered twice, an unknown one ``[]``."""

from __future__ import annotations

import pytest

from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest
from recsmith.testing.items_oracle import items_alone

#: ids a JSON array or a SQL literal must escape, or could misread
ODD = ['say "hi"', "back\\slash", "naïve ☃ 🎁", "007", "null", "[]", "a'b", "a\u2028b"]


def fill(store: EventStore) -> None:
    """Users with one, several (repeated) and odd items, users with odd ids, and an anonymous
    event (no user) that nobody's list may hold."""
    events = [event(f"i{n % 7}", user=f"u{n % 5}", h=n / 10) for n in range(40)]
    events += [event(i, user="odd", h=n) for n, i in enumerate([*ODD, *ODD])]
    events += [event("solo", user=u, h=1) for u in ODD]
    events.append(event("anon-item", user=None, session_id="s"))
    ingest(store, events)


def test_a_group_reads_what_each_user_has(store: EventStore) -> None:
    fill(store)
    asked = ["u3", "nobody", "odd", "u0", "u3", *ODD, "", "u1", "nobody"]
    got = store.users_items(asked)
    assert [sorted(items) for items in got] == items_alone(store, asked)
    assert got[1] == got[-1] == [] and got[0] == got[4] != []
    assert sorted(got[2]) == sorted(ODD) and all(type(i) is str for i in got[2])


def test_each_list_in_the_single_read_s_order(store: EventStore) -> None:
    """Not only the same sets: the same order as ``user_items`` (what a list's exclusions and
    the response cache's key are built from)."""
    fill(store)
    asked = [f"u{n}" for n in range(5)] + ["odd"]
    assert store.users_items(asked) == [store.user_items(u) for u in asked]


def test_many_users_stay_in_the_order_asked(store: EventStore) -> None:
    ingest(store, [event(f"i{n}", user=f"p{n}") for n in range(300)])
    asked = [f"p{n}" for n in reversed(range(300))]
    assert store.users_items(asked) == [[f"i{n}"] for n in reversed(range(300))]


def test_no_users_no_lists(store: EventStore) -> None:
    assert store.users_items([]) == []


def test_an_id_that_is_not_a_string_is_refused(store: EventStore) -> None:
    """A number would be read as its text (``7`` as ``"7"``), a list on PostgreSQL as an array
    of several users (more lists than ids, shifting the group's onto other users): a caller's
    bug, raised as it is, not an outage."""
    for bad in (7, ["u1", "u2"]):
        with pytest.raises(TypeError, match="strings"):
            store.users_items(["u1", bad])  # type: ignore[list-item]
    assert store.outage.failing == set()


def test_each_list_by_time_is_in_time_order_by_each_item_s_latest_event(
    store: EventStore,
) -> None:
    """Hand-built: "t" met b, a, c, then b again, and z and y at one moment; read ``by_time``,
    the list is oldest first by each item's latest event, equal times by item id: a, c, b, y,
    z (what a user tower pools as the latest items), not the index's order by id; the plain
    read gives the same sets."""
    met = [("b", 1), ("a", 2), ("c", 3), ("b", 4), ("z", 5), ("y", 5)]
    ingest(store, [event(item, user="t", h=h) for item, h in met])
    ingest(store, [event("b", user="other", h=9)])  # another user's later event counts not
    want = ["a", "c", "b", "y", "z"]
    assert store.user_items("t", by_time=True) == want
    asked = ["other", "t", "nobody", "t"]
    assert store.users_items(asked, by_time=True) == [["b"], want, [], want]
    # the plain read: the same sets, in no order promised (the cheap read: BENCHMARKS §165)
    assert sorted(store.user_items("t")) == sorted(want)
    assert [sorted(i) for i in store.users_items(asked)] == [["b"], sorted(want), [], sorted(want)]
