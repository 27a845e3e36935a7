"""``TelemetryCheck``: FastAPI's native telemetry check, its False answered without it only where
nothing it reads is set. Oracle: FastAPI's own ``NativeTelemetry.enabled`` on the same app, in
each state OpenTelemetry can be in (a provider set globally, given to the app, named by a
variable, a getter or environment replaced, the check itself replaced), and whether FastAPI's
check was asked at all where it must be (counted by a profiler: the check must stay FastAPI's
own object for the shortcut to be taken)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import opentelemetry._logs._internal as otel_logs
import opentelemetry.metrics._internal as otel_metrics
import pytest
from fastapi import FastAPI
from fastapi.telemetry._asgi import NativeTelemetry
from opentelemetry import trace
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.metrics import NoOpMeterProvider

from recsmith.serving.telemetry_off import TelemetryCheck


class _Asked:
    """The times FastAPI's ``NativeTelemetry.enabled`` runs inside ``counting``."""

    def __init__(self, native: NativeTelemetry) -> None:
        self.native, self.asked = native, 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        code = NativeTelemetry.enabled.__code__

        def profile(frame: Any, event: str, arg: Any) -> None:
            if event == "call" and frame.f_code is code:
                self.asked += 1

        sys.setprofile(profile)
        try:
            yield
        finally:
            sys.setprofile(None)


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
    native = (FastAPI(telemetry=telemetry) if telemetry else FastAPI())._native_telemetry
    return TelemetryCheck(native), _Asked(native)


def _answer(check: TelemetryCheck, asked: _Asked) -> bool:
    with asked.counting():
        return check.enabled()


def test_nothing_set_is_off_without_asking_fastapi() -> None:
    check, asked = _check()
    assert asked.native.enabled() is False  # the oracle's answer in this state
    assert _answer(check, asked) is False
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
    assert _answer(check, asked) is True
    assert asked.asked == 1


@pytest.mark.parametrize(
    "given",
    [
        {"tracer_provider": trace.NoOpTracerProvider()},
        {"meter_provider": NoOpMeterProvider()},
        {"logger_provider": NoOpLoggerProvider()},
    ],
)
def test_a_provider_given_to_the_app_is_fastapi_s_answer(given: dict[str, Any]) -> None:
    check, asked = _check(**given)
    assert _answer(check, asked) is True
    assert asked.asked == 1


def test_a_provider_given_with_its_kind_off_is_fastapi_s_answer() -> None:
    """Given, but tracing off: FastAPI says False, and is the one asked."""
    check, asked = _check(tracer_provider=trace.NoOpTracerProvider(), tracing=False)
    assert _answer(check, asked) is asked.native.enabled() is False
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
        _answer(check, asked)
    assert asked.asked == 1


def test_an_environment_replaced_by_a_plain_mapping_is_fastapi_s_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``os.environ`` replaced after the check was made (its table is not read then), or
    before (no table to read): FastAPI's check answers."""
    check, asked = _check()
    monkeypatch.setattr(os, "environ", dict(os.environ))
    later, asked_later = _check()
    assert _answer(check, asked) is _answer(later, asked_later) is False
    assert asked.asked == asked_later.asked == 1


class _Forced(NativeTelemetry):
    """A check turned on by a subclass (a vendor's, a test's)."""

    def enabled(self) -> bool:
        return True


def _forced_on_the_object(native: NativeTelemetry) -> None:
    native.enabled = lambda: True  # type: ignore[method-assign]


def _getter_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", trace.NoOpTracerProvider)


def _logs_environment_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The logs module keeps the ``environ`` it imported: one that names a provider."""
    environ = os._Environ(  # type: ignore[attr-defined]
        {b"OTEL_PYTHON_LOGGER_PROVIDER": b"no-such-provider"},
        os.environ.encodekey,  # type: ignore[attr-defined]
        os.environ.decodekey,  # type: ignore[attr-defined]
        os.environ.encodevalue,  # type: ignore[attr-defined]
        os.environ.decodevalue,  # type: ignore[attr-defined]
    )
    monkeypatch.setattr(otel_logs, "environ", environ)


def test_a_check_replaced_by_a_subclass_is_asked() -> None:
    """The subclass says True (FastAPI would ask it): so does the check of it."""
    app = FastAPI()
    native = _Forced(app._telemetry)
    assert TelemetryCheck(native).enabled() is native.enabled() is True


def test_a_check_replaced_on_the_object_after_is_asked() -> None:
    check, asked = _check()
    _forced_on_the_object(asked.native)
    assert _answer(check, asked) is asked.native.enabled() is True


def test_a_getter_patched_after_is_fastapi_s_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A getter answering a provider that is not a proxy: FastAPI's check calls it, says True."""
    check, asked = _check()
    _getter_patched(monkeypatch)
    assert asked.native.enabled() is True
    assert _answer(check, asked) is True
    assert asked.asked == 1


@pytest.mark.parametrize("made_after", [False, True])
def test_an_environment_a_module_kept_is_the_one_read(
    monkeypatch: pytest.MonkeyPatch, made_after: bool
) -> None:
    """The logs getter reads its own ``environ``, not ``os.environ``: a variable there makes
    FastAPI's check load the provider (and fail on a name no package provides), so the check
    must ask it, whether the environment was replaced before the check was made or after."""
    if not made_after:
        _logs_environment_patched(monkeypatch)
    check, asked = _check()
    if made_after:
        _logs_environment_patched(monkeypatch)
    with pytest.raises(Exception) as oracle:
        asked.native.enabled()
    with pytest.raises(type(oracle.value)):
        _answer(check, asked)
    assert asked.asked == 1
