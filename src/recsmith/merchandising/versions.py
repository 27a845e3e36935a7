"""Setting and reading the live rule file's versions in the store, audited.

Every set appends a version (``merchandising.rows``); the current one is the newest. Setting the
empty file is a version too: the pipeline's rules again, with the history still there to go
back to (``recsmith rules show --version N``, then set it again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from recsmith.governance.audit import cli_actor, record_audit
from recsmith.merchandising.document import RuleDocument, parse_document
from recsmith.store.base import ApiKey, EventStore, from_micros, micros

#: The audit trail's action for a change of the live rules.
AUDIT_ACTION = "rules.set"


@dataclass(frozen=True)
class RuleSet:
    """One version of the live rule file: who set it and when."""

    version: int
    document: RuleDocument
    set_by: str | None
    set_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "set_by": self.set_by,
            "set_at": self.set_at.isoformat(),
            "rules": self.document.to_json(),
        }


def _from_row(row: tuple[Any, ...]) -> RuleSet:
    version, document, set_by, set_at = row
    at = from_micros(int(set_at))
    assert at is not None
    return RuleSet(int(version), parse_document(json.loads(document)), set_by, at)


def current_rules(store: EventStore) -> RuleSet | None:
    """The newest version; None when rules were never set (the pipeline's rules)."""
    rows = store.rule_sets(1)
    return _from_row(rows[0]) if rows else None


def rule_version(store: EventStore, version: int) -> RuleSet | None:
    """Version ``version``; None when there is no such version."""
    rows = store.rule_sets(version=version)
    return _from_row(rows[0]) if rows else None


def rule_history(store: EventStore, limit: int = 20) -> list[RuleSet]:
    """The latest ``limit`` versions, newest first."""
    return [_from_row(row) for row in store.rule_sets(limit)]


def set_rules(store: EventStore, document: RuleDocument, key: ApiKey | None = None) -> RuleSet:
    """Store ``document`` as the next version and audit it (``rules.set``: who, the previous
    and new version, and how many rules each list holds). ``key``: the API key that asked
    (None: the CLI). Check it against the catalogue first (``RuleDocument.check``)."""
    set_by = cli_actor() if key is None else key.name
    at = datetime.now(UTC)
    version = store.add_rule_set(json.dumps(document.to_json()), set_by, micros(at) or 0)
    counts = {where.removesuffix("[{}]"): len(rules) for where, rules in document.lists()}
    record_audit(
        store,
        action=AUDIT_ACTION,
        target=f"rules version {version}",
        key=key,
        detail={
            "previous_version": version - 1 if version > 1 else None,
            "version": version,
            "rules": counts,
            "pipeline_rules": document.empty,
        },
    )
    return RuleSet(version, document, set_by, at)
