"""Shadow mode: a candidate release answers a sample of live requests beside the served one,
unseen, and how alike its lists are (``overlap``) and how long it took are recorded.

Off the request path: the route only offers the request's query and served list
(``ShadowRunner.offer``: a hash, a bounded ``queue.put_nowait``, microseconds); one background
thread per server process computes the candidate's list and compares. When the queue is full the
job is dropped and counted (``recsmith_shadow_requests_total{outcome="dropped"}``): shadowing
never slows or fails a live request. The sample is drawn from the recommendation id (a hash, not
a random draw), so one request is shadowed by every process or by none.

Which release shadows, and at what rate: ``[lifecycle] shadow_release`` / ``shadow_sample`` at
start, then ``PUT/DELETE /v1/admin/shadow``, which writes ``shadow.json`` in the model registry
(atomically); every server process following the registry picks it up within ``SYNC_S``. The
figures (``report``) are this process's since its shadow release was set; Prometheus sums the
processes, and so does ``recsmith monitor`` from the tallies each process writes to the registry
(``shadow_stats``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsmith.config import EventSettings, LifecycleSettings
from recsmith.events.latest import Signal, signal_of
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.overlap import jaccard, rbo
from recsmith.lifecycle.shadow_stats import WRITE_S, percentiles, write_tally
from recsmith.serving.coalesce import (
    Options,
    UserQuery,
    answer_arguments,
    in_time_order,
    weighs_history,
)
from recsmith.serving.metrics import LATENCY_BUCKETS
from recsmith.serving.stored_items import liked

if TYPE_CHECKING:
    from recsmith.store.base import EventStore

log = logging.getLogger(__name__)

#: Jobs waiting for the shadow thread at most; beyond it new ones are dropped (counted).
QUEUE_SIZE = 256
#: How often each process looks at ``shadow.json`` (a stat while nothing changed).
SYNC_S = 1.0
#: Latencies kept for the report's percentiles (the newest).
KEPT = 2000
OVERLAP_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
FILE = "shadow.json"


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """What the served list was computed from (the coalescer's query and options: the shadow
    gets the very same inputs, capping's exclusions included, its user's stored items in the
    order it reads them: ``ShadowRunner._in_its_order``), and what it was. ``by_time``: whether
    ``query.history`` (the stored items) was read oldest first, as the served release reads
    them (``coalesce.in_time_order``); ``weighed``: it holds only the liked ones
    (``coalesce.weighs_history``: read oldest first too)."""

    query: UserQuery
    options: Options
    served: list[str]
    served_ms: float | None
    by_time: bool = False
    weighed: bool = False


def _sampled(tally: _Tally | None, request_id: str) -> bool:
    """Whether a request is in the shadow's sample: its id's first 32 bits (random hex) below
    the sample's share of them; never without a shadow (``tally`` None)."""
    return tally is not None and int(request_id[:8], 16) < tally.sample * 0x1_0000_0000


@dataclass
class _Tally:
    """This process's figures for one shadow release."""

    release: str
    sample: float
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    compared: int = 0
    dropped: int = 0
    failed: int = 0
    store_failed: int = 0
    jaccard_sum: float = 0.0
    rbo_sum: float = 0.0
    shadow_ms: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))
    served_ms: deque[float] = field(default_factory=lambda: deque(maxlen=KEPT))


