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
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: The gauges' window and refresh period when no ``[rerank.amortised]`` says otherwise: an hour
#: of lists is plenty for a share and a Gini, and a server reads the whole window at start (at
#: 100 lists/s of 10 items, an hour is 3.6M rows; later refreshes read only what is new,
#: ``decisions.window``), so the window stays short by default.
WINDOW_DAYS, REFRESH_S = 1.0 / 24.0, 300.0


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
        catalogue = self.store.items()
        first = {it.item_id: it.categories[0] for it in catalogue if it.categories}
        live = live_exposure(shown, first, len(catalogue))
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
