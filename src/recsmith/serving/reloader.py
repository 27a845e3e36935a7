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
from collections.abc import Callable
from dataclasses import dataclass, replace

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from recsmith.errors import StoreUnavailable
from recsmith.experiments.live import ExperimentSync
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry
from recsmith.placements.sync import PlacementSync
from recsmith.serving.catalog_sync import CatalogSync
from recsmith.serving.deps import Runtime, Served
from recsmith.serving.worker_process import settle_worker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReleaseState:
    """What this process serves against what the registry wants, and why they differ (the
    wanted release failed to load) — what readiness and ``POST /v1/admin/reload`` report."""

    serving: str | None
    wanted: str | None
    error: str | None = None


class Reloader:
    """Loads whatever the registry marks current, when it differs from what is served.

    A release that does not load never replaces a working one: the old release keeps serving,
    the reason is logged once per bad version and kept (``state``) for readiness and the admin
    route. A bad version is not retried on every poll (loading a large model only to fail again
    would cost a core each time), only on request (``POST /v1/admin/reload``) or a new deploy.
    A process with nothing to serve yet (a fresh start) falls back to the newest release in the
    registry's history that loads: a restarted replica then serves what its running peers still
    serve, instead of refusing to start and turning one bad deploy into an outage.
    """

    #: How often the reload marker is looked at (a file stat, cheap). The README promises every
    #: worker serves a reloaded release within a second: a 1 s look alone could spend all of it
    #: (an other worker served v2 after 1.0-1.3 s); 0.2 s leaves most of the second for the load.
    NUDGE_S = 0.2

    def __init__(self, app: FastAPI, registry: ModelRegistry) -> None:
        self.app = app
        self.registry = registry
        self._lock = asyncio.Lock()
        self._marker = registry.reload_requested()
        self.failed: dict[str, str] = {}  # version → why it did not load
        self.state = ReleaseState(None, None)
        self.experiments = ExperimentSync(app, ExperimentRegistry(registry.root))
        self.placements = PlacementSync(app, registry)  # ``[placements.NAME] release``
        #: told (new version, old version) after each swap (``lifecycle.rollback`` watches deploys)
        self.on_swap: Callable[[str, str | None], None] | None = None

    async def check(self, *, retry: bool = False) -> ReleaseState:
        """Swap to the registry's current version if it changed and loads (``retry``: even one
        that failed before); returns the state after."""
        async with self._lock:  # one load at a time
            runtime: Runtime = self.app.state.runtime
            served = runtime.bundle.version if runtime.bundle is not None else None
            wanted = await run_in_threadpool(self.registry.current)
            swapped: tuple[str, str | None] | None = None
            if wanted is not None and wanted != served and (retry or wanted not in self.failed):
                bundle = await self._load(wanted)
                if bundle is None and served is None:
                    bundle = await self._newest_loadable()
                if bundle is not None:
                    await self._serve(bundle, served)
                    swapped, served = (bundle.version, served), bundle.version
            error = None if wanted in (None, served) else self.failed.get(wanted)
            # started/stopped experiments ride the same nudge; after a swap, a variant naming the
            # old release keeps it (``LiveExperiment.shared``) until this re-binds it to its copy
            await self.experiments.check()
            await self.placements.check()
            if swapped is not None and self.on_swap is not None:
                await run_in_threadpool(self.on_swap, *swapped)
            self.state = ReleaseState(served, wanted, error)
            return self.state

    async def _load(self, version: str) -> Served | None:
        """``version`` checked as ``deploy`` checks it, or None (the reason kept and logged)."""
        try:
            return await run_in_threadpool(lambda: check_release(self.registry.path(version)))
        except Exception as exc:  # whatever a broken release raises, the server keeps serving
            reason = str(exc)
            if self.failed.get(version) != reason:
                log.error("release %s not loaded: %s", version, reason)
            self.failed[version] = reason
            return None

    async def _newest_loadable(self) -> Served | None:
        for version in await run_in_threadpool(self.registry.history):
            if version not in self.failed and (bundle := await self._load(version)) is not None:
                log.warning("serving %s, the newest earlier release that loads", version)
                return bundle
        return None

    async def _serve(self, bundle: Served, served: str | None) -> None:
        current = await run_in_threadpool(self._swap, bundle)
        settle_worker(collect=False)  # a full pass now would stall the requests in flight
        current.metrics.set_model(bundle.version)
        log.info("now serving %s (was %s)", bundle.version, served)

    def _swap(self, bundle: Served) -> Runtime:
        """Serve ``bundle``, caught up with the catalogue writes since it was trained (under the
        catalogue sync's lock, so a change applied meanwhile is not lost); returns the runtime it
        replaced."""
        sync: CatalogSync = self.app.state.catalog_sync
        with sync.lock:
            try:
                caught_up = sync.catch_up(bundle)
            except StoreUnavailable as exc:  # serve it; the catalogue poll catches up later
                log.warning("store unavailable while loading %s: %s", bundle.version, exc.cause)
                caught_up = bundle
            current: Runtime = self.app.state.runtime
            self.app.state.runtime = replace(current, bundle=caught_up)
            return current

    async def request(self) -> ReleaseState:
        """Re-read the pointer here now (retrying a release that failed before), and have every
        other server following the registry do the same within ``NUDGE_S``."""
        await run_in_threadpool(self.registry.request_reload)
        # this process answers the request itself: its watcher need not retry it a second time
        self._marker = await run_in_threadpool(self.registry.reload_requested)
        return await self.check(retry=True)

    async def watch(self, interval_s: float) -> None:
        """Poll the pointer every ``interval_s``, or sooner when the reload marker changes (a
        request: retried even if it failed before), forever (cancelled by the lifespan)."""
        due = time.monotonic() + interval_s
        while True:
            await asyncio.sleep(min(interval_s, self.NUDGE_S))
            with contextlib.suppress(Exception):  # an unreadable pointer must not stop the watcher
                marker = await run_in_threadpool(self.registry.reload_requested)
                if marker == self._marker and time.monotonic() < due:
                    continue
                requested, self._marker = marker != self._marker, marker
                due = time.monotonic() + interval_s
                await self.check(retry=requested)
