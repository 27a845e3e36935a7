"""Whether FastAPI's native telemetry is on for a request, answered without FastAPI's check where
nothing it reads has been set.

``ServedApp`` asks FastAPI's ``NativeTelemetry.enabled`` for every HTTP request: for each of
tracing, metrics and logs it asks OpenTelemetry for the global provider, which, while none is
set, looks its ``OTEL_PYTHON_*_PROVIDER`` variable up in the environment; a name not there costs
a ``KeyError`` raised and caught inside ``os.environ``. The check cost 5.02 µs of CPU a request
at load 17, 0.68 µs with the shortcut below as first made (BENCHMARKS §141); the identity
checks since added cost ~0.3 µs more (§141's correction line).

The check's answer is False for sure when FastAPI's check and OpenTelemetry's getters are the
ones seen at import (not replaced, subclassed or patched), no provider was given to the app,
none was set globally (OpenTelemetry's module globals), and none of the three variables is in
the environment each getter reads (``os.environ`` for tracing; the ``environ`` the metrics and
logs modules imported for theirs): each ``get_*_provider`` then answers its proxy, which FastAPI
counts as unconfigured. ``TelemetryCheck.enabled`` looks those up directly (identity compares,
attribute reads and three dictionary look-ups in the environments' own tables, no exception) and
answers False; anything else — a check or getter replaced, a provider set, a variable present,
an environment replaced, an OpenTelemetry or FastAPI whose private names are not as read here —
is FastAPI's own check, called as before (which also loads a provider a variable names, as it
did).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class _Kind(NamedTuple):
    """One of tracing, metrics and logs as FastAPI's check reaches its provider."""

    #: the public module FastAPI calls the getter through, the getter's name there, the getter
    api: Any
    getter: str
    seen: Callable[[], Any]
    #: the module whose global holds the provider once set, and that global's name
    module: Any
    name: str
    #: the module whose ``environ`` the getter reads, and the variable it looks up there
    holder: Any
    variable: str


try:  # private, as ``fast_lane``'s: without them every request asks FastAPI's own check
    import opentelemetry._logs as _logs_api
    import opentelemetry._logs._internal as _logs
    import opentelemetry.metrics as _metrics_api
    import opentelemetry.metrics._internal as _metrics
    import opentelemetry.trace as _trace
    from fastapi.telemetry._api import _unconfigured
    from fastapi.telemetry._asgi import NativeTelemetry
except ImportError:  # pragma: no cover - another FastAPI or OpenTelemetry
    _KINDS: tuple[_Kind, ...] = ()
    _ENABLED: Any = None
else:
    _ENABLED = NativeTelemetry.enabled
    _KINDS = (
        _Kind(_trace, "get_tracer_provider", _trace.get_tracer_provider, _trace,
              "_TRACER_PROVIDER", os, _trace.OTEL_PYTHON_TRACER_PROVIDER),
        _Kind(_metrics_api, "get_meter_provider", _metrics_api.get_meter_provider, _metrics,
              "_METER_PROVIDER", _metrics, _metrics.OTEL_PYTHON_METER_PROVIDER),
        _Kind(_logs_api, "get_logger_provider", _logs_api.get_logger_provider, _logs,
              "_LOGGER_PROVIDER", _logs, _logs._OTEL_PYTHON_LOGGER_PROVIDER),
    )  # fmt: skip
    #: the getters read as here (their module's global, their module's ``environ``) only if
    #: they are the internal ones; and the proxies each answers while no provider is set: FastAPI's
    #: check must count each unconfigured, or it could answer True with nothing set
    if not (
        _trace.get_tracer_provider.__module__ == _trace.__name__
        and _metrics_api.get_meter_provider is _metrics.get_meter_provider
        and _logs_api.get_logger_provider is _logs.get_logger_provider
        and all(
            _unconfigured(proxy)
            for proxy in (
                _trace._PROXY_TRACER_PROVIDER,
                _metrics._PROXY_METER_PROVIDER,
                _logs._PROXY_LOGGER_PROVIDER,
            )
        )
    ):
        _KINDS = ()  # pragma: no cover


class TelemetryCheck:
    """FastAPI's ``NativeTelemetry.enabled`` for one app's ``native``, its False answered
    without it where nothing it reads is set (module docstring)."""

    def __init__(self, native: Any) -> None:
        self.native = native
        #: per kind, flat (unpacked per request, cheaper than attribute reads): the module its
        #: getter is called through, the getter's name, the getter seen at import, the module
        #: holding the global provider, that global's name, the module whose ``environ`` the
        #: getter reads, that environment, its own table, the variable as that table keys it
        #: (None: no such table)
        self._reads: tuple[tuple[Any, ...], ...] | None = None
        if not _KINDS:
            return
        reads = []
        for kind in _KINDS:
            environ = kind.holder.environ
            table, encode = getattr(environ, "_data", None), getattr(environ, "encodekey", None)
            if not isinstance(table, dict) or not callable(encode):
                return
            reads.append((*kind[:-1], environ, table, encode(kind.variable)))
        self._reads = tuple(reads)

    def enabled(self) -> bool:
        """``NativeTelemetry.enabled()``: False at once where nothing is set, else its own."""
        reads = self._reads
        if reads is not None and _nothing_set(self.native, reads):
            return False
        return bool(self.native.enabled())


def _nothing_set(native: Any, reads: tuple[tuple[Any, ...], ...]) -> bool:
    """``native``'s check is FastAPI's (not a subclass's, not replaced on the object), no
    provider given to the app (its ``config``), and for each kind (``reads``) the getter is the
    one seen at import, no provider is set globally, and its environment (the same object as
    when the check was made, so its table is the one read) lacks the variable. Plain ``or``
    chains, not generators: this runs for every request."""
    config: Mapping[str, Any] = native.config
    if (
        getattr(native.enabled, "__func__", None) is not _ENABLED
        or config["tracer_provider"] is not None
        or config["meter_provider"] is not None
        or config["logger_provider"] is not None
    ):
        return False
    for api, getter, seen, module, name, holder, environ, table, key in reads:
        if (
            getattr(api, getter) is not seen
            or getattr(module, name) is not None
            or holder.environ is not environ
            or key in table
        ):
            return False
    return True
