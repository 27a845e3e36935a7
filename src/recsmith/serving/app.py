"""The FastAPI application: ``create_app(settings)`` assembles routers, metrics and a lifespan.

There is no module-level app and no global state. The lifespan opens the store and loads the model
(unless the caller passed them in, as tests do) and puts one immutable ``Runtime`` on ``app.state``.
Resources the app opened itself are closed on shutdown; ones passed in belong to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool

from recsmith import __version__
from recsmith.access.shared_rate_limit import open_buckets
from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.console import routes as console_routes
from recsmith.decisions.attribution import live_attributor
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.served import count_attributed
from recsmith.decisions.window import windowed
from recsmith.errors import StoreUnavailable
from recsmith.events.latest import signal_of
from recsmith.experiments.adaptive import variant_outcomes
from recsmith.exploration.board import BanditBoard, explores, keep_synced
from recsmith.exploration.contextual import ContextualBoards
from recsmith.exploration.redis_arms import open_arms
from recsmith.fairness.watch import FairnessWatch
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.rollback import RollbackGuard, audit_rollback
from recsmith.lifecycle.schedule import watch_schedule
from recsmith.lifecycle.shadow import ShadowMetrics, ShadowRunner
from recsmith.merchandising.live import start_live_rules
from recsmith.monitoring.gauges import DriftWatch, MonitorGauges, served_release_dir
from recsmith.monitoring.logs import json_log_config
from recsmith.pipeline.artifact import load_artifact
from recsmith.pipeline.runtime import Pipeline
from recsmith.privacy.sync import privacy_watchers
from recsmith.serving import error_handlers, fast_lane, front_door, input_errors, one_write
from recsmith.serving.auth import KeyCache
from recsmith.serving.catalog_sync import CatalogSync
from recsmith.serving.coalesce import Coalescer
from recsmith.serving.connection_balance import BalancedProtocol
from recsmith.serving.deps import Runtime, Served
from recsmith.serving.edge import Edge
from recsmith.serving.feature_sampler import FeatureSampler
from recsmith.serving.group_commit import GroupCommit
from recsmith.serving.metrics import Metrics
from recsmith.serving.one_write import OneWriteProtocol
from recsmith.serving.online_state import open_state
from recsmith.serving.reloader import Reloader
from recsmith.serving.response_cache import open_cache
from recsmith.serving.routers import (
    admin,
    admin_changes,
    decisions,
    events,
    health,
    items,
    operations,
    profiles,
    recommend,
    rules,
    shadow,
    users,
)
from recsmith.serving.routers import experiments as experiments_route
from recsmith.serving.routers import metrics as metrics_route
from recsmith.serving.served_app import ServedApp
from recsmith.serving.stored_items import StoredItems
from recsmith.serving.strict_query import known_query_only
from recsmith.serving.supervisor import APP as WORKER_APP
from recsmith.serving.supervisor import Supervisor, reuseport_balances
from recsmith.serving.worker_process import collect_young_less_often, settle_worker
from recsmith.store.base import EventStore
from recsmith.store.open import open_store

log = logging.getLogger(__name__)

_DESCRIPTION = """\
Events in, recommendations out. Send events to `POST /v1/events` (a JSON array; every record is
validated on its own), read lists from `GET /v1/users/{user_id}/recommendations`.

