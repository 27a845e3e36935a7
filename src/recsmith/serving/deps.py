"""What every request handler needs: the app's ``Runtime`` and, for model routes, a loaded model.

Nothing here is global. The lifespan in ``app.py`` builds one immutable ``Runtime`` and stores it on
``app.state``; handlers reach it through ``request.app``. Swapping a model later means building a
new ``Runtime`` and assigning it in one step, so a request never sees half of an update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, status

from recsmith.access.shared_rate_limit import SharedTokenBuckets
from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.exploration.board import BanditBoard
from recsmith.exploration.contextual import ContextualBoards
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.ltr import COMPILING
from recsmith.serving.coalesce import Coalescer
from recsmith.serving.group_commit import GroupCommit
from recsmith.serving.metrics import Metrics
from recsmith.serving.online_state import OnlineState
from recsmith.serving.response_cache import ResponseCache
from recsmith.serving.stored_items import StoredItems
from recsmith.store.base import EventStore

if TYPE_CHECKING:
    from recsmith.decisions.log import DecisionLog
    from recsmith.experiments.live import LiveExperiments
    from recsmith.placements.choose import PlacementReleases
    from recsmith.serving.auth import KeyCache


#: What the server serves: a single model or a whole pipeline (the same ``answer`` interface).
Served = ModelBundle | Pipeline


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a running app holds: settings, the open store, the model (if any), metrics."""

    settings: Settings
    store: EventStore
    bundle: Served | None
    metrics: Metrics
    keys: KeyCache
    state: OnlineState
    coalescer: Coalescer
    stored_items: StoredItems  # the served users' items, read a coalesced group at a time
    events: GroupCommit
    cache: ResponseCache | None = None
    #: every list served is recorded here (``recsmith.decisions``); None in apps built without
    decisions: DecisionLog | None = None
    experiments: LiveExperiments | None = None  # running experiments (``experiments.live``)
    bandits: BanditBoard | None = None  # shared bandit counts (``exploration.board``)
    contextual: ContextualBoards | None = None  # ``[contextual]`` arms' shared models
    placements: PlacementReleases | None = None  # releases placements name (``placements``)

    def degraded(self) -> list[str]:
        """Components running on their in-process fallback (Redis unreachable), after checking
        on any that nothing has used lately (blocking: call from the thread pool), and ``store``
        while its latest read failed (recommendations then come from memory; the catalogue sync
        reads it every second, so this is never older than that)."""
        buckets = self.keys.buckets  # shared through Redis, or the process's own
        shared = buckets if isinstance(buckets, SharedTokenBuckets) else None
        parts = {"online_state": self.state, "response_cache": self.cache, "rate_limits": shared}
        present = {name: part for name, part in parts.items() if part is not None}
        for part in present.values():
            part.probe()
        down = [name for name, part in present.items() if part.degraded]
        down += ranker_scoring_degraded(self.bundle)
        return [*down, "store"] if "read" in self.store.outage.failing else down


def ranker_scoring_degraded(served: Served | None) -> list[str]:
    """``["ranker_scoring"]`` when the pipeline's ranker scores with LightGBM's predict because
    its compiled form could not be built (``recsmith.trees``: no C compiler, say): the same
    lists at several times the CPU; ``["ranker_compiling"]`` while it is still being built. Not
    when it was turned off on purpose."""
    ranker = getattr(served, "ranker", None)
    reason = getattr(ranker, "uncompiled_reason", None)
    if reason == COMPILING:
        return ["ranker_compiling"]
    return ["ranker_scoring"] if reason not in (None, "off") else []


def runtime_of(request: Request) -> Runtime:
    """The app's runtime; fails loudly when the lifespan has not run (no ``with TestClient``)."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise RuntimeError("recsmith app not started: its lifespan must run before requests")
    return runtime


async def get_runtime(request: Request) -> Runtime:
    """Dependency form of ``runtime_of``; ``async`` because FastAPI runs sync dependencies in the
    thread pool, a hop not worth paying for an attribute read."""
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def require_bundle(runtime: RuntimeDep) -> Served:
    """The loaded model, or 503: the server can ingest before any model was trained (``async``: it
    does not block, see ``get_runtime``)."""
    if runtime.bundle is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, no_model_reason(runtime.settings))
    return runtime.bundle


def no_model_reason(settings: Settings) -> str:
    """Why no model is loaded and what to do, for a model route's 503 and for readiness."""
    where, registry = settings.serving.model_dir, settings.serving.registry
    if where is not None:
        hint = f"no model found in {where}"
    elif registry is not None:
        hint = f"no release of the registry {registry} is deployed and loads"
    else:
        hint = "serving.model_dir is not set"
    return f"no model is loaded ({hint}); train one with `recsmith train` and restart the server"


BundleDep = Annotated[Served, Depends(require_bundle)]
