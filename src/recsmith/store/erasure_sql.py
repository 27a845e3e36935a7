"""SQL both backends run to erase a person and to keep privacy marks (``recsmith.privacy``).

One list for SQLite and PostgreSQL (``p`` is the driver's placeholder), so a table that names a
person cannot be added to one backend's erasure and forgotten in the other's. The order matters:
attributions are found through the events and decisions deleted after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from recsmith.decisions import rows
from recsmith.privacy.marks import Mark

Execute = Callable[[str, Sequence[Any]], Any]
#: ``privacy_marks`` columns in the order ``mark_row`` gives and ``mark_from_row`` takes.
MARK_COLUMNS = ("subject", "erased", "personalization", "tracking", "updated_at")


@dataclass(frozen=True, slots=True)
class EraseQuery:
    """One statement of an erasure: the kind it counts under and how many times it binds the id.
    A DELETE counts the rows it removed; a ``SELECT`` (``counts``) counts what the DELETEs after
    it remove inside rows of another kind: the shown items, packed in their lists' rows."""

    kind: str
    sql: str
    params: int = 1
    counts: bool = False

    def run(self, execute: Execute, user_id: str) -> int:
        """Run it for ``user_id``; what it counts."""
        found = execute(self.sql, [user_id] * self.params)
        return int(found.fetchone()[0]) if self.counts else max(found.rowcount, 0)


def erase_queries(p: str) -> list[EraseQuery]:
    """Every DELETE that removes a person's rows, except dead letters (matched in Python:
    ``privacy.naming``)."""
    their_events = f"SELECT event_id FROM events WHERE user_id = {p}"
    their_lists = f"SELECT recommendation_id FROM decisions WHERE unit = {p}"
    return [
        EraseQuery("attributions", f"DELETE FROM attributions WHERE event_id IN ({their_events})"),
        EraseQuery(
            "attributions", f"DELETE FROM attributions WHERE recommendation_id IN ({their_lists})"
        ),
        EraseQuery("events", f"DELETE FROM events WHERE user_id = {p}"),
        EraseQuery("profile", f"DELETE FROM users WHERE user_id = {p}"),
        shown_items(f"unit = {p}"),
        EraseQuery("decisions", f"DELETE FROM decisions WHERE unit = {p}"),
    ]


def shown_items(lists: str) -> EraseQuery:
    """The items shown in the lists ``lists`` selects, counted before the lists are deleted."""
    return EraseQuery(
        "shown_items", f"SELECT COALESCE(SUM(size), 0) FROM decisions WHERE {lists}", counts=True
    )


def dead_letter_candidates_sql(p: str, find: str) -> str:
    """Dead letters whose text holds one of ``privacy.naming.search_texts`` (bound: once, twice,
    once); ``find`` is the backend's substring position function."""
    return (
        f"SELECT id, errors, payload FROM dead_letters WHERE {find}(payload, {p}) > 0 "
        f"OR {find}(payload, {p}) > 0 OR {find}(errors, {p}) > 0"
    )


def person_decisions_sql(p: str) -> str:
    """The lists served to a unit with their packed items (an export), in a repeatable order:
    two lists served in the same microsecond come by id."""
    return (
        f"SELECT {rows.PACKED_SELECT} FROM decisions WHERE unit = {p} "
        "ORDER BY served_at, recommendation_id"
    )


def events_before_sql(p: str) -> tuple[str, str]:
    """Retention: the attributions of events before a time, then those events."""
    return (
        f"DELETE FROM attributions WHERE event_id IN (SELECT event_id FROM events WHERE ts < {p})",
        f"DELETE FROM events WHERE ts < {p}",
    )