class ShadowMetrics:
    """The shadow's Prometheus collectors, in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "recsmith_shadow_requests_total",
            "Sampled requests the shadow release compared, dropped (queue full), failed on, or "
            "could not be given (store_failed: the store's re-read of the stored items failed).",
            ("outcome",),
            registry=registry,
        )
        self.overlap = Histogram(
            "recsmith_shadow_overlap",
            "Overlap of the shadow release's list with the served one (jaccard, rbo).",
            ("measure",),
            buckets=OVERLAP_BUCKETS,
            registry=registry,
        )
        self.latency = Histogram(
            "recsmith_shadow_latency_seconds",
            "The shadow release's pipeline call, per sampled request.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.info = Gauge(
            "recsmith_shadow_info",
            "The release shadowing live traffic (value: its sample rate).",
            ("release",),
            registry=registry,
        )


class ShadowRunner:
    """See module docstring. ``start`` the thread, ``close`` to stop it."""

    def __init__(
        self,
        registry: ModelRegistry | None,
        settings: LifecycleSettings,
        metrics: ShadowMetrics,
        queue_size: int = QUEUE_SIZE,
        store: EventStore | None = None,
        signal: Signal | None = None,
    ) -> None:
        """``signal``: which events weigh above 0 (``events.latest.signal_of``; None: the default
        weights'), for a shadow release that weighs a user's history the served one did not."""
        self.registry = registry
        self._store = store  # a user's stored items read again in their time order (None: not)
        self._signal = signal_of(EventSettings().weights) if signal is None else signal
        self._reading = False  # whether the shadow thread has read the store (holds a connection)
        self.metrics = metrics
        self._queue: queue.Queue[ShadowJob | None] = queue.Queue(queue_size)  # None: wake up
        self._lock = threading.Lock()
        self._bundle: Any = None
        self._tally: _Tally | None = None
        self._error: str | None = None
        self._stamp: int | None = None  # shadow.json's mtime when last read (None: never)
        self._failed: tuple[str | None, float] | None = None  # not retried every second
        self._wanted: tuple[str | None, float] = (settings.shadow_release, settings.shadow_sample)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._written: tuple[Any, ...] | None = None  # what write_stats wrote last

    # ---- the request path -------------------------------------------------------------

    def wants(self, request_id: str) -> bool:
        """Whether ``offer`` would take the job of request ``request_id``: a shadow release is
        loaded and the request is in its sample. The route asks first, so that a request not
        sampled (nearly all, and every one without a shadow) builds no job (BENCHMARKS §98)."""
        return _sampled(self._tally, request_id)

    def offer(self, job: ShadowJob) -> None:
        """Queue ``job`` if a shadow release is loaded and the request is in its sample; never
        blocks (a full queue drops it, counted)."""
        tally = self._tally
        if tally is None or not _sampled(tally, job.query.request_id):
            return
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            tally.dropped += 1
            self.metrics.requests.labels(outcome="dropped").inc()

    # ---- control ------------------------------------------------------------------------

    def set(self, release: str | None, sample: float) -> None:
        """Shadow ``release`` at ``sample`` (None: stop) in every process following the registry:
        written to ``shadow.json``, loaded here at once. Raises what loading raises (an unknown
        or broken release), leaving the previous shadow in place."""
        if self.registry is None:
            raise LookupError("shadow mode needs serving.registry: releases are named from it")
        if release is not None:
            self._load(release, sample)  # fails before anything is written
        self.registry.root.mkdir(parents=True, exist_ok=True)
        staging = self.registry.root / f".{FILE}-{os.getpid()}"
        staging.write_text(json.dumps({"release": release, "sample": sample}))
        os.replace(staging, self.registry.root / FILE)
        self._wanted = (release, sample)
        self._stamp = (self.registry.root / FILE).stat().st_mtime_ns
        if release is None:
            self._switch(None, None, sample)

    def report(self) -> dict[str, Any]:
        """This process's figures (see ``ShadowReport`` in the admin router)."""
        tally, error = self._tally, self._error
        if tally is None:
            return {"release": self._wanted[0], "active": False, "error": error}
        n = tally.compared
        return {
            "release": tally.release,
            "active": True,
            "error": error,
            "sample": tally.sample,
            "since": tally.since,
            "compared": n,
            "dropped": tally.dropped,
            "failed": tally.failed,
            "store_failed": tally.store_failed,
            "queued": self._queue.qsize(),
            "jaccard": tally.jaccard_sum / n if n else None,
            "rbo": tally.rbo_sum / n if n else None,
            "shadow_latency_ms": percentiles(list(tally.shadow_ms)),
            "served_latency_ms": percentiles(list(tally.served_ms)),
        }

    def tally_record(self) -> dict[str, Any] | None:
        """This process's tally as ``shadow_stats`` keeps it (None while nothing is shadowed)."""
        tally = self._tally
        if tally is None:
            return None
        with self._lock:
            return {
                "release": tally.release,
                "sample": tally.sample,
                "since": tally.since,
                "compared": tally.compared,
                "dropped": tally.dropped,
                "failed": tally.failed,
                "store_failed": tally.store_failed,
                "jaccard_sum": tally.jaccard_sum,
                "rbo_sum": tally.rbo_sum,
                "shadow_ms": list(tally.shadow_ms),
                "served_ms": list(tally.served_ms),
            }

    def write_stats(self) -> None:
        """Write this process's tally to the registry when it changed since the last write."""
        record = self.tally_record()
        if self.registry is None or record is None:
            return
        counts = tuple(
            record[key] for key in ("release", "compared", "dropped", "failed", "store_failed")
        )
        if counts == self._written:
            return
        try:
            write_tally(self.registry.root, record)
        except OSError as exc:  # a read-only registry: the figures stay in this process
            log.warning("shadow: figures not written to the registry: %s", exc)
        self._written = counts

    def start(self) -> None:
        """Load the configured shadow and start the thread (none without a registry: nothing
        can be shadowed then)."""
        if self.registry is None:
            return
        self._sync()
        self._thread = threading.Thread(target=self._run, name="recsmith-shadow", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):  # a full queue: the thread is awake anyway
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # ---- the shadow thread ------------------------------------------------------------

    def _run(self) -> None:
        next_sync = time.monotonic() + SYNC_S
        next_write = time.monotonic() + WRITE_S
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=max(0.0, next_sync - time.monotonic()))
            except queue.Empty:
                job = None
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + SYNC_S
                self._sync()
                self._let_go_of_the_store()
            if job is not None:
                self._compare(job)
            if time.monotonic() >= next_write:
                next_write = time.monotonic() + WRITE_S
                self.write_stats()
        self.write_stats()  # the last figures of a stopping process

    def _let_go_of_the_store(self) -> None:
        """Close this thread's store connection once no shadow reads the stored items again
        (none, or one that reads them as a set): a PostgreSQL store keeps one connection a
        thread, and this thread's would otherwise stay open, idle, for the rest of the
        process. While such a shadow runs it keeps it: one more connection a server process
        (reconnecting a sampled request would cost a connection's setup each)."""
        # a single model that may weigh an unknown user's history (``weighs_history``) reads
        reads = in_time_order(self._bundle) or getattr(self._bundle, "weighs_histories", False)
        if self._reading and self._store is not None and not reads:
            self._store.close_thread()
            self._reading = False

    def _compare(self, job: ShadowJob) -> None:
        bundle, tally = self._bundle, self._tally
        if bundle is None or tally is None:
            return
        started = time.perf_counter()
        o = job.options
        try:
            q = self._in_its_order(job, bundle)  # a read it would make served: in its time
        except Exception:  # the store's failure, not the candidate's: counted apart
            with self._lock:
                tally.store_failed += 1
            self.metrics.requests.labels(outcome="store_failed").inc()
            return
        try:
            # the request's own rules apply; a contextual arm names the served release's sources
            asked = answer_arguments([q], replace(o, source=None))
            answer = bundle.answer([q.user_id], o.k, **asked)
        except Exception as exc:  # the candidate's bug must not stop the thread or the server
            tally.failed += 1
            self.metrics.requests.labels(outcome="failed").inc()
            self._error = f"{type(exc).__name__}: {exc}"
            return
        took = time.perf_counter() - started
        listed = [str(i) for i in answer.lists.item_ids[0].tolist()]
        j, r = jaccard(job.served, listed), rbo(job.served, listed)
        with self._lock:
            tally.compared += 1
            tally.jaccard_sum += j
            tally.rbo_sum += r
            tally.shadow_ms.append(took * 1000.0)
            if job.served_ms is not None:
                tally.served_ms.append(job.served_ms)
        self.metrics.requests.labels(outcome="compared").inc()
        self.metrics.overlap.labels(measure="jaccard").observe(j)
        self.metrics.overlap.labels(measure="rbo").observe(r)
        self.metrics.latency.observe(took)

    def _in_its_order(self, job: ShadowJob, bundle: Any) -> UserQuery:
        """The job's query with its stored items (``history``) in the order the shadow release
        reads them. A release that reads a history's order (``coalesce.in_time_order``: a user
        tower, a sequence model) shadowing one that read the items as a set (``job.by_time``
        false: the cheaper read, BENCHMARKS §165) would otherwise pool the set read's order (by
        item id) and be judged on a list it would never serve: the items are read again by
        time, here, off the request path (one read a sampled request; a store that fails leaves
        the request out, counted as ``store_failed``: the release did not fail). The served
        list's own items are kept, in that read's order (one gone since first, as the oldest;
        one stored since is not the served list's)."""
        q = job.query
        if not q.history or self._store is None:
            return q
        if weighs_history(bundle, q.user_id) and not job.weighed:  # history: the liked only
            self._reading = True
            items, unliked = self._store.users_items_weighed([q.user_id], self._signal)[0]
            place = {item: n for n, item in enumerate(items)}
            kept = liked(q.history, unliked)
            return replace(q, history=sorted(kept, key=lambda item: place.get(item, -1)))
        if job.by_time or not in_time_order(bundle):
            return q
        self._reading = True
        timed = self._store.user_items(q.user_id, by_time=True)
        place = {item: n for n, item in enumerate(timed)}
        return replace(q, history=sorted(q.history, key=lambda item: place.get(item, -1)))

    def _sync(self) -> None:
        """Follow ``shadow.json`` when it changed (else the settings' release, once)."""
        wanted = self._wanted
        if self.registry is not None:
            path = self.registry.root / FILE
            try:
                stamp = path.stat().st_mtime_ns
            except FileNotFoundError:
                stamp = None
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    data = json.loads(path.read_text())
                    wanted = (data.get("release"), float(data.get("sample", 0.0)))
                except (OSError, ValueError) as exc:
                    log.error("shadow: %s unreadable: %s", path, exc)
        loaded = self._tally.release if self._tally is not None else None
        same = wanted[0] == loaded and (self._tally is None or self._tally.sample == wanted[1])
        if same or wanted == self._failed:
            self._wanted = wanted
            return
        self._wanted = wanted
        if wanted[0] is None:
            self._switch(None, None, wanted[1])
            return
        try:
            self._load(wanted[0], wanted[1])
        except Exception as exc:  # whatever a broken release raises: no shadow, said why
            log.error("shadow release %s not loaded: %s", wanted[0], exc)
            self._failed = wanted
            self._switch(None, None, wanted[1])
            self._error = str(exc)

    def _load(self, release: str, sample: float) -> None:
        if self.registry is None:
            raise LookupError("shadow mode needs serving.registry: releases are named from it")
        loaded = self._tally.release if self._tally is not None else None
        bundle = self._bundle if loaded == release else check_release(self.registry.path(release))
        self._switch(bundle, release, sample)

    def _switch(self, bundle: Any, release: str | None, sample: float) -> None:
        old = self._tally.release if self._tally is not None else None
        if old is not None:
            self.metrics.info.remove(old)
        with self._lock:
            self._bundle = bundle
            self._tally = None if release is None else _Tally(release, sample)
            self._error, self._failed = None, None
        if release is not None:
            self.metrics.info.labels(release=release).set(sample)
            log.info("shadowing %s at %.0f %% of requests", release, sample * 100)
