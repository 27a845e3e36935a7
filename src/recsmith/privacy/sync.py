"""Carrying other processes' erasures and consent changes into this server process.

Every ``serving.catalog_sync_interval_s`` the process re-reads the store's privacy marks
(``privacy.view``); from then on its requests use them. When someone was newly erased elsewhere,
this process also drops them from its local copy of the online state (matched by salted hash:
the id is not in the store any more) and empties its local response cache, whose keys cannot be
matched to a hash. The erasing process itself removed the shared copies (Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from recsmith.config import Settings
from recsmith.privacy.retention import purge_every
from recsmith.privacy.view import view_of
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)


def poll(app: FastAPI) -> int:
    """One refresh (blocking); returns how many people it learnt were erased."""
    runtime = getattr(app.state, "runtime", None)
    if runtime is None:
        return 0
    view = view_of(runtime.store)
    erased = {mark.subject for mark in view.refresh()}
    if erased:
        runtime.state.forget_where(lambda user: view.subject(user) in erased)
        if runtime.cache is not None:
            runtime.cache.clear_local()
        log.info("applied %d erasure(s) made elsewhere", len(erased))
    return len(erased)


async def watch(app: FastAPI, interval_s: float) -> None:
    """Poll forever (cancelled by the lifespan); a failed read is retried at the next tick."""
    while True:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(poll, app)
        await asyncio.sleep(interval_s)


def privacy_watchers(
    app: FastAPI, store: EventStore, settings: Settings
) -> list[asyncio.Task[None]]:
    """The server's privacy tasks: the marks poll, and the retention purge when
    ``privacy.purge_interval_h`` is set (each worker runs it: the deletes are idempotent)."""
    tasks = [asyncio.create_task(watch(app, settings.serving.catalog_sync_interval_s))]
    every = settings.privacy.purge_interval_h
    if every is not None:
        tasks.append(asyncio.create_task(purge_every(store, settings, every)))
    return tasks
