"""The running experiments of one server process, their variant bundles loaded and checked.

Followed by the release reloader (``serving.reloader``), which calls ``ExperimentSync.check``
on every look at the registry: when ``experiments.json`` changed, the newly started experiments'
variants are loaded (as ``deploy`` checks a release: loaded, then asked once) in a worker thread,
stopped ones are dropped, and one assignment of a new ``Runtime`` makes the change visible to the
next request. Memory: each variant that is not the deployed release holds one more copy of its
model in every worker process (the quickstart pipeline, 7.6 MB on disk, adds 14 MiB of RSS per
worker); a variant that names the deployed release shares it, and stops sharing it (loads its
own copy) when a deploy moves the release on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from recsmith.bundle import read_manifest
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.spec import Experiment
from recsmith.governance.release_check import check_release

if TYPE_CHECKING:
    from recsmith.serving.deps import Runtime, Served

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveExperiment:
    """A running experiment and its variants' bundles (None: the variant is the deployed
    release, served from the runtime's own bundle, which the catalogue sync keeps up to date).

    ``shared`` is the deployed release when the variants were bound: a deploy swaps the runtime's
    bundle a moment before this experiment is re-bound, and in that moment a variant naming the
    old release must still get the old release, not the new one (``choose`` checks versions).
    """

    experiment: Experiment
    bundles: dict[str, Served | None] = field(default_factory=dict)
    shared: Served | None = None


@dataclass(frozen=True, slots=True)
class LiveExperiments:
    running: tuple[LiveExperiment, ...] = ()


class ExperimentSync:
    """See module docstring. One per server process."""

    def __init__(self, app: FastAPI, registry: ExperimentRegistry) -> None:
        self.app = app
        self.registry = registry
        self._seen: tuple[int, str | None] | None = None  # (file stamp, deployed version)
        self.failed: dict[str, str] = {}  # experiment name -> why it is not served

    async def check(self) -> None:
        """Follow ``experiments.json`` and the deployed release: a variant that shares the
        deployed release must stop sharing it when a deploy moves the release on."""
        runtime: Runtime = self.app.state.runtime
        deployed = runtime.bundle.version if runtime.bundle is not None else None
        seen = (await run_in_threadpool(self.registry.stamp), deployed)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            wanted = await run_in_threadpool(self.registry.running)
        except Exception as exc:  # a malformed file: keep serving what is live, say why once
            log.error("%s not read, experiments unchanged: %s", self.registry.path, exc)
            return
        before = _running(runtime)
        loaded = {  # variants already in memory, by target: never loaded twice
            v.target: held
            for x in before
            for v in x.experiment.variants
            if (held := _held(x, v.name)) is not None
        }
        live = []
        for exp in wanted:
            if (found := await self._load(exp, runtime.bundle, loaded)) is not None:
                live.append(found)
        await run_in_threadpool(self._swap, LiveExperiments(tuple(live)))
        if {x.experiment.name for x in live} != {x.experiment.name for x in before}:
            log.info("experiments now running: %s", [x.experiment.name for x in live] or "none")

    def _swap(self, live: LiveExperiments) -> None:
        """Assign under the catalogue sync's lock, which every replacement of the runtime holds
        (a catalogue update or a deploy meanwhile would otherwise undo this one, or this one it)."""
        with self.app.state.catalog_sync.lock:
            current: Runtime = self.app.state.runtime
            self.app.state.runtime = replace(current, experiments=live)

    async def _load(
        self, exp: Experiment, shared: Served | None, loaded: dict[str, Served | None]
    ) -> LiveExperiment | None:
        deployed = shared.version if shared is not None else None
        bundles: dict[str, Served | None] = {}
        try:
            for v in exp.variants:
                path = self.registry.resolve(v.target)
                if read_manifest(path)["version"] == deployed:
                    bundles[v.name] = None
                elif v.target in loaded:
                    bundles[v.name] = loaded[v.target]
                else:
                    bundles[v.name] = await run_in_threadpool(check_release, path)
                    loaded[v.target] = bundles[v.name]
        except Exception as exc:  # a variant that does not load: its units get the release
            reason = f"{type(exc).__name__}: {exc}"
            if self.failed.get(exp.name) != reason:
                log.error("experiment %s not served: %s", exp.name, reason)
            self.failed[exp.name] = reason
            return None
        return LiveExperiment(exp, bundles, shared)


def _held(live: LiveExperiment, variant: str) -> Served | None:
    """The bundle in memory for ``variant``: its own, or the release it shared when bound."""
    own = live.bundles.get(variant)
    return own if own is not None else live.shared


def _running(runtime: Runtime) -> tuple[LiveExperiment, ...]:
    return runtime.experiments.running if runtime.experiments is not None else ()
