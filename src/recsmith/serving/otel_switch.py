"""Whether FastAPI's native OpenTelemetry instrumentation is kept on (``FastAPI(telemetry=)``).

FastAPI 0.165 asks, for every request, whether a global tracer, meter or logger provider has
been configured (``NativeTelemetry.enabled``: three provider look-ups, environment reads among
them), ~8 µs of the event loop's CPU per served list, 4 % of the request outside the pipeline
(BENCHMARKS §98). recsmith exports Prometheus metrics and no spans of its own; a provider can
only be configured with an OpenTelemetry SDK installed (``opentelemetry-sdk``, which vendors'
distributions such as Logfire build on). Without one, nothing can ever turn FastAPI's
instrumentation on, and it is switched off; with one, FastAPI's defaults stay as they are.
"""

from __future__ import annotations

import importlib.util

from fastapi.telemetry import TelemetryConfig

#: FastAPI's instrumentation, every signal off
OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def fastapi_telemetry() -> TelemetryConfig | None:
    """``FastAPI(telemetry=...)``: ``OFF`` without an OpenTelemetry SDK, else None (FastAPI's
    defaults, which instrument requests once a provider is configured)."""
    if importlib.util.find_spec("opentelemetry.sdk") is not None:
        return None
    return OFF
