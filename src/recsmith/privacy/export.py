"""Everything held about a person as one JSON document (the right of access).

Events come in the shape ``recsmith import`` reads (a JSON Lines file of them re-imports), so a
person can take their history elsewhere; the decisions are the lists shown to them. Exporting is
audited under the person's salted hash.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recsmith.decisions.record import Decision
from recsmith.governance.audit import record_audit
from recsmith.privacy.consent import consent_of
from recsmith.privacy.view import view_of
from recsmith.store.base import ApiKey, EventStore


def export_person(store: EventStore, user_id: str, *, key: ApiKey | None = None) -> dict[str, Any]:
    """The document (see module docstring): also the visitor ids linked to them
    (``privacy.identity``); a person the store knows nothing about gets one
    with empty lists, not an error: "nothing held" is an answer."""
    consent, erased = consent_of(store, user_id)
    user = store.get_user(user_id)
    events = event_records(store.person_events(user_id))
    decisions = [_decision(d) for d in store.person_decisions(user_id)]
    document = {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "erased": erased,
        "consent": {"personalization": consent.personalization, "tracking": consent.tracking},
        "profile": None if user is None else dict(user.properties),
        "aliases": [
            {"alias": alias, "kind": kind, "linked_at": _iso(linked)}
            for alias, kind, linked in store.aliases_of(user_id)
        ],
        "events": events,
        "decisions": decisions,
    }
    record_audit(
        store,
        action="export",
        target=view_of(store).subject(user_id),
        key=key,
        detail={"events": len(events), "decisions": len(decisions)},
    )
    return document


def event_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Canonical events as import records: ``timestamp`` in ISO 8601 UTC, no empty fields."""
    stamps = pd.to_datetime(frame["ts"].to_numpy(dtype=np.int64), unit="us", utc=True)
    out: list[dict[str, Any]] = []
    for row, stamp in zip(frame.to_dict("records"), stamps, strict=True):
        record = {k: v for k, v in row.items() if k != "ts" and not _absent(v)}
        if isinstance(record.get("context"), str):
            record["context"] = json.loads(record["context"])
        record["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
        out.append(record)
    return out


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).isoformat()


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _decision(decision: Decision) -> dict[str, Any]:
    return {
        "recommendation_id": decision.recommendation_id,
        "served_at": decision.served_at.isoformat(),
        "route": decision.route,
        "placement": decision.placement,
        "release": decision.release,
        "experiment": decision.experiment,
        "variant": decision.variant,
        "items": list(decision.item_ids),
    }
