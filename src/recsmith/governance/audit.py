"""The audit trail: who changed what, when, and whether it worked.

An auditor asks "who deployed this release", "who revoked that key", "was this person erased";
the answers must outlive the server that acted and must not be editable by the people they are
about. So every admin action appends one ``AuditRecord`` to the store's ``audit_log`` table,
which refuses UPDATE and DELETE (a trigger in SQLite and PostgreSQL alike): records can be added
and read, never changed. A record names the acting API key by id and name, never by its secret
(the store holds only its hash anyway); a CLI action names the operating-system user instead.

Recording is part of the action: a store that cannot take the record fails the action's caller,
rather than leaving an action nobody can account for.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from recsmith.errors import ValidationError
from recsmith.store.base import ApiKey, EventStore, from_micros, micros

#: Outcome of an action that did what it was asked.
OK = "ok"
#: Longest ``target`` and ``outcome`` kept; a longer text is cut (an audit row stays small).
MAX_TEXT = 500

#: Every action the audit trail records: ``record_audit`` refuses any other, so a reader's
#: ``action`` filter can refuse a name no record can carry instead of answering an empty list.
ACTIONS = frozenset(
    {
        "alias.link",
        "alias.unlink",
        "consent",
        "deadletters.replay",
        "deploy",
        "erase",
        "experiment.promote",
        "experiment.start",
        "experiment.stop",
        "export",
        "key.create",
        "key.revoke",
        "purge",
        "reload",
        "retrain",
        "rollback",
        "rules.set",
        "shadow.start",
        "shadow.stop",
    }
)
#: What an ``action`` filter accepts: an action, or the group before its dot (``key`` finds
#: ``key.create`` and ``key.revoke``).
ACTION_FILTERS = ACTIONS | {name.split(".", 1)[0] for name in ACTIONS}


def action_filter(action: str | None, field: str = "action") -> str | None:
    """``action`` as a filter of the audit trail, or the error naming ``field`` (the query
    parameter, or the CLI's option) and the known actions."""
    if action is None or action in ACTION_FILTERS:
        return action
    known = ", ".join(sorted(ACTION_FILTERS))
    raise ValidationError(field, f"unknown action {action!r}; known: {known}")


@dataclass(frozen=True)
class AuditRecord:
    """One admin action as the audit trail keeps it (see module docstring)."""

    at: datetime  # UTC
    key_id: str | None  # the acting API key's id (never its secret); None for the CLI
    key_name: str | None  # the key's name, or "cli:<os user>" for a CLI action
    action: str  # e.g. "deploy", "key.revoke", "erase"
    target: str  # what it acted on (for "erase": a salted hash, never the id in clear)
    outcome: str  # "ok" or a short failure reason
    detail: dict[str, Any] = field(default_factory=dict)  # small JSON-able extra

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON types (``at`` as ISO 8601 UTC): what ``--json`` and
        ``GET /v1/admin/audit`` show."""
        return {
            "at": self.at.isoformat(),
            "key_id": self.key_id,
            "key_name": self.key_name,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def cli_actor() -> str:
    """``cli:<os user>``: who acted when no API key did (a command run on the server)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return f"cli:{user}"


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def record_audit(
    store: EventStore,
    *,
    action: str,
    target: str,
    outcome: str = OK,
    key: ApiKey | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one record (append-only table ``audit_log`` in SQLite and PostgreSQL).

    ``key`` is the API key that asked (None: the CLI, named by ``cli_actor``). ``detail`` must be
    JSON-able: it is checked here so a bad one fails the caller at once, not a later reader."""
    if action not in ACTIONS:
        raise ValidationError("action", f"{action!r} is not one of the audit trail's ACTIONS")
    extra = dict(detail or {})
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as exc:
        raise ValidationError("detail", f"must be JSON-able: {exc}") from exc
    record = AuditRecord(
        at=datetime.now(UTC),
        key_id=None if key is None else key.key_id,
        key_name=cli_actor() if key is None else key.name,
        action=action,
        target=_short(target),
        outcome=_short(outcome),
        detail=extra,
    )
    store.append_audit([record])


# ---- rows as the SQL backends store them ------------------------------------------------------

#: ``audit_log`` columns in the order ``audit_row`` gives and ``audit_from_row`` takes.
AUDIT_COLUMNS = ("at", "key_id", "key_name", "action", "target", "outcome", "detail")


def audit_row(record: AuditRecord) -> tuple[Any, ...]:
    return (
        micros(record.at),
        record.key_id,
        record.key_name,
        record.action,
        record.target,
        record.outcome,
        json.dumps(record.detail),
    )


def audit_from_row(row: Sequence[Any]) -> AuditRecord:
    at, key_id, key_name, action, target, outcome, detail = row
    when = from_micros(at)
    assert when is not None  # a NOT NULL column
    return AuditRecord(when, key_id, key_name, action, target, outcome, json.loads(detail))


def scan_audit_query(
    since: datetime | None, action: str | None, limit: int, mark: str
) -> tuple[str, list[Any]]:
    """The SELECT behind ``EventStore.scan_audit`` and its parameters, for a driver whose
    placeholder is ``mark`` (``?`` or ``%s``): the newest ``limit`` matches, newest first."""
    where, params = [f"at >= {mark}"], [micros(since) if since is not None else -(2**63)]
    if action is not None:
        where.append(f"(action = {mark} OR substr(action, 1, length({mark})) = {mark})")
        params += [action, f"{action}.", f"{action}."]
    query = (
        f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE {' AND '.join(where)} "
        f"ORDER BY id DESC LIMIT {mark}"
    )
    return query, [*params, limit]