Authenticate with `Authorization: Bearer <key>` or `X-API-Key: <key>` (create keys with the CLI).
"""


def load_bundle(model_dir: Path | None) -> ModelBundle | Pipeline | None:
    """The model in ``model_dir``; None when no directory is configured or nothing was trained yet.

    A server may start before the first training (to collect events), so a missing model is not an
    error: readiness reports it and model routes answer 503. A directory that holds a *broken* model
    still raises, since serving without it would hide the problem.
    """
    if model_dir is None:
        log.warning("serving.model_dir is not set: model routes will answer 503")
        return None
    if not (model_dir / "manifest.json").is_file():
        log.warning("no model in %s yet: model routes will answer 503", model_dir)
        return None
    return load_artifact(model_dir)


def create_app(
    settings: Settings,
    *,
    bundle: ModelBundle | None = None,
    store: EventStore | None = None,
) -> FastAPI:
    """A new app serving ``settings``; ``bundle``/``store`` replace loading/opening them."""
    metrics = Metrics.create()
    drift_gauges = MonitorGauges.create(metrics.registry)
    shadow_metrics = ShadowMetrics(metrics.registry)  # shadow mode (``lifecycle.shadow``)
    guard = (
        RollbackGuard(ModelRegistry(settings.serving.registry), settings.lifecycle)
        if settings.serving.registry is not None and settings.lifecycle.auto_rollback
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        watcher: asyncio.Task[None] | None = None
        catalog_watcher: asyncio.Task[None] | None = None
        drift_watcher: asyncio.Task[None] | None = None
        rollback_watcher: asyncio.Task[None] | None = None
        retrain_watcher: asyncio.Task[None] | None = None
        privacy_tasks: list[asyncio.Task[None]] = []
        fairness_watcher: asyncio.Task[None] | None = None
        rules_watcher: asyncio.Task[None] | None = None  # live rules (``merchandising.live``)
        the_store = (
            store
            if store is not None
            else await run_in_threadpool(open_store, settings.store.url, settings.store)
        )
        the_state = open_state(settings.serving.state_url)
        serving = settings.serving
        the_cache = open_cache(serving.state_url, serving.cache_entries, serving.cache_ttl_s)
        decision_log = DecisionLog(
            the_store, settings.decisions, on_drop=metrics.decisions_dropped.inc
        )
        decision_log.start()
        sampler = FeatureSampler(the_store, settings.monitor)  # feature drift's rows
        sampler.start()
        shared_arms = open_arms(serving.state_url, the_store)  # Redis copy, the store the truth
        bandits = BanditBoard(the_store, settings.decisions.kinds(), shared_arms)
        contextual = ContextualBoards(the_store, settings.decisions.kinds())  # [contextual] arms
        bandit_watcher: asyncio.Task[None] | None = None
        registry = ModelRegistry(serving.registry) if serving.registry is not None else None
        signal = signal_of(settings.events.weights)  # which stored events weigh above 0
        app.state.shadow = ShadowRunner(
            registry, settings.lifecycle, shadow_metrics, store=the_store, signal=signal
        )
        contextual_watcher: asyncio.Task[None] | None = None
        try:
            if bundle is not None:
                the_bundle: Served | None = bundle
            elif serving.registry is not None and serving.model_dir is None:
                the_bundle = None  # the reloader below loads the registry's current release
            else:
                the_bundle = await run_in_threadpool(load_bundle, serving.model_dir)
            app.state.catalog_sync = CatalogSync(app, the_store)
            try:
                the_bundle = await run_in_threadpool(app.state.catalog_sync.catch_up, the_bundle)
            except StoreUnavailable as exc:  # serve what is in memory; the sync catches up later
                log.warning(
                    "store unavailable at start (%s): serving without catalogue "
                    "changes since training until it answers",
                    exc.cause,
                )
            metrics.set_model(the_bundle.version if the_bundle is not None else None)
            coalescer = Coalescer(
                arms=lambda: bandits.counts,
                sampler=sampler,
                max_wait_s=serving.coalesce_max_wait_ms / 1000,
                on_hold=metrics.observe_hold,
            )
            app.state.runtime = Runtime(
                settings=settings,
                store=the_store,
                bundle=the_bundle,
                metrics=metrics,
                keys=KeyCache(
                    the_store,
                    settings.auth.rates(),
                    buckets=open_buckets(settings.serving.state_url, settings.auth.rates()),
                ),
                state=the_state,
                coalescer=coalescer,
                stored_items=StoredItems(
                    the_store, company=lambda: coalescer.crowded, signal=signal
                ),
                events=GroupCommit(
                    the_store,
                    settings.events,
                    source=events.SOURCE,
                    on_stored=the_state.push,  # the stored events' (actor, item) pairs
                    attributor=live_attributor(the_store, settings.decisions, decision_log),
                    on_attributed=lambda frame: (
                        count_attributed(metrics, frame, settings.decisions.kinds()),
                        bandits.attributed(frame),
                        contextual.attributed(frame),
                        bandits.attributed(  # adaptive experiments' KPI counts
                            variant_outcomes(frame, getattr(app.state.runtime, "experiments", None))
                        ),
                    ),
                    state=the_state,  # identify events move a visitor's recent items
                ),
                cache=the_cache,
                decisions=decision_log,
                bandits=bandits,
                contextual=contextual,
            )
            bandit_watcher = asyncio.create_task(
                keep_synced(bandits, lambda: explores(getattr(app.state.runtime, "bundle", None)))
            )
            contextual_watcher = asyncio.create_task(keep_synced(contextual, lambda: False))
            if bundle is None:  # a server process that loaded its own model (not a test's)
                settle_worker(collect=True)
            if not settings.serving.require_keys:
                log.warning(
                    "serving.require_keys is false: the API is open to anyone who can "
                    "reach it (meant for local development only)"
                )
            catalog_watcher = asyncio.create_task(
                app.state.catalog_sync.watch(settings.serving.catalog_sync_interval_s)
            )
            watched = windowed(the_store)  # the watches' decision window, read incrementally
            if settings.monitor.refresh_s > 0:
                drift = DriftWatch(
                    drift_gauges,
                    watched,
                    settings.monitor,
                    lambda: served_release_dir(serving, _served_version(app)),
                )
                drift_watcher = asyncio.create_task(drift.watch())
            await run_in_threadpool(app.state.shadow.start)  # loads [lifecycle] shadow_release
            privacy_tasks = privacy_watchers(app, the_store, settings)
            rules_watcher = await start_live_rules(app, the_store, settings.serving)
            if decision_log.enabled:  # exposure gauges and the amortised boost (recsmith.fairness)
                watch = FairnessWatch(
                    watched,
                    lambda: getattr(app.state.runtime, "bundle", None),
                    metrics.set_exposure,
                )
                fairness_watcher = asyncio.create_task(watch.watch())
            if settings.serving.registry is not None:
                app.state.reloader = Reloader(app, ModelRegistry(settings.serving.registry))
                if guard is not None:
                    app.state.reloader.on_swap = guard.swapped
                    guard.on_rollback = lambda breach, back: audit_rollback(the_store, breach, back)
                    rollback_watcher = asyncio.create_task(guard.watch())
                if settings.lifecycle.retrain_every is not None:
                    retrain_watcher = asyncio.create_task(watch_schedule(settings))
                await app.state.reloader.check()
                watcher = asyncio.create_task(
                    app.state.reloader.watch(settings.serving.reload_interval_s)
                )
            yield
        finally:
            tasks = (
                watcher,
                catalog_watcher,
                bandit_watcher,
                contextual_watcher,
                drift_watcher,
                rollback_watcher,
                retrain_watcher,
                fairness_watcher,
                rules_watcher,
                *privacy_tasks,
            )
            for task in tasks:
                if task is not None:
                    task.cancel()
            app.state.runtime = None
            await run_in_threadpool(app.state.shadow.close)
            await run_in_threadpool(decision_log.close)  # flush: a clean stop loses none
            await run_in_threadpool(sampler.close)
            await run_in_threadpool(bandits.flush)
            await run_in_threadpool(contextual.flush)
            if shared_arms is not None:
                shared_arms.close()
            the_state.close()
            if the_cache is not None:
                the_cache.close()
            if own_store:
                the_store.close()

    app = ServedApp(
        title="recsmith",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(known_query_only)],
        docs_url=None,  # front_door serves /docs and /redoc with assets from this server,
        redoc_url=None,  # and /openapi.json, each as auth.expose_docs says
        openapi_url=None,
        # a body without a Content-Type is JSON (``request_body``), for model routes too
        strict_content_type=False,
    )
    # request id, error boundary, rollback watch, metrics, URL text, body limits: one layer
    app.add_middleware(
        Edge, metrics=metrics, max_body_bytes=settings.serving.max_body_bytes, guard=guard
    )
    error_handlers.install(app)
    input_errors.install(app)
    for module in (
        events,
        items,
        recommend,
        users,
        profiles,
        admin,
        admin_changes,
        decisions,
        operations,
        health,
        metrics_route,
        rules,
        shadow,
        experiments_route,
    ):
        app.include_router(module.router)
    app.include_router(console_routes.router)
    front_door.install(app)
    fast_lane.install(app)  # after every route: it indexes them
    return app


def _served_version(app: FastAPI) -> str | None:
    runtime = app.state.runtime
    return None if runtime is None or runtime.bundle is None else runtime.bundle.version


#: How ``run`` hands the settings to worker processes, which build their own app from them.
SETTINGS_ENV = "RECSMITH_SERVE_SETTINGS_JSON"


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: the settings arrive as JSON in the environment."""
    collect_young_less_often()  # this process is a served worker (``worker_process.py``)
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]))


