"""Each server process's view of the live rules, polled from the store and applied to lists.

Twice per ``serving.catalog_sync_interval_s`` (1 s by default) the process reads the store's rule
version, one ``max()``; when it moved, it reads the new file. Requests then get the served
release re-ranking by it (``serve``): ``Pipeline.with_rules`` builds that once per release, rule
version and *window phase* — the position of now among the windows' edges (``rerank.window``),
so a weekend promotion switches on at its ``start`` and off at its ``end`` without anyone
setting anything, and a request between two edges pays nothing but a bisect. A release with no
live rules and no windowed rules is served as it is.

The process that handles a ``PUT /v1/admin/rules`` applies the new version before answering
(``adopt``), so its next request sees it; the others within one poll.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from recsmith.config import ServingSettings
from recsmith.merchandising.document import RuleDocument
from recsmith.merchandising.versions import RuleSet, current_rules
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.rules import Rule
from recsmith.rerank.window import window_edges
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: Releases whose rule-applied copies are kept (the served one, an experiment's variants, the
#: one a catalogue change just replaced).
KEPT = 8


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Applied:
    base: Pipeline  # held so its id is not reused while the entry lives
    version: int
    document: RuleDocument
    edges: list[float]
    phase: int = -1
    pipeline: Pipeline | None = None


class LiveRules:
    """See module docstring. ``clock`` is replaceable: tests cross window edges with it."""

    def __init__(self, store: EventStore, clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store
        self.clock = clock
        self.current: RuleSet | None = None
        self._applied: OrderedDict[int, _Applied] = OrderedDict()

    @property
    def version(self) -> int:
        return 0 if self.current is None else self.current.version

    def poll(self) -> bool:
        """Read the store's version and, when it moved, its file (blocking); True on a change."""
        if self.store.rule_set_version() == self.version:
            return False
        latest = current_rules(self.store)
        if latest is None or latest.version == self.version:
            return False
        self.adopt(latest)
        return True

    def adopt(self, rules: RuleSet) -> None:
        """Serve ``rules`` from now on (unless a newer version is served already)."""
        if rules.version > self.version:
            self.current = rules
            log.info("live rules version %d applied", rules.version)

    async def watch(self, interval_s: float) -> None:
        """Poll forever (cancelled by the lifespan); a failed read is retried at the next tick."""
        while True:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.poll)
            await asyncio.sleep(interval_s)

    def serve(self, release: Any, placement: str | None, default: Any) -> Any:
        """What answers a list of ``placement`` from ``release`` (the chosen release): the
        release with the live rules and the windows in force now, or ``default`` (the release's
        own placement view) when neither applies — and always for a single model. The rules
        version is read once (a poll may swap it meanwhile: a list and its cache tag agree)."""
        if not isinstance(release, Pipeline):
            return default
        current = self.current
        version = 0 if current is None else current.version
        applied = self._applied.get(id(release))
        if applied is None or applied.base is not release or applied.version != version:
            document = RuleDocument() if current is None else current.document
            rules = [*_pipeline_rules(release), *(r for _, rs in document.lists() for r in rs)]
            applied = _Applied(release, version, document, window_edges(rules))
            self._applied[id(release)] = applied
            while len(self._applied) > KEPT:
                self._applied.popitem(last=False)
        self._applied.move_to_end(id(release))
        if applied.document.empty and not applied.edges:  # the release's own rules, as trained
            return default
        now = self.clock()
        phase = bisect.bisect_right(applied.edges, now.timestamp())
        if applied.pipeline is None or applied.phase != phase:
            config = applied.document.overlay(release.config)
            tag = f"~r{version}w{phase}"  # in response-cache keys (``recommend``)
            applied.pipeline = release.with_rules(config, now, tag)
            applied.phase = phase
        return applied.pipeline.for_placement(placement)


def _pipeline_rules(release: Pipeline) -> Iterable[Rule]:
    """The rules of the release's own file: ``[rerank]`` and every ``[placements.NAME]``'s."""
    yield from release.config.rerank.rules
    for name in release.config.placements:
        yield from release.config.for_placement(name).rerank.rules


def live_view(request: Request, release: Any, placement: str | None, default: Any) -> Any:
    """``LiveRules.serve`` of the app's live rules (``default`` in an app without them)."""
    live: LiveRules | None = getattr(request.app.state, "live_rules", None)
    return default if live is None else live.serve(release, placement, default)


def request_clock(request: Request) -> datetime:
    """Now, as the app's live rules tell time (a test's fixed clock too)."""
    live: LiveRules | None = getattr(request.app.state, "live_rules", None)
    return utc_now() if live is None else live.clock()


async def start_live_rules(
    app: Any, store: EventStore, serving: ServingSettings
) -> asyncio.Task[None]:
    """Put a ``LiveRules`` on ``app.state.live_rules``, read the store's rules once before the
    first request (a worker started after a ``PUT`` serves them at once; a store that does not
    answer yet is read at the next poll), and return its polling task: twice per
    ``serving.catalog_sync_interval_s``, so a change is served everywhere within it (a poll is
    one ``max()`` on a small table)."""
    live = app.state.live_rules = LiveRules(store)
    with contextlib.suppress(Exception):
        await asyncio.to_thread(live.poll)
    return asyncio.create_task(live.watch(serving.catalog_sync_interval_s / 2))
