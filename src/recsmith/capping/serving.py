"""The recommendations route's side of capping: this request's ``Caps``, read off the event loop,
and the pins a served list must keep (see the package docstring for what is guaranteed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool

from recsmith.capping.history import shown_since
from recsmith.capping.policy import NONE, Caps, caps
from recsmith.decisions.timespec import span_seconds
from recsmith.errors import StoreUnavailable
from recsmith.rerank.rules import PinRule

if TYPE_CHECKING:
    from recsmith.serving.deps import Runtime

#: How far back a page view's lists are looked for: a page is built within seconds; an hour
#: covers a tab left open and reloaded, and bounds the index range read.
PAGE_VIEW_SPAN_S = 3600.0


async def request_caps(
    runtime: Runtime, bundle: Any, unit: str | None, page_view: str | None
) -> tuple[Caps, list[str]]:
    """The capping of one request for ``unit`` (None: nothing is recorded about them, nothing is
    capped) and the parts it went without (``["capping"]`` while the store cannot be read: the
    list is served uncapped rather than not at all). 409 for a ``page_view`` the server cannot
    honour: its decision log is off."""
    log, settings = runtime.decisions, runtime.settings.capping
    if page_view is not None and (log is None or not log.enabled):
        raise HTTPException(409, "page_view_id needs the decision log ([decisions] enabled)")
    if unit is None or log is None or not log.enabled or not (settings.enabled or page_view):
        return NONE, []
    window_s = span_seconds(settings.window, "capping.window") if settings.enabled else 0.0
    now_us = time.time_ns() // 1000
    since_us = now_us - int(max(window_s, PAGE_VIEW_SPAN_S if page_view else 0.0) * 1e6)
    try:
        shown = await run_in_threadpool(shown_since, runtime.store, log, unit, since_us, now_us)
    except StoreUnavailable:
        return NONE, ["capping"]
    exploring = getattr(bundle, "explorer", None) is not None  # its drawn list must not move
    return caps(
        shown,
        max_shows=settings.max_shows if settings.enabled else None,
        window_since_us=now_us - int(window_s * 1e6),
        action="drop" if exploring else settings.action,
        page_view=page_view,
        pinned=pins_of(bundle),
    ), []


def pins_of(bundle: Any) -> dict[str, int]:
    """Item -> 0-based slot of the served pipeline's pin rules (none for a single model); of two
    pins for one item the first wins, as in ``rerank.rules.compile_rules``."""
    reranker = getattr(bundle, "reranker", None)
    pins: dict[str, int] = {}
    for rule in reranker.rules if reranker is not None else ():
        if isinstance(rule, PinRule):
            pins.setdefault(rule.item, rule.position - 1)
    return pins
