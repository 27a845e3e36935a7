"""SQL both backends run to erase a person and to keep privacy marks (``recsmith.privacy``).

One list for SQLite and PostgreSQL (``p`` is the driver's placeholder), so a table that names a
person cannot be added to one backend's erasure and forgotten in the other's. The order matters:
attributions are found through the events and decisions deleted after them.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        EraseQuery(
            "shown_items",
            f"DELETE FROM decision_items WHERE unit = {p} OR recommendation_id IN ({their_lists})",
            2,
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
