"""``[lifecycle] retrain_every = "24h"``: servers retrain their registry on a schedule.

Every server process following a registry checks the schedule; one of them, whichever takes the
registry's ``retrain`` lock first, runs ``lifecycle.retrain`` when the last run (recorded in the
registry, so replicas and restarts agree) is older than the period. The run happens in a separate
process: training takes cores and seconds that the serving process's requests must not wait on.
A failed gate or a failed run is logged; the servers keep serving what they serve.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from pathlib import Path

from fastapi.concurrency import run_in_threadpool

from recsmith.cli._data import load_catalog, load_events, profiles_by_id
from recsmith.config import Settings
from recsmith.decisions.timespec import span_seconds
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.gate import parse_gate
from recsmith.lifecycle.registry_lock import registry_lock
from recsmith.lifecycle.retrain import retrain

log = logging.getLogger(__name__)
#: When the last scheduled retrain started (Unix time), in the registry.
LAST_RUN = ".last-retrain"


def due(root: Path, every_s: float, now: float | None = None) -> bool:
    """True when no scheduled retrain started within the last ``every_s`` seconds."""
    try:
        last = float((root / LAST_RUN).read_text())
    except (FileNotFoundError, ValueError):
        return True
    return (time.time() if now is None else now) - last >= every_s


def run_scheduled(settings_json: str) -> None:
    """The retrain itself, in its own process (see module docstring)."""
    settings = Settings.model_validate_json(settings_json)
    lifecycle, registry = settings.lifecycle, settings.serving.registry
    assert registry is not None
    url = settings.store.url
    result = retrain(
        ModelRegistry(registry),
        load_events(None, url, settings),
        dict(settings.events.weights),
        [parse_gate(g, "lifecycle.retrain_gates") for g in lifecycle.retrain_gates],
        items=load_catalog(None, None, url, settings),
        half_life_days=settings.features.half_life_days,
        profiles=profiles_by_id(None, None, url, settings),
    )
    verdict = "deployed " + str(result.deployed) if result.deployed else "a gate failed"
    log.warning("scheduled retrain: %s (%s)", verdict, result.as_dict()["gates"])


def try_retrain(settings: Settings) -> bool:
    """Run a retrain if it is due and no other process is running one; True if this one ran."""
    root = settings.serving.registry
    every = settings.lifecycle.retrain_every
    assert root is not None and every is not None
    with registry_lock(root, "retrain", wait=False) as held:
        if not held or not due(root, span_seconds(every, "lifecycle.retrain_every")):
            return False
        (root / LAST_RUN).write_text(f"{time.time()}\n")
        worker = multiprocessing.get_context("spawn").Process(
            target=run_scheduled, args=(settings.model_dump_json(),), daemon=True
        )
        worker.start()
        worker.join()  # under the lock: a second replica waits its turn rather than piling on
        if worker.exitcode != 0:
            log.error("scheduled retrain failed (exit %s): see the lines above", worker.exitcode)
    return True


async def watch_schedule(settings: Settings, check_s: float = 60.0) -> None:
    """Check the schedule every ``check_s`` (or the period, if shorter), forever."""
    every = settings.lifecycle.retrain_every
    assert every is not None
    pause = min(check_s, span_seconds(every, "lifecycle.retrain_every"))
    while True:
        await asyncio.sleep(pause)
        try:
            await run_in_threadpool(try_retrain, settings)
        except Exception as exc:  # the schedule must survive a bad run or an unreadable registry
            log.error("scheduled retrain not run: %s", exc)
