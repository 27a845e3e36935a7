"""Loading the releases placements name, beside the deployed one, in every server process that
follows a model registry (see the package docstring).

Called by the reloader on each of its looks (``serving.reloader``): when the deployed release or
the releases its placements name changed, the named ones are loaded (each once, reusing those in
memory) in a worker thread, caught up with the catalogue, and one assignment of a new
``Runtime`` makes them visible to the next request. Memory: each named release that is not the
deployed one holds one more copy of its model per worker process, as an experiment's variant.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from recsmith.errors import StoreUnavailable
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry
from recsmith.placements.choose import PlacementReleases, named_releases

if TYPE_CHECKING:
    from recsmith.serving.deps import Runtime

log = logging.getLogger(__name__)


class PlacementSync:
    """See module docstring. One per server process following a registry."""

    def __init__(self, app: FastAPI, registry: ModelRegistry) -> None:
        self.app = app
        self.registry = registry
        self._seen: tuple[str | None, tuple[tuple[str, str], ...]] | None = None

    async def check(self) -> None:
        runtime: Runtime = self.app.state.runtime
        deployed = runtime.bundle.version if runtime.bundle is not None else None
        wanted = named_releases(runtime.bundle)
        seen = (deployed, tuple(sorted(wanted.items())))
        if seen == self._seen:
            return
        self._seen = seen
        held = runtime.placements.bundles if runtime.placements is not None else {}
        by_version = {b.version: b for b in held.values()}
        bundles: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for placement, release in wanted.items():
            if release == deployed:
                continue  # the deployed release answers it: nothing to hold
            if release not in by_version:
                try:
                    by_version[release] = await run_in_threadpool(self._load, release)
                except Exception as exc:  # whatever a broken release raises: keep serving
                    failed[placement] = f"release {release!r} not served: {exc}"
                    log.error("placement %s: %s", placement, failed[placement])
                    continue
            bundles[placement] = by_version[release]
        await run_in_threadpool(self._swap, PlacementReleases(deployed, bundles, failed))
        if bundles:
            log.info(
                "placements on their own release: %s",
                {p: b.version for p, b in bundles.items()},
            )

    def _load(self, release: str) -> Any:
        """``release`` checked as ``deploy`` checks it, with the catalogue writes since it was
        trained (a store outage: as it is; the catalogue sync catches up)."""
        bundle = check_release(self.registry.path(release))
        try:
            with self.app.state.catalog_sync.lock:
                return self.app.state.catalog_sync.catch_up(bundle)
        except StoreUnavailable:
            return bundle

    def _swap(self, releases: PlacementReleases) -> None:
        """Assign under the catalogue sync's lock, which every replacement of the runtime holds."""
        with self.app.state.catalog_sync.lock:
            current: Runtime = self.app.state.runtime
            self.app.state.runtime = replace(current, placements=releases)