def upsert_mark_sql(p: str) -> str:
    """Insert a mark or replace the person's previous one."""
    values = ", ".join([p] * len(MARK_COLUMNS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in MARK_COLUMNS[1:])
    return (
        f"INSERT INTO privacy_marks ({', '.join(MARK_COLUMNS)}) VALUES ({values}) "
        f"ON CONFLICT (subject) DO UPDATE SET {updates}"
    )


def mark_row(mark: Mark, now_us: int) -> tuple[Any, ...]:
    return (mark.subject, mark.erased, mark.personalization, mark.tracking, now_us)


def mark_from_row(row: Sequence[Any]) -> Mark:
    subject, erased, personalization, tracking, updated = row
    return Mark(subject, bool(erased), bool(personalization), bool(tracking), int(updated))


# ---- aliases: an anonymous visitor's ids linked to the user they logged in as -----------------

#: The same DDL on both backends; created with the privacy tables.
ALIAS_SCHEMA = """
CREATE TABLE IF NOT EXISTS aliases (alias TEXT PRIMARY KEY, user_id TEXT NOT NULL,
    kind TEXT NOT NULL, linked_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS aliases_user ON aliases (user_id);
"""


def alias_erase_queries(p: str) -> list[EraseQuery]:
    """What erasing a person removes of their visitor history, run before ``erase_queries``
    (``person_queries`` puts them in order): events and lists of every alias linked to them,
    then the links themselves (as alias or as user). An alias's events are those whose user id
    is the alias, and those with no user id whose session is (``COALESCE(user_id, session_id)``),
    found as two index-using branches (``events_user_item``, and ``events_visitor`` for the
    session-only ones) joined by ``UNION ALL``: the ``COALESCE`` or an OR would read every
    event."""
    theirs = f"SELECT alias FROM aliases WHERE user_id = {p}"
    # joins, not ``session_id IN (…)``: with an IN list SQLite's planner looks the NULL user up
    # in ``events_user_item`` (every anonymous event) instead of the session in the partial index
    visitor_events = (
        "SELECT e.event_id FROM aliases a JOIN events e ON e.user_id = a.alias "
        f"WHERE a.user_id = {p} UNION ALL SELECT e.event_id FROM aliases a JOIN events e "
        f"ON e.session_id = a.alias AND e.user_id IS NULL WHERE a.user_id = {p}"
    )
    visitor_lists = f"SELECT recommendation_id FROM decisions WHERE unit IN ({theirs})"
    return [
        EraseQuery(
            "attributions", f"DELETE FROM attributions WHERE event_id IN ({visitor_events})", 2
        ),
        EraseQuery(
            "attributions", f"DELETE FROM attributions WHERE recommendation_id IN ({visitor_lists})"
        ),
        EraseQuery("events", f"DELETE FROM events WHERE event_id IN ({visitor_events})", 2),
        shown_items(f"unit IN ({theirs})"),
        EraseQuery("decisions", f"DELETE FROM decisions WHERE unit IN ({theirs})"),
        EraseQuery("aliases", f"DELETE FROM aliases WHERE user_id = {p} OR alias = {p}", 2),
    ]


def person_queries(execute: Execute, p: str, user_id: str) -> list[EraseQuery]:
    """The erasure's DELETEs for this person, in order: their visitors' rows only when they have
    aliases (the usual person has none, and their erasure stays on indexes)."""
    linked = execute(
        f"SELECT 1 FROM aliases WHERE user_id = {p} OR alias = {p}", (user_id, user_id)
    )
    visitors = alias_erase_queries(p) if linked.fetchone() is not None else []
    return [*visitors, *erase_queries(p)]


def link_alias_in(
    execute: Execute, p: str, alias: str, user_id: str, kind: str, now_us: int
) -> tuple[str, str]:
    """Link ``alias`` to ``user_id`` inside the caller's transaction, by the documented rule
    (``privacy.identity``); returns (outcome, the user it belongs to now): ``linked``,
    ``already`` (no change), ``conflict`` (linked to another user, who is returned) or ``self``
    (the alias is the user)."""
    owner = execute(f"SELECT user_id FROM aliases WHERE alias = {p}", (user_id,)).fetchone()
    user = user_id if owner is None else owner[0]  # a chain ends at its user
    if alias == user:
        return "self", user
    current = execute(f"SELECT user_id FROM aliases WHERE alias = {p}", (alias,)).fetchone()
    if current is not None:
        return ("already" if current[0] == user else "conflict"), current[0]
    # the alias was a user with aliases of its own: they follow it to its user
    execute(f"UPDATE aliases SET user_id = {p} WHERE user_id = {p}", (user, alias))
    execute(
        f"INSERT INTO aliases (alias, user_id, kind, linked_at) VALUES ({p}, {p}, {p}, {p})",
        (alias, user, kind, now_us),
    )
    return "linked", user


def aliases_of_sql(p: str) -> str:
    return (
        f"SELECT alias, kind, linked_at FROM aliases WHERE user_id = {p} ORDER BY linked_at, alias"
    )


def unlink_alias_sql(p: str) -> str:
    return f"DELETE FROM aliases WHERE alias = {p} AND user_id = {p}"


ALIAS_MAP_SQL = "SELECT alias, user_id FROM aliases"
