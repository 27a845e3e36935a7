"""The decision log's record of a batch run (``recsmith recommend``): one decision per list.

Written straight to the store in chunks, not through ``DecisionLog``: a batch has no request to
keep fast, and a buffer bounded for live traffic would drop most of a 100,000-user run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import numpy as np

from recsmith.bundle import BatchRecommendations
from recsmith.decisions.record import UnitKind, decision
from recsmith.store.base import EventStore
from recsmith.store.url_scheme import SQLITE_PREFIX, sqlite_file

CHUNK = 5000


def store_exists(url: str) -> bool:
    """Whether the configured store is there to record into: a PostgreSQL URL, or a SQLite file
    that exists (a batch run must not create a store as a side effect) and is not named
    read-only (``?mode=ro``: nothing can be recorded there)."""
    if url.startswith(SQLITE_PREFIX):
        path, read_only = sqlite_file(url)
        return not read_only and Path(path).is_file()
    return True


def record_batch(
    store: EventStore,
    recs: BatchRecommendations,
    unit_ids: Sequence[str] | np.ndarray,
    *,
    unit_kind: UnitKind,
    release: str,
) -> list[str]:
    """Store one decision (route ``batch``) per list; returns their recommendation ids, in
    ``unit_ids`` order. Each item is recorded with the sources that proposed it (``recs.sources``:
    the model, or the popularity fill below it), as a served list records them."""
    served_at = datetime.now(UTC)
    ids = [uuid4().hex for _ in range(len(unit_ids))]
    pending = []
    for rid, unit, items, scores, sources in zip(
        ids, unit_ids, recs.item_ids, recs.scores, recs.sources, strict=True
    ):
        pending.append(
            decision(
                rid,
                unit=str(unit),
                unit_kind=unit_kind,
                route="batch",
                release=release,
                item_ids=items.tolist(),
                scores=scores.tolist(),
                sources=sources,
                served_at=served_at,
            )
        )
        if len(pending) == CHUNK:
            store.append_decisions(pending)
            pending = []
    store.append_decisions(pending)
    return ids
