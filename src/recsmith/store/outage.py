"""Operational failures of a store, told apart from bugs, and outages logged once.

Every public store call goes through ``guarded`` (``guarded_iter`` for generators). Why here and
not in the server: a failing store raises driver errors of many kinds from many calls, and only
the backend knows which of them mean "wait and retry" (connection refused, disk full, locked past
the timeout) and which are bugs. Those become ``StoreUnavailable`` carrying the driver's words,
which the server answers as a 503; bugs pass through unchanged. Tables that vanished under a
running store (the database or schema dropped and recreated) are created again and the call is
retried once, instead of failing until a restart.

``Outage`` remembers which kinds of call (``read``, ``write``, ``heartbeat``) fail now, so that
an outage is logged once when it starts and once when every kind that failed works again, not with
a traceback per request; with only writes failing (disk full) reads keep working and nothing
flaps. The heartbeat (readiness's one-row write) has a kind of its own because a small write can
fit where an event batch does not (a full disk): its success must not end an outage that event
writes are still in. It only vouches for writes whose latest failure is older than
``Outage.STALE_S``, so an idle server, which gets no writes, still sees the outage end. When the
store is out of space, other writes vouch the same way unless they are the operation that failed:
the decision log's few rows still fit where event batches do not, and a request's decision record
must not end the outage between two refused batches (the log would flap "back ... unavailable").
Any other cause (connection refused, locked) is all or nothing: any write that works ends it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Concatenate, Literal, NoReturn, ParamSpec, Protocol, TypeVar

from recsmith.errors import StoreReadOnly, StoreUnavailable

log = logging.getLogger(__name__)

Kind = Literal["read", "write", "heartbeat"]

#: The drivers' words for a store out of space (SQLite's SQLITE_FULL, its I/O error at a file-size
#: limit, ENOSPC/EFBIG, PostgreSQL's "could not extend file"): whether a write fails
#: depends on its size.
_OUT_OF_SPACE = ("disk is full", "disk i/o error", "no space left", "could not extend", "too large")


def out_of_space(cause: str) -> bool:
    """Whether ``cause`` says the store has no room (see ``_OUT_OF_SPACE``)."""
    lowered = cause.lower()
    return any(words in lowered for words in _OUT_OF_SPACE)


T = TypeVar("T")
P = ParamSpec("P")


class Outage:
    """Which kinds of call fail now, and since when (see module docstring). Thread-safe."""

    #: A heartbeat that works clears write failures older than this (seconds): under traffic a
    #: store refusing writes fails them more often than that; once traffic stops (a server taken
    #: out of rotation by its failed readiness) it gets back in after this long, the
    #: ``Retry-After`` its clients were given.
    STALE_S = 5.0

    def __init__(self, what: str) -> None:
        self.what = what
        #: kind -> (cause, monotonic time, the operation that failed)
        self._failing: dict[str, tuple[str, float, str]] = {}
        self._since = 0.0
        self._lock = threading.Lock()

    @property
    def failing(self) -> frozenset[str]:
        """The kinds of call whose latest attempt failed (empty: no outage)."""
        return frozenset(self._failing)

    def failed(self, kind: Kind, cause: str, operation: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            if not self._failing:
                self._since = now
                log.warning("store %s unavailable (%ss fail: %s)", self.what, kind, cause)
            self._failing[kind] = (cause, now, operation)

    def succeeded(self, kind: Kind, operation: str = "") -> None:
        """``operation`` (the store method's name) matters for writes only: a write ends a write
        outage when it is the operation that failed, when that failure is stale, or when its cause
        is not a lack of space (module docstring)."""
        if not self._failing:  # the common case: no lock
            return
        with self._lock:
            write = self._failing.get("write")
            if kind != "write":
                self._failing.pop(kind, None)
            if write and (
                (kind == "write" and (write[2] == operation or not out_of_space(write[0])))
                or (kind != "read" and write[1] < time.monotonic() - self.STALE_S)
            ):
                del self._failing["write"]
            if not self._failing and self._since:
                took = time.monotonic() - self._since
                self._since = 0.0
                log.warning("store %s is back after %.1f s", self.what, took)


class Guarded(Protocol):
    """What a backend gives ``guarded``: its outage record and how to read its driver's errors."""

    outage: Outage

    def _outage_cause(self, exc: Exception) -> str | None:
        """The driver's words when ``exc`` is an operational failure; None for a bug."""
        ...

    def _refused(self, exc: Exception) -> str | None:
        """Why ``exc`` is a write the store refuses by how it was opened (read-only), else
        None: such a refusal is no outage (``StoreReadOnly``)."""
        ...

    def _schema_missing(self, exc: Exception) -> bool:
        """True when ``exc`` says a table does not exist."""
        ...

    def _create_schema(self) -> None: ...


G = TypeVar("G", bound=Guarded)


def _reraise(store: Guarded, kind: Kind, exc: Exception, operation: str = "") -> NoReturn:
    """Raise ``StoreUnavailable`` for an operational failure (recorded in the outage),
    ``StoreReadOnly`` for a write the store refuses (not recorded: the store is not down), else
    ``exc`` itself."""
    refused = store._refused(exc)
    if refused is not None:
        raise StoreReadOnly(f"store {store.outage.what}: {refused}", refused) from exc
    if isinstance(exc, StoreUnavailable):
        store.outage.failed(kind, exc.cause, operation)
        raise exc
    cause = store._outage_cause(exc)
    if cause is None:
        raise exc
    store.outage.failed(kind, cause, operation)
    raise StoreUnavailable(f"store {store.outage.what}: {cause}", cause) from exc


def _recreate(store: Guarded, exc: Exception) -> None:
    log.warning("store %s lost its tables (%s): creating them again", store.outage.what, exc)
    store._create_schema()


def guarded(
    kind: Kind,
) -> Callable[[Callable[Concatenate[G, P], T]], Callable[Concatenate[G, P], T]]:
    """A store method whose operational failures raise ``StoreUnavailable`` (module docstring)."""

    def wrap(method: Callable[Concatenate[G, P], T]) -> Callable[Concatenate[G, P], T]:
        @functools.wraps(method)
        def call(store: G, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                try:
                    result = method(store, *args, **kwargs)
                except Exception as exc:
                    if not store._schema_missing(exc):
                        raise
                    _recreate(store, exc)
                    result = method(store, *args, **kwargs)
            except Exception as exc:
                _reraise(store, kind, exc, method.__name__)
            store.outage.succeeded(kind, method.__name__)
            return result

        return call

    return wrap


def guarded_iter(
    method: Callable[Concatenate[G, P], Iterator[T]],
) -> Callable[Concatenate[G, P], Iterator[T]]:
    """``guarded("read")`` for a generator. Tables found missing before the first chunk are
    created again, and then there is nothing to yield (they are empty); a failure after it
    cannot be retried without repeating chunks, so it raises."""

    @functools.wraps(method)
    def call(store: G, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        started = False
        try:
            for chunk in method(store, *args, **kwargs):
                started = True
                yield chunk
        except Exception as exc:
            if started or not store._schema_missing(exc):
                _reraise(store, "read", exc)
            try:
                _recreate(store, exc)
            except Exception as again:
                _reraise(store, "read", again)
        store.outage.succeeded("read")

    return call
