"""SQL both backends run to erase a person and to keep privacy marks (``recsmith.privacy``).

One list for SQLite and PostgreSQL (``p`` is the driver's placeholder), so a table that names a
person cannot be added to one backend's erasure and forgotten in the other's. The order matters:
attributions are found through the events and decisions deleted after them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from recsmith.decisions import rows
from recsmith.decisions.record import Decision
from recsmith.privacy.marks import Mark

#: ``privacy_marks`` columns in the order ``mark_row`` gives and ``mark_from_row`` takes.
MARK_COLUMNS = ("subject", "erased", "personalization", "tracking", "updated_at")


@dataclass(frozen=True, slots=True)
class EraseQuery:
    """One DELETE of an erasure: the kind it counts under and how many times it binds the id."""

    kind: str
    sql: str
    params: int = 1


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
        # two DELETEs, not one with ``unit = p OR recommendation_id IN (…)``: an OR whose one
        # side is a subquery finds no index in PostgreSQL and reads the whole table
        EraseQuery("shown_items", f"DELETE FROM decision_items WHERE unit = {p}"),
        EraseQuery(
            "shown_items",
            f"DELETE FROM decision_items WHERE recommendation_id IN ({their_lists})",
        ),
        EraseQuery("decisions", f"DELETE FROM decisions WHERE unit = {p}"),
    ]


def dead_letter_candidates_sql(p: str, find: str) -> str:
    """Dead letters whose text holds one of ``privacy.naming.search_texts`` (bound: once, twice,
    once); ``find`` is the backend's substring position function."""
    return (
        f"SELECT id, errors, payload FROM dead_letters WHERE {find}(payload, {p}) > 0 "
        f"OR {find}(payload, {p}) > 0 OR {find}(errors, {p}) > 0"
    )


def person_decisions_sql(p: str) -> tuple[str, str]:
    """The lists served to a unit: their headers, then their shown items (an export)."""
    header = ", ".join(rows.DECISION_HEADER)
    heads = f"SELECT {header} FROM decisions WHERE unit = {p} ORDER BY served_at"
    items = (
        f"SELECT recommendation_id, {', '.join(rows.SHOWN_ITEM)} FROM decision_items "
        f"WHERE unit = {p} ORDER BY recommendation_id, position"
    )
    return heads, items


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


def decisions_with_items(
    heads: Sequence[Sequence[Any]], items: Sequence[Sequence[Any]]
) -> list[Decision]:
    """Decisions from their header rows and their item rows (``recommendation_id`` first, then
    ``rows.SHOWN_ITEM``, sorted by id and position)."""
    by_id = {rid: [r[1:] for r in group] for rid, group in groupby(items, key=lambda r: r[0])}
    return [rows.decision_from_rows(head, by_id.get(head[0], [])) for head in heads]


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
    found as two index-using branches (``events_user_item_received``, and ``events_visitor`` for
    the session-only ones) joined by ``UNION ALL``: the ``COALESCE`` or an OR would read every
    event."""
    theirs = f"SELECT alias FROM aliases WHERE user_id = {p}"
    # joins, not ``session_id IN (…)``: with an IN list SQLite's planner looks the NULL user up
    # in ``events_user_item_received`` (every anonymous event) instead of the session in the
    # partial index
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
        EraseQuery(
            "shown_items",
            f"DELETE FROM decision_items WHERE recommendation_id IN ({visitor_lists})",
        ),
        EraseQuery("decisions", f"DELETE FROM decisions WHERE unit IN ({theirs})"),
        EraseQuery("aliases", f"DELETE FROM aliases WHERE user_id = {p} OR alias = {p}", 2),
    ]


Execute = Callable[[str, Sequence[Any]], Any]


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
