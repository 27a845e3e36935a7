"""``TelemetryCheck``: FastAPI's native telemetry check, its False answered without it only where
nothing it reads is set. Oracle: FastAPI's own ``NativeTelemetry.enabled`` on the same app, in
each state OpenTelemetry can be in (a provider set globally, given to the app, named by a
variable), and whether FastAPI's check was asked at all where it must be."""

from __future__ import annotations

import os
from typing import Any

import opentelemetry._logs._internal as otel_logs
import opentelemetry.metrics._internal as otel_metrics
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.metrics import NoOpMeterProvider

from recsmith.serving.telemetry_off import TelemetryCheck


class _Asked:
    """FastAPI's check of ``app``, counting the times it is asked."""

    def __init__(self, app: FastAPI) -> None:
        self.native, self.asked = app._native_telemetry, 0
        self.config = self.native.config

    def enabled(self) -> bool:
        self.asked += 1
        return bool(self.native.enabled())


@pytest.fixture(autouse=True)
def _nothing_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no provider set and no variable naming one (put back after)."""
    for module, name in (
        (trace, "_TRACER_PROVIDER"),
        (otel_metrics, "_METER_PROVIDER"),
        (otel_logs, "_LOGGER_PROVIDER"),
    ):
        monkeypatch.setattr(module, name, None)
    for variable in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER",
                     "OTEL_PYTHON_LOGGER_PROVIDER"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)


def _check(**telemetry: Any) -> tuple[TelemetryCheck, _Asked]:
    asked = _Asked(FastAPI(telemetry=telemetry) if telemetry else FastAPI())
    return TelemetryCheck(asked), asked


def test_nothing_set_is_off_without_asking_fastapi() -> None:
    check, asked = _check()
    assert asked.native.enabled() is False  # the oracle's answer in this state
    assert check.enabled() is False
    assert asked.asked == 0


@pytest.mark.parametrize(
    ("module", "name", "provider"),
    [
        (trace, "_TRACER_PROVIDER", trace.NoOpTracerProvider()),
        (otel_metrics, "_METER_PROVIDER", NoOpMeterProvider()),
    ],
)
def test_a_provider_set_globally_is_fastapi_s_answer(
    monkeypatch: pytest.MonkeyPatch, module: Any, name: str, provider: Any
) -> None:
    """A global provider that is not a proxy turns it on; FastAPI decides, and says True."""
    monkeypatch.setattr(module, name, provider)
    check, asked = _check()
    assert check.enabled() is True
    assert asked.asked == 1


def test_a_provider_given_to_the_app_is_fastapi_s_answer() -> None:
    check, asked = _check(tracer_provider=trace.NoOpTracerProvider())
    assert check.enabled() is True
    assert asked.asked == 1


def test_a_provider_given_with_its_kind_off_is_fastapi_s_answer() -> None:
    """Given, but tracing off: FastAPI says False, and is the one asked."""
    check, asked = _check(tracer_provider=trace.NoOpTracerProvider(), tracing=False)
    assert check.enabled() is asked.native.enabled() is False
    assert asked.asked == 1


@pytest.mark.parametrize(
    "variable",
    ["OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER", "OTEL_PYTHON_LOGGER_PROVIDER"],
)
def test_a_variable_naming_a_provider_is_fastapi_s_answer(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """A variable naming a provider makes OpenTelemetry load it when asked: FastAPI's check
    is called, and fails as FastAPI's own fails for a name no package provides."""
    monkeypatch.setenv(variable, "no-such-provider")
    check, asked = _check()
    with pytest.raises(Exception) as oracle:
        asked.native.enabled()
    with pytest.raises(type(oracle.value)):
        check.enabled()
    assert asked.asked == 1


def test_an_environment_replaced_by_a_plain_mapping_is_fastapi_s_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``os.environ`` replaced after the check was made (its table is not read then), or
    before (no table to read): FastAPI's check answers."""
    check, asked = _check()
    monkeypatch.setattr(os, "environ", dict(os.environ))
    later, asked_later = _check()
    assert check.enabled() is later.enabled() is False
    assert asked.asked == asked_later.asked == 1
