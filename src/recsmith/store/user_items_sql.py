"""The time-ordered query of a user's stored items (``EventStore.user_items(by_time=True)``),
shared by SQLite and PostgreSQL so the two cannot order them differently.

Each distinct item once, oldest first by its latest event (``ts``; equal times by item id, so
a list, a cached list's key and a group's read agree): a user tower or a sequence model pools a
user's latest items in this order (``ModelBundle.answer``'s ``history``), where ``SELECT
DISTINCT`` gives them in the index's order (by item id), so "the latest" were the highest ids.
Only such a release asks for it (``ModelBundle.history_in_time_order``): the grouping and sort
cost +10 µs a typical read and ~6x for a 20,000-event user (BENCHMARKS §165), which every other
release, reading the items as a set, would pay for nothing."""

from __future__ import annotations


def items_in_time_order(user: str) -> str:
    """The rows (``item_id``) of the user ``user`` (a placeholder or a correlated column)."""
    return (
        f"SELECT item_id FROM events WHERE user_id = {user} "
        "GROUP BY item_id ORDER BY max(ts), item_id"
    )


#: Which event of a (user, item) pair is its newest (``EventStore.users_items_weighed``), over
#: rows holding ``ts`` and ``liked`` (``weighs_above_zero``): the latest, and at one instant an
#: event weighing 0 or below before the others, so a view and a -2 rating sent in the same second
#: leave the item disliked on both backends, as the online state does (``events.latest``) and
#: as training's net weight of the pair (-1) does. A backend's own order for equal times (the
#: first row SQLite's ``max()`` reaches, an event id) would make each answer differently.
NEWEST_EVENT_FIRST = "ts DESC, liked"


def weighs_above_zero(in_constant: str, in_by_value: str) -> str:
    """Whether an event row weighs above 0 (``EventStore.users_items_weighed``): its type is one
    whose every event does (``in_constant``: the backend's test of ``event_type`` against
    ``events.latest.signal_of``'s first list), or one weighed by its value (``in_by_value``)
    and its value is above 0; a missing value is not (false, never NULL, so ``NOT`` of it holds)."""
    return f"coalesce({in_constant} OR ({in_by_value} AND value > 0), FALSE)"