def run(settings: Settings, *, log_level: str = "info") -> None:
    """Serve ``settings`` with uvicorn until interrupted (what ``recsmith serve`` calls).

    ``serving.workers`` processes each hold the model and a store connection; more than one uses
    more cores (SQLite in WAL mode takes writers from several processes, one at a time), but each
    worker keeps its own Prometheus counters. On Linux each worker listens on the port itself
    (``supervisor.py``), so clients that connect together are spread over the workers, and a
    worker two or more connections ahead of another closes one after a response so that the
    reconnect evens the split out (``connection_balance.py``). Access logs are off because they
    cost more than the requests they describe; latency lives in ``/metrics``. A response's head
    and body leave in one socket write (``one_write``).
    """
    import uvicorn  # only the server needs it; importing the package must stay light

    # one compute thread per worker (``worker_process.py``): libraries not loaded yet and the
    # spawned workers read these at start; the user may still override them
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    common = {
        "host": settings.serving.host,
        "port": settings.serving.port,
        "access_log": False,
        "log_level": log_level,
        "http": one_write.protocol(),  # a response's head and body in one socket write
    }
    if settings.serving.log_format == "json":
        common["log_config"] = json_log_config(log_level)
    if settings.serving.workers == 1:
        collect_young_less_often()  # this process is the served worker (``worker_process.py``)
        uvicorn.run(create_app(settings), **common)  # type: ignore[arg-type]
        return
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    if reuseport_balances():  # one socket per worker: the kernel spreads the connections
        balance = settings.serving.balance_connections and common["http"] is OneWriteProtocol
        if balance:  # the same protocol, evening out the kernel's split (connection_balance)
            common["http"] = BalancedProtocol
        Supervisor(settings.serving.workers, common, balance=balance).run()
        return
    uvicorn.run(
        WORKER_APP,
        factory=True,
        workers=settings.serving.workers,
        **common,  # type: ignore[arg-type]
    )
