"""Catalogue changes reach the served pipeline without a retrain.

A shop marks an item out of stock or changes its price through ``PUT /v1/items/…`` (or an import)
and expects the next list to respect it: the pipeline's rules filter on availability and
properties, and "no unavailable item comes back" must hold for the catalogue as it is *now*, not
as it was when the release was trained. Each server process therefore carries the store's item
writes into the release it serves (``Pipeline.with_catalog``; a single model takes availability
only, ``ModelBundle.with_catalog``):

- the worker that handles a write applies it before answering, so its next request sees it;
- every worker polls the store every ``serving.catalog_sync_interval_s`` for writes by the others
  (other workers, other replicas, ``recsmith import``);
- a release being loaded, at start-up or by a deploy, first catches up with every write since it
  was trained.

The store stamps each write with its clock, and a writer may commit a little after it stamped, so
every poll looks back ``LOOKBACK_US`` past the newest change already applied; changes seen before
(same item, same stamp) are not applied twice, nor even read back as items (a bulk import is
re-read as plain rows only). Categories and tags of items the release knows change with the next
release (see ``ItemTable.with_updates``); an item the release has never seen joins a pipeline's
item index with its categories, so it can be listed at once (``pipeline.catalog_growth``), and a
release loaded later grows by the same items as it catches up. A pipeline holds the catalogue as
of its training, so it catches up from then; a single model holds none, so it reads the store's
whole catalogue once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import replace
from datetime import datetime

from fastapi import FastAPI

from recsmith.events.schema import Item
from recsmith.gc_pause import paused_gc
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving.deps import Runtime, Served
from recsmith.store.base import LOOKBACK_US, EventStore

log = logging.getLogger(__name__)

#: Seconds between polls of the store for other processes' writes (the default of
#: ``serving.catalog_sync_interval_s``).
INTERVAL_S = 1.0


class CatalogSync:
    """One per server process; ``lock`` serialises every replacement of the served pipeline
    (catalogue changes and deploys), so neither undoes the other."""

    def __init__(self, app: FastAPI, store: EventStore) -> None:
        self.app = app
        self.store = store
        self.lock = threading.Lock()
        self._since = 0  # stamp of the newest change applied
        self._seen: dict[str, int] = {}  # item id -> stamp applied, within the look-back

    def catch_up(self, bundle: Served | None) -> Served | None:
        """``bundle`` with every catalogue write it does not reflect yet (call with ``lock``
        held when replacing a served release)."""
        if bundle is None:
            return None
        if isinstance(bundle, Pipeline):
            created = datetime.fromisoformat(bundle.manifest["created_at"])
            self._since = int(created.timestamp() * 1e6)
        else:
            self._since = 0
        self._seen = {}
        return self._apply(bundle)

    def poll(self) -> None:
        """Apply the writes made since the last poll to the served pipeline (blocking: the
        store is read here; call from a worker thread)."""
        with self.lock:
            runtime: Runtime | None = getattr(self.app.state, "runtime", None)
            if runtime is None or runtime.bundle is None:
                return
            items = self._changes(runtime.bundle.version)
            if items:  # the deployed release, and those placements serve (``placements``)
                placed = runtime.placements
                self.app.state.runtime = replace(
                    runtime,
                    bundle=runtime.bundle.with_catalog(items, self._since),
                    placements=placed.with_catalog(items, self._since) if placed else None,
                )

    async def watch(self, interval_s: float = INTERVAL_S) -> None:
        """Poll forever (cancelled by the lifespan on shutdown); a failed read (store briefly
        down) is retried at the next tick."""
        while True:
            await asyncio.sleep(interval_s)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.poll)

    def _apply(self, served: Served) -> Served:
        items = self._changes(served.version)
        return served.with_catalog(items, self._since) if items else served

    def _changes(self, version: str) -> list[Item]:
        """The catalogue writes since the last look (none: an empty list), ``_since`` moved on."""
        with paused_gc():  # a bulk import is a burst of long-lived objects (recsmith.gc_pause)
            changes = self.store.items_changed_since(max(0, self._since - LOOKBACK_US), self._seen)
        if not changes:
            return []
        self._since = max(self._since, *(stamp for _, stamp in changes))
        self._seen = {
            **{k: v for k, v in self._seen.items() if v >= self._since - LOOKBACK_US},
            **{item.item_id: stamp for item, stamp in changes},
        }
        log.info("applied %d catalogue change(s) to %s", len(changes), version)
        return [item for item, _ in changes]
