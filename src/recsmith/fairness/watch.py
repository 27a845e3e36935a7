"""The server's fairness loop: every ``refresh_s``, read the decision log's window (only what is
new since the last read, through the server's ``decisions.window``) and update the exposure
gauges and the amortised exposure boost.

Both want exposure *so far*, which changes slowly; reading the log per request would put a store
scan on the request path for a number that moves by one slot. So a background task does it on a
timer (like the catalogue sync), off the event loop, and a failed read (store down) simply waits
for the next tick: the gauges keep their last values and the boost its last array.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from recsmith.fairness.monitor import live_exposure, narrowing
from recsmith.store.base import LOOKBACK_US, EventStore

log = logging.getLogger(__name__)

#: The gauges' window and refresh period when no ``[rerank.amortised]`` says otherwise: an hour
#: of lists is plenty for a share and a Gini, and a server reads the whole window at start (at
#: 100 lists/s of 10 items, an hour is 3.6M rows; later refreshes read only what is new,
#: ``decisions.window``), so the window stays short by default.
WINDOW_DAYS, REFRESH_S = 1.0 / 24.0, 300.0


class CatalogueGroups:
    """Each item's first category and the catalogue's size, as the gauges need them, kept from
    the store's catalogue writes (``items_changed_since``) rather than the whole catalogue read
    on every refresh: the first read takes every item, later ones what was written since (and
    a ``LOOKBACK_US`` margin for a late commit, as ``serving.catalog_sync``). Items are never
    deleted from a store, so nothing else can change the map."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.first: dict[str, str] = {}
        self.size = 0
        self._ids: set[str] = set()
        self._since = 0
        self._seen: dict[str, int] = {}

    def update(self) -> None:
        """Apply the catalogue writes since the last update."""
        changes = self.store.items_changed_since(max(0, self._since - LOOKBACK_US), self._seen)
        if not changes:
            return
        for item, _ in changes:
            self._ids.add(item.item_id)
            if item.categories:
                self.first[item.item_id] = item.categories[0]
            else:
                self.first.pop(item.item_id, None)
        self.size = len(self._ids)
        self._since = max(self._since, *(stamp for _, stamp in changes))
        self._seen = {
            **{k: v for k, v in self._seen.items() if v >= self._since - LOOKBACK_US},
            **{item.item_id: stamp for item, stamp in changes},
        }


class FairnessWatch:
    """See module docstring. ``served`` returns what serves now (a ``Pipeline`` or a bundle);
    ``gauges`` is ``Metrics.set_exposure``."""

    def __init__(
        self,
        store: EventStore,
        served: Callable[[], Any],
        gauges: Callable[[dict[str, float], float, float], None],
    ) -> None:
        self.store = store
        self.served = served
        self.gauges = gauges
        self.catalogue = CatalogueGroups(store)

    def _amortised(self) -> tuple[Any, Any]:
        """The serving pipeline's amortised exposure and its settings, if it has them."""
        pipeline = self.served()
        reranker = getattr(pipeline, "reranker", None)
        fairness = getattr(reranker, "fairness", None)
        settings = getattr(getattr(pipeline, "config", None), "rerank", None)
        amortised = getattr(fairness, "amortised", None)
        return pipeline, (amortised, getattr(settings, "amortised", None))

    @property
    def interval_s(self) -> float:
        _, (_, config) = self._amortised()
        return config.refresh_s if config is not None else REFRESH_S

    def refresh(self, now: datetime | None = None) -> None:
        """One read of the log: the gauges, then the boost (when the pipeline has one)."""
        pipeline, (amortised, config) = self._amortised()
        days = config.window_days if config is not None else WINDOW_DAYS
        shown = self.store.scan_decisions((now or datetime.now(UTC)) - timedelta(days=days))
        self.catalogue.update()
        first = self.catalogue.first
        live = live_exposure(shown, first, self.catalogue.size)
        ratio = narrowing(shown, first)
        self.gauges(
            live.group_share, live.gini, float((ratio < 1).mean()) if len(ratio) else float("nan")
        )
        if amortised is not None:
            ids = shown["item_id"].dropna().astype(str).to_numpy(dtype=object)
            idx = pipeline.bundle.items.to_index(ids)
            amortised.refresh(np.bincount(idx[idx >= 0], minlength=len(amortised.group)))

    async def watch(self) -> None:
        """Refresh forever (cancelled by the lifespan on shutdown)."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:  # the store down, most likely: keep the last values
                log.warning(
                    "fairness refresh failed (%s); retrying in %.0f s", exc, self.interval_s
                )
            await asyncio.sleep(self.interval_s)
