"""Whether FastAPI's native telemetry is on for a request, answered without FastAPI's check where
nothing it reads has been set.

``ServedApp`` asks FastAPI's ``NativeTelemetry.enabled`` for every HTTP request: for each of
tracing, metrics and logs it asks OpenTelemetry for the global provider, which, while none is
set, looks its ``OTEL_PYTHON_*_PROVIDER`` variable up in ``os.environ``; a name not there costs
a ``KeyError`` raised and caught inside ``os.environ``. Three of them made the check ~8.7 µs of
CPU a request on a quiet machine, and ~1.4 % of a worker's loop thread at load (BENCHMARKS §141).

The check's answer is False for sure when no provider was given to the app, none was set
globally (OpenTelemetry's module globals), and none of the three variables is in the
environment: each ``get_*_provider`` then answers its proxy, which FastAPI counts as
unconfigured. ``TelemetryCheck.enabled`` looks those up directly (attribute reads and three
dictionary look-ups in the environment's own table, no exception) and answers False; anything
else — a provider set, a variable present, an OpenTelemetry or FastAPI whose private names are
not as read here — is FastAPI's own check, called as before (which also loads a provider a
variable names, as it did).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

try:  # private, as ``fast_lane``'s: without them every request asks FastAPI's own check
    import opentelemetry._logs._internal as _logs
    import opentelemetry.metrics._internal as _metrics
    import opentelemetry.trace as _trace
    from fastapi.telemetry._api import _unconfigured
except ImportError:  # pragma: no cover - another FastAPI or OpenTelemetry
    _GLOBALS: tuple[tuple[Any, str, str], ...] = ()
else:
    #: (module, the global holding its provider once set, the variable naming one to load)
    _GLOBALS = (
        (_trace, "_TRACER_PROVIDER", _trace.OTEL_PYTHON_TRACER_PROVIDER),
        (_metrics, "_METER_PROVIDER", _metrics.OTEL_PYTHON_METER_PROVIDER),
        (_logs, "_LOGGER_PROVIDER", _logs._OTEL_PYTHON_LOGGER_PROVIDER),
    )
    #: the proxies ``get_*_provider`` answers while no provider is set: FastAPI's check must
    #: count each unconfigured, or it could answer True with nothing set
    if not all(
        _unconfigured(proxy)
        for proxy in (
            _trace._PROXY_TRACER_PROVIDER,
            _metrics._PROXY_METER_PROVIDER,
            _logs._PROXY_LOGGER_PROVIDER,
        )
    ):
        _GLOBALS = ()  # pragma: no cover


class TelemetryCheck:
    """FastAPI's ``NativeTelemetry.enabled`` for one app's ``native``, its False answered
    without it where nothing it reads is set (module docstring)."""

    def __init__(self, native: Any) -> None:
        self.native = native
        environ = os.environ
        encode = getattr(environ, "encodekey", None)
        #: the variables as the environment's own table keys them (None: no such table)
        self._keys = (
            tuple(encode(name) for _, _, name in _GLOBALS)
            if _GLOBALS and callable(encode) and isinstance(getattr(environ, "_data", None), dict)
            else None
        )

    def enabled(self) -> bool:
        """``NativeTelemetry.enabled()``: False at once where nothing is set, else its own."""
        keys = self._keys
        if keys is not None and _nothing_set(self.native.config, keys):
            return False
        return bool(self.native.enabled())


def _nothing_set(config: Mapping[str, Any], keys: tuple[bytes, ...]) -> bool:
    """No provider given to the app (``config``), none set globally, and none of the variables
    (``keys``, as the environment's table keys them) in the environment. Plain ``or`` chains,
    not generators: this runs for every request."""
    if (
        config["tracer_provider"] is not None
        or config["meter_provider"] is not None
        or config["logger_provider"] is not None
    ):
        return False
    for module, name, _ in _GLOBALS:
        if getattr(module, name) is not None:
            return False
    table = getattr(os.environ, "_data", None)  # ``os.environ`` itself may have been replaced
    return isinstance(table, dict) and table.keys().isdisjoint(keys)
