"""Hot swap: follow the model registry's current pointer and swap the served model without
dropping or failing a request.

A new version is loaded in a worker thread while the old one keeps serving; then one assignment
replaces the app's immutable ``Runtime``. A request reads the runtime once, so requests already
running finish on the model they started with and the next ones get the new model.

The pointer is re-read every ``serving.reload_interval_s``, and at once (within ``NUDGE_S``) when
the registry's reload marker changes: ``POST /v1/admin/reload`` reaches one worker process of one
replica, and the marker carries it to every other process following the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from recsmith.governance.releases import ModelRegistry
from recsmith.pipeline.artifact import load_artifact
from recsmith.serving.catalog_sync import CatalogSync
from recsmith.serving.deps import Runtime, Served
from recsmith.serving.worker_process import settle_worker

log = logging.getLogger(__name__)


class Reloader:
    """Loads whatever the registry marks current, when it differs from what is served."""

    #: How often the reload marker is looked at (a file stat).
    NUDGE_S = 1.0

    def __init__(self, app: FastAPI, registry: ModelRegistry) -> None:
        self.app = app
        self.registry = registry
        self._lock = asyncio.Lock()
        self._marker = registry.reload_requested()

    async def check(self) -> str | None:
        """Swap to the registry's current version if it changed; returns the served version."""
        async with self._lock:  # one load at a time
            runtime: Runtime = self.app.state.runtime
            served = runtime.bundle.version if runtime.bundle is not None else None
            wanted = await run_in_threadpool(self.registry.current)
            if wanted is None or wanted == served:
                return served
            path: Path = await run_in_threadpool(self.registry.path, wanted)
            bundle = await run_in_threadpool(load_artifact, path)
            current = await run_in_threadpool(self._swap, bundle)
            settle_worker(collect=False)  # a full pass now would stall the requests in flight
            current.metrics.set_model(bundle.version)
            log.info("now serving %s (was %s)", bundle.version, served)
            return bundle.version

    def _swap(self, bundle: Served) -> Runtime:
        """Serve ``bundle``, caught up with the catalogue writes since it was trained (under the
        catalogue sync's lock, so a change applied meanwhile is not lost); returns the runtime it
        replaced."""
        sync: CatalogSync = self.app.state.catalog_sync
        with sync.lock:
            caught_up = sync.catch_up(bundle)
            current: Runtime = self.app.state.runtime
            self.app.state.runtime = replace(current, bundle=caught_up)
            return current

    async def request(self) -> str | None:
        """Re-read the pointer here now, and have every other server following the registry do
        the same within ``NUDGE_S``; returns the version this process serves."""
        await run_in_threadpool(self.registry.request_reload)
        return await self.check()

    async def watch(self, interval_s: float) -> None:
        """Poll the pointer every ``interval_s``, or sooner when the reload marker changes,
        forever (cancelled by the lifespan on shutdown)."""
        due = time.monotonic() + interval_s
        while True:
            await asyncio.sleep(min(interval_s, self.NUDGE_S))
            with contextlib.suppress(Exception):  # a bad release must not stop the watcher
                marker = await run_in_threadpool(self.registry.reload_requested)
                if marker == self._marker and time.monotonic() < due:
                    continue
                self._marker, due = marker, time.monotonic() + interval_s
                await self.check()
