"""Requests and failures per experiment variant: the denominator a decision log cannot give.

A request that fails makes no decision, so the decision log alone cannot say how often a
variant fails. The route counts each request it serves under an experiment (``counting``) into
an in-memory ``RequestTally``; the decision log's writer thread stores the tally with its next
batch (``DecisionLog.flush``), added to the per-minute rows of ``experiment_requests``. A request
pays a lock and a dictionary update, never a store write.

What counts: a request answered (2xx) is one request; a request that fails while its list is
computed (an ``HTTPException`` of 5xx, ``StoreUnavailable``, any other exception, all answered
with a 5xx) is one request and one error. A 4xx (bad input, a request the deployment cannot
answer) is neither: the client's mistake says nothing about the variant, and counting it would
dilute the error rate. Durability is the decision log's: a kill loses at most one flush interval.
"""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

if TYPE_CHECKING:
    from recsmith.decisions.log import DecisionLog

#: (experiment, variant, minute since the epoch) -> [requests, errors]
Key = tuple[str, str, int]


class RequestTally:
    """Counts gathered since the last ``take``; thread-safe."""

    def __init__(self) -> None:
        self._counts: dict[Key, list[int]] = {}
        self._lock = threading.Lock()

    def add(self, experiment: str, variant: str, failed: bool, now_s: float | None = None) -> None:
        minute = int((time.time() if now_s is None else now_s) // 60)
        with self._lock:
            counts = self._counts.setdefault((experiment, variant, minute), [0, 0])
            counts[0] += 1
            counts[1] += int(failed)

    def take(self) -> list[tuple[Any, ...]]:
        """The gathered rows (``rows.REQUEST_COLUMNS``), emptying the tally."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return [(e, v, m, n, f) for (e, v, m), (n, f) in counts.items()]

    def put_back(self, taken: list[tuple[Any, ...]]) -> None:
        """Rows a store outage kept from being stored: added back for the next flush."""
        with self._lock:
            for e, v, m, n, f in taken:
                counts = self._counts.setdefault((e, v, m), [0, 0])
                counts[0] += n
                counts[1] += f


def _failed(exc: Exception) -> bool:
    """True for a server-side failure, False for a 4xx (not counted at all)."""
    return not (isinstance(exc, HTTPException) and exc.status_code < 500)


class _Counting:
    """``counting``'s block for a request under an experiment: a class, not a generator, since
    every served list enters one (a generator's context manager cost ~5 µs a request on a
    loaded machine, BENCHMARKS §74)."""

    __slots__ = ("_experiment", "_tally", "_variant")

    def __init__(self, tally: RequestTally, experiment: str, variant: str) -> None:
        self._tally, self._experiment, self._variant = tally, experiment, variant

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        # not a cancellation (no ``Exception``): a client gone is no failure of the variant
        if exc is None:
            self._tally.add(self._experiment, self._variant, failed=False)
        elif isinstance(exc, Exception) and _failed(exc):
            self._tally.add(self._experiment, self._variant, failed=True)


#: outside experiments, or with the log off: nothing to count, the same block every time
_NOT_COUNTED = nullcontext()


def counting(
    log: DecisionLog | None, experiment: str | None, variant: str | None
) -> AbstractContextManager[None]:
    """Count the request computed inside the block for ``(experiment, variant)`` (module
    docstring); nothing outside an experiment or with the decision log disabled."""
    if log is None or not log.enabled or experiment is None or variant is None:
        return _NOT_COUNTED
    return _Counting(log.requests, experiment, variant)
