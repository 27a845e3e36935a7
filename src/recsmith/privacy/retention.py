"""Retention: personal data kept no longer than ``[privacy] retain_*_days`` says.

``recsmith purge`` runs it once; ``serve`` runs it every ``privacy.purge_interval_h`` when set
(``privacy.sync``). Both report how much they removed, and each run is audited. A kind without a
retention setting is left alone (decisions fall back to ``decisions.retain_days``, which the
decision writer applies too).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from recsmith.config import Settings
from recsmith.governance.audit import record_audit
from recsmith.store.base import ApiKey, EventStore

log = logging.getLogger(__name__)


def purge(
    store: EventStore, settings: Settings, *, now: datetime | None = None, key: ApiKey | None = None
) -> dict[str, int]:
    """Delete what is past its retention; returns the rows removed by kind (kinds without a
    setting are absent)."""
    now = now or datetime.now(UTC)
    privacy = settings.privacy
    removed: dict[str, int] = {}
    if privacy.retain_events_days is not None:
        cutoff = now - timedelta(days=privacy.retain_events_days)
        removed["events"] = store.delete_events_before(cutoff)
    decision_days = privacy.retain_decisions_days or settings.decisions.retain_days
    removed["decisions"] = store.delete_decisions_before(now - timedelta(days=decision_days))
    if privacy.retain_dead_letters_days is not None:
        cutoff = now - timedelta(days=privacy.retain_dead_letters_days)
        removed["dead_letters"] = store.delete_dead_letters_before(cutoff)
    record_audit(store, action="purge", target="retention", key=key, detail=removed)
    return removed


async def purge_every(store: EventStore, settings: Settings, interval_h: float) -> None:
    """Purge now and then every ``interval_h`` hours until cancelled; a failed run (store down)
    is logged and tried again at the next tick."""
    while True:
        try:
            removed = await asyncio.to_thread(purge, store, settings)
            log.info("retention purge removed %s", removed)
        except Exception as exc:  # keep the timer alive: the next run tries again
            log.warning("retention purge failed: %s", exc)
        await asyncio.sleep(interval_h * 3600)
